"""FLOPs of one env-step, counted from an ONNX graph (batch fixed to 1 by shape inference).

Matrix products count 2*M*N*K (Gemm, MatMul; Conv and ConvTranspose by their kernels); elementwise
ops one FLOP per output element; normalisations and reductions a few per element. Shape, gather and
concat nodes are free. This is the count the benchmark divides by to report GFLOP/s.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

ELEMENTWISE = {
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Sigmoid",
    "Tanh",
    "Relu",
    "Exp",
    "Log",
    "Softplus",
    "Abs",
    "Sign",
    "Neg",
    "Sqrt",
    "Pow",
    "Less",
    "Greater",
    "Where",
    "Clip",
    "Max",
    "Min",
    "Erf",
    "Round",
    "Floor",
    "Cast",
}
PER_ELEMENT = {
    "LayerNormalization": 8,
    "Softmax": 5,
    "LogSoftmax": 5,
    "GroupNormalization": 8,
    "ReduceSum": 1,
    "ReduceMean": 1,
    "ReduceMax": 1,
    "ArgMax": 1,
}


def _run_shapes(model, names: list[str], batch: int) -> dict[str, list[int]]:
    import onnx
    import onnxruntime as ort

    m = onnx.ModelProto()
    m.CopyFrom(model)
    known = {o.name for o in m.graph.output}
    m.graph.output.extend(onnx.ValueInfoProto(name=n) for n in names if n not in known)
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = {}
    for i in sess.get_inputs():
        shape = [batch if not isinstance(d, int) else d for d in i.shape]
        dtype = {"tensor(float)": np.float32, "tensor(int64)": np.int64, "tensor(bool)": bool}.get(i.type, np.float32)
        feeds[i.name] = np.ones(shape, dtype)
    outs = sess.run(names, feeds)
    return {n: list(np.shape(o)) for n, o in zip(names, outs)}


def count_flops(path: str | Path, batch: int = 1) -> dict:
    import onnx
    from onnx import numpy_helper, shape_inference

    model = onnx.load(str(path))
    for v in list(model.graph.input) + list(model.graph.output):
        dims = v.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].Clear()
            dims[0].dim_value = batch
    model = shape_inference.infer_shapes(model, data_prop=True)
    shapes = {}
    for v in list(model.graph.value_info) + list(model.graph.input) + list(model.graph.output):
        d = v.type.tensor_type.shape.dim
        shapes[v.name] = [x.dim_value if x.HasField("dim_value") else None for x in d]
    for init in model.graph.initializer:
        shapes[init.name] = list(numpy_helper.to_array(init).shape)
    missing = [o for n in model.graph.node for o in n.output if None in shapes.get(o, [None])]
    if missing:  # reshapes computed at run time: read the real shapes off one onnxruntime run
        shapes.update(_run_shapes(model, missing, batch))

    def size(name):
        s = shapes.get(name)
        return None if s is None or any(x is None for x in s) else int(np.prod(s)) if s else 1

    total, unknown, by_op = 0, [], {}
    for n in model.graph.node:
        f = 0
        if n.op_type in ("Gemm", "MatMul"):
            a, b = shapes.get(n.input[0]), shapes.get(n.input[1])
            out = size(n.output[0])
            if not a or not b or out is None or None in a or None in b:  # None, or a rank it could not tell
                unknown.append(n.name)
                continue
            trans_a = any(at.name == "transA" and at.i for at in n.attribute)
            k = a[-2] if trans_a else a[-1]
            f = 2 * out * k
            if n.op_type == "Gemm" and len(n.input) > 2:
                f += out
        elif n.op_type in ("Conv", "ConvTranspose"):
            w = shapes.get(n.input[1])
            out, inp = size(n.output[0]), size(n.input[0])
            if w is None or out is None:
                unknown.append(n.name)
                continue
            k = int(np.prod(w[1:])) if n.op_type == "Conv" else int(np.prod(w[1:])) * w[0] // max(w[1], 1)
            f = 2 * (out if n.op_type == "Conv" else inp) * (k if n.op_type == "Conv" else int(np.prod(w[1:])))
        elif n.op_type in ELEMENTWISE:
            f = size(n.output[0]) or 0
        elif n.op_type in PER_ELEMENT:
            f = PER_ELEMENT[n.op_type] * (size(n.input[0]) or 0)
        total += f
        by_op[n.op_type] = by_op.get(n.op_type, 0) + f
    return {
        "flops": int(total // batch),
        "by_op": {k: v // batch for k, v in sorted(by_op.items())},
        "unknown": unknown,
    }

"""Write dreamgym/_matmul.onnx: C = A @ B with dynamic sizes, the roofline `dreamgym bench` measures.

The runtime cannot import onnx, so the tiny graph ships with the package; this script remakes it.
"""

from pathlib import Path

import onnx
from onnx import TensorProto, helper

graph = helper.make_graph(
    [helper.make_node("MatMul", ["A", "B"], ["C"])],
    "matmul",
    [
        helper.make_tensor_value_info("A", TensorProto.FLOAT, ["M", "K"]),
        helper.make_tensor_value_info("B", TensorProto.FLOAT, ["K", "N"]),
    ],
    [helper.make_tensor_value_info("C", TensorProto.FLOAT, ["M", "N"])],
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
onnx.checker.check_model(model)
out = Path(__file__).resolve().parents[1] / "dreamgym" / "_matmul.onnx"
onnx.save(model, out)
print(f"wrote {out} ({out.stat().st_size} bytes)")

"""onnxruntime sessions for a bundle, with the model state kept where the graphs run.

The step path uses IO binding on every device: state tensors live in two preallocated buffer sets
(A -> B, then B -> A), and the action, noise and output buffers are bound once. A step therefore
allocates nothing, and on CUDA the state never leaves the GPU; only obs, reward and terminated come
back to the host. On the CPU provider the same code runs with host buffers, which is how the IO
binding path is exercised on machines without a GPU.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from .bundle import Bundle
from .errors import missing_onnxruntime

try:
    import onnxruntime as ort
except ImportError:  # pragma: no cover - depends on the install
    ort = None


SINGLE_THREAD_MAX_BATCH = 128  # measured here: one thread wins up to 128 envs (239k vs 199k steps/s at 64)


def available_providers() -> list[str]:
    if ort is None:
        raise missing_onnxruntime()
    return list(ort.get_available_providers())


def choose_device(device: str) -> str:
    """'auto' -> 'cuda' when onnxruntime offers the CUDA provider, else 'cpu'."""
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    cuda = "CUDAExecutionProvider" in available_providers()
    if device == "cuda" and not cuda:
        raise ValueError(
            "device='cuda' was asked for but this onnxruntime has no CUDAExecutionProvider; "
            'install the GPU build with `pip uninstall -y onnxruntime && pip install "dreamgym[gpu]"`, '
            "or use device='auto'"
        )
    return "cuda" if (device == "cuda" or (device == "auto" and cuda)) else "cpu"


def make_session(path: os.PathLike, device: str, threads: int | None = None, cuda_graph: bool = False) -> Any:
    if ort is None:
        raise missing_onnxruntime()
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        opts.intra_op_num_threads = int(threads)
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    if device != "cuda":
        return ort.InferenceSession(os.fspath(path), sess_options=opts, providers=["CPUExecutionProvider"])
    cuda = ("CUDAExecutionProvider", {"enable_cuda_graph": "1"} if cuda_graph else {})
    return ort.InferenceSession(os.fspath(path), sess_options=opts, providers=[cuda, "CPUExecutionProvider"])


class Engine:
    """Runs a bundle's graphs for a fixed batch of `num_envs` rows.

    `inputs` holds the host buffers the runtime fills in place before each step (action and noise);
    `outputs` holds the host buffers a step writes (obs, reward, terminated and latent if offered).
    """

    def __init__(self, bundle: Bundle, num_envs: int, device: str = "auto", threads: int | None = None):
        self.bundle, self.n = bundle, int(num_envs)
        self.device = choose_device(device)
        # Small batches run fastest on one thread (a thread pool's hand-offs cost more than the work);
        # large ones on every core. None picks by batch size; an int forces it.
        if threads is None and self.device == "cpu":
            threads = 1 if self.n <= SINGLE_THREAD_MAX_BATCH else (os.cpu_count() or 1)
        self.threads = threads
        self.ort_seconds = 0.0  # time spent inside onnxruntime's step, for the benchmark's shell share
        self.sessions: dict[str, Any] = {"reset": self._open("reset")}
        # On CUDA the step's shapes never change, so it is captured once as a CUDA graph per buffer set
        # and replayed; if some node cannot be captured (a CPU fallback), plain CUDA execution is used.
        self.cuda_graph = False
        if self.device == "cuda":
            try:
                self.sessions["step"] = self._open("step", cuda_graph=True)
                self.cuda_graph = True
            except Exception:  # noqa: BLE001 - onnxruntime raises its own types; capture is optional
                self.sessions["step"] = self._open("step")
        else:
            self.sessions["step"] = self._open("step")
        step = self.sessions["step"]
        act_arg = next(i for i in step.get_inputs() if i.name == "action")
        self.action_dtype = np.dtype(_np_type(act_arg.type))
        n, b = self.n, bundle

        # host buffers bound once
        self.inputs = {"action": np.zeros((n, *b.action_space.shape), self.action_dtype)}
        for nz in b.noise_for("step"):
            self.inputs[nz.name] = np.zeros((n, *nz.shape), nz.np_dtype)
        out_types = {o.name: _np_type(o.type) for o in step.get_outputs()}
        self.outputs = {
            "obs": np.zeros((n, *b.observation_space.shape), out_types["obs"]),
            "reward": np.zeros((n,), out_types["reward"]),
            "terminated": np.zeros((n,), out_types["terminated"]),
        }
        if "latent" in out_types:
            self.outputs["latent"] = np.zeros((n, b.latent_dim), out_types["latent"])

        # two state buffer sets; `self.cur` indexes the one holding the current state
        self._host = [{s.name: np.zeros((n, *s.shape), s.np_dtype) for s in b.state} for _ in range(2)]
        if self.device == "cuda":
            dev = lambda v: ort.OrtValue.ortvalue_from_numpy(v, "cuda", 0)  # noqa: E731
            self._dev = [{k: dev(v) for k, v in h.items()} for h in self._host]
            # inputs and outputs at fixed device addresses (what CUDA graph replay needs); the host
            # buffers are copied in before and out after each step
            self._in_dev = {k: dev(v) for k, v in self.inputs.items()}
            self._out_dev = {k: dev(v) for k, v in self.outputs.items()}
        else:
            self._dev = [{k: ort.OrtValue.ortvalue_from_numpy(v) for k, v in h.items()} for h in self._host]
        self.cur = 0
        self._bindings = [self._bind_step(i) for i in range(2)]
        self._run_options = [None, None]
        if self.cuda_graph:
            for i in range(2):
                self._run_options[i] = ort.RunOptions()
                self._run_options[i].add_run_config_entry("gpu_graph_id", str(i + 1))
        self._render_bindings: list[Any] | None = None
        self._frame: np.ndarray | None = None

    # -- sessions ---------------------------------------------------------------------------------
    def _open(self, graph: str, cuda_graph: bool = False) -> Any:
        sess = make_session(self.bundle.graph_file(graph), self.device, self.threads, cuda_graph)
        self.bundle.check_session(graph, sess)
        return sess

    def session(self, graph: str) -> Any:
        if graph not in self.sessions:
            self.sessions[graph] = self._open(graph)
        return self.sessions[graph]

    def _bind_step(self, src: int) -> Any:
        sess, dst = self.sessions["step"], 1 - src
        bind = sess.io_binding()
        takes = {i.name for i in sess.get_inputs()}
        for name, v in self._dev[src].items():
            if name in takes:
                bind.bind_ortvalue_input(name, v)
        cuda = self.device == "cuda"
        for name, buf in self.inputs.items():
            if cuda:
                bind.bind_ortvalue_input(name, self._in_dev[name])
            else:  # on the CPU the OrtValue is the numpy buffer itself: filling it in place is enough
                bind.bind_cpu_input(name, buf)
        for name, v in self._dev[dst].items():
            bind.bind_ortvalue_output(f"next_{name}", v)
        for name, buf in self.outputs.items():
            bind.bind_ortvalue_output(name, self._out_dev[name] if cuda else ort.OrtValue.ortvalue_from_numpy(buf))
        return bind

    # -- running ----------------------------------------------------------------------------------
    def step(self) -> None:
        """One step of every row from the filled `inputs` into `outputs`; the state advances in place."""
        bind = self._bindings[self.cur]
        cuda = self.device == "cuda"
        if cuda:
            for name, buf in self.inputs.items():
                self._in_dev[name].update_inplace(buf)
        t0 = time.perf_counter()
        self.sessions["step"].run_with_iobinding(bind, self._run_options[self.cur])
        self.ort_seconds += time.perf_counter() - t0
        if cuda:
            for name, v in self._out_dev.items():
                self.outputs[name][...] = v.numpy()
        self.cur = 1 - self.cur

    def reset_rows(self, rows: np.ndarray | None, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run reset.onnx on a batch of contexts and write its state into `rows` (all rows if None)."""
        names = [o.name for o in self.sessions["reset"].get_outputs()]
        out = dict(zip(names, self.sessions["reset"].run(None, feeds)))
        self.set_state({s.name: out[s.name] for s in self.bundle.state}, rows)
        return out

    def get_state(self, rows: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """A host copy of the current state (of `rows` only, if given)."""
        if self.device == "cuda":
            full = {k: v.numpy() for k, v in self._dev[self.cur].items()}
        else:
            full = self._host[self.cur]
        return {k: (v if rows is None else v[rows]).copy() for k, v in full.items()}

    def set_state(self, state: dict[str, np.ndarray], rows: np.ndarray | None = None) -> None:
        """Overwrite the current state, or only `rows` of it; the other rows are untouched."""
        for s in self.bundle.state:
            if self.device == "cuda":
                full = self._dev[self.cur][s.name].numpy() if rows is not None else np.empty((self.n, *s.shape), s.np_dtype)
            else:
                full = self._host[self.cur][s.name]
            if rows is None:
                full[...] = state[s.name]
            else:
                full[rows] = state[s.name]
            if self.device == "cuda":
                self._dev[self.cur][s.name].update_inplace(np.ascontiguousarray(full))

    def render(self) -> np.ndarray:
        """Frames of the current state, uint8 [num_envs, H, W, 3] (a buffer reused between calls)."""
        sess = self.session("render")
        if self._render_bindings is None:
            H, W, Ch = self.bundle.frame_shape
            self._frame = np.zeros((self.n, H, W, Ch), np.uint8)
            self._render_bindings = []
            takes = {i.name for i in sess.get_inputs()}
            for i in range(2):
                bind = sess.io_binding()
                for name, v in self._dev[i].items():
                    if name in takes:
                        bind.bind_ortvalue_input(name, v)
                bind.bind_ortvalue_output("frame", ort.OrtValue.ortvalue_from_numpy(self._frame))
                self._render_bindings.append(bind)
        sess.run_with_iobinding(self._render_bindings[self.cur])
        return self._frame



def _np_type(ort_type: str) -> str:
    from .bundle import _ORT_DTYPES

    return _ORT_DTYPES[ort_type]

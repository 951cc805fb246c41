"""What both engines share: onnxruntime sessions on a device, the choice of device, and `BaseEngine`, the
small interface the vector env, `bench` and `play` use (see `dreamgym.engine` for the two engines).

`device="auto"` takes CUDA only when a CUDA session really opens and runs in this process (`cuda_problem`):
onnxruntime-gpu lists the CUDA provider even where the CUDA and cuDNN libraries it needs cannot load, and then
either fails or quietly runs on the CPU.

Imported by `dreamgym.engine_cpu` and `dreamgym.engine_cuda`; imports neither.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import io
import os
import warnings
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from .bundle import ORT_DTYPES, Bundle
from .errors import BundleError, missing_onnxruntime

try:
    import onnxruntime as ort
except ImportError:  # pragma: no cover - depends on the install
    ort = None

CUDA = "CUDAExecutionProvider"


# -- devices and sessions -------------------------------------------------------------------------------
def available_providers() -> list[str]:
    """The execution providers this onnxruntime build lists (listed is not loadable: see `cuda_problem`)."""
    if ort is None:
        raise missing_onnxruntime()
    return list(ort.get_available_providers())


def make_session(path: os.PathLike, device: str, threads: int | None = None, cuda_graph: bool = False) -> Any:
    """An onnxruntime session on `device` ('cpu' or 'cuda'), fully optimised, `threads` intra-op threads.

    A CUDA session never falls back to the CPU on its own (onnxruntime's default): one that cannot use CUDA
    raises, so that a 'cuda' engine is never a CPU session bound to device buffers."""
    if ort is None:
        raise missing_onnxruntime()
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        opts.intra_op_num_threads = int(threads)
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    if device != "cuda":
        try:
            return ort.InferenceSession(os.fspath(path), sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime's own exception types (InvalidProtobuf, Fail, ...): a damaged file
            raise BundleError(
                f"{Path(path).name}: onnxruntime cannot load this graph ({str(e).strip()}); the file is damaged "
                "or not an ONNX model: re-export the bundle or restore the file"
            ) from e
    cuda = (CUDA, {"enable_cuda_graph": "1"} if cuda_graph else {})
    return ort.InferenceSession(
        os.fspath(path), sess_options=opts, providers=[cuda, "CPUExecutionProvider"], enable_fallback=0
    )


_CUDA_FIX = (
    "install the GPU runtime with the CUDA and cuDNN libraries it was built for: `pip uninstall -y onnxruntime "
    'onnxruntime-gpu && pip install "dreamgym[gpu]"` (onnxruntime-gpu[cuda,cudnn] brings them as nvidia-* '
    "wheels), or install them system-wide (https://onnxruntime.ai/docs/install/#cuda-and-cudnn); an NVIDIA "
    'driver must be running (`nvidia-smi`). `python -c "import onnxruntime as o; o.preload_dlls(); '
    'o.print_debug_info()"` shows what loads'
)


@functools.cache
def cuda_problem() -> str | None:
    """Why CUDA cannot run in this process, or None when it can. Probed once per process: the CUDA and cuDNN
    libraries are preloaded from the nvidia-* wheels (`onnxruntime.preload_dlls`, onnxruntime-gpu >= 1.21),
    then a one-node graph is opened on the CUDA provider and run."""
    if ort is None:
        raise missing_onnxruntime()
    build = f"onnxruntime {ort.__version__}" + (
        f" (built for CUDA {ort.cuda_version})" if getattr(ort, "cuda_version", "") else ""
    )
    if CUDA not in ort.get_available_providers():
        return f"{build} has no {CUDA} (it is the CPU build, or not onnxruntime-gpu)"
    printed = io.StringIO()  # preload_dlls prints which library failed to load, and does not raise
    problem = None
    with contextlib.redirect_stdout(printed):
        if hasattr(ort, "preload_dlls"):
            try:
                ort.preload_dlls()
            except Exception as e:  # noqa: BLE001 - a failed preload is reported with the rest
                print(f"preload_dlls: {e}")
        try:
            sess = make_session(Path(str(resources.files("dreamgym"))) / "_matmul.onnx", "cuda")
            if CUDA not in sess.get_providers():
                problem = f"a CUDA session opened with {sess.get_providers()} only"
            else:
                a = np.ones((2, 2), np.float32)
                sess.run(None, {"A": a, "B": a})
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own types
            problem = f"{type(e).__name__}: {str(e).strip()}"
    if problem is None:
        return None
    notes = [
        line.strip()
        for line in printed.getvalue().splitlines()
        if "Failed to load" in line or line.startswith("preload_dlls")
    ]
    # the provider library's own load error names the missing .so (onnxruntime's message may not)
    lib = (
        Path(ort.__file__).parent
        / "capi"
        / ("onnxruntime_providers_cuda.dll" if os.name == "nt" else "libonnxruntime_providers_cuda.so")
    )
    if lib.is_file():
        try:
            ctypes.CDLL(os.fspath(lib))
        except OSError as e:
            notes.append(f"loading {lib.name}: {e}")
    return "; ".join([f"{build} lists {CUDA} but cannot use it: {problem}", *dict.fromkeys(notes)])


_warned_cpu_fallback = False


def choose_device(device: str) -> str:
    """'cpu' or 'cuda' for `device` ('auto', 'cpu' or 'cuda'). 'auto' is 'cuda' when a CUDA session works in
    this process, else 'cpu' (with one warning per process when CUDA is offered but does not work); 'cuda'
    raises a ValueError saying what is missing and how to install it when CUDA does not work."""
    global _warned_cpu_fallback
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    if device == "cpu":
        return "cpu"
    offered = CUDA in available_providers()
    if device == "auto" and not offered:
        return "cpu"  # the CPU build: nothing to warn about
    problem = cuda_problem()
    if problem is None:
        return "cuda"
    if device == "cuda":
        raise ValueError(
            f"device='cuda' was asked for, but {problem}. To fix it, {_CUDA_FIX}; or use "
            "device='auto' (the GPU when it works, else the CPU) or device='cpu'"
        )
    if not _warned_cpu_fallback:
        _warned_cpu_fallback = True
        warnings.warn(
            f"dreamgym: device='auto' runs on the CPU: {problem}. To run on the GPU, {_CUDA_FIX}. "
            "Pass device='cpu' to choose the CPU without this warning.",
            RuntimeWarning,
            stacklevel=2,
        )
    return "cpu"


# -- the interface ------------------------------------------------------------------------------------
class BaseEngine:
    """What the runtime uses of an engine, and the parts both engines share.

    `inputs`: host buffers the caller fills in place before each `step()` ("action" and the step's noise).
    `outputs`: host buffers a step writes (obs, reward, terminated, latent when the bundle offers it, and the
    manifest's optional per-step outputs).
    `shards`, `threads`, `tile_rows`: the schedule (CUDA: 1 shard, all rows in one call). `ort_seconds`:
    time spent inside onnxruntime's step, for the benchmark's share outside it.
    """

    device: str
    shards: int
    tile_rows: int
    _state_values: list[dict[str, Any]]  # per buffer set, the state as OrtValues (host or device)
    cur: int  # the buffer set holding the current state

    def __init__(self, bundle: Bundle, num_envs: int, threads: int | None):
        self.bundle, self.n, self.threads = bundle, int(num_envs), threads
        self.ort_seconds = 0.0
        self.sessions: dict[str, Any] = {"reset": self._open("reset")}
        self._render_bindings: list[Any] | None = None
        self._frame: np.ndarray | None = None

    def _open(self, graph: str, cuda_graph: bool = False) -> Any:
        sess = make_session(self.bundle.graph_file(graph), self.device, self.threads, cuda_graph)
        self.bundle.check_session(graph, sess)
        return sess

    def session(self, graph: str) -> Any:
        """The onnxruntime session of one of the bundle's graphs, opened (and checked) on first use."""
        if graph not in self.sessions:
            self.sessions[graph] = self._open(graph)
        return self.sessions[graph]

    def _host_buffers(self, step: Any) -> None:
        """`inputs` and `outputs`, typed as the step graph declares them. A multi-agent bundle has one
        action, obs, reward and terminated buffer per agent, under the graph's names (`action.<agent>`...)."""
        b, n, m = self.bundle, self.n, self.bundle.manifest
        ins = {i.name: i for i in step.get_inputs()}
        types = {o.name: ORT_DTYPES[o.type] for o in step.get_outputs()}
        per = (
            [("", m.observation_space, m.action_space)]
            if not m.agents
            else [(f".{a.name}", a.observation_space, a.action_space) for a in m.agents]
        )
        self.inputs, self.outputs = {}, {}
        self.action_dtypes = {}
        for sfx, _, act_space in per:
            dtype = np.dtype(ORT_DTYPES[ins[f"action{sfx}"].type])
            self.action_dtypes[f"action{sfx}"] = dtype
            self.inputs[f"action{sfx}"] = np.zeros((n, *act_space.shape), dtype)
        self.action_dtype = next(iter(self.action_dtypes.values()))
        for nz in b.noise_for("step"):
            self.inputs[nz.name] = np.zeros((n, *nz.shape), nz.np_dtype)
        for sfx, obs_space, _ in per:
            self.outputs[f"obs{sfx}"] = np.zeros((n, *obs_space.shape), types[f"obs{sfx}"])
        for key in ("reward", "terminated"):
            for sfx, _, _ in per:
                self.outputs[f"{key}{sfx}"] = np.zeros((n,), types[f"{key}{sfx}"])
        if "latent" in types:
            self.outputs["latent"] = np.zeros((n, b.latent_dim), types["latent"])
        for o in m.outputs:  # the bundle's optional per-step outputs
            self.outputs[o.name] = np.zeros((n, *o.shape), types[o.name])

    def step(self) -> None:
        """One step of every row from the filled `inputs` into `outputs`; the state advances in place."""
        raise NotImplementedError

    def get_state(self, rows: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """A host copy of the current state (of `rows` only, if given)."""
        raise NotImplementedError

    def set_state(self, state: dict[str, np.ndarray], rows: np.ndarray | None = None) -> None:
        """Overwrite the current state, or only `rows` of it; the other rows are untouched."""
        raise NotImplementedError

    def reset_rows(self, rows: np.ndarray | None, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run reset.onnx on a batch of contexts and write its state into `rows` (all rows if None)."""
        sess = self.sessions["reset"]
        out = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
        self.set_state({s.name: out[s.name] for s in self.bundle.state}, rows)
        return out

    def render(self) -> np.ndarray:
        """Frames of the current state, uint8 [num_envs, H, W, 3] (a host buffer reused between calls)."""
        sess = self.session("render")
        if self._render_bindings is None:
            self._frame = np.zeros((self.n, *self.bundle.frame_shape), np.uint8)
            takes = {i.name for i in sess.get_inputs()}
            self._render_bindings = []
            for values in self._state_values:
                bind = sess.io_binding()
                for name, v in values.items():
                    if name in takes:
                        bind.bind_ortvalue_input(name, v)
                bind.bind_ortvalue_output("frame", ort.OrtValue.ortvalue_from_numpy(self._frame))
                self._render_bindings.append(bind)
        sess.run_with_iobinding(self._render_bindings[self.cur])
        return self._frame

    def close(self) -> None:
        """Release what the engine holds beyond its buffers (the CPU engine's thread pool)."""

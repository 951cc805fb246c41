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
# How a CPU step is run in parallel, measured with benchmarks/shards.py on the 2-core machine (ratios within
# one run; the machine is noisy, so these are thresholds with room, not optima):
PARALLEL_MIN_FLOPS = 30e6  # below this much work per call, one thread: a thread hand-off per node costs more
#   (RMSNorm HalfCheetah RSSM, 0.42 MFLOP/env: 1 thread wins at 16 envs by 1.2x, even at 64 (27 MFLOP); the lean
#   one, 0.33 MFLOP/env: 1 thread wins at 64 envs (21 MFLOP), 2 shards win at 128 (42 MFLOP) by 1.2x;
#   Pong REM, 176 MFLOP/env: 2 threads win at 1 env by 1.3x)
TILE_ROWS = 512  # a CPU call steps at most this many rows: a tile's activations stay in the core's cache
#   (HalfCheetah RSSM on one core, bare step graph: 335-344k env-steps/s in calls of 256-512 rows vs ~300k
#   in one call of 4096; the TSSM at 4096 envs: 42k with tiles vs 30k without, measured here)
SHARD_MAX_STATE_BYTES = 128 << 20  # above this much model state per call, onnxruntime's own thread pool
#   (measured before tiles: the TSSM's 66 KB KV cache per env in calls of 2048 rows, 136 MB, made shards
#   0.42x; tiles keep a call at 512 x 66 KB = 34 MB, where shards win)


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

    def __init__(self, bundle: Bundle, num_envs: int, device: str = "auto", threads: int | None = None,
                 shards: int | None = None, tile_rows: int | None = TILE_ROWS):
        self.bundle, self.n = bundle, int(num_envs)
        self.device = choose_device(device)
        # On the CPU, onnxruntime's own thread pool splits every node of the graph between the cores and
        # joins them after it, a hand-off per node. With little work per call, one thread is fastest. With
        # enough, the batch is cut into one block of rows per core, each run by a single-threaded session
        # call on its own thread with no hand-off inside the graph ("shards") — unless the state is so big
        # that one call's state is bound by memory traffic, where onnxruntime's pool does better; and one
        # env cannot be cut. Each call steps at most `tile_rows` rows (None: a shard's rows in one call).
        # `threads` forces onnxruntime's intra-op threads (and no shards); `shards` a count.
        cores = os.cpu_count() or 1
        tile = int(tile_rows) if (tile_rows and self.device == "cpu") else self.n
        if self.device != "cpu" or threads is not None:
            shards = 1
        elif shards is None:
            model = bundle.manifest.get("model", {})
            flops = model.get("step_flops") or 2 * model.get("step_macs", 0)
            if flops:
                work = self.n * flops
            else:  # a manifest without a FLOP count: parallel above SINGLE_THREAD_MAX_BATCH envs
                work = PARALLEL_MIN_FLOPS if self.n > SINGLE_THREAD_MAX_BATCH else 0.0
            rows_per_call = min(-(-self.n // cores), tile)
            state = rows_per_call * sum(int(np.prod(s.shape)) * s.np_dtype.itemsize for s in bundle.state)
            if work < PARALLEL_MIN_FLOPS or cores == 1:
                shards, threads = 1, 1
            elif self.n >= cores and state <= SHARD_MAX_STATE_BYTES:
                shards = cores
            else:
                shards, threads = 1, cores
        self.shards = max(1, min(int(shards), self.n))
        if threads is None and self.device == "cpu":
            threads = 1 if (self.shards > 1 or self.n <= SINGLE_THREAD_MAX_BATCH) else cores
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
        self._run = step.run_with_iobinding
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
        # each shard's block of rows is stepped in tiles of at most `tile_rows` rows, one call each, in
        # turn on the shard's thread (CUDA: one call for all rows)
        cuts = np.linspace(0, n, self.shards + 1).astype(int)
        self.tile_rows = tile
        self._tiles = []
        for a, b in zip(cuts[:-1], cuts[1:]):
            k = -(-int(b - a) // self.tile_rows)
            t = np.linspace(a, b, k + 1).astype(int)
            self._tiles.append([slice(int(x), int(y)) for x, y in zip(t[:-1], t[1:])])
        self._bindings = [[[self._bind_step(i, r) for r in tiles] for tiles in self._tiles] for i in range(2)]
        # one call per step on the CPU (one shard, one tile: every env up to a tile, and the single env):
        # its binding per buffer set, for a step with nothing else to decide
        one = self.device == "cpu" and len(self._tiles) == 1 and len(self._tiles[0]) == 1
        self._one = [self._bindings[i][0][0] for i in range(2)] if one else None
        self._run_one = self._run
        # The public run_with_iobinding checks, in Python, that the binding is this session's and whether
        # WebGPU graph capture is on — ~0.6 us of a ~25 us single-env step here. Both hold by construction
        # on the CPU, so the one-call path calls the compiled method under it when this onnxruntime has
        # one (its wrapped session and binding); otherwise the public method.
        inner = getattr(step, "_sess", None)
        if one and inner is not None and all(hasattr(b, "_iobinding") for b in self._one):
            self._run_one = inner.run_with_iobinding
            self._one = [b._iobinding for b in self._one]
        self._pool = None
        if self.shards > 1:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(self.shards - 1, thread_name_prefix="dreamgym-shard")
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

    def _bind_step(self, src: int, rows: slice) -> Any:
        """The step's binding from buffer set `src` into the other, for a block of rows (all rows on CUDA)."""
        sess, dst = self.sessions["step"], 1 - src
        bind = sess.io_binding()
        takes = {i.name for i in sess.get_inputs()}
        cuda = self.device == "cuda"
        if cuda:
            for name, v in self._dev[src].items():
                if name in takes:
                    bind.bind_ortvalue_input(name, v)
            for name in self.inputs:
                bind.bind_ortvalue_input(name, self._in_dev[name])
            for name, v in self._dev[dst].items():
                bind.bind_ortvalue_output(f"next_{name}", v)
            for name in self.outputs:
                bind.bind_ortvalue_output(name, self._out_dev[name])
            return bind
        # On the CPU every tensor is a block of rows of a host buffer (a contiguous view, so onnxruntime
        # reads and writes the buffer itself: filling the inputs in place is enough).
        for name, buf in self._host[src].items():
            if name in takes:
                bind.bind_cpu_input(name, buf[rows])
        for name, buf in self.inputs.items():
            bind.bind_cpu_input(name, buf[rows])
        for name, buf in self._host[dst].items():
            bind.bind_ortvalue_output(f"next_{name}", ort.OrtValue.ortvalue_from_numpy(buf[rows]))
        for name, buf in self.outputs.items():
            bind.bind_ortvalue_output(name, ort.OrtValue.ortvalue_from_numpy(buf[rows]))
        return bind

    # -- running ----------------------------------------------------------------------------------
    def step(self) -> None:
        """One step of every row from the filled `inputs` into `outputs`; the state advances in place."""
        if self._one is not None:
            t0 = time.perf_counter()
            self._run_one(self._one[self.cur], None)
            self.ort_seconds += time.perf_counter() - t0
            self.cur = 1 - self.cur
            return
        binds = self._bindings[self.cur]
        cuda = self.device == "cuda"
        if cuda:
            for name, buf in self.inputs.items():
                self._in_dev[name].update_inplace(buf)
        t0 = time.perf_counter()
        if self._pool is None:
            for b in binds[0]:
                self._run(b, self._run_options[self.cur])
        else:  # one block of rows per core; onnxruntime releases the GIL while it runs
            futures = [self._pool.submit(self._run_tiles, b) for b in binds[1:]]
            self._run_tiles(binds[0])
            for f in futures:
                f.result()
        self.ort_seconds += time.perf_counter() - t0
        if cuda:
            for name, v in self._out_dev.items():
                self.outputs[name][...] = v.numpy()
        self.cur = 1 - self.cur

    def _run_tiles(self, binds: list) -> None:
        for b in binds:
            self._run(b, None)

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

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

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

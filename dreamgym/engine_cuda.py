"""The CUDA engine: the model state on the GPU, the step replayed as a CUDA graph.

The state lives in two device buffer sets (A -> B, then B -> A) and never leaves the GPU during a rollout;
the action and noise are copied into fixed device buffers before a step and obs/reward/terminated[/latent]
out of fixed device buffers after it. Every address a step touches is therefore fixed, which is what CUDA
graph replay needs: the step is captured once per buffer set (onnxruntime's `gpu_graph_id` 1 and 2) and
replayed. When some node cannot be captured (one that falls back to the CPU, say), the step runs as plain
CUDA with the same buffers. Chosen by `dreamgym.engine.Engine`; `benchmarks/gpu_check.py` checks it.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from .bundle import Bundle
from .engine_base import BaseEngine, ort

_WARM_UP_STEPS = 6  # onnxruntime captures a graph id after a few plain runs; 3 per buffer set cover it


class CudaEngine(BaseEngine):
    """Steps every row in one CUDA call; `threads` are onnxruntime's intra-op threads for nodes left on the CPU."""

    device = "cuda"

    def __init__(self, bundle: Bundle, num_envs: int, threads: int | None = None):
        super().__init__(bundle, num_envs, threads)
        self.shards, self.tile_rows = 1, self.n
        self._state_values = [
            {s.name: _on_device(np.zeros((self.n, *s.shape), s.np_dtype)) for s in bundle.state} for _ in range(2)
        ]
        self.cur = 0
        # Capture now, on zeros, so that a step that cannot be captured shows here, where plain CUDA can take
        # over, and not in the caller's first step.
        self.cuda_graph, self.cuda_graph_error = True, None
        try:
            self._use_step(self._open("step", cuda_graph=True))
            for _ in range(_WARM_UP_STEPS):
                self.step()
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own types; capture is optional
            self.cuda_graph, self.cuda_graph_error = False, f"{type(e).__name__}: {e}"
            self._use_step(self._open("step"))
        self.set_state({s.name: np.zeros((self.n, *s.shape), s.np_dtype) for s in bundle.state})
        self.ort_seconds = 0.0

    def _use_step(self, step: Any) -> None:
        """Host and device buffers for `step`, and its binding from each buffer set into the other."""
        self.sessions["step"] = step
        self._run = step.run_with_iobinding
        self._host_buffers(step)
        self._in_dev = {k: _on_device(v) for k, v in self.inputs.items()}
        self._out_dev = {k: _on_device(v) for k, v in self.outputs.items()}
        takes = {i.name for i in step.get_inputs()}
        self._bindings, self._run_options = [], []
        for src in (0, 1):
            bind = step.io_binding()
            for name, v in self._state_values[src].items():
                if name in takes:
                    bind.bind_ortvalue_input(name, v)
            for name, v in self._in_dev.items():
                bind.bind_ortvalue_input(name, v)
            for name, v in self._state_values[1 - src].items():
                bind.bind_ortvalue_output(f"next_{name}", v)
            for name, v in self._out_dev.items():
                bind.bind_ortvalue_output(name, v)
            opts = ort.RunOptions()
            if self.cuda_graph:
                opts.add_run_config_entry("gpu_graph_id", str(src + 1))  # one graph per buffer set
            self._bindings.append(bind)
            self._run_options.append(opts)
        self.cur = 0

    def step(self) -> None:
        for name, buf in self.inputs.items():
            self._in_dev[name].update_inplace(buf)
        t0 = time.perf_counter()
        self._run(self._bindings[self.cur], self._run_options[self.cur])
        self.ort_seconds += time.perf_counter() - t0
        for name, v in self._out_dev.items():
            self.outputs[name][...] = v.numpy()
        self.cur = 1 - self.cur

    def get_state(self, rows: np.ndarray | None = None) -> dict[str, np.ndarray]:
        full = {k: v.numpy() for k, v in self._state_values[self.cur].items()}  # numpy(): a host copy
        return full if rows is None else {k: v[rows] for k, v in full.items()}

    def set_state(self, state: dict[str, np.ndarray], rows: np.ndarray | None = None) -> None:
        for s in self.bundle.state:
            v = self._state_values[self.cur][s.name]
            full = np.empty((self.n, *s.shape), s.np_dtype) if rows is None else v.numpy()
            if rows is None:
                full[...] = state[s.name]
            else:
                full[rows] = state[s.name]
            v.update_inplace(np.ascontiguousarray(full))


def _on_device(host: np.ndarray) -> Any:
    """A device buffer on GPU 0 holding a copy of `host`."""
    return ort.OrtValue.ortvalue_from_numpy(host, "cuda", 0)

"""The CPU engine: the state in two host buffer sets (A -> B, then B -> A), each step's inputs, outputs and state
bound once with IO binding, the step scheduled from the work per call (`cpu_schedule`: one thread, blocks of
rows side by side on a thread pool, or onnxruntime's intra-op threads; cache-sized tiles).

Why the schedule's thresholds are what they are: benchmarks/README.md, "Why the engine's thresholds are what
they are" (measured figures live there, not here). Chosen by `dreamgym.engine.Engine`.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from typing import Any

import numpy as np

from .bundle import Bundle
from .engine_base import BaseEngine, ort

# The CPU schedule (see benchmarks/README.md for the measurements behind each number)
SINGLE_THREAD_MAX_BATCH = 128  # without a FLOP count in the manifest: one thread up to this many envs
PARALLEL_MIN_FLOPS = 30e6  # less work per call than this: one thread (a thread hand-off per node costs more)
TILE_ROWS = 512  # a CPU call steps at most this many rows, so that its activations stay in the core's cache
SHARD_MAX_STATE_BYTES = 128 << 20  # more model state per call than this: onnxruntime's threads, not shards


# -- the CPU engine ----------------------------------------------------------------------------------
def cpu_schedule(
    num_envs: int,
    step_flops: float | None,
    state_bytes: int,
    cores: int,
    threads: int | None = None,
    shards: int | None = None,
    tile_rows: int | None = TILE_ROWS,
) -> tuple[int, int | None, int]:
    """(shards, intra-op threads, tile rows) for a CPU step of `num_envs` rows of `step_flops` FLOPs and
    `state_bytes` of model state each, on `cores` cores.

    onnxruntime's own thread pool splits every node between the cores and joins them after it, a hand-off
    per node: with little work per call one thread is fastest. With enough, the batch is cut into one block
    of rows per core ("shards"), each run by a single-threaded call on its own thread with no hand-off inside
    the graph — unless one call's state is so big that the step is bound by memory traffic, where
    onnxruntime's pool does better; and one env cannot be cut. Each call steps at most `tile_rows` rows
    (None: a shard's rows in one call). `threads` forces onnxruntime's intra-op threads and one shard;
    `shards` forces a count."""
    n = int(num_envs)
    tile = int(tile_rows) if tile_rows else n
    if threads is not None:
        shards = 1
    elif shards is None:
        if step_flops:
            work = n * step_flops
        else:  # a manifest without a FLOP count: parallel above SINGLE_THREAD_MAX_BATCH envs
            work = PARALLEL_MIN_FLOPS if n > SINGLE_THREAD_MAX_BATCH else 0.0
        state_per_call = min(-(-n // cores), tile) * state_bytes
        if work < PARALLEL_MIN_FLOPS or cores == 1:
            shards, threads = 1, 1
        elif n >= cores and state_per_call <= SHARD_MAX_STATE_BYTES:
            shards = cores
        else:
            shards, threads = 1, cores
    shards = max(1, min(int(shards), n))
    if threads is None:
        threads = 1 if (shards > 1 or n <= SINGLE_THREAD_MAX_BATCH) else cores
    return shards, threads, tile


class CpuEngine(BaseEngine):
    """The step on onnxruntime's CPU provider, scheduled by `cpu_schedule`. Every schedule gives the same
    numbers: each row is computed by the same kernels whichever call it falls in."""

    device = "cpu"

    def __init__(
        self,
        bundle: Bundle,
        num_envs: int,
        threads: int | None = None,
        shards: int | None = None,
        tile_rows: int | None = TILE_ROWS,
    ):
        n = int(num_envs)
        state_bytes = sum(int(np.prod(s.shape)) * s.np_dtype.itemsize for s in bundle.state)
        self.shards, threads, self.tile_rows = cpu_schedule(
            n, bundle.step_flops, state_bytes, os.cpu_count() or 1, threads, shards, tile_rows
        )
        super().__init__(bundle, n, threads)
        step = self.sessions["step"] = self._open("step")
        self._host_buffers(step)
        # two state buffer sets: a step reads set `cur` and writes the other
        self._host = [{s.name: np.zeros((n, *s.shape), s.np_dtype) for s in bundle.state} for _ in range(2)]
        self._state_values = [{k: ort.OrtValue.ortvalue_from_numpy(v) for k, v in h.items()} for h in self._host]
        self.cur = 0
        # each shard's block of rows is stepped in tiles of at most `tile_rows` rows, one call each, in turn
        # on the shard's thread; a binding per (buffer set, shard, tile), made once
        self._tiles = []
        for a, b in _cuts(0, n, self.shards):
            self._tiles.append([slice(x, y) for x, y in _cuts(a, b, -(-(b - a) // self.tile_rows))])
        self._bindings = [[[self._bind(i, r) for r in tiles] for tiles in self._tiles] for i in range(2)]
        self._run = step.run_with_iobinding
        # One call per step (one shard, one tile: every batch up to a tile, and the single env) has nothing
        # to decide: its binding per buffer set is kept apart. The public run_with_iobinding checks in Python
        # that the binding is this session's and whether WebGPU capture is on; both hold by construction
        # here, so this path calls the compiled method under it when this onnxruntime has one.
        self._one = self._run_one = None
        if len(self._tiles) == 1 and len(self._tiles[0]) == 1:
            self._one, self._run_one = [self._bindings[i][0][0] for i in range(2)], self._run
            inner = getattr(step, "_sess", None)
            if inner is not None and all(hasattr(b, "_iobinding") for b in self._one):
                self._one, self._run_one = [b._iobinding for b in self._one], inner.run_with_iobinding
        self._pool = (
            ThreadPoolExecutor(self.shards - 1, thread_name_prefix="dreamgym-shard") if self.shards > 1 else None
        )

    def _bind(self, src: int, rows: slice) -> Any:
        """The step's binding from buffer set `src` into the other, for a block of rows. Every tensor is a
        block of rows of a host buffer (a contiguous view, so onnxruntime reads and writes the buffer itself:
        filling `inputs` in place is enough)."""
        sess, dst = self.sessions["step"], 1 - src
        bind = sess.io_binding()
        takes = {i.name for i in sess.get_inputs()}
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

    def step(self) -> None:
        t0 = time.perf_counter()
        if self._one is not None:
            self._run_one(self._one[self.cur], None)
        elif self._pool is None:
            self._run_tiles(self._bindings[self.cur][0])
        else:  # one block of rows per core; onnxruntime releases the GIL while it runs
            binds = self._bindings[self.cur]
            futures = [self._pool.submit(self._run_tiles, b) for b in binds[1:]]
            self._run_tiles(binds[0])
            for f in futures:
                f.result()
        self.ort_seconds += time.perf_counter() - t0
        self.cur = 1 - self.cur

    def _run_tiles(self, binds: list) -> None:
        for b in binds:
            self._run(b, None)

    def get_state(self, rows: np.ndarray | None = None) -> dict[str, np.ndarray]:
        return {k: (v if rows is None else v[rows]).copy() for k, v in self._host[self.cur].items()}

    def set_state(self, state: dict[str, np.ndarray], rows: np.ndarray | None = None) -> None:
        for s in self.bundle.state:
            full = self._host[self.cur][s.name]
            if rows is None:
                full[...] = state[s.name]
            else:
                full[rows] = state[s.name]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def _cuts(a: int, b: int, k: int) -> list[tuple[int, int]]:
    """Rows a..b cut into k blocks as even as can be."""
    return [(int(x), int(y)) for x, y in pairwise(np.linspace(a, b, k + 1).astype(int))]

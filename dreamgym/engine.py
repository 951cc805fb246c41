"""Engines: a bundle's graphs run by onnxruntime for a fixed batch of rows, the model state kept where they run.

Two engines behind one small interface, `BaseEngine` (`dreamgym.engine_base`: what the vector env, `bench` and
`play` use, with the sessions and the choice of device both engines share):

- `CpuEngine` (`dreamgym.engine_cpu`): the state in two host buffer sets (A -> B, then B -> A), each step's
  inputs, outputs and state bound once with IO binding, the step scheduled from the work per call
  (`cpu_schedule`: one thread, blocks of rows side by side on a thread pool, or onnxruntime's intra-op
  threads; cache-sized tiles).
- `CudaEngine` (`dreamgym.engine_cuda`): the state in device buffers that never leave the GPU, inputs and
  outputs at fixed device addresses, the step captured as a CUDA graph (plain CUDA when it cannot be).

`Engine(bundle, num_envs, device=...)` (here) returns the one for the device. `device="auto"` takes CUDA only
when a CUDA session really opens and runs in this process (`cuda_problem`): onnxruntime-gpu lists the CUDA
provider even where the CUDA and cuDNN libraries it needs cannot load, and then either fails or quietly runs
on the CPU.

The modules import one way: `engine` (this factory, and the public names re-exported) -> `engine_cpu`,
`engine_cuda` -> `engine_base`. Patch a setting where it is read: the CPU schedule's thresholds in
`engine_cpu`, the device choice's state in `engine_base`.

Why the CPU schedule's thresholds are what they are: benchmarks/README.md, "Why the engine's thresholds are
what they are" (measured figures live there, not here).
"""

from __future__ import annotations

from .bundle import Bundle
from .engine_base import CUDA, BaseEngine, available_providers, choose_device, cuda_problem, make_session
from .engine_cpu import (
    PARALLEL_MIN_FLOPS,
    SHARD_MAX_STATE_BYTES,
    SINGLE_THREAD_MAX_BATCH,
    TILE_ROWS,
    CpuEngine,
    cpu_schedule,
)
from .engine_cuda import CudaEngine


def Engine(
    bundle: Bundle,
    num_envs: int,
    device: str = "auto",
    threads: int | None = None,
    shards: int | None = None,
    tile_rows: int | None = TILE_ROWS,
) -> BaseEngine:
    """The engine for `device` ('auto', 'cpu' or 'cuda'). `threads` forces onnxruntime's intra-op threads;
    `shards` (a count of row blocks side by side) and `tile_rows` (rows per call, None: a shard's rows in
    one call) shape the CPU schedule and are ignored on CUDA, where one call steps every row."""
    if choose_device(device) == "cuda":
        return CudaEngine(bundle, num_envs, threads=threads)
    return CpuEngine(bundle, num_envs, threads=threads, shards=shards, tile_rows=tile_rows)


__all__ = [
    "CUDA",
    "PARALLEL_MIN_FLOPS",
    "SHARD_MAX_STATE_BYTES",
    "SINGLE_THREAD_MAX_BATCH",
    "TILE_ROWS",
    "BaseEngine",
    "CpuEngine",
    "CudaEngine",
    "Engine",
    "available_providers",
    "choose_device",
    "cpu_schedule",
    "cuda_problem",
    "make_session",
]

"""CUDA against the CPU for every shipped dream, in one run: the same numbers, and how much faster.

    python benchmarks/gpu_check.py [--steps 50] [--parity-envs 16] [--sizes 1,64,1024,4096] [--seconds 1] [--ids ID ...]

For anyone with an NVIDIA GPU, from the repository root, after installing the GPU runtime instead of the CPU
one (`pip uninstall -y onnxruntime onnxruntime-gpu && pip install ".[gpu,export]"`). Two tables, in markdown:

- **Parity**: the same seed and actions through `dreamgym.make_vec(ID, device="cpu")` and `device="cuda"`;
  the largest absolute difference of obs, reward, terminated (rows that disagree) and the rendered frame,
  per step (JSON) and at a few steps (table). Float32 kernels differ between the providers, so small
  differences are expected and can grow along a rollout; a large one at step 1 is a bug.
- **Throughput**: env-steps/s through the vector API at each size on CUDA and on the CPU, each the fastest
  of 3 windows; a size whose single step takes longer than `--max-step-seconds` is timed on one step.

Writes benchmarks/results/gpu_check.json. Without a usable GPU it says why and exits 0. Takes 1-3 minutes.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shutil
import subprocess
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

import dreamgym
from dreamgym.bench import _timed
from dreamgym.engine import cuda_problem

RESULTS = Path(__file__).resolve().parent / "results" / "gpu_check.json"
OUTPUTS = ("obs", "reward", "terminated", "frame")


def actions(space: gym.Space, n: int, rng: np.random.Generator) -> np.ndarray:
    if isinstance(space, gym.spaces.Discrete):
        return rng.integers(space.n, size=n)
    return rng.uniform(-1, 1, (n, *space.shape)).astype(np.float32)


def difference(a: np.ndarray, b: np.ndarray, name: str) -> float:
    if name == "terminated":
        return float(np.count_nonzero(np.asarray(a) != np.asarray(b)))  # rows that disagree
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)))) if np.size(a) else 0.0


def parity(env_id: str, n: int, steps: int, seed: int = 0) -> dict:
    """Per step, the largest difference of each output between a CPU and a CUDA dream driven alike."""
    envs = {d: dreamgym.make_vec(env_id, num_envs=n, device=d, render_mode="rgb_array") for d in ("cpu", "cuda")}
    cuda_graph = getattr(envs["cuda"].engine, "cuda_graph", None)
    outs = {d: e.reset(seed=seed)[0] for d, e in envs.items()}
    per_step = {k: [] for k in OUTPUTS}
    per_step["obs"].append(difference(outs["cpu"], outs["cuda"], "obs"))  # step 0: the reset
    per_step["frame"].append(difference(envs["cpu"].render(), envs["cuda"].render(), "frame"))
    per_step["reward"].append(0.0)
    per_step["terminated"].append(0.0)
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        a = actions(envs["cpu"].single_action_space, n, rng)
        res = {d: e.step(a) for d, e in envs.items()}
        for i, k in enumerate(("obs", "reward", "terminated")):
            per_step[k].append(difference(res["cpu"][i], res["cuda"][i], k))
        per_step["frame"].append(difference(envs["cpu"].render(), envs["cuda"].render(), "frame"))
    for e in envs.values():
        e.close()
    return {
        "num_envs": n,
        "steps": steps,
        "cuda_graph": cuda_graph,
        "per_step": per_step,
        "max": {k: max(v) for k, v in per_step.items()},
    }


def throughput(env_id: str, n: int, device: str, seconds: float, max_step_seconds: float) -> dict:
    """env-steps/s of `n` envs on `device`: the fastest of 3 windows (one step when a step is slow)."""
    env = dreamgym.make_vec(env_id, num_envs=n, device=device)
    env.reset(seed=0)
    a = actions(env.single_action_space, n, np.random.default_rng(0))
    t0 = time.perf_counter()
    env.step(a)  # the first step (and on CUDA, anything left to set up) is not timed below
    first = time.perf_counter() - t0
    if first > max_step_seconds:
        t0 = time.perf_counter()
        env.step(a)
        sec, note = time.perf_counter() - t0, "one step"
    else:
        sec, note = _timed(lambda: env.step(a), seconds, min_reps=2, windows=3)[0], ""
    eng = env.engine
    row = {
        "steps_per_s": n / sec,
        "us_per_step": sec * 1e6,
        "note": note,
        "schedule": f"{eng.shards} shard(s) x {eng.threads or 'default'} thread(s)"
        if device == "cpu"
        else ("CUDA graph" if getattr(eng, "cuda_graph", False) else "plain CUDA"),
    }
    env.close()
    return row


def gpu_name() -> str:
    if shutil.which("nvidia-smi"):
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip().splitlines()[0]
    return "unknown GPU"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ids", nargs="*", default=None, help="bundle ids (default: every shipped bundle)")
    ap.add_argument("--steps", type=int, default=50, help="parity: steps after the reset")
    ap.add_argument("--parity-envs", type=int, default=16)
    ap.add_argument("--sizes", default="1,64,1024,4096", help="throughput: numbers of envs")
    ap.add_argument("--seconds", type=float, default=1.0, help="throughput: seconds per figure (3 windows)")
    ap.add_argument("--max-step-seconds", type=float, default=2.0, help="slower steps are timed once")
    args = ap.parse_args()

    problem = cuda_problem()
    if problem:
        print(
            f"No usable GPU, nothing to check: {problem}.\nOn a machine with an NVIDIA GPU, install the GPU "
            'runtime (`pip uninstall -y onnxruntime onnxruntime-gpu && pip install ".[gpu,export]"`) and run '
            "this again."
        )
        return 0
    import onnxruntime as ort

    ids = args.ids or sorted(dreamgym.shipped_bundles(multi_agent=False))
    sizes = [int(x) for x in args.sizes.split(",")]
    started = time.perf_counter()
    res = {
        "date": time.strftime("%Y-%m-%d"),
        "gpu": gpu_name(),
        "cpu": f"{platform.machine()} {os.cpu_count()} cpus",
        "onnxruntime": ort.__version__,
        "onnxruntime_cuda": getattr(ort, "cuda_version", ""),
        "parity": {},
        "throughput": {},
    }
    print(f"# gpu_check {res['date']}: {res['gpu']}; {res['cpu']}; onnxruntime {res['onnxruntime']}")

    print(f"\n## Parity: CPU vs CUDA, {args.parity_envs} envs, seed 0, the same random actions\n")
    shown = sorted({1, min(10, args.steps), args.steps})
    print(
        "| dream | CUDA graph | "
        + " | ".join(f"obs @{s}" for s in shown)
        + f" | max over {args.steps} steps: obs | reward | terminated rows | frame (0-255) |"
    )
    print("|---|---|" + "---:|" * (len(shown) + 4))
    for env_id in ids:
        p = res["parity"][env_id] = parity(env_id, args.parity_envs, args.steps)
        m = p["max"]
        print(
            f"| {env_id} | {'yes' if p['cuda_graph'] else 'no'} | "
            + " | ".join(f"{p['per_step']['obs'][s]:.2e}" for s in shown)
            + f" | {m['obs']:.2e} | {m['reward']:.2e} | {m['terminated']:.0f} | {m['frame']:.0f} |",
            flush=True,
        )

    print("\n## Throughput: env-steps/s through the vector API (fastest of 3 windows)\n")
    print("| dream | num_envs | CPU | CUDA | CUDA ÷ CPU | CPU schedule | CUDA |")
    print("|---|---:|---:|---:|---:|---|---|")
    for env_id in ids:
        rows = res["throughput"][env_id] = []
        for n in sizes:
            row = {"num_envs": n}
            for dev in ("cpu", "cuda"):
                row[dev] = throughput(env_id, n, dev, args.seconds, args.max_step_seconds)
                gc.collect()  # the last env's buffers go before the next one's are made
            rows.append(row)
            c, g = row["cpu"], row["cuda"]
            note = "; ".join(f"{d}: {row[d]['note']}" for d in ("cpu", "cuda") if row[d]["note"])
            print(
                f"| {env_id} | {n} | {c['steps_per_s']:,.0f} | {g['steps_per_s']:,.0f} | "
                f"{g['steps_per_s'] / c['steps_per_s']:.2f}× | {c['schedule']} | {g['schedule']}"
                f"{f' ({note})' if note else ''} |",
                flush=True,
            )

    res["seconds"] = round(time.perf_counter() - started, 1)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(res, indent=1) + "\n")
    print(f"\n{res['seconds']:.0f} s; written to {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

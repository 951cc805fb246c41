"""Soak: step a dream for a long time with random actions and periodic masked resets, and watch what drifts.

    dreamgym soak Dream-HalfCheetah-v0 [--steps 1000000] [--num-envs 256]    # or benchmarks/soak.py for all

Reported (`soak(...)` returns them as a dict):
- non-finite values in any output (observations, rewards, latents, optional outputs): must be 0;
- the range of every observation dimension against the real data's range (the bundle's context bank of real
  held-out windows): how many dimensions leave it, and by how much at most, in units of the real range;
- the process memory (resident set) after warm-up and at the end, and its growth (bar: at most 5 %);
- env-steps/s.

Every game of a multi-agent dream is stepped with every agent acting at random; pixel observations are uint8
by construction (their range is not reported).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np


def rss_mb() -> float:
    """Resident memory of this process in MB (Linux /proc; elsewhere the peak from getrusage)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        import os

        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _finite_count(x) -> int:
    a = np.asarray(x)
    if a.dtype.kind not in "fc":
        return 0
    return int(a.size - np.isfinite(a).sum())


def soak(
    id_or_path,
    steps: int = 1_000_000,
    num_envs: int = 256,
    reset_every: int = 100,
    reset_share: float = 0.1,
    seed: int = 0,
    warmup: float = 0.1,
    device: str = "cpu",
    progress: bool = False,
) -> dict:
    """Step `steps` env-steps in total (`num_envs` per call) with random actions; every `reset_every` calls
    reset a random `reset_share` of the envs (masked reset). Memory is read after `warmup` of the calls."""
    from gymnasium.vector import AutoresetMode

    from .bundle import Bundle
    from .registration import resolve

    b = Bundle.load(resolve(id_or_path))
    rng = np.random.default_rng(seed)
    calls = max(1, steps // num_envs)
    multi = b.is_multi_agent
    if multi:
        from .multi_agent import BatchedParallelDreamEnv

        env = BatchedParallelDreamEnv(b, num_envs, device=device)
        spaces_ = env.action_spaces
        for i, s in enumerate(spaces_.values()):
            s.seed(seed + i)
        obs, _ = env.reset(seed=seed)
        real = {a: b.contexts[f"obs.{a}"] for a in env.agents}
    else:
        from .vector_env import DreamVectorEnv

        # whole episodes (the real env's horizon), not a bundle's short training horizon: a soak looks for
        # what goes wrong late in an episode
        env = DreamVectorEnv(
            b, num_envs, device=device, autoreset_mode=AutoresetMode.NEXT_STEP, max_episode_steps=b.max_episode_steps
        )
        env.action_space.seed(seed)
        obs, _ = env.reset(seed=seed)
        real = {"": b.contexts["obs"]}
    vector_obs = all(np.asarray(r).dtype.kind == "f" for r in real.values())
    lo = {k: np.full(np.asarray(r).shape[2:], np.inf) for k, r in real.items()}
    hi = {k: np.full(np.asarray(r).shape[2:], -np.inf) for k, r in real.items()}
    bad = {"obs": 0, "reward": 0, "info": 0}
    mem0 = None
    from .record import Progress  # the runtime's plain bar (no tqdm in dreamgym/)

    bar = Progress(calls * num_envs, f"soak {b.id}", progress)
    t0 = time.perf_counter()
    t_warm = t0
    for i in range(calls):
        if multi:
            acts = {a: np.stack([s.sample() for _ in range(num_envs)]) for a, s in spaces_.items()}
            obs, rew, term, trunc, info = env.step(acts)
            per = {a: obs[a] for a in env.agents}
            bad["reward"] += sum(_finite_count(r) for r in rew.values())
        else:
            obs, rew, term, trunc, info = env.step(env.action_space.sample())
            per = {"": obs}
            bad["reward"] += _finite_count(rew)
        for k, o in per.items():
            bad["obs"] += _finite_count(o)
            if vector_obs:
                np.minimum(lo[k], o.min(0), out=lo[k])
                np.maximum(hi[k], o.max(0), out=hi[k])
        for v in info.values():
            if isinstance(v, np.ndarray) and v.dtype != object:
                bad["info"] += _finite_count(v)
        if reset_every and (i + 1) % reset_every == 0:
            env.reset(options={"reset_mask": rng.random(num_envs) < reset_share})
        if mem0 is None and i + 1 >= max(1, int(warmup * calls)):
            mem0, t_warm, warm_steps = rss_mb(), time.perf_counter(), (i + 1) * num_envs
        bar.update(num_envs)
    dt = time.perf_counter() - t0
    mem1 = rss_mb()
    env.close()
    out = {
        "id": b.id,
        "steps": calls * num_envs,
        "num_envs": num_envs,
        "non_finite": bad,
        "rss_mb_after_warmup": round(mem0, 1),
        "rss_mb_end": round(mem1, 1),
        "memory_growth": (mem1 - mem0) / mem0,
        "steps_per_s": calls * num_envs / dt,
        "steps_per_s_after_warmup": (calls * num_envs - warm_steps) / max(time.perf_counter() - t_warm, 1e-9),
    }
    if vector_obs:
        ranges = {}
        for k, r in real.items():
            r = np.asarray(r, np.float64).reshape(-1, *np.asarray(r).shape[2:])
            rlo, rhi = r.min(0), r.max(0)
            span = np.maximum(rhi - rlo, 1e-6)
            beyond = np.maximum(rlo - lo[k], hi[k] - rhi) / span  # >0: the dream left the real range
            ranges[k or "obs"] = {
                "dims": int(beyond.size),
                "dims_outside": int((beyond > 0).sum()),
                "max_beyond_real_span": float(beyond.max()),
                "dims_beyond_half_span": int((beyond > 0.5).sum()),
            }
        out["obs_range"] = ranges
    return out


def markdown_row(r: dict) -> str:
    nf = sum(r["non_finite"].values())
    if "obs_range" in r:
        ranges = r["obs_range"].values()
        outside = sum(x["dims_outside"] for x in ranges)
        dims = sum(x["dims"] for x in ranges)
        far = max(x["max_beyond_real_span"] for x in ranges)
        rng = f"{outside} of {dims} dims leave it; at most {far:.2f}× the real span beyond"
    else:
        rng = "uint8 frames"
    return (
        f"| {r['id']} | {r['steps']:,} | {r['num_envs']} | {nf} | {rng} | {r['rss_mb_after_warmup']:.0f} → "
        f"{r['rss_mb_end']:.0f} MB ({100 * r['memory_growth']:+.1f} %) | {r['steps_per_s']:,.0f} |"
    )


HEADER = (
    "| dream | env-steps | envs | non-finite values | observation range vs real held-out windows | memory after "
    "warm-up → end | env-steps/s |\n|---|---:|---:|---:|---|---|---:|"
)

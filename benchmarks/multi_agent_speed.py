"""Throughput of a multi-agent dream against its real env, in one run.

    python benchmarks/multi_agent_speed.py [ID_OR_BUNDLE] [--games 1,64,1024] [--rounds 3] [--seconds 1.5]

Figures are game-steps per second (games x steps / s; every agent acts in each game-step), the best of
`--rounds` measurements taken in turn so a slow spell of the shared machine hits all of them:
- the real mpe2 parallel env (one game, random actions, reset when it ends);
- `dreamgym.make_parallel` (one game, the PettingZoo API, the same random actions);
- `dreamgym.make_batched` with N games, one onnxruntime call per step (random actions drawn once).
Prints a markdown table with each figure's ratio to the real env (issue bars: the batched form at 1024
games >= 100x, the single ParallelDreamEnv >= 1x).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import dreamgym


def rate(fn, seconds: float) -> float:
    """Calls of `fn` per second over at least `seconds` (after one warm-up call); `fn` returns the games
    it stepped."""
    fn()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        n += fn()
    return n / (time.perf_counter() - t0)


def real_stepper(make):
    env = make()
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    spaces = {a: env.action_space(a) for a in env.possible_agents}

    def step():
        if not env.agents:
            env.reset()
        env.step({a: rng.uniform(0, 1, spaces[a].shape).astype(np.float32) for a in env.agents})
        return 1

    return step


def parallel_stepper(bundle):
    env = dreamgym.make_parallel(bundle)
    env.reset(seed=0)
    rng = np.random.default_rng(0)

    def step():
        if not env.agents:
            env.reset()
        env.step({a: rng.uniform(0, 1, env.action_space(a).shape).astype(np.float32) for a in env.agents})
        return 1

    return step


def batched_stepper(bundle, n: int):
    games = dreamgym.make_batched(bundle, n)
    games.reset(seed=0)
    rng = np.random.default_rng(0)
    acts = {a: rng.uniform(0, 1, (n, *s.shape)).astype(np.float32) for a, s in games.action_spaces.items()}

    def step():
        games.step(acts)
        return n

    return step


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bundle", nargs="?", default="Dream-SimpleTag-v0")
    ap.add_argument("--games", default="1,64,1024")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=1.5)
    a = ap.parse_args(argv)
    from dreamgym.export.data import mpe

    path = dreamgym.resolve(a.bundle)
    b = dreamgym.Bundle.load(path)
    sizes = [int(x) for x in a.games.split(",")]
    runs = {"real mpe2 (1 game)": real_stepper(lambda: mpe.make_env(max_cycles=b.max_episode_steps))}
    runs["make_parallel (1 game)"] = parallel_stepper(path)
    for n in sizes:
        runs[f"make_batched ({n} games)"] = batched_stepper(path, n)
    best = {k: 0.0 for k in runs}
    for _ in range(a.rounds):
        for k, fn in runs.items():
            best[k] = max(best[k], rate(fn, a.seconds))
    real = best["real mpe2 (1 game)"]
    print(f"{b.id}: game-steps/s, best of {a.rounds} rounds of {a.seconds:g} s, in one run\n")
    print("| what | game-steps/s | ÷ real env |")
    print("|---|---:|---:|")
    for k, v in best.items():
        print(f"| {k} | {v:,.0f} | {v / real:.1f}× |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""How sensitive real simple_tag is to a tiny error: the ceiling of an open-loop reward correlation.

    python benchmarks/tag_chaos.py [--eps 1e-5,1e-4,1e-3] [--data runs/simple-tag/heldout] [--games 24]

The joint evaluator's "reward correlation over 50 steps" replays held-out games' recorded actions in the
dream from real windows and correlates the dream's rewards with the real ones. A predator's reward is a tag
(+10 while it overlaps the prey), and bodies that touch push each other apart with a force of 100 per unit of
overlap: a small difference in where two bodies meet changes where they go next. This replays the same
windows in mpe2 itself, moves every agent once by a Gaussian offset of std `eps` at the window's start, and
correlates the next 50 steps' rewards with the unmoved replay: the correlation a model reaches if its only
error were that one offset. Same windows as the evaluator (every 25th step, C = 10, 50 steps); the held-out
games are collected (seed 2, as the recipe does) if the folder lacks them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from dreamgym.export.data import mpe


def replay_correlation(
    episodes: list[dict], eps: float, context: int = 10, horizon: int = 50, stride: int = 25, seed: int = 0
) -> dict[str, float]:
    """Per agent: the correlation of the perturbed replay's rewards with the recorded ones over `horizon`
    steps from every `stride`-th window."""
    names = [a for a, _, _ in mpe.AGENTS]
    rng = np.random.default_rng(seed)
    env = mpe.make_env()
    got, real = {a: [] for a in names}, {a: [] for a in names}
    try:
        for e in episodes:
            for s in range(0, len(e["obs"]) - context - horizon + 1, stride):
                env.reset(seed=e["meta"]["seed"])  # the recorded game, step for step
                t0 = s + context - 1
                for t in range(t0):
                    env.step({a: e[f"act.{a}"][t] for a in names})
                for body in env.unwrapped.world.agents:
                    body.state.p_pos = body.state.p_pos + eps * rng.standard_normal(2)
                for t in range(t0, t0 + horizon):
                    _, r, *_ = env.step({a: e[f"act.{a}"][t] for a in names})
                    for a in names:
                        got[a].append(r[a]), real[a].append(e[f"rew.{a}"][t])
    finally:
        env.close()
    return {a: float(np.corrcoef(got[a], real[a])[0, 1]) for a in names}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--eps", default="0,1e-5,1e-4,1e-3")
    ap.add_argument("--data", default="runs/simple-tag/heldout")
    ap.add_argument("--games", type=int, default=24)
    ap.add_argument("--out", default="runs/tag-chaos.json")
    a = ap.parse_args(argv)
    folder = Path(a.data)
    if len(list(folder.glob("episode_*.npz"))) < a.games:
        mpe.collect(folder, a.games, mpe.BEHAVIOURS, seed=2, max_cycles=mpe.TAG["max_cycles"])
    episodes = mpe.load(folder)[: a.games]
    rows = {}
    for eps in tqdm([float(x) for x in a.eps.split(",")], desc="offsets"):
        rows[eps] = replay_correlation(episodes, eps)
    names = [n for n, _, _ in mpe.AGENTS]
    print("| offset std | " + " | ".join(f"`{n}`" for n in names) + " |")
    print("|---:|" + "---:|" * len(names))
    for eps, r in rows.items():
        print(f"| {eps:g} | " + " | ".join(f"{r[n]:.3f}" for n in names) + " |")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps({str(k): v for k, v in rows.items()}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Points per 1000 steps and one-ball frames of Pong dreams against the real game, over longer closed-loop runs
than the card's (3000 steps per policy count 15-70 points, so one run's ratio moves by a quarter or more).

    python benchmarks/studies/pong_points.py [BUNDLE ...] [--steps 9000] [--seed 1] [--out runs/pong-points.json]

Each bundle plays `--steps` dream steps per policy (the bundled tracker and uniformly random actions, 8 dreams
side by side), and the real ALE Pong plays as many with the same policy and seed (`measure.pong.closed_loop`,
the card's measure). The real rows depend only on the policy and the seed, so they are played once per policy.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, for pong_contact's `report`

from pong_contact import report

import dreamgym
from dreamgym.export.measure.pong import closed_loop, points_interval


def _row(name: str, policy: str, m: dict) -> str:
    return (
        f"| {name} | {policy} | {m['steps']} | {m['points']} | {m['points_per_1000']:.1f} ± {points_interval(m):.1f} | "
        f"{m['one_ball_share']:.0%} |"
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bundles", nargs="*", default=["Dream-Pong-v0"])
    ap.add_argument("--steps", type=int, default=9000, help="closed-loop env-steps per policy and bundle")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default="runs/pong-points.json")
    a = ap.parse_args(argv)
    res: dict = {"steps": a.steps, "seed": a.seed, "real": {}, "dream": {}}
    lines = ["| what | policy | steps | points | per 1000 (95 %) | one ball |", "|---|---|---:|---:|---:|---:|"]
    for b in a.bundles:
        path = dreamgym.resolve(b)
        for policy in ("bundle", "random"):
            r = closed_loop(path, policy, a.steps, seed=a.seed, real=policy not in res["real"])
            res["dream"].setdefault(b, {})[policy] = r["dream"]
            if "real" in r:
                res["real"][policy] = r["real"]
            lines.append(_row(b, policy, r["dream"]))
            print(lines[-1], flush=True)
    for policy, m in res["real"].items():
        lines.append(_row("real ALE/Pong-v5", policy, m))
    return report(lines, res, a.out)


if __name__ == "__main__":
    raise SystemExit(main())

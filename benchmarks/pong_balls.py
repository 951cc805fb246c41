"""Where a Pong dream's frames lose their one ball: while the game waits to serve after a point, or in play.

    python benchmarks/pong_balls.py [BUNDLE ...] [--steps 6000] [--out runs/pong-balls.json]

The card's "frames with exactly one ball" is one number for several things. After every point the real game
shows no ball for about 15 steps before it serves again, so the share falls with the points lost; the rest is
the ball vanishing in play, or a frame or two without it. Each bundle and the real ALE Pong are played `--steps`
steps under the bundled policy and under random actions (as `measure.pong.closed_loop` plays them), and the
frames without exactly one ball are split into: a wait after a point (a run of 3 or more frames without a ball
that holds a point or starts within 3 steps of one), a ball lost in play (such a run with no point), flicker (a
run of 1 or 2 frames) and frames with two balls or more.
"""

from __future__ import annotations

import argparse

import numpy as np
from pong_contact import report

import dreamgym
from dreamgym.export.measure.pong import play_dream, play_real
from dreamgym.record import make_policy

SHORT = 2  # runs of at most this many frames without a ball are flicker
NEAR_POINT = 3  # a run that starts within this many steps after a point follows it


def split(balls: np.ndarray, rewards: np.ndarray) -> dict:
    """balls, rewards (T, N): the balls seen in each env's frame after each step and the reward of that step ->
    shares of all frames (one ball, wait after a point, lost in play, flicker, two or more), points per 1000
    steps and the mean length of the waits after a point."""
    T, N = balls.shape
    out = {"one_ball": float((balls == 1).mean()), "after_point": 0, "lost_in_play": 0, "flicker": 0}
    waits = []
    for e in range(N):
        b, r, t = balls[:, e], rewards[:, e], 0
        while t < T:
            if b[t] != 0:
                t += 1
                continue
            s = t
            while t < T and b[t] == 0:
                t += 1
            n = t - s
            if n <= SHORT:
                out["flicker"] += n
            elif (r[max(0, s - NEAR_POINT) : t] != 0).any():
                out["after_point"] += n
                waits.append(n)
            else:
                out["lost_in_play"] += n
    for k in ("after_point", "lost_in_play", "flicker"):
        out[k] /= balls.size
    out["two_or_more"] = float((balls >= 2).mean())
    out["points_per_1000"] = 1000.0 * float((rewards != 0).sum()) / balls.size
    out["mean_wait"] = float(np.mean(waits)) if waits else float("nan")
    return out


def run(bundle: str, policy: str, steps: int, seed: int, real: bool) -> dict:
    """The bundle's dream (16 side by side) or, with `real`, the real ALE Pong, played by `policy`, split."""
    b = dreamgym.Bundle.load(dreamgym.resolve(bundle))
    act = make_policy(policy, b, np.random.default_rng(seed))
    if real:
        return split(*play_real(act, b.frame_shape[0], steps, seed))
    return split(*play_dream(dreamgym.resolve(bundle), act, steps, 16, seed))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bundles", nargs="*", default=["Dream-Pong-v0"])
    ap.add_argument("--steps", type=int, default=6000, help="steps per policy, in each dream and in reality")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/pong-balls.json")
    a = ap.parse_args(argv)
    res: dict = {"steps": a.steps, "runs": {}}
    for policy in ("bundle", "random"):
        res["runs"][f"real, {policy}"] = run(a.bundles[0], policy, a.steps, a.seed, real=True)
        for b in a.bundles:
            res["runs"][f"{b}, {policy}"] = run(b, policy, a.steps, a.seed, real=False)
    lines = [
        f"{a.steps} steps per row; shares of all frames",
        "| what, policy | one ball | waiting after a point | lost in play | flicker | two or more "
        "| points per 1000 | mean wait (steps) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for what, m in res["runs"].items():
        lines.append(
            f"| {what} | {m['one_ball']:.1%} | {m['after_point']:.1%} | {m['lost_in_play']:.1%} | {m['flicker']:.1%} "
            f"| {m['two_or_more']:.1%} | {m['points_per_1000']:.1f} | {m['mean_wait']:.1f} |"
        )
    return report(lines, res, a.out)


if __name__ == "__main__":
    raise SystemExit(main())

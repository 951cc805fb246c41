"""How often the bodies of a simple_tag dream come close, against mpe2 from the same real starts under the
bundled policies (issue 14: why the dream's predators tag the prey half as often as the real ones).

    python benchmarks/studies/tag_closeness.py [BUNDLE] [--starts 96] [--horizon 100] [--seed 1000]

The starts are `measure.joint.real_starts`'s (those of `policy_returns`): a real warm-up of random length, its last C steps as the
dream's context, then `--horizon` steps of the bundled policies on both sides. Printed per side: the first
predator's and the prey's mean speed, the mean distance between them, the share of steps within 0.125
(overlapping: a tag), 0.2 and 0.3, the first predator's mean return, and the mean distance at a few steps.
"""

from __future__ import annotations

import argparse

import numpy as np

import dreamgym
from dreamgym.export.data import mpe
from dreamgym.export.measure.joint import real_starts

# adversary observation: own velocity 0:2, own position 2:4, obstacles 4:8, the other predator 8:10, the prey
# relative to it 10:12, the prey's velocity 12:14; the prey's: own velocity 0:2, own position 2:4, ...
PRED, PREY = "adversary_0", "agent_0"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bundle", nargs="?", default="Dream-SimpleTag-v0")
    ap.add_argument("--starts", type=int, default=96)
    ap.add_argument("--horizon", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1000)
    a = ap.parse_args(argv)
    b = dreamgym.Bundle.load(dreamgym.resolve(a.bundle))
    n = a.starts
    games = dreamgym.make_batched(b, n, autoreset="disabled", noise_scale=0.0, max_episode_steps=10**9)
    context, real_obs, real_rewards = real_starts(games, lambda: mpe.make_env(max_cycles=10**6), n, a.horizon, a.seed)
    real_pred, real_prey, real_rew = real_obs[PRED], real_obs[PREY], real_rewards[PRED]
    obs, _ = games.reset(seed=a.seed, options={"context": context})
    dream_pred, dream_prey, dream_rew = np.zeros_like(real_pred), np.zeros_like(real_prey), np.zeros_like(real_rew)
    for t in range(a.horizon):
        obs, r, *_ = games.step(games.policy_actions(obs))
        dream_pred[:, t], dream_prey[:, t], dream_rew[:, t] = obs[PRED], obs[PREY], r[PRED]
    games.close()
    print(f"{a.bundle}, {n} real starts, {a.horizon} steps under the bundled policies")
    for side, pred, prey, rew in (
        ("real", real_pred, real_prey, real_rew),
        ("dream", dream_pred, dream_prey, dream_rew),
    ):
        d = np.linalg.norm(pred[..., 10:12], axis=-1)
        print(
            f"{side:5s}: predator speed {np.linalg.norm(pred[..., 0:2], axis=-1).mean():.3f}, prey speed "
            f"{np.linalg.norm(prey[..., 0:2], axis=-1).mean():.3f}, distance mean {d.mean():.3f}; within 0.125 "
            f"{(d < 0.125).mean():.2%}, 0.2 {(d < 0.2).mean():.2%}, 0.3 {(d < 0.3).mean():.2%}; "
            f"{PRED} return {rew.sum(1).mean():.2f}"
        )
        print("       distance at t = 0 / 10 / 40 / 99:", " / ".join(f"{d[:, t].mean():.2f}" for t in (0, 10, 40, 99)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

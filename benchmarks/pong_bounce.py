"""Does a Pong dream bounce the ball where the real game does? One step from real states at the decisive moment.

    python benchmarks/pong_bounce.py [BUNDLE ...] [--states 300] [--copies 8] [--out runs/pong-bounce.json]

Real ALE Pong is played by the bundled tracker with a share of random actions (so that some balls are missed)
until `--states` decisive steps are found: the ball near the player's paddle and moving towards it, and in the
next real frame either turned back (a bounce) or past the paddle's face (a miss). Each dream is reset to the C
real frames and actions that led to such a step (`--copies` times: it samples its tokens) and stepped once with
the real action; the share of its next frames whose ball turned back is counted for real bounces and for real
misses. Reality bounces every first and none of the second; a dream that reads the contact from the paddle's
place does the same, one that does not bounces both at about the rate of its data. `pong_contact.py` asks the same
over a whole crossing, in the closed loop; this asks it where the dream has the real state in front of it.
"""

from __future__ import annotations

import argparse

import numpy as np
from pong_contact import bundled_tracker, raw_dream, repeated_contexts, report

from dreamgym.export.data.sources import area_resize
from dreamgym.export.measure.pong import _real_env, detect

NEAR = 50  # the ball at or beyond this column (of 64), moving right, is near the player's paddle
FACE = 57  # a ball at or beyond this column has passed the paddle's face (the paddle spans about 56-58)


def outcome(x0: float, x1: float, x2: float) -> bool | None:
    """The ball's columns in three frames -> True (near the paddle, moving towards it, then turned back), False
    (then past the paddle's face or gone) or None (not a decisive step)."""
    if not (np.isfinite([x0, x1]).all() and x1 >= NEAR and x1 > x0):
        return None
    if np.isfinite(x2) and x2 < x1:
        return True
    if (np.isfinite(x2) and x2 >= FACE > x1) or not np.isfinite(x2):
        return False
    return None


def decisive_steps(n: int, C: int, size: int, track, seed: int, noise: float = 0.3):
    """`n` real decisive steps: the C frames and actions up to the step, the action taken there, and whether the
    ball turned back in the next frame (True) or passed the paddle's face (False)."""
    rng = np.random.default_rng(seed)
    env = _real_env(seed)
    o, _ = env.reset(seed=seed)
    frames, acts, found, t = [area_resize(o, size)], [0], [], 0
    while len(found) < n and t < 200_000:
        a = int(track(frames[-1][None])[0]) if rng.random() > noise else int(rng.integers(6))
        o, _, term, trunc, _ = env.step(a)
        t += 1
        nxt = area_resize(o, size)
        if len(frames) >= C + 1:
            d = detect(np.stack([frames[-2], frames[-1], nxt]))
            bounced = outcome(*d["ball_x"])
            if bounced is not None:
                found.append((np.stack(frames[-C:]), np.asarray(acts[-C:], np.int64), a, bounced))
        frames.append(nxt), acts.append(a)
        frames, acts = frames[-C - 2 :], acts[-C - 2 :]
        if term or trunc:
            o, _ = env.reset()
            frames, acts = [area_resize(o, size)], [0]
    env.close()
    return found


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bundles", nargs="*", default=["Dream-Pong-v0"])
    ap.add_argument("--states", type=int, default=300)
    ap.add_argument("--copies", type=int, default=8, help="dreams per state")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/pong-bounce.json")
    a = ap.parse_args(argv)
    size, C, track = bundled_tracker(a.bundles[0], a.seed)
    found = decisive_steps(a.states, C, size, track, a.seed)
    bounce = np.repeat(np.array([f[3] for f in found]), a.copies)
    res: dict = {
        "states": len(found),
        "real_bounces": int(sum(f[3] for f in found)),
        "copies": a.copies,
        "dream": {},
    }
    ctx = repeated_contexts([f[0] for f in found], [f[1] for f in found], a.copies)
    action = np.repeat(np.array([f[2] for f in found], np.int64), a.copies)
    x_now = detect(ctx["obs"][:, -1])["ball_x"]
    for b in a.bundles:
        denv = raw_dream(b, len(action))
        denv.reset(seed=a.seed, options={"context": ctx})
        obs, *_ = denv.step(action)
        denv.close()
        x_next = detect(obs)["ball_x"]
        back = np.isfinite(x_next) & (x_next < x_now)
        res["dream"][b] = {
            "bounces_when_real_bounces": float(back[bounce].mean()) if bounce.any() else float("nan"),
            "bounces_when_real_misses": float(back[~bounce].mean()) if (~bounce).any() else float("nan"),
        }
    lines = [
        f"{len(found)} real decisive steps ({res['real_bounces']} bounces, {len(found) - res['real_bounces']} "
        f"misses); dream: {a.copies} copies each, one step",
        "| what | bounces where reality bounces | bounces where reality misses | difference |",
        "|---|---:|---:|---:|",
        "| real ALE/Pong-v5 | 100% | 0% | +100% |",
    ]
    for what, m in res["dream"].items():
        hit, miss = m["bounces_when_real_bounces"], m["bounces_when_real_misses"]
        lines.append(f"| {what} | {hit:.0%} | {miss:.0%} | {hit - miss:+.0%} |")
    return report(lines, res, a.out)


if __name__ == "__main__":
    raise SystemExit(main())

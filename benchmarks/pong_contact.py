"""Does a Pong dream decide a point by where the paddle is? From the same real states, the ball on its way to
the player, the dream and the real game are played on by a paddle that tracks the ball and by one that moves
away from it; how often each loses the point, in each.

    python benchmarks/pong_contact.py [BUNDLE ...] [--states 48] [--copies 8] [--steps 45] [--out runs/pong-contact.json]

Real ALE Pong is deterministic from a restored state: the tracker keeps most of these balls and the paddle that
moves away loses nearly all of them. A dream that resolves the contact does the same; one that leans on the mix
of players in its data loses about as often under both. Each state is dreamt `--copies` times (the dream samples
its tokens, as `gym.make_vec` gives it), from the C real frames and actions that led to the state.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

import dreamgym
from dreamgym.export.data.sources import area_resize
from dreamgym.export.measure.pong import DOWN, UP, _real_env, detect
from dreamgym.record import make_policy


def away(frames: np.ndarray) -> np.ndarray:
    """Move the paddle away from the ball (towards the wall on the other side of it); NOOP when either is unseen."""
    d = detect(frames)
    a = np.where(d["ball_y"] > d["paddle_y"], UP, DOWN)
    return np.where(np.isfinite(d["ball_y"]) & np.isfinite(d["paddle_y"]), a, 0).astype(np.int64)


def pick_states(n: int, C: int, size: int, track, seed: int):
    """`n` real states with one ball in the left half of the field moving right (towards the player): the ALE
    state, and the C frames and actions that led to it."""
    rng = np.random.default_rng(seed)
    env = _real_env(seed)
    ale = env.unwrapped.ale
    o, _ = env.reset(seed=seed)
    frames, acts, picked, t, last = [area_resize(o, size)], [0], [], 0, -100
    while len(picked) < n and t < 100_000:
        a = int(track(frames[-1][None])[0]) if rng.random() > 0.2 else int(rng.integers(6))
        o, _, term, trunc, _ = env.step(a)
        frames.append(area_resize(o, size)), acts.append(a)
        t += 1
        if term or trunc:
            o, _ = env.reset()
            frames, acts = [area_resize(o, size)], [0]
            continue
        if len(frames) > C and t - last > 30:
            d = detect(np.stack(frames[-2:]))
            if (d["balls"] == 1).all() and d["ball_x"][1] < 32 and d["ball_x"][1] - d["ball_x"][0] > 0.5:
                picked.append((ale.cloneState(), np.stack(frames[-C:]), np.asarray(acts[-C:], np.int64)))
                last = t
        frames, acts = frames[-C - 1 :], acts[-C - 1 :]
    return env, picked


def bundled_tracker(bundle: str, seed: int):
    """The first bundle's frame side, context length C and bundled tracker: how the real states are reached."""
    first = dreamgym.Bundle.load(dreamgym.resolve(bundle))
    return first.frame_shape[0], first.context_length, make_policy("bundle", first, np.random.default_rng(seed))


def repeated_contexts(frames: list[np.ndarray], actions: list[np.ndarray], copies: int) -> dict:
    """The `context` reset option for `copies` dreams of each real state's C frames and actions."""
    return {"obs": np.repeat(np.stack(frames), copies, 0), "actions": np.repeat(np.stack(actions), copies, 0)}


def raw_dream(bundle: str, n: int):
    """`n` envs of a Pong dream as `make_vec` gives it, with no autoreset and no uncertainty shaping (the raw
    points), for one run from given contexts."""
    return dreamgym.make_vec(
        dreamgym.resolve(bundle), n, autoreset_mode="Disabled", uncertainty_penalty=0.0, uncertainty_limit=None
    )


def report(lines: list[str], res: dict, out: str) -> int:
    """Print the table's lines and write the results as JSON to `out`."""
    print("\n".join(lines))
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(res, indent=2) + "\n")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bundles", nargs="*", default=["Dream-Pong-v0"])
    ap.add_argument("--states", type=int, default=48)
    ap.add_argument("--copies", type=int, default=8, help="dreams per state")
    ap.add_argument(
        "--steps", type=int, default=45, help="steps played on from each state (the ball crosses in about 30)"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/pong-contact.json")
    a = ap.parse_args(argv)
    size, C, track = bundled_tracker(a.bundles[0], a.seed)
    env, picked = pick_states(a.states, C, size, track, a.seed)
    policies = {"track": track, "away": away}
    res: dict = {"states": len(picked), "copies": a.copies, "steps": a.steps, "real": {}, "dream": {}}
    for name, pol in policies.items():  # reality, deterministic from each restored state
        lost = won = 0
        for state, fr, _ in picked:
            env.unwrapped.ale.restoreState(state)
            f, r_ep = fr[-1], []
            for _ in range(a.steps):
                o, r, *_ = env.step(int(pol(f[None])[0]))
                f = area_resize(o, size)
                r_ep.append(r)
            lost += min(r_ep) < 0
            won += max(r_ep) > 0
        res["real"][name] = {"lost": lost / len(picked), "won": won / len(picked)}
    env.close()
    ctx = repeated_contexts([p[1] for p in picked], [p[2] for p in picked], a.copies)
    n = len(ctx["obs"])
    for b in a.bundles:
        denv = raw_dream(b, n)
        res["dream"][b] = {}
        for name, pol in policies.items():
            obs, _ = denv.reset(seed=a.seed, options={"context": ctx})
            R = np.zeros((n, a.steps))
            for t in range(a.steps):
                obs, R[:, t], *_ = denv.step(pol(obs))
            res["dream"][b][name] = {"lost": float((R.min(1) < 0).mean()), "won": float((R.max(1) > 0).mean())}
        denv.close()
    lines = [
        f"{len(picked)} real states, ball moving towards the player; {a.steps} steps on; dream: {a.copies} copies each",
        "| what | tracker loses | moving away loses | difference |",
        "|---|---:|---:|---:|",
    ]
    for what, m in [("real ALE/Pong-v5", res["real"]), *res["dream"].items()]:
        t_, w_ = m["track"]["lost"], m["away"]["lost"]
        lines.append(f"| {what} | {t_:.0%} | {w_:.0%} | {w_ - t_:+.0%} |")
    return report(lines, res, a.out)


if __name__ == "__main__":
    raise SystemExit(main())

"""Which game should the shipped Genie dream learn from video? A cheap measurement of candidates.

    python benchmarks/studies/genie_sources.py [--games Breakout Freeway Boxing Pong] [--steps 300]

A latent action model sees only frames. It can learn an action only where the action shows in the frame, and
its K codes are spent first on whatever changes most. For each ALE game (frameskip 4, no sticky actions, its
minimal action set, random play), every `--stride`-th state is cloned and every action is tried from it; the
next frames are area-averaged to 64x64 as the dreams see them. Reported:

- actions: the size of the minimal action set (the LAM has K = 8 codes);
- visible: the share of (state, action other than NOOP) whose next frame differs from NOOP's (a pixel off by
  more than 10 of 255): how often the action can be read from the frames at all;
- classes: the mean number of distinct next frames per state (how many actions the frames can tell apart);
- action px: the mean number of 64x64 pixels in which two actions' next frames differ (how big the
  controlled sprite's move is);
- other px: the mean number of pixels that change from one frame to the next under NOOP (what moves
  without the player: the distraction a K-code bottleneck must ignore).
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import numpy as np

from dreamgym.export.data.sources import area_resize


def measure(game: str, steps: int, stride: int, seed: int = 0) -> dict:
    import ale_py

    gym.register_envs(ale_py)
    env = gym.make(f"ALE/{game}-v5", frameskip=4, repeat_action_probability=0.0, full_action_space=False)
    ale = env.unwrapped.ale
    n = env.action_space.n
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    ident, classes, action_px, other_px = [], [], [], []
    for t in range(steps):
        if t % stride == 0:
            snap = ale.cloneState()
            frames = []
            for a in range(n):
                ale.restoreState(snap)
                obs, *_ = env.step(a)
                frames.append(area_resize(obs, 64).astype(np.int16))
            ale.restoreState(snap)
            now = area_resize(ale.getScreenRGB(), 64).astype(np.int16)
            differ = np.array([[np.abs(f - g).max() > 10 for g in frames] for f in frames])
            ident += [differ[a, 0] for a in range(1, n)]
            classes.append(len({f.tobytes() for f in frames}))
            px = [
                (np.abs(frames[a] - frames[b]).max(-1) > 10).sum() for a in range(n) for b in range(a) if differ[a, b]
            ]
            action_px += px
            other_px.append((np.abs(frames[0] - now).max(-1) > 10).sum())
        _, _, term, trunc, _ = env.step(int(rng.integers(n)))
        if term or trunc:
            env.reset()
    env.close()
    return {
        "game": game,
        "actions": n,
        "identifiable": float(np.mean(ident)),
        "classes": float(np.mean(classes)),
        "action_px": float(np.mean(action_px)) if action_px else 0.0,
        "other_px": float(np.mean(other_px)),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--games", nargs="+", default=["Breakout", "Freeway", "Boxing", "Pong"])
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--stride", type=int, default=3)
    args = p.parse_args()
    print("| game | actions | visible | classes / state | action px | other px |")
    print("|---|---:|---:|---:|---:|---:|")
    for g in args.games:
        r = measure(g, args.steps, args.stride)
        print(
            f"| {r['game']} | {r['actions']} | {r['identifiable']:.0%} | {r['classes']:.2f} | "
            f"{r['action_px']:.1f} | {r['other_px']:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()

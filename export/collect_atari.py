"""Collect ALE Pong episodes as 64x64 RGB frames (groundwork for the Simulus/REM Pong dream, issue 7).

The behaviour mixes a scripted paddle that tracks the ball with some noise (so there are rallies, and
points won and lost) with stretches of random play. Positions come from Pong's RAM (ball x at 49, ball y
at 54, the player's paddle y at 51), the convention of the Atari RAM annotations. ale-py ships the ROMs,
so `gym.make("ALE/Pong-v5")` works offline.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import gymnasium as gym
import numpy as np

PONG_ACTIONS = ["NOOP", "FIRE", "RIGHT", "LEFT", "RIGHTFIRE", "LEFTFIRE"]  # RIGHT moves the paddle up
BALL_X, BALL_Y, PADDLE_Y = 49, 54, 51


@dataclasses.dataclass(frozen=True)
class PongCollectConfig:
    episodes: int = 4
    """how many episodes"""
    max_steps: int = 2000
    """agent steps per episode at most (frameskip 4)"""
    size: int = 64
    """frame side in pixels"""
    random_share: float = 0.3
    """fraction of time spent in random-play stretches"""
    noise: float = 0.15
    """probability that the tracker takes a random action"""
    seed: int = 0
    """seed of the env and the behaviour"""


def resize(frame: np.ndarray, size: int) -> np.ndarray:
    """Area-average resize of a 210x160 ALE frame to size x size (no image library needed)."""
    h, w, _ = frame.shape
    ys = (np.arange(size + 1) * h / size).astype(int)
    xs = (np.arange(size + 1) * w / size).astype(int)
    rows = np.add.reduceat(frame.astype(np.float32), ys[:-1], axis=0) / np.diff(ys)[:, None, None]
    out = np.add.reduceat(rows, xs[:-1], axis=1) / np.diff(xs)[None, :, None]
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def tracker_action(ram: np.ndarray, rng: np.random.Generator, noise: float) -> int:
    if rng.random() < noise:
        return int(rng.integers(6))
    ball, paddle = int(ram[BALL_Y]), int(ram[PADDLE_Y])
    if ball == 0:  # no ball in play: serve
        return 1
    diff = ball - (paddle + 8)
    return 3 if diff > 4 else 2 if diff < -4 else 0


def collect_pong(cfg: PongCollectConfig, out_dir: str | Path, progress: bool = True) -> list[Path]:
    import ale_py
    from tqdm.auto import tqdm

    gym.register_envs(ale_py)
    env = gym.make("ALE/Pong-v5", frameskip=4, repeat_action_probability=0.0, max_episode_steps=cfg.max_steps)
    rng = np.random.default_rng(cfg.seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in tqdm(range(cfg.episodes), desc="collect ALE/Pong-v5", disable=not progress, unit="ep"):
        obs, _ = env.reset(seed=cfg.seed * 100_003 + i)
        O, A, R, TE, TR = [resize(obs, cfg.size)], [], [], [], []
        random_until = 0
        for t in range(cfg.max_steps):
            if t >= random_until and rng.random() < cfg.random_share / 50:
                random_until = t + int(rng.integers(20, 100))
            ram = env.unwrapped.ale.getRAM()
            a = int(rng.integers(6)) if t < random_until else tracker_action(ram, rng, cfg.noise)
            obs, r, term, trunc, _ = env.step(a)
            O.append(resize(obs, cfg.size)), A.append(a), R.append(r), TE.append(term), TR.append(trunc)
            if term or trunc:
                break
        ep = {"obs": np.asarray(O, np.uint8), "actions": np.asarray(A, np.int64), "rewards": np.asarray(R, np.float32),
              "terminations": np.asarray(TE, bool), "truncations": np.asarray(TR, bool)}
        meta = {"env_id": "ALE/Pong-v5", "behaviour": "tracker+random", "seed": cfg.seed * 100_003 + i,
                "action_meanings": PONG_ACTIONS}
        p = out / f"episode_{i:04d}.npz"
        np.savez_compressed(p, meta=np.array(json.dumps(meta)), **ep)
        paths.append(p)
    env.close()
    return paths

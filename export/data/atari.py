"""Collect ALE Pong episodes as 64x64 RGB frames for the Simulus/REM Pong dream (`export/train/recipes/pong_rem.py`).

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

from dreamgym.export.data.sources import area_resize

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
        O, A, R, TE, TR = [area_resize(obs, cfg.size)], [], [], [], []
        random_until = 0
        for t in range(cfg.max_steps):
            if t >= random_until and rng.random() < cfg.random_share / 50:
                random_until = t + int(rng.integers(20, 100))
            ram = env.unwrapped.ale.getRAM()
            a = int(rng.integers(6)) if t < random_until else tracker_action(ram, rng, cfg.noise)
            obs, r, term, trunc, _ = env.step(a)
            O.append(area_resize(obs, cfg.size)), A.append(a), R.append(r), TE.append(term), TR.append(trunc)
            if term or trunc:
                break
        ep = {
            "obs": np.asarray(O, np.uint8),
            "actions": np.asarray(A, np.int64),
            "rewards": np.asarray(R, np.float32),
            "terminations": np.asarray(TE, bool),
            "truncations": np.asarray(TR, bool),
        }
        meta = {
            "env_id": "ALE/Pong-v5",
            "behaviour": "tracker+random",
            "seed": cfg.seed * 100_003 + i,
            "action_meanings": PONG_ACTIONS,
        }
        p = out / f"episode_{i:04d}.npz"
        np.savez_compressed(p, meta=np.array(json.dumps(meta)), **ep)
        paths.append(p)
    env.close()
    return paths


def pong_pixel_policy(size: int = 64):
    """A scripted Pong policy that sees only the frame, as a torch module (it ships as the bundle's
    policy.onnx): it finds the ball (the blue channel lifted, red not lowered, right of the opponent's paddle) and its own
    green paddle (right side) and moves the paddle towards the ball. frames (B, S, S, 3) float 0..255 ->
    actions (B,) int64."""
    import torch
    import torch.nn as nn

    s = size / 64.0
    rows = (int(12 * s), int(59 * s))  # the play field between the walls
    ball_cols, paddle_cols = (int(9 * s), int(59 * s)), (int(55 * s), int(59 * s))

    class Tracker(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("y", torch.arange(size, dtype=torch.float32)[rows[0] : rows[1]].view(1, -1, 1))

        def forward(self, obs):
            f = obs[:, rows[0] : rows[1]]
            field = f[:, :, ball_cols[0] : ball_cols[1]]
            # the ball lifts the blue channel; red stays high (the green paddle's red is below the floor's)
            ball = torch.relu(field[..., 2] - 40.0) * (field[..., 0] > 140.0).float()
            pad = f[:, :, paddle_cols[0] : paddle_cols[1]]
            paddle = torch.relu(pad[..., 1] - pad[..., 0])  # green over red: the agent's paddle
            by = (ball * self.y).sum((1, 2)) / (ball.sum((1, 2)) + 1e-6)
            py = (paddle * self.y).sum((1, 2)) / (paddle.sum((1, 2)) + 1e-6)
            diff = by - py
            seen = ball.sum((1, 2)) > 20.0
            up = torch.full_like(diff, 2.0)  # RIGHT moves the paddle up
            down = torch.full_like(diff, 3.0)  # LEFT moves it down
            act = torch.where(diff > 1.5, down, torch.where(diff < -1.5, up, torch.zeros_like(diff)))
            return torch.where(seen, act, torch.zeros_like(act)).to(torch.int64)

    return Tracker()


# -- Breakout, the source of the Genie dream (export/train/recipes/genie.py) ------------------------------------
BREAKOUT_ACTIONS = ["NOOP", "FIRE", "RIGHT", "LEFT"]
BREAKOUT_PADDLE_X, BREAKOUT_BALL_X, BREAKOUT_BALL_Y = 72, 99, 101  # RAM: paddle x, ball x and y (0: no ball)


@dataclasses.dataclass(frozen=True)
class BreakoutCollectConfig:
    episodes: int = 4
    """how many episodes"""
    max_steps: int = 1000
    """agent steps per episode at most (frameskip 4)"""
    size: int = 64
    """frame side in pixels"""
    random_share: float = 0.4
    """fraction of time spent in random-play stretches"""
    noise: float = 0.2
    """probability that the tracker takes a random action"""
    effects: bool = False
    """also record, per step, which actions would have given the same next frame as the one taken (every
    action is tried from the cloned state): what the latent-action evaluation needs to tell visible actions"""
    seed: int = 0
    """seed of the env and the behaviour"""


def breakout_tracker(ram: np.ndarray, rng: np.random.Generator, noise: float) -> int:
    """Serve when no ball is in play, else move the paddle's centre under the ball (RAM offsets measured
    against the screen: ball x px = ram[99] - 48, paddle centre px = ram[72] - 39)."""
    if rng.random() < noise:
        return int(rng.integers(4))
    if int(ram[BREAKOUT_BALL_Y]) == 0:
        return 1
    diff = int(ram[BREAKOUT_BALL_X]) - int(ram[BREAKOUT_PADDLE_X]) - 9
    return 2 if diff > 3 else 3 if diff < -3 else 0


def collect_breakout(cfg: BreakoutCollectConfig, out_dir: str | Path, progress: bool = True) -> list[Path]:
    """Episodes of ALE/Breakout-v5 (frameskip 4, no sticky actions) as 64x64 frames, with the actions kept
    beside the video for evaluation only (the Genie recipe trains on the frames alone)."""
    import ale_py
    from tqdm.auto import tqdm

    gym.register_envs(ale_py)
    env = gym.make("ALE/Breakout-v5", frameskip=4, repeat_action_probability=0.0, max_episode_steps=cfg.max_steps)
    raw, ale = env.unwrapped, env.unwrapped.ale
    rng = np.random.default_rng(cfg.seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in tqdm(range(cfg.episodes), desc="collect ALE/Breakout-v5", disable=not progress, unit="ep"):
        obs, _ = env.reset(seed=cfg.seed * 100_003 + i)
        O, A, R, TE, TR, SAME = [area_resize(obs, cfg.size)], [], [], [], [], []
        random_until = 0
        for t in range(cfg.max_steps):
            if t >= random_until and rng.random() < cfg.random_share / 40:
                random_until = t + int(rng.integers(20, 80))
            ram = ale.getRAM()
            a = int(rng.integers(4)) if t < random_until else breakout_tracker(ram, rng, cfg.noise)
            if cfg.effects:  # try every action from the same state (the wrappers' counters are not touched)
                snap = ale.cloneState()
                outcomes = []
                for b in range(4):
                    ale.restoreState(snap)
                    outcomes.append(area_resize(raw.step(b)[0], cfg.size).astype(np.int16))
                ale.restoreState(snap)
                SAME.append(sum(1 << b for b in range(4) if np.abs(outcomes[b] - outcomes[a]).max() <= 10))
            obs, r, term, trunc, _ = env.step(a)
            O.append(area_resize(obs, cfg.size)), A.append(a), R.append(r), TE.append(term), TR.append(trunc)
            if term or trunc:
                break
        ep = {
            "obs": np.asarray(O, np.uint8),
            "actions": np.asarray(A, np.int64),
            "rewards": np.asarray(R, np.float32),
            "terminations": np.asarray(TE, bool),
            "truncations": np.asarray(TR, bool),
        }
        if cfg.effects:
            ep["same_effect"] = np.asarray(SAME, np.uint8)
        meta = {
            "env_id": "ALE/Breakout-v5",
            "behaviour": "tracker+random",
            "seed": cfg.seed * 100_003 + i,
            "action_meanings": BREAKOUT_ACTIONS,
        }
        p = out / f"episode_{i:04d}.npz"
        np.savez_compressed(p, meta=np.array(json.dumps(meta)), **ep)
        paths.append(p)
    env.close()
    return paths

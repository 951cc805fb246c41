"""Collect episodes from a real Gymnasium environment: observations, actions, rewards, terminations,
truncations and rendered frames, one compressed ``.npz`` per episode.

Why npz and not Minari: writing Minari needs ``minari[create]``, which pulls in jax (about 600 MB)
for a feature we do not use; one npz per episode is plain numpy, loads without pickles, and the
trainer reads Minari datasets anyway (``dreamgym.export.data.load_minari``).

MuJoCo frames are rendered offscreen (``MUJOCO_GL=egl``) by `dreamgym.export.sources.MujocoFrames`: the tracking
camera, shadows, reflections and skybox off, and a plain floor. HalfCheetah's observation leaves out the
x position, so a checker floor's offset under the camera is not a function of anything the dream
models; a plain floor makes the frame a function of the pose, which a decoder can learn.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import gymnasium as gym
import numpy as np

from .sources import MujocoFrames, default_gl

default_gl()  # before gymnasium imports mujoco


# -- behaviour policies ---------------------------------------------------------------------------
# Each is a function (obs, t, rng) -> action; `make_behaviour` builds them from a name so that a
# recipe can list its data mix as plain strings.


def make_behaviour(kind: str, space: gym.spaces.Box, policy=None, rng=None) -> Callable:
    low, high = space.low, space.high
    rng = rng or np.random.default_rng()
    if kind == "random":
        return lambda obs, t: rng.uniform(low, high)
    if kind == "zero":
        return lambda obs, t: np.zeros_like(low)
    if kind == "sine":  # an open-loop gait with random frequency and phases
        w, ph, amp = rng.uniform(0.1, 0.6), rng.uniform(0, 2 * np.pi, low.shape), rng.uniform(0.3, 1.0)
        return lambda obs, t: np.clip(amp * np.sin(w * t + ph), low, high)
    if policy is None:
        raise ValueError(f"behaviour {kind!r} needs a policy")
    if kind.startswith("policy"):  # "policy" or "policy:0.3" (Gaussian action noise of that std)
        std = float(kind.split(":")[1]) if ":" in kind else 0.0
        return lambda obs, t: np.clip(policy(obs) + std * rng.standard_normal(low.shape), low, high)
    if kind == "mixed":  # switch between the policy and random actions every 50-250 steps
        state = {"until": 0, "random": False}

        def act(obs, t):
            if t >= state["until"]:
                state["until"] = t + int(rng.integers(50, 250))
                state["random"] = not state["random"] if t else bool(rng.integers(2))
            a = rng.uniform(low, high) if state["random"] else policy(obs) + 0.1 * rng.standard_normal(low.shape)
            return np.clip(a, low, high)

        return act
    raise ValueError(f"unknown behaviour {kind!r}; expected random, zero, sine, policy[:std] or mixed")


@dataclasses.dataclass(frozen=True)
class CollectConfig:
    env_id: str = "HalfCheetah-v5"
    """the real environment"""
    behaviours: tuple[str, ...] = ("random", "policy:0.1", "mixed")
    """behaviour of each episode, cycled"""
    episodes: int = 6
    """how many episodes"""
    max_steps: int = 1000
    """steps per episode at most"""
    frame_size: int = 64
    """rendered frame side in pixels (0: no frames)"""
    seed: int = 0
    """seed of the env resets and the behaviours"""


def run_episode(env, frames, act, seed: int, max_steps: int) -> dict[str, np.ndarray]:
    obs, _ = env.reset(seed=seed)
    O, A, R, TE, TR, F = [obs], [], [], [], [], []
    if frames:
        F.append(frames())
    for t in range(max_steps):
        a = np.asarray(act(obs, t), dtype=np.float32)
        obs, r, term, trunc, _ = env.step(a)
        O.append(obs), A.append(a), R.append(r), TE.append(term), TR.append(trunc or t == max_steps - 1)
        if frames:
            F.append(frames())
        if term or trunc:
            break
    ep = {
        "obs": np.asarray(O, np.float32),  # (T+1, obs)
        "actions": np.asarray(A, np.float32),  # (T, act)
        "rewards": np.asarray(R, np.float32),
        "terminations": np.asarray(TE, bool),
        "truncations": np.asarray(TR, bool),
    }
    if frames:
        ep["frames"] = np.asarray(F, np.uint8)  # (T+1, H, W, 3)
    return ep


def collect(cfg: CollectConfig, out_dir: str | Path, policy=None, progress: bool = True) -> list[Path]:
    """Run `cfg.episodes` episodes and write ``episode_XXXX.npz`` files into `out_dir`."""
    from tqdm.auto import tqdm

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    env = gym.make(cfg.env_id, max_episode_steps=cfg.max_steps)
    frames = MujocoFrames(env, cfg.frame_size) if cfg.frame_size else None
    rng = np.random.default_rng(cfg.seed)
    versions = _versions()
    paths = []
    bar = tqdm(range(cfg.episodes), desc=f"collect {cfg.env_id}", disable=not progress, unit="ep")
    for i in bar:
        kind = cfg.behaviours[i % len(cfg.behaviours)]
        act = make_behaviour(kind, env.action_space, policy, rng)
        ep = run_episode(env, frames, act, cfg.seed * 100_003 + i, cfg.max_steps)
        meta = {"env_id": cfg.env_id, "behaviour": kind, "seed": cfg.seed * 100_003 + i, "packages": versions}
        p = out / f"episode_{i:04d}.npz"
        np.savez_compressed(p, meta=np.array(json.dumps(meta)), **ep)
        paths.append(p)
        bar.set_postfix(behaviour=kind, ret=f"{ep['rewards'].sum():.0f}")
    if frames:
        frames.close()
    env.close()
    return paths


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("gymnasium", "mujoco", "ale-py", "pettingzoo", "numpy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def load_episodes(folder: str | Path) -> Iterator[dict[str, np.ndarray]]:
    """Episodes written by `collect`, in file order (no pickles)."""
    for p in sorted(Path(folder).glob("episode_*.npz")):
        with np.load(p, allow_pickle=False) as z:
            ep = {k: z[k] for k in z.files}
        ep["meta"] = json.loads(str(ep["meta"]))
        yield ep

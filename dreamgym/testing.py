"""Checkers for people who export their own bundles (like `gymnasium.utils.env_checker`).

from dreamgym.testing import check_bundle
check_bundle("path/to/bundle")   # raises with the reason, or returns a short report
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from gymnasium.utils.env_checker import check_env

from .bundle import Bundle
from .env import DreamEnv
from .errors import BundleError
from .vector_env import DreamVectorEnv


def check_vector_env(env: DreamVectorEnv, steps: int = 5, seed: int = 0) -> None:
    """Reset and step a vector env; check spaces, dtypes and that equal seeds give equal rollouts."""

    def run():
        obs, _ = env.reset(seed=seed)
        env.action_space.seed(seed)
        traj = [obs]
        for _ in range(steps):
            obs, r, term, trunc, _ = env.step(env.action_space.sample())
            if not env.observation_space.contains(obs):
                raise AssertionError(f"observation {obs.dtype} {obs.shape} is outside {env.observation_space}")
            if r.shape != (env.num_envs,) or not np.isfinite(r).all():
                raise AssertionError(f"rewards must be finite with shape ({env.num_envs},), got {r}")
            if term.dtype != bool or trunc.dtype != bool:
                raise AssertionError("terminated and truncated must be bool arrays")
            traj.append(obs)
        return np.stack(traj)

    a, b = run(), run()
    if not np.array_equal(a, b):
        raise AssertionError("the same seed gave different trajectories: noise must come from the env's generator")


def check_bundle(path: str | Path, steps: int = 5) -> dict:
    """Load a bundle, open every graph, run check_env and a vector-env check; returns a report."""
    b = Bundle.load(path)
    venv = DreamVectorEnv(b, num_envs=3, render_mode="rgb_array")
    for g in b.manifest.graphs:
        venv.engine.session(g)  # opening checks inputs and outputs against the manifest
    check_vector_env(venv, steps)
    frames = np.stack(venv.render())
    if frames.shape != (3, *b.frame_shape) or frames.dtype != np.uint8:
        raise BundleError(
            f"render.onnx must return uint8 [B, {', '.join(map(str, b.frame_shape))}], got "
            f"{frames.dtype} {frames.shape}"
        )
    if b.has_graph("policy"):
        act = venv.engine.session("policy").run(None, {"obs": venv._obs.astype(np.float32)})[0]
        if act.shape != (3, *b.action_space.shape):
            raise BundleError(
                f"policy.onnx returned actions of shape {act.shape}, expected (3, *{b.action_space.shape})"
            )
    venv.close()
    for mode in b.obs_modes:
        env = DreamEnv(b, obs_mode=mode, render_mode="rgb_array")
        check_env(env, skip_render_check=False)
        env.close()
    return {"id": b.id, "family": b.family, "graphs": list(b.manifest.graphs), "obs_modes": b.obs_modes, "steps": steps}

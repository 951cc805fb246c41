"""`DreamEnv`: a single dream as a `gymnasium.Env` (passes `gymnasium.utils.env_checker.check_env`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from .bundle import Bundle
from .vector_env import DreamVectorEnv


class DreamEnv(gym.Env):
    """One dream of a bundle. Arguments as `DreamVectorEnv`, without `num_envs` and autoreset.

    Continuous actions outside the action space are clipped to it; wrong shapes, dtypes or
    non-finite values raise `dreamgym.ActionError`.
    """

    def __init__(
        self,
        bundle: str | Path | Bundle,
        obs_mode: str = "state",
        render_mode: str | None = None,
        device: str = "auto",
        max_episode_steps: int | None = None,
        threads: int | None = None,
        noise_scale: float = 1.0,
        uncertainty_penalty: float | str = "bundle",
        uncertainty_limit: float | str | None = "bundle",
    ):
        self.venv = DreamVectorEnv(
            bundle,
            1,
            obs_mode=obs_mode,
            render_mode=render_mode,
            device=device,
            autoreset_mode=gym.vector.AutoresetMode.DISABLED,
            max_episode_steps=max_episode_steps,
            threads=threads,
            noise_scale=noise_scale,
            uncertainty_penalty=uncertainty_penalty,
            uncertainty_limit=uncertainty_limit,
        )
        self.bundle = self.venv.bundle
        self.observation_space = self.venv.single_observation_space
        self.action_space = self.venv.single_action_space
        self._box_shape = self.action_space.shape if isinstance(self.action_space, gym.spaces.Box) else None
        self.render_mode = render_mode
        self.metadata = {"render_modes": ["rgb_array", "human"], "render_fps": self.bundle.render_fps}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = dict(options or {})
        if "context" in options:
            ctx = options["context"]
            # one window [C, ...] is accepted as well as a batch of one [1, C, ...]
            options["context"] = {
                k: np.asarray(v)[None] if np.ndim(v) == len(self._ctx_tail(k)) else v for k, v in ctx.items()
            }
        obs, info = self.venv.reset(seed=seed, options=options)
        return obs[0], info

    def _ctx_tail(self, key: str) -> tuple:
        b = self.bundle
        return (b.context_length, *(b.observation_space.shape if key == "obs" else b.action_space.shape))

    def step(self, action):
        a = action if type(action) is np.ndarray else np.asarray(action)
        if self._box_shape is not None and a.shape != self._box_shape:
            from .errors import ActionError

            raise ActionError(f"{self.bundle.id}: expected an action of shape {self._box_shape}, got {a.shape}")
        return self.venv.step_one(a)  # one env's action: the vector env takes it for its single row

    def render(self):
        if self.render_mode is None:
            gym.logger.warn("render() was called without a render_mode; pass render_mode='rgb_array' to make()")
            return None
        frames = self.venv.render()
        return None if frames is None else frames[0]

    def get_state(self) -> dict[str, np.ndarray]:
        return self.venv.get_state()

    def set_state(self, snap: dict[str, np.ndarray]) -> None:
        self.venv.set_state(snap)

    def close(self):
        venv = getattr(self, "venv", None)  # absent when __init__ raised before the vector env was made
        if venv is not None:
            venv.close()

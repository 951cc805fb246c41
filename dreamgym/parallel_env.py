"""`ParallelDreamEnv`: one game of a multi-agent dream as a PettingZoo `ParallelEnv`.

Imported lazily (`dreamgym.make_parallel`, `dreamgym.ParallelDreamEnv`): the only runtime module that needs
pettingzoo, which the `pettingzoo` extra installs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from .bundle import Bundle
from .errors import DependencyNotInstalled
from .multi_agent import BatchedParallelDreamEnv

try:
    from pettingzoo import ParallelEnv
except ImportError as e:  # pragma: no cover - the extra is installed in CI
    raise DependencyNotInstalled(
        'multi-agent dreams are PettingZoo environments; run `pip install "dreamgym[pettingzoo]"`'
    ) from e


class ParallelDreamEnv(ParallelEnv):
    """One game of a multi-agent dream (passes PettingZoo's `parallel_api_test` and `parallel_seed_test`).

    Args: as `dreamgym.multi_agent.BatchedParallelDreamEnv`, without `num_games` and `autoreset`.

    Agents: ``possible_agents`` are the bundle's agents; ``agents`` are those still in the game (empty
    before `reset` and once the game is over: then call `reset`). ``observation_space(agent)`` and
    ``action_space(agent)`` are the real env's spaces for that agent; ``state()`` is every agent's
    observation, concatenated in agent order (``state_space``), as multi-particle envs give their `state()`.

    Step: ``step({agent: action})`` for every live agent. An unknown agent, a missing one, a wrong
    shape, a non-finite value or an out-of-range discrete action raises `dreamgym.ActionError` and
    nothing moves. Rewards are floats; `infos[agent]` carries the bundle's optional per-step outputs.
    """

    def __init__(self, bundle: str | Path | Bundle, render_mode: str | None = None, **kwargs):
        self.games = BatchedParallelDreamEnv(bundle, 1, autoreset="disabled", render_mode=render_mode, **kwargs)
        b = self.bundle = self.games.bundle
        self.render_mode = render_mode
        self.metadata = {
            "name": b.id,
            "render_modes": ["rgb_array", "human"],
            "render_fps": b.render_fps,
            "is_parallelizable": True,
        }
        self.possible_agents = list(self.games.agents)
        self.agents: list[str] = []
        self.observation_spaces = dict(self.games.observation_spaces)
        self.action_spaces = dict(self.games.action_spaces)
        boxes = [self.observation_spaces[a] for a in self.possible_agents]
        if all(isinstance(s, spaces.Box) and len(s.shape) == 1 for s in boxes):
            self.state_space = spaces.Box(
                np.concatenate([s.low for s in boxes]), np.concatenate([s.high for s in boxes]), dtype=np.float32
            )
        self._obs: dict[str, np.ndarray] | None = None

    def observation_space(self, agent: str) -> gym.Space:
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> gym.Space:
        return self.action_spaces[agent]

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None):
        """Start a game: from a real window of the bundle's bank drawn with the seed, or from
        ``options={"context": {"obs": {agent: [C, ...]}, "actions": {agent: [C, ...]}}}``. Other option
        keys are ignored with a warning (PettingZoo's API test passes some)."""
        options = dict(options or {})
        unknown = sorted(set(options) - {"context"})
        if unknown:
            gym.logger.warn(f"{self.bundle.id}: reset options {unknown} are not used (known: 'context')")
        ctx = options.get("context")
        if ctx is not None:  # one game's window [C, ...] per agent -> a batch of one
            ctx = {k: {a: np.asarray(v)[None] for a, v in d.items()} for k, d in ctx.items()}
        obs, _ = self.games.reset(seed=seed, options=None if ctx is None else {"context": ctx})
        self._obs = {a: o[0] for a, o in obs.items()}
        self.agents = list(self.possible_agents)
        return dict(self._obs), {a: {} for a in self.agents}

    def step(self, actions: dict):
        if not self.agents:
            raise gym.error.ResetNeeded(
                f"{self.bundle.id}: the game is over (or was never started); call reset() before step()"
            )
        obs, rew, term, trunc, info = self.games.step(actions)
        self._obs = {a: o[0] for a, o in obs.items()}
        live = self.agents
        extra = {k: (v[0] if not isinstance(v, dict) else None) for k, v in info.items()}
        infos = {}
        for a in live:
            infos[a] = {k: v for k, v in extra.items() if v is not None}
            if "model_reward" in info:
                infos[a]["model_reward"] = float(info["model_reward"][a][0])
        out = (
            {a: self._obs[a] for a in live},
            {a: float(rew[a][0]) for a in live},
            {a: bool(term[a][0]) for a in live},
            {a: bool(trunc[a][0]) for a in live},
            infos,
        )
        self.agents = [a for a in live if not (out[2][a] or out[3][a])]
        return out

    def state(self) -> np.ndarray:
        if self._obs is None:
            raise gym.error.ResetNeeded(f"{self.bundle.id}: call reset() before state()")
        return np.concatenate([np.ravel(self._obs[a]) for a in self.possible_agents]).astype(np.float32)

    def render(self):
        if self.render_mode is None:
            gym.logger.warn("render() was called without a render_mode; pass render_mode='rgb_array'")
            return None
        if self._obs is None:
            raise gym.error.ResetNeeded(f"{self.bundle.id}: call reset() before render()")
        frames = self.games.render()
        return None if frames is None else frames[0]

    def policy_actions(self) -> dict[str, np.ndarray]:
        """The bundle's policies' actions for every agent, from the current observations."""
        return {a: v[0] for a, v in self.games.policy_actions({a: o[None] for a, o in self._obs.items()}).items()}

    def get_state(self) -> dict[str, np.ndarray]:
        return self.games.get_state() | {"live": np.array([a in self.agents for a in self.possible_agents])}

    def set_state(self, snap: dict[str, np.ndarray]) -> None:
        self.games.set_state(snap)
        self._obs = {a: o[0] for a, o in self.games._obs.items()}
        self.agents = [a for a, live in zip(self.possible_agents, snap["live"]) if live]

    def close(self):
        games = getattr(self, "games", None)  # absent when __init__ raised before the games were made
        if games is not None:
            games.close()

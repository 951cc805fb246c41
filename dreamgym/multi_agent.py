"""Multi-agent dreams: N games of one joint world model stepped in one onnxruntime call.

A multi-agent bundle declares named agents (`Manifest.agents`), each with the real env's observation and
action space for that agent; its one step graph takes every agent's action and gives every agent's
observation, reward and termination (`action.<agent>`, `obs.<agent>`, ...). This module holds:

- `BatchedParallelDreamEnv`: N games per call, per-agent arrays (`{agent: obs[N, ...]}`), autoreset per
  game — the multi-agent counterpart of `DreamVectorEnv`, for MARL throughput;
- `AgentDreamEnv`: one agent of a multi-agent dream as a `gymnasium.Env`, the others driven by the bundle's
  policies, so single-agent learners can train one agent against them.

The PettingZoo `ParallelEnv` of one game is `dreamgym.parallel_env.ParallelDreamEnv` (pettingzoo is
imported there, and only there). Nothing here knows the family or the source env.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding

from . import _human  # at import, not in close(): an env closed by the GC at exit finds no import system
from .bundle import Bundle
from .engine import Engine
from .errors import ActionError
from .lifecycle import Lifecycle
from .vector_env import _uncertainty_options, draw_noise, noise_scratch, write_actions

AUTORESET_MODES = ("next_step", "disabled")


class BatchedParallelDreamEnv(Lifecycle):
    """`num_games` games of a multi-agent dream, stepped together.

    Args:
        bundle: a multi-agent bundle folder, or a loaded `Bundle`.
        num_games: how many games to step in each call.
        autoreset: "next_step" (as Gymnasium's vector envs: a game that ended is reset by the next
            `step`, whose actions for it are ignored and whose rewards for it are 0) or "disabled" (reset
            finished games yourself with ``reset(options={"reset_mask": mask})``; until then they step on).
        render_mode, device, max_episode_steps, threads, noise_scale, engine_options,
        uncertainty_penalty, uncertainty_limit: as `DreamVectorEnv` (a penalty applies to every agent's
        reward; the limit truncates the whole game).

    Spaces:
        ``agents`` (names, in the bundle's order), ``observation_spaces[agent]`` and
        ``action_spaces[agent]`` (one agent, one game: the real env's spaces for that agent).

    Step:
        ``step({agent: actions[num_games, ...]})`` gives ``(obs, rewards, terminations, truncations,
        infos)``: dicts by agent of arrays over games (rewards float64, flags bool), and ``infos`` with the
        bundle's optional per-step outputs (one value per game). Every agent needs an action every step
        (the agents of a game end together here: a game is over when any of its agents terminates or it
        is truncated). An unknown or missing agent, a wrong shape, a non-finite value or an out-of-range
        discrete action raises `ActionError` and steps no game.

    Reset:
        ``reset(seed=...)`` draws one real context window per game from the bundle's bank (the same
        window for every agent of a game: they are one real history) and filters it through reset.onnx.
        ``options={"context": {"obs": {agent: [k, C, ...]}, "actions": {agent: [k, C, ...]}}}`` starts
        from your own real histories; ``options={"reset_mask": mask}`` resets only some games.
    """

    def __init__(
        self,
        bundle: str | Path | Bundle,
        num_games: int = 1,
        autoreset: str = "next_step",
        render_mode: str | None = None,
        device: str = "auto",
        max_episode_steps: int | None = None,
        threads: int | None = None,
        noise_scale: float = 1.0,
        engine_options: dict | None = None,
        uncertainty_penalty: float | str = "bundle",
        uncertainty_limit: float | str | None = "bundle",
    ):
        self.bundle = bundle if isinstance(bundle, Bundle) else Bundle.load(bundle)
        b = self.bundle
        if not b.is_multi_agent:
            raise ValueError(
                f"{b.id} is a single-agent dream; open it with gym.make({b.id!r}) or dreamgym.make_vec(...)"
            )
        if int(num_games) < 1:
            raise ValueError(f"num_games must be a positive integer, got {num_games!r}")
        if autoreset not in AUTORESET_MODES:
            raise ValueError(f"autoreset must be one of {AUTORESET_MODES}, got {autoreset!r}")
        if render_mode not in (None, "rgb_array", "human"):
            raise ValueError(f"render_mode must be None, 'rgb_array' or 'human', got {render_mode!r}")
        self.num_games, self.autoreset, self.render_mode = int(num_games), autoreset, render_mode
        self.metadata = {"render_modes": ["rgb_array", "human"], "render_fps": b.render_fps}
        self.noise_scale = float(noise_scale)
        self.max_episode_steps = b.max_episode_steps if max_episode_steps is None else int(max_episode_steps)
        self.uncertainty_penalty, self.uncertainty_limit = _uncertainty_options(
            b, uncertainty_penalty, uncertainty_limit
        )
        self.engine = Engine(b, self.num_games, device=device, threads=threads, **(engine_options or {}))
        self.device = self.engine.device
        m = b.manifest
        self.agents: tuple[str, ...] = m.agent_names
        # copies: each env seeds its own spaces (two envs of one loaded bundle must not share generators)
        self.observation_spaces = {a.name: copy.deepcopy(a.observation_space) for a in m.agents}
        self.action_spaces = {a.name: copy.deepcopy(a.action_space) for a in m.agents}
        n = self.num_games
        self._init_lifecycle()
        self.closed = False
        self._obs = {a: np.zeros((n, *s.shape), s.dtype) for a, s in self.observation_spaces.items()}
        self._steps = np.zeros(n, np.int64)
        self._needs_reset = np.zeros(n, bool)
        self._np_random, self._np_random_seed = seeding.np_random(None)
        clips = m.graphs["step"].clips_action
        self._act = {}  # agent -> (input buffer, space, low, high, the graph clips it)
        for a, space in self.action_spaces.items():
            buf = self.engine.inputs[f"action.{a}"]
            box = isinstance(space, spaces.Box)
            lo = space.low.astype(buf.dtype) if box else None
            hi = space.high.astype(buf.dtype) if box else None
            self._act[a] = (buf, space, lo, hi, box and clips)
        self._extra = [o.name for o in m.outputs]
        self._uncertain = "uncertainty" in self._extra
        self._step_noise = []
        for nz in b.noise_for("step"):
            buf = self.engine.inputs[nz.name]
            self._step_noise.append((nz, buf, noise_scratch(nz.distribution, buf)))

    # -- reset ------------------------------------------------------------------------------------
    @property
    def np_random(self) -> np.random.Generator:
        return self._np_random

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Reset every game, or those in ``options["reset_mask"]``; returns (obs by agent, infos)."""
        self._enter("reset")
        try:
            return self._reset(seed, options)
        finally:
            self._busy.release()

    def _reset(self, seed, options):
        if self.closed:
            self._refuse("reset")
        if seed is not None:
            self._np_random, self._np_random_seed = seeding.np_random(seed)
        options = dict(options or {})
        mask = options.pop("reset_mask", None)
        context = options.pop("context", None)
        if options:
            raise ValueError(f"unknown reset options {sorted(options)}; expected 'reset_mask' and/or 'context'")
        if mask is None:
            rows = np.arange(self.num_games)
        else:
            mask = np.asarray(mask)
            if mask.shape != (self.num_games,) or mask.dtype != bool:
                raise ValueError(
                    f"reset_mask must be a bool array of shape ({self.num_games},), got {mask.dtype} {mask.shape}"
                )
            rows = np.flatnonzero(mask)
            if not self._live and len(rows) < self.num_games:
                raise ValueError(
                    f"{self.bundle.id}: the first reset must reset every game (a reset_mask of all True, or none); "
                    f"{self.num_games - len(rows)} game(s) would have no state"
                )
        if len(rows):
            self._reset_rows(rows, context)
        self._live = True
        return {a: o.copy() for a, o in self._obs.items()}, {}

    def _reset_rows(self, rows: np.ndarray, context: dict | None = None) -> None:
        b, k = self.bundle, len(rows)
        if context is None:
            idx = self._np_random.integers(len(b.contexts[f"obs.{self.agents[0]}"]), size=k)
            c_obs = {a: b.contexts[f"obs.{a}"][idx] for a in self.agents}
            c_act = {a: b.contexts[f"actions.{a}"][idx] for a in self.agents}
        else:
            c_obs, c_act = self._check_context(context, k)
        feeds = {f"context_obs.{a}": np.asarray(c_obs[a], dtype=np.float32) for a in self.agents}
        for a in self.agents:
            feeds[f"context_actions.{a}"] = np.asarray(c_act[a], dtype=self.engine.action_dtypes[f"action.{a}"])
        for nz in b.noise_for("reset"):
            feeds[nz.name] = draw_noise(
                self._np_random, nz.distribution, np.empty((k, *nz.shape), nz.np_dtype), self.noise_scale
            )
        out = self.engine.reset_rows(None if k == self.num_games else rows, feeds)
        for a in self.agents:
            self._obs[a] = self._obs[a].copy()  # arrays handed out stay the caller's
            self._obs[a][rows] = out[f"obs.{a}"]
        self._steps[rows] = 0
        self._needs_reset[rows] = False

    def _check_context(self, context: dict, k: int) -> tuple[dict, dict]:
        b = self.bundle
        try:
            c_obs = {a: np.asarray(context["obs"][a], dtype=np.float32) for a in self.agents}
            c_act = {a: np.asarray(context["actions"][a]) for a in self.agents}
        except (KeyError, TypeError) as e:
            raise ValueError(
                "options['context'] must be {'obs': {agent: [N, C, ...]}, 'actions': {agent: [N, C, ...]}} "
                f"with every agent of {list(self.agents)}"
            ) from e
        for a in self.agents:
            want_o = (k, b.context_length, *self.observation_spaces[a].shape)
            want_a = (k, b.context_length, *self.action_spaces[a].shape)
            if c_obs[a].shape != want_o or c_act[a].shape != want_a:
                raise ValueError(
                    f"options['context'] for {a!r} must hold obs of shape {want_o} and actions of shape {want_a}, "
                    f"got {c_obs[a].shape} and {c_act[a].shape}"
                )
            if not (np.isfinite(c_obs[a]).all() and np.isfinite(c_act[a].astype(np.float64)).all()):
                raise ValueError(f"options['context'] for {a!r} holds non-finite values")
        return c_obs, c_act

    # -- step -------------------------------------------------------------------------------------
    def write_actions(self, actions: dict) -> None:
        """Check every agent's actions and write them into the step's inputs (no game moves)."""
        who = self.bundle.id
        if not isinstance(actions, dict):
            raise ActionError(f"{who}: expected a dict {{agent: actions}}, got {type(actions).__name__}")
        unknown = sorted(set(actions) - set(self.agents), key=str)
        missing = [a for a in self.agents if a not in actions]
        if unknown or missing:
            raise ActionError(
                f"{who}: actions must name every agent of {list(self.agents)} once"
                + (f"; unknown: {unknown}" if unknown else "")
                + (f"; missing: {missing}" if missing else "")
                + "; no game was stepped"
            )
        for a in self.agents:
            buf, space, lo, hi, clips = self._act[a]
            x = actions[a] if type(actions[a]) is np.ndarray else np.asarray(actions[a])
            if x.shape != buf.shape:
                if self.num_games == 1 and x.shape == space.shape:
                    x = x[None]
                else:
                    raise ActionError(
                        f"{who}: agent {a!r} needs actions of shape {buf.shape} (num_games={self.num_games}, "
                        f"action shape {space.shape}), got {x.shape}; no game was stepped"
                    )
            write_actions(buf, x, space, lo, hi, clips, f"{who}, agent {a!r}")

    def step(self, actions: dict):
        """Step every game; returns (obs, rewards, terminations, truncations, infos), dicts by agent. One
        thread at a time: a second thread stepping the same games gets a RuntimeError."""
        self._enter("step")
        try:
            return self._step(actions)
        finally:
            self._busy.release()

    def _step(self, actions: dict):
        if not self._live:
            self._refuse("step")
        self.write_actions(actions)  # all checked before anything moves
        for nz, buf, scratch in self._step_noise:
            draw_noise(self._np_random, nz.distribution, buf, self.noise_scale, scratch)
        self.engine.step()
        out = self.engine.outputs
        n = self.num_games
        obs = {a: out[f"obs.{a}"].astype(self._obs[a].dtype) for a in self.agents}
        rewards = {a: out[f"reward.{a}"].astype(np.float64) for a in self.agents}
        game_over = np.zeros(n, bool)
        for a in self.agents:
            game_over |= out[f"terminated.{a}"]
        terms = {a: game_over.copy() for a in self.agents}
        self._steps += 1
        truncated = (self._steps >= self.max_episode_steps) if self.max_episode_steps else np.zeros(n, bool)
        truncated &= ~game_over
        infos: dict[str, Any] = {}
        for k in self._extra:
            infos[k] = out[k].copy()
        if self._uncertain:
            u = infos["uncertainty"].astype(np.float64)
            infos["model_reward"] = {a: r.copy() for a, r in rewards.items()}
            if self.uncertainty_penalty:
                for r in rewards.values():
                    r -= self.uncertainty_penalty * u
            if self.uncertainty_limit is not None:
                truncated |= (u > self.uncertainty_limit) & ~game_over
        truncs = {a: truncated.copy() for a in self.agents}
        if self.autoreset == "next_step":
            rows = np.flatnonzero(self._needs_reset)
            if len(rows):  # these games ended last step: this step is their reset
                self._obs = obs
                self._reset_rows(rows)
                obs = self._obs
                for a in self.agents:
                    rewards[a][rows], terms[a][rows], truncs[a][rows] = 0.0, False, False
            self._needs_reset = game_over | truncated
        else:  # as Gymnasium's DISABLED: a finished game steps on until the caller resets it
            self._needs_reset |= game_over | truncated
        self._obs = obs
        return {a: o for a, o in obs.items()}, rewards, terms, truncs, infos

    # -- frames and state -------------------------------------------------------------------------
    def render(self):
        """One uint8 (H, W, 3) frame per game ("rgb_array"), or shown in a window ("human")."""
        if self.render_mode is None:
            return None
        if not self._live:
            self._refuse("render")
        frames = self.engine.render().copy()
        if self.render_mode == "human":
            from ._human import show

            show(self, frames)
            return None
        return frames

    def policy_actions(self, obs: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """The bundle's policies' actions for every agent of every game (policy.onnx), from `obs` (the
        current observations by default)."""
        if not self.bundle.has_graph("policy"):
            raise ValueError(f"{self.bundle.id} ships no policy.onnx")
        sess = self.engine.session("policy")
        obs = self._obs if obs is None else obs
        out = sess.run(None, {f"obs.{a}": np.asarray(obs[a], np.float32) for a in self.agents})
        return {a: v for a, v in zip(self.agents, out)}

    def get_state(self) -> dict[str, np.ndarray]:
        """A snapshot of everything that determines the future (model state, counters, obs)."""
        snap = {f"state/{k}": v for k, v in self.engine.get_state().items()}
        snap.update({f"obs/{a}": o.copy() for a, o in self._obs.items()})
        snap.update(steps=self._steps.copy(), needs_reset=self._needs_reset.copy())
        return snap

    def set_state(self, snap: dict[str, np.ndarray]) -> None:
        """Restore a `get_state` snapshot (the games then have a state, as after a reset)."""
        if self.closed:
            self._refuse("set_state")
        self._live = True
        self.engine.set_state({k[6:]: v for k, v in snap.items() if k.startswith("state/")})
        self._obs = {a: snap[f"obs/{a}"].copy() for a in self.agents}
        self._steps[...], self._needs_reset[...] = snap["steps"], snap["needs_reset"]

    @property
    def elapsed_steps(self) -> np.ndarray:
        return self._steps.copy()

    def close(self) -> None:
        """Release the sessions; a second `close()` does nothing, nor one on an env whose `__init__` raised
        part-way (only what was built is released)."""
        if self.closed:
            return
        _human.close(self)
        engine = getattr(self, "engine", None)  # absent when __init__ raised before the engine was made
        if engine is not None:
            engine.close()
        self.closed, self._live = True, False


class AgentDreamEnv(gym.Env):
    """One agent of a multi-agent dream as a Gymnasium env: the learner's actions drive `agent`, the
    bundle's policies (policy.onnx) drive every other agent, and the episode ends when the game does.
    Passes `check_env`. Other arguments as `BatchedParallelDreamEnv`."""

    def __init__(self, bundle: str | Path | Bundle, agent: str, render_mode: str | None = None, **kwargs):
        self.games = BatchedParallelDreamEnv(bundle, 1, autoreset="disabled", render_mode=render_mode, **kwargs)
        b = self.games.bundle
        if agent not in self.games.agents:
            raise ValueError(f"{b.id} has no agent {agent!r}; choose one of {list(self.games.agents)}")
        if not b.has_graph("policy"):
            raise ValueError(f"{b.id} ships no policy.onnx to drive the other agents")
        self.bundle, self.agent, self.render_mode = b, agent, render_mode
        self.observation_space = self.games.observation_spaces[agent]
        self.action_space = self.games.action_spaces[agent]
        self.metadata = {"render_modes": ["rgb_array", "human"], "render_fps": b.render_fps}
        self._obs: dict[str, np.ndarray] | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._obs, _ = self.games.reset(seed=seed, options=options)
        return self._obs[self.agent][0], {}

    def step(self, action):
        if self._obs is None:
            raise gym.error.ResetNeeded(f"{self.bundle.id}: call reset() before step()")
        acts = self.games.policy_actions(self._obs)
        acts[self.agent] = np.asarray(action)[None]
        obs, rew, term, trunc, info = self.games.step(acts)
        self._obs = obs
        extra = {k: v[0] for k, v in info.items() if not isinstance(v, dict)}
        extra["rewards"] = {a: float(r[0]) for a, r in rew.items()}
        return (
            obs[self.agent][0],
            float(rew[self.agent][0]),
            bool(term[self.agent][0]),
            bool(trunc[self.agent][0]),
            extra,
        )

    def render(self):
        frames = self.games.render()
        return None if frames is None else frames[0]

    def close(self):
        games = getattr(self, "games", None)  # absent when __init__ raised before the games were made
        if games is not None:
            games.close()

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
    """Load a bundle, open every graph, run check_env and a vector-env check (a multi-agent bundle:
    `check_parallel_bundle`); returns a report."""
    b = Bundle.load(path)
    if b.is_multi_agent:
        return check_parallel_bundle(b, steps)
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


def check_parallel_bundle(path: str | Path | Bundle, steps: int = 5) -> dict:
    """A multi-agent bundle: every graph opens; PettingZoo's `parallel_api_test`, `parallel_seed_test` and
    `api_test` of its AEC form pass; the batched form gives per-agent arrays of the right shapes and equal
    seeds give equal games; each agent's Gymnasium view passes `check_env` (when a policy is bundled)."""
    from pettingzoo.test import api_test, parallel_api_test, parallel_seed_test
    from pettingzoo.utils.conversions import parallel_to_aec

    from .multi_agent import AgentDreamEnv, BatchedParallelDreamEnv
    from .parallel_env import ParallelDreamEnv

    b = path if isinstance(path, Bundle) else Bundle.load(path)
    games = BatchedParallelDreamEnv(b, 3, render_mode="rgb_array")
    for g in b.manifest.graphs:
        games.engine.session(g)

    def run():
        obs, _ = games.reset(seed=0)
        traj = [np.concatenate([obs[a] for a in games.agents], -1)]
        for _ in range(steps):
            acts = {a: np.stack([s.sample() for _ in range(3)]) for a, s in games.action_spaces.items()}
            obs, rew, term, trunc, _ = games.step(acts)
            for a in games.agents:
                if obs[a].shape != (3, *games.observation_spaces[a].shape):
                    raise AssertionError(f"{a}: obs shape {obs[a].shape}")
                if rew[a].shape != (3,) or not np.isfinite(rew[a]).all():
                    raise AssertionError(f"{a}: rewards must be finite with shape (3,), got {rew[a]}")
                if term[a].dtype != bool or trunc[a].dtype != bool:
                    raise AssertionError(f"{a}: terminations and truncations must be bool arrays")
            traj.append(np.concatenate([obs[a] for a in games.agents], -1))
        return np.stack(traj)

    for s in games.action_spaces.values():
        s.seed(0)
    first = run()
    for s in games.action_spaces.values():
        s.seed(0)
    if not np.array_equal(first, run()):
        raise AssertionError("the same seed gave different games: noise must come from the env's generator")
    frames = games.render()
    if frames.shape != (3, *b.frame_shape) or frames.dtype != np.uint8:
        raise BundleError(
            f"render.onnx must return uint8 [B, {', '.join(map(str, b.frame_shape))}], got {frames.shape}"
        )
    if b.has_graph("policy"):
        acts = games.policy_actions()
        for a in games.agents:
            if acts[a].shape != (3, *games.action_spaces[a].shape):
                raise BundleError(f"policy.onnx gave {a} actions of shape {acts[a].shape}")
    games.close()

    parallel_api_test(ParallelDreamEnv(b, render_mode="rgb_array"), num_cycles=steps * 4)
    parallel_seed_test(lambda: ParallelDreamEnv(b), num_cycles=steps * 4)
    api_test(parallel_to_aec(ParallelDreamEnv(b)), num_cycles=steps * 4)
    if b.has_graph("policy"):
        for a in b.agents:
            env = AgentDreamEnv(b, a, render_mode="rgb_array")
            check_env(env, skip_render_check=False)
            env.close()
    return {"id": b.id, "family": b.family, "agents": list(b.agents), "graphs": list(b.manifest.graphs), "steps": steps}


def check_latent_actions(path: str | Path, starts: int = 8, seed: int = 0) -> dict:
    """For a latent-action bundle (a Discrete action space played through a `latent` keymap, e.g. Genie):
    from `starts` real contexts, fork the state once per latent action and take one step with each, with the
    most likely tokens (noise_scale=0). Raises AssertionError unless every start gives at least two different
    next frames and every pair of codes gives different next frames from at least one start (no code is a
    copy of another). Returns the number of distinct next frames per start."""
    from gymnasium import spaces
    from gymnasium.vector import AutoresetMode

    b = Bundle.load(path)
    if not isinstance(b.action_space, spaces.Discrete):
        raise AssertionError(f"{b.id}: latent actions need a Discrete action space, got {b.action_space}")
    K = int(b.action_space.n)
    env = DreamVectorEnv(b, starts, noise_scale=0.0, autoreset_mode=AutoresetMode.DISABLED)
    env.reset(seed=seed)
    state = env.engine.get_state()
    env.close()
    forks = DreamVectorEnv(b, starts * K, noise_scale=0.0, autoreset_mode=AutoresetMode.DISABLED)
    forks.reset(seed=seed)
    forks.engine.set_state({k: np.repeat(v, K, 0) for k, v in state.items()})
    obs, *_ = forks.step(np.tile(np.arange(K), starts))
    frames = np.asarray(obs).reshape(starts, K, -1)
    forks.close()
    distinct = [len({f.tobytes() for f in frames[s]}) for s in range(starts)]
    if min(distinct) < 2:
        raise AssertionError(
            f"{b.id}: from {distinct.count(1)} of {starts} real starts every latent action gave the same next frame"
        )
    same = [
        (k, j)
        for j in range(K)
        for k in range(j)
        if all(np.array_equal(frames[s, j], frames[s, k]) for s in range(starts))
    ]
    if same:
        raise AssertionError(f"{b.id}: latent actions {same} gave identical next frames from all {starts} starts")
    return {"distinct_next_frames": distinct, "actions": K}

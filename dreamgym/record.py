"""Videos of imagined rollouts (`dreamgym record`): K dreams tiled with overlays, or real | dream | error.

from dreamgym.record import record
record("Dream-HalfCheetah-v0", "dream.mp4", steps=200, num_envs=4, policy="bundle")
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode

from .bundle import Bundle
from .engine import make_session
from .registration import resolve
from .source import open_source_env
from .vector_env import DreamVectorEnv
from .video import VideoWriter, draw_text, tile, upscale


class Progress:
    """A plain progress bar on stderr (the runtime does not depend on tqdm)."""

    def __init__(self, total: int, desc: str, enabled: bool = True):
        self.total, self.desc, self.n, self.t0 = total, desc, 0, time.perf_counter()
        self.enabled = enabled

    def update(self, k: int = 1) -> None:
        self.n += k
        if self.enabled and (self.n == self.total or self.n % max(1, self.total // 20) == 0):
            frac = self.n / self.total
            rate = self.n / max(time.perf_counter() - self.t0, 1e-9)
            bar = "#" * int(30 * frac)
            sys.stderr.write(f"\r{self.desc} [{bar:<30}] {self.n}/{self.total} {rate:.0f}/s")
            if self.n == self.total:
                sys.stderr.write("\n")
            sys.stderr.flush()


def make_policy(spec: str, bundle: Bundle, rng: np.random.Generator) -> Callable[[np.ndarray], np.ndarray]:
    """'random', 'zero', 'cycle' (discrete actions in turn, 8 steps each), 'bundle' (the bundle's policy.onnx)
    or a path to an ONNX policy (obs -> action)."""
    space = bundle.action_space
    n_shape = space.shape

    if spec == "random":
        if isinstance(space, spaces.Box):
            return lambda obs: rng.uniform(space.low, space.high, (len(obs), *n_shape)).astype(np.float32)
        return lambda obs: rng.integers(0, space.n, len(obs))
    if spec == "cycle":  # discrete actions held 8 steps each, env i starting at action i
        if not isinstance(space, spaces.Discrete):
            raise ValueError(f"--policy cycle needs a Discrete action space; {bundle.id} has {space}")
        t = [0]

        def cycle(obs):
            t[0] += 1
            return (np.arange(len(obs)) + (t[0] - 1) // 8) % space.n

        return cycle
    if spec == "zero":
        return lambda obs: np.zeros((len(obs), *n_shape), space.dtype)
    if spec == "bundle":
        if not bundle.has_graph("policy"):
            raise ValueError(
                f"{bundle.id} carries no policy.onnx; use --policy random, zero, cycle or a path to an ONNX policy"
            )
        path = bundle.graph_file("policy")
    else:
        path = Path(spec)
        if path.suffix != ".onnx":
            raise ValueError(f"--policy must be random, zero, cycle, bundle or a path to a .onnx file, got {spec!r}")
        if not path.is_file():
            raise FileNotFoundError(f"policy file {spec!r} does not exist")
    try:
        sess = make_session(path, "cpu")
    except Exception as e:  # onnxruntime's own message says what is wrong with the file
        raise ValueError(f"cannot load the policy {str(path)!r}: {e}") from e
    name = sess.get_inputs()[0].name
    return lambda obs: sess.run(None, {name: np.asarray(obs, np.float32)})[0]


def _overlay(frame: np.ndarray, t: int, r: float, scale: int, label: str | None = None) -> np.ndarray:
    img = upscale(frame, scale)
    draw_text(img, f"t {t}", 2, 2)
    draw_text(img, f"r {r:+.2f}", 2, 10)
    if label:
        draw_text(img, label, 2, img.shape[0] - 8)
    return img


def record(
    id_or_path,
    out: str | Path,
    steps: int = 200,
    num_envs: int = 4,
    policy: str = "random",
    seed: int = 0,
    fps: int | None = None,
    scale: int = 2,
    compare: bool = False,
    progress: bool = True,
    env_options: dict | None = None,
) -> Path:
    """Write a video of imagined rollouts; returns its path. See `dreamgym record --help`. `env_options`:
    more keyword arguments of the dream env (e.g. `uncertainty_penalty`)."""
    out = Path(out)
    if out.suffix.lower() not in (".mp4", ".gif"):
        raise ValueError(f"output {str(out)!r} must end in .mp4 or .gif")
    if not out.parent.exists():
        raise FileNotFoundError(f"output folder {str(out.parent)!r} does not exist")
    if steps < 1 or num_envs < 1:
        raise ValueError("--steps and --num-envs must be positive")
    b = Bundle.load(resolve(id_or_path))
    rng = np.random.default_rng(seed)
    if b.is_multi_agent:
        return _record_games(b, out, steps, num_envs, policy, seed, fps, scale, compare, progress, env_options)
    act = make_policy(policy, b, rng)
    # whole episodes, as the real env runs them (not the bundle's short training horizon, if it has one)
    opts = {"max_episode_steps": b.max_episode_steps, **(env_options or {})}
    env = DreamVectorEnv(b, num_envs, render_mode="rgb_array", autoreset_mode=AutoresetMode.SAME_STEP, **opts)
    fps = fps or b.render_fps
    bar = Progress(steps, f"record {b.id}", progress)
    with VideoWriter(out, fps, background=True) as w:  # the encoder in a thread Ctrl-C never interrupts
        if compare:
            _compare(b, env, act, w, steps, seed, scale, bar)
        else:
            obs, _ = env.reset(seed=seed)
            t = np.zeros(num_envs, int)
            for _ in range(steps):
                obs, r, term, trunc, _ = env.step(act(obs))
                t = np.where(term | trunc, 0, t + 1)
                frames = env.render()
                w.write(tile(np.stack([_overlay(f, t[i], r[i], scale) for i, f in enumerate(frames)])))
                bar.update()
    env.close()
    return out


def _compare(b: Bundle, env: DreamVectorEnv, act, w: VideoWriter, steps: int, seed: int, scale: int, bar) -> None:
    """real | dream | |error| per row: the real env's first C steps are the dream's context, then both
    run under the same actions (chosen by the policy from the real observation)."""
    n, C = env.num_envs, b.context_length
    reals = [open_source_env(b.manifest) for _ in range(n)]
    obs = np.stack([r.reset(seed=seed + i) for i, r in enumerate(reals)])
    ctx_o, ctx_a = [obs], [np.zeros((n, *b.action_space.shape), np.float32)]
    for _ in range(C - 1):
        a = act(obs)
        obs = np.stack([r.step(a[i])[0] for i, r in enumerate(reals)])
        ctx_o.append(obs), ctx_a.append(np.asarray(a, np.float32))
    env.reset(seed=seed, options={"context": {"obs": np.stack(ctx_o, 1), "actions": np.stack(ctx_a, 1)}})
    for t in range(steps):
        a = act(obs)
        steps_out = [r.step(a[i]) for i, r in enumerate(reals)]
        obs = np.stack([s[0] for s in steps_out])
        _, rd, *_ = env.step(a)
        dream = env.render()
        rows = []
        for i, r in enumerate(reals):
            real = r.frame()
            err = np.abs(real.astype(np.int16) - dream[i].astype(np.int16)).astype(np.uint8)
            rows.append(
                tile(
                    np.stack(
                        [
                            _overlay(real, t + 1, steps_out[i][1], scale, "real"),
                            _overlay(dream[i], t + 1, rd[i], scale, "dream"),
                            _overlay(err, t + 1, abs(rd[i] - steps_out[i][1]), scale, "|err|"),
                        ]
                    ),
                    cols=3,
                )
            )
        w.write(tile(np.stack(rows), cols=1))
        bar.update()
    for r in reals:
        r.close()


# -- multi-agent dreams -------------------------------------------------------------------------------
def make_joint_policy(spec: str, games, rng: np.random.Generator) -> Callable[[dict], dict]:
    """Every agent's actions from every agent's observations: 'bundle' (policy.onnx), 'random' or 'zero'."""
    sp = games.action_spaces
    if spec == "bundle":
        return games.policy_actions
    if spec == "random":

        def random(obs):
            n = len(next(iter(obs.values())))
            return {
                a: rng.uniform(s.low, s.high, (n, *s.shape)).astype(np.float32)
                if isinstance(s, spaces.Box)
                else rng.integers(0, s.n, n)
                for a, s in sp.items()
            }

        return random
    if spec == "zero":
        return lambda obs: {a: np.zeros((len(obs[a]), *s.shape), s.dtype) for a, s in sp.items()}
    raise ValueError(f"--policy for a multi-agent dream must be bundle, random or zero, got {spec!r}")


def _short(agent: str) -> str:
    """A short label of an agent name for overlays: 'adversary_0' -> 'ADV0', 'agent_0' -> 'AGE0'."""
    head, _, tail = agent.rpartition("_")
    return (head[:3] + tail).upper() if head and tail.isdigit() else agent[:4].upper()


def _game_overlay(frame: np.ndarray, t: int, rewards: dict, scale: int, label: str | None = None) -> np.ndarray:
    img = upscale(frame, scale)
    draw_text(img, f"t {t}", 2, 2)
    for k, (a, r) in enumerate(rewards.items()):
        draw_text(img, f"{_short(a)} {r:+.1f}", 2, 10 + 8 * k)
    if label:
        draw_text(img, label, 2, img.shape[0] - 8)
    return img


def _record_games(b: Bundle, out: Path, steps, num_envs, policy, seed, fps, scale, compare, progress, env_options):
    """A multi-agent dream: `num_envs` games tiled, each agent's return so far written on its game; with
    `compare`, real | dream | |error| per game from the same real start under the same actions."""
    from .multi_agent import BatchedParallelDreamEnv

    games = BatchedParallelDreamEnv(b, num_envs, render_mode="rgb_array", **(env_options or {}))
    act = make_joint_policy(policy, games, np.random.default_rng(seed))
    bar = Progress(steps, f"record {b.id}", progress)
    with VideoWriter(out, fps or b.render_fps, background=True) as w:
        if compare:
            _compare_games(b, games, act, w, steps, seed, scale, bar)
        else:
            obs, _ = games.reset(seed=seed)
            t = np.zeros(num_envs, int)
            ret = {a: np.zeros(num_envs) for a in games.agents}
            for _ in range(steps):
                obs, r, term, trunc, _ = games.step(act(obs))
                done = term[games.agents[0]] | trunc[games.agents[0]]
                for a in games.agents:
                    ret[a] = np.where(t == 0, 0.0, ret[a]) + r[a]
                t = np.where(done, 0, t + 1)
                frames = games.render()
                tiles = [
                    _game_overlay(f, t[i], {a: ret[a][i] for a in games.agents}, scale) for i, f in enumerate(frames)
                ]
                w.write(tile(np.stack(tiles)))
                bar.update()
    games.close()
    return out


def _compare_games(b: Bundle, games, act, w: VideoWriter, steps: int, seed: int, scale: int, bar) -> None:
    n, C, agents = games.num_games, b.context_length, games.agents
    reals = [open_source_env(b.manifest) for _ in range(n)]
    first = [r.reset(seed=seed + i) for i, r in enumerate(reals)]
    obs = {a: np.stack([o[a] for o in first]) for a in agents}
    ctx_o = {a: [obs[a]] for a in agents}
    ctx_a = {a: [np.zeros((n, *games.action_spaces[a].shape), np.float32)] for a in agents}
    for _ in range(C - 1):
        x = act(obs)
        res = [r.step({a: x[a][i] for a in agents}) for i, r in enumerate(reals)]
        obs = {a: np.stack([s[0][a] for s in res]) for a in agents}
        for a in agents:
            ctx_o[a].append(obs[a]), ctx_a[a].append(np.asarray(x[a], np.float32))
    ctx = {
        "obs": {a: np.stack(v, 1) for a, v in ctx_o.items()},
        "actions": {a: np.stack(v, 1) for a, v in ctx_a.items()},
    }
    games.reset(seed=seed, options={"context": ctx})
    for t in range(steps):
        x = act(obs)
        res = [r.step({a: x[a][i] for a in agents}) for i, r in enumerate(reals)]
        obs = {a: np.stack([s[0][a] for s in res]) for a in agents}
        _, rd, *_ = games.step(x)
        dream = games.render()
        rows = []
        for i, r in enumerate(reals):
            real = r.frame()
            err = 255 - np.abs(real.astype(np.int16) - dream[i].astype(np.int16)).astype(np.uint8)
            rr = res[i][1]
            rows.append(
                tile(
                    np.stack(
                        [
                            _game_overlay(real, t + 1, rr, scale, "real"),
                            _game_overlay(dream[i], t + 1, {a: rd[a][i] for a in agents}, scale, "dream"),
                            _game_overlay(err, t + 1, {a: abs(rd[a][i] - rr[a]) for a in agents}, scale, "|err|"),
                        ]
                    ),
                    cols=3,
                )
            )
        w.write(tile(np.stack(rows), cols=1))
        bar.update()
    for r in reals:
        r.close()

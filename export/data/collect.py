"""Collect episodes from a real Gymnasium environment: observations, actions, rewards, terminations,
truncations and rendered frames, one compressed ``.npz`` per episode.

Why npz and not Minari: writing Minari needs ``minari[create]``, which pulls in jax (about 600 MB)
for a feature we do not use; one npz per episode is plain numpy, loads without pickles, and the
trainer reads Minari datasets anyway (``dreamgym.export.data.episodes.load_minari``).

MuJoCo frames are rendered offscreen (``MUJOCO_GL=egl``) by `dreamgym.export.data.sources.MujocoFrames`: the tracking
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

from dreamgym.export.data.sources import MujocoFrames, default_gl

default_gl()  # before gymnasium imports mujoco


# -- behaviour policies ---------------------------------------------------------------------------
# Each is a function (obs, t) -> action; `make_behaviour` builds them from a name so that a recipe can
# list its data mix as plain strings:
#   random | zero | sine | bang | ou                    no policy needed
#   policy[:std] | mixed                                the recipe's policy (Gaussian action noise std)
#   policy@NAME[:std]                                   one of the recipe's named policies (e.g. skill levels)
#   kick+B | flip+B                                     behaviour B in a perturbed MuJoCo body (`Perturb`)
# With a Discrete action space the same names mean: random, zero (action 0), bang (a random action held 1-8
# steps), ou (held 4-32 steps), sine (two actions alternating with a random period), policy:x (the policy,
# a random action with probability x) and mixed (policy and random in turns).


def make_behaviour(kind: str, space: gym.spaces.Space, policy=None, rng=None, policies=None) -> Callable:
    rng = rng or np.random.default_rng()
    if "+" in kind:  # the perturbation is applied by the collector; the behaviour is what follows the +
        return make_behaviour(kind.split("+", 1)[1], space, policy, rng, policies)
    if kind.startswith("policy@"):  # policy@NAME[:std]
        name, _, std = kind[len("policy@") :].partition(":")
        if not policies or name not in policies:
            raise ValueError(f"behaviour {kind!r} names policy {name!r}; known: {sorted(policies or {})}")
        return make_behaviour(f"policy:{std or 0}", space, policies[name], rng)
    if isinstance(space, gym.spaces.Discrete):
        return _discrete_behaviour(kind, int(space.n), policy, rng)
    low, high = space.low, space.high
    if kind == "random":
        return lambda obs, t: rng.uniform(low, high)
    if kind == "bang":  # saturated random actions, each held 1-8 steps (what a fresh SAC often does)
        state = {"until": 0, "a": low}

        def bang(obs, t):
            if t >= state["until"]:
                state["until"], state["a"] = (
                    t + int(rng.integers(1, 9)),
                    np.where(rng.random(low.shape) < 0.5, low, high),
                )
            return state["a"]

        return bang
    if kind == "ou":  # temporally correlated noise (Ornstein-Uhlenbeck, theta 0.15, sigma 0.3 per step)
        state = {"x": np.zeros_like(low)}

        def ou(obs, t):
            state["x"] = state["x"] - 0.15 * state["x"] + 0.3 * rng.standard_normal(low.shape)
            return np.clip(state["x"], low, high)

        return ou
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
    raise ValueError(
        f"unknown behaviour {kind!r}; expected random, zero, sine, bang, ou, policy[:std], policy@NAME[:std] or "
        "mixed, optionally after kick+ or flip+"
    )


def _discrete_behaviour(kind: str, n: int, policy, rng) -> Callable:
    """The behaviours of a Discrete(n) action space (see the list above)."""
    rand = lambda: int(rng.integers(n))  # noqa: E731
    if kind == "random":
        return lambda obs, t: rand()
    if kind == "zero":
        return lambda obs, t: 0
    if kind in ("bang", "ou"):
        lo, hi = (1, 9) if kind == "bang" else (4, 33)
        state = {"until": 0, "a": 0}

        def held(obs, t):
            if t >= state["until"]:
                state["until"], state["a"] = t + int(rng.integers(lo, hi)), rand()
            return state["a"]

        return held
    if kind == "sine":
        pair, period = rng.choice(n, 2, replace=n < 2), int(rng.integers(2, 20))
        return lambda obs, t: int(pair[(t // period) % 2])
    if policy is None:
        raise ValueError(f"behaviour {kind!r} needs a policy")
    if kind.startswith("policy"):
        eps = float(kind.split(":")[1]) if ":" in kind else 0.0
        return lambda obs, t: rand() if rng.random() < eps else int(policy(obs))
    if kind == "mixed":
        state = {"until": 0, "random": False}

        def act(obs, t):
            if t >= state["until"]:
                state["until"] = t + int(rng.integers(50, 250))
                state["random"] = not state["random"] if t else bool(rng.integers(2))
            return rand() if state["random"] or rng.random() < 0.1 else int(policy(obs))

        return act
    raise ValueError(
        f"unknown behaviour {kind!r}; expected random, zero, sine, bang, ou, policy[:eps], policy@NAME[:eps] or mixed"
    )


class Perturb:
    """Pushes a MuJoCo body out of the states its policies reach by themselves. "kick" (any MuJoCo env): every
    50-200 steps, add Gaussian noise (std 2) to every joint velocity. "flip" (a planar body whose root has a
    pitch joint `rooty`: HalfCheetah, Hopper, Walker2d): start with the body pitched by a random angle in
    [-pi, pi] and lifted. `Perturb.allowed(kind, env)` says whether an env can take one."""

    def __init__(self, kind: str, env, rng: np.random.Generator):
        if kind not in ("kick", "flip"):
            raise ValueError(f"unknown perturbation {kind!r}; expected kick or flip (as in 'kick+random')")
        if not self.allowed(kind, env):
            raise ValueError(f"{env.spec.id if env.spec else env}: cannot take the perturbation {kind!r}")
        self.kind, self.env, self.rng, self.next = kind, env.unwrapped, rng, int(rng.integers(50, 200))
        self.pitch, self.lift = self._joints(self.env) if kind == "flip" else (2, 1)

    @staticmethod
    def _joints(u) -> tuple[int, int]:
        """qpos addresses of the root's pitch (`rooty`) and height (`rootz`) joints."""
        import mujoco

        adr = []
        for name in ("rooty", "rootz"):
            j = mujoco.mj_name2id(u.model, mujoco.mjtObj.mjOBJ_JOINT, name)
            adr.append(int(u.model.jnt_qposadr[j]) if j >= 0 else -1)
        return adr[0], adr[1]

    @classmethod
    def allowed(cls, kind: str, env) -> bool:
        u = env.unwrapped
        if not (hasattr(u, "set_state") and hasattr(u, "data") and hasattr(u, "_get_obs")):
            return False  # not a gymnasium MuJoCo env
        return kind == "kick" or cls._joints(u)[0] >= 0

    def _set(self, qpos, qvel):
        self.env.set_state(qpos, qvel)
        return np.asarray(self.env._get_obs(), np.float32)

    def start(self, obs):
        if self.kind != "flip":
            return obs
        qpos, qvel = self.env.data.qpos.copy(), self.env.data.qvel.copy()
        if self.lift >= 0:
            qpos[self.lift] += 0.5
        qpos[self.pitch] += self.rng.uniform(-np.pi, np.pi)
        return self._set(qpos, qvel)

    def during(self, obs, t):
        if self.kind != "kick" or t < self.next:
            return obs
        self.next = t + int(self.rng.integers(50, 200))
        qvel = self.env.data.qvel + 2.0 * self.rng.standard_normal(self.env.data.qvel.shape)
        return self._set(self.env.data.qpos.copy(), qvel)


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
    steps: int = 0
    """collect episodes until they hold this many steps in all (0: exactly `episodes` episodes)"""
    share: str = "episodes"
    """with `steps`: "episodes" cycles the behaviours episode by episode; "steps" gives each the same share of
    the steps (in an env that ends, a random episode lasts 20 steps where a policy's lasts 1000)"""


def run_episode(env, frames, act, seed: int, max_steps: int, perturb: Perturb | None = None) -> dict[str, np.ndarray]:
    obs, _ = env.reset(seed=seed)
    if perturb is not None:
        obs = perturb.start(obs)
    O, A, R, TE, TR, F, P = [obs], [], [], [], [], [], []
    if frames:
        F.append(frames())
    discrete = isinstance(env.action_space, gym.spaces.Discrete)
    for t in range(max_steps):
        a = np.asarray(act(obs, t), dtype=np.int64 if discrete else np.float32)
        obs, r, term, trunc, _ = env.step(int(a) if discrete else a)
        pushed = False
        if perturb is not None and not (term or trunc):
            before = obs
            obs = perturb.during(obs, t + 1)  # the kick happens between steps: the next action sees it
            pushed = obs is not before
        O.append(obs), A.append(a), R.append(r), TE.append(term), TR.append(trunc or t == max_steps - 1)
        P.append(pushed)
        if frames:
            F.append(frames())
        if term or trunc:
            break
    ep = {
        "obs": np.asarray(O, np.float32),  # (T+1, obs)
        "actions": np.asarray(A, np.int64 if discrete else np.float32),  # (T, act), or (T,) indices
        "rewards": np.asarray(R, np.float32),
        "terminations": np.asarray(TE, bool),
        "truncations": np.asarray(TR, bool),
        # the step's outcome was replaced by a push (a kick): obs[t + 1] is not what action t led to, so no model
        # learns that transition (`episodes.align` masks it); the next one starts from the pushed state
        "perturbed": np.asarray(P, bool),
    }
    if frames:
        ep["frames"] = np.asarray(F, np.uint8)  # (T+1, H, W, 3)
    return ep


def episode_steps(path: Path) -> int:
    """Steps of a written episode (reads its rewards only)."""
    with np.load(path, allow_pickle=False) as z:
        return len(z["rewards"])


def episode_behaviour(path: Path) -> str:
    """The behaviour a written episode was collected with (its meta)."""
    with np.load(path, allow_pickle=False) as z:
        return json.loads(str(z["meta"]))["behaviour"]


def collect(
    cfg: CollectConfig,
    out_dir: str | Path,
    policy=None,
    progress: bool = True,
    policies: dict | None = None,
    env_kwargs: dict | None = None,
) -> list[Path]:
    """Run `cfg.episodes` episodes (or, with `cfg.steps`, as many as hold that many steps) and write
    ``episode_XXXX.npz`` files into `out_dir`. `policy`: what "policy" and "mixed" behaviours run; `policies`:
    named policies for "policy@NAME" behaviours; `env_kwargs`: for gym.make. Episodes already written are
    kept, so an interrupted collection resumes where it stopped."""
    from tqdm.auto import tqdm

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    env = gym.make(cfg.env_id, max_episode_steps=cfg.max_steps, **(env_kwargs or {}))
    frames = None
    if cfg.frame_size and _is_mujoco(env):
        frames = MujocoFrames(env, cfg.frame_size)
    elif cfg.frame_size:  # any other env draws its own frames
        env.close()
        env = gym.make(cfg.env_id, max_episode_steps=cfg.max_steps, render_mode="rgb_array", **(env_kwargs or {}))
        frames = RenderedFrames(env, cfg.frame_size)
    versions = _versions()
    paths = []
    by_steps = cfg.steps > 0
    bar = tqdm(
        total=cfg.steps if by_steps else cfg.episodes,
        desc=f"collect {cfg.env_id}",
        disable=not progress,
        unit="step" if by_steps else "ep",
    )
    i = total = 0
    if cfg.share not in ("episodes", "steps"):
        raise ValueError(f"share must be 'episodes' or 'steps', got {cfg.share!r}")
    steps_of = dict.fromkeys(cfg.behaviours, 0)  # for share="steps": each behaviour's steps so far
    while (total < cfg.steps) if by_steps else (i < cfg.episodes):
        p = out / f"episode_{i:04d}.npz"
        paths.append(p)
        if p.exists():  # written whole by an earlier, interrupted run (each episode has its own seeds)
            n, kind = episode_steps(p), episode_behaviour(p)
        else:
            rng = np.random.default_rng([cfg.seed, i])
            if by_steps and cfg.share == "steps":
                kind = min(cfg.behaviours, key=lambda k: steps_of[k])  # the first of the least collected
            else:
                kind = cfg.behaviours[i % len(cfg.behaviours)]
            act = make_behaviour(kind, env.action_space, policy, rng, policies)
            perturb = Perturb(kind.split("+")[0], env, rng) if "+" in kind else None
            ep = run_episode(env, frames, act, cfg.seed * 100_003 + i, cfg.max_steps, perturb)
            meta = {"env_id": cfg.env_id, "behaviour": kind, "seed": cfg.seed * 100_003 + i, "packages": versions}
            tmp = p.with_suffix(".tmp.npz")
            np.savez_compressed(tmp, meta=np.array(json.dumps(meta)), **ep)
            tmp.replace(p)
            n = len(ep["rewards"])
            bar.set_postfix(behaviour=kind, ret=f"{ep['rewards'].sum():.0f}")
        steps_of[kind] = steps_of.get(kind, 0) + n
        i += 1
        total += n
        bar.update(n if by_steps else 1)
    bar.close()
    if frames:
        frames.close()
    env.close()
    return paths


def _is_mujoco(env) -> bool:
    return hasattr(env.unwrapped, "mujoco_renderer")


class RenderedFrames:
    """Frames of any Gymnasium env made with ``render_mode="rgb_array"``, resized (nearest) to a square."""

    def __init__(self, env, size: int):
        self.env, self.size = env, size

    def __call__(self) -> np.ndarray:
        from dreamgym.export.data.sources import resize_nearest

        return resize_nearest(np.asarray(self.env.render()), (self.size, self.size))

    def close(self) -> None:
        pass


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

"""`DreamVectorEnv`: a world model as a native batched Gymnasium environment.

One onnxruntime call steps all `num_envs` dreams. The graphs are pure functions of (state, action,
noise); this class holds the state, the step counters and the seeded generator, like Gymnasium's
`CartPoleVectorEnv` holds its arrays.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from . import _human  # at import, not in close(): an env closed by the GC at exit finds no import system
from .bundle import Bundle
from .engine import Engine
from .errors import ActionError
from .lifecycle import Lifecycle

BOX_MULLER_MIN = 1024  # from this many normal values per draw, Box-Muller beats numpy's float32 ziggurat
#   (measured: benchmarks/README.md, "The vector env's own numbers")


def noise_scratch(dist: str, out: np.ndarray) -> np.ndarray | None:
    """The work buffer `draw_noise` uses for `out` (allocate it once and pass it on every draw)."""
    if dist != "normal" or out.size < BOX_MULLER_MIN:
        return None
    return np.empty(3 * ((out.size + 1) // 2), np.float32)


def _box_muller(rng: np.random.Generator, out: np.ndarray, scratch: np.ndarray | None) -> None:
    """Standard normal float32 values into contiguous `out` from float32 uniforms: r = sqrt(-2 ln u1)
    with u1 in (0, 1], z = r cos(2 pi u2) and r sin(2 pi u2). Exact up to float32 rounding, except that
    |z| is at most 5.77 (u1 >= 2^-24): a cut of the tails beyond 5.77 sigma, probability 8e-9."""
    flat = out.reshape(-1)
    n = flat.size
    h = (n + 1) // 2
    if scratch is None or scratch.size != 3 * h:
        scratch = np.empty(3 * h, np.float32)
    u, r = scratch[: 2 * h], scratch[2 * h :]
    rng.random(dtype=np.float32, out=u)
    u1, u2 = u[:h], u[h:]
    np.subtract(np.float32(1.0), u1, out=u1)
    np.log(u1, out=r)
    np.multiply(r, np.float32(-2.0), out=r)
    np.sqrt(r, out=r)
    np.multiply(u2, np.float32(2 * np.pi), out=u2)
    np.cos(u2, out=u1)
    np.sin(u2, out=u2)
    np.multiply(r, u1, out=flat[:h])
    np.multiply(r[: n - h], u2[: n - h], out=flat[h:])


def draw_noise(
    rng: np.random.Generator, dist: str, out: np.ndarray, scale: float = 1.0, scratch: np.ndarray | None = None
) -> np.ndarray:
    """Fill float32 `out` with noise of the manifest's distribution ("normal", "uniform" or "gumbel"),
    times `scale` (0 gives zeros: the model's mean or mode). `scratch`: `noise_scratch(dist, out)`, so a
    large normal draw allocates nothing."""
    if scale == 0.0:
        out.fill(0.0)
        return out
    if dist == "normal":
        if out.size >= BOX_MULLER_MIN and out.flags.c_contiguous:
            _box_muller(rng, out, scratch)
        else:
            rng.standard_normal(dtype=np.float32, out=out)
    elif dist == "uniform":
        rng.random(dtype=np.float32, out=out)
    else:  # gumbel: -log(-log(u)), u kept away from 0 and 1
        rng.random(dtype=np.float32, out=out)
        np.clip(out, 1e-6, 1 - 1e-6, out=out)
        np.negative(np.log(-np.log(out, out=out), out=out), out=out)
    if scale != 1.0:
        out *= scale
    return out


def uncertainty_option(text: str) -> float | str | None:
    """A command line's uncertainty option: "bundle" (the bundle's default), "none" (never), or a number."""
    t = str(text).strip().lower()
    if t in ("bundle", "none"):
        return None if t == "none" else "bundle"
    try:
        return float(t)
    except ValueError:
        raise ValueError(f"an uncertainty option must be a number, 'bundle' or 'none', got {text!r}") from None


def uncertainty_options(penalty: str, limit: str) -> dict:
    """The env keyword arguments from a command line's --uncertainty-penalty and --uncertainty-limit."""
    return {"uncertainty_penalty": uncertainty_option(penalty), "uncertainty_limit": uncertainty_option(limit)}


def _uncertainty_options(b: Bundle, penalty, limit) -> tuple[float, float | None]:
    """(λ, τ) from the caller's arguments, "bundle" taking the manifest's defaults; checked."""
    d = b.manifest.env_defaults
    penalty = d.uncertainty_penalty if isinstance(penalty, str) and penalty == "bundle" else penalty
    limit = d.uncertainty_limit if isinstance(limit, str) and limit == "bundle" else limit
    try:
        penalty = float(penalty)
        limit = None if limit is None else float(limit)
    except (TypeError, ValueError) as e:
        raise ValueError(
            f"uncertainty_penalty must be a number >= 0 or 'bundle' and uncertainty_limit a number, "
            f"None or 'bundle'; got {penalty!r} and {limit!r}"
        ) from e
    if not (np.isfinite(penalty) and penalty >= 0):
        raise ValueError(f"uncertainty_penalty must be a finite number >= 0, got {penalty}")
    if limit is not None and np.isnan(limit):
        raise ValueError("uncertainty_limit must be a number or None, got NaN")
    has = any(o.name == "uncertainty" for o in b.manifest.outputs)
    if (penalty or limit is not None) and not has:
        raise ValueError(
            f"{b.id} gives no uncertainty (its step graph declares no 'uncertainty' output), so "
            "uncertainty_penalty and uncertainty_limit cannot be used with it; leave them at their "
            "defaults"
        )
    return penalty, limit


def write_actions(
    buf: np.ndarray,
    a: np.ndarray,
    space: spaces.Space,
    low: np.ndarray | None,
    high: np.ndarray | None,
    graph_clips: bool,
    who: str,
) -> None:
    """Check a batch of actions `a` (already of `buf`'s shape) against `space` and write it into the step's
    input buffer `buf`: Box actions are clipped to [low, high] (unless the graph clips them itself), and a
    non-numeric, non-finite or (discrete) out-of-range action raises `ActionError` naming the rows, before
    anything is written. `who` names the env (and agent) in the message."""
    if a.dtype.kind not in "biuf":
        raise ActionError(f"{who}: expected numeric actions, got dtype {a.dtype}")
    if isinstance(space, spaces.Box):
        # a . a is finite when every value is (one BLAS call, cheaper than isfinite().all() for one env:
        # benchmarks/README.md); when it is not, a value is NaN or inf — or the sum overflowed: the exact
        # test decides
        if a.dtype.kind == "f" and not math.isfinite(np.vdot(a, a)) and not np.isfinite(a).all():
            bad = ~np.isfinite(a).reshape(len(a), -1).all(axis=1)
            raise ActionError(
                f"{who}: actions for env(s) {np.flatnonzero(bad).tolist()} are not finite (NaN or inf); "
                "no env was stepped"
            )
        if graph_clips:
            buf[...] = a
        else:  # two ufuncs instead of np.clip: the same result, a few microseconds less per step
            np.minimum(a, high, out=buf, casting="unsafe")
            np.maximum(buf, low, out=buf)
    else:
        if a.dtype.kind == "f" and not np.all(a == np.round(a)):
            raise ActionError(f"{who}: discrete actions must be integers, got {a.dtype} values")
        lo = getattr(space, "start", 0)
        hi = lo + (space.n if isinstance(space, spaces.Discrete) else space.nvec)
        bad = ((a < lo) | (a >= hi)).reshape(len(a), -1).any(axis=1)
        if bad.any():
            raise ActionError(
                f"{who}: actions for env(s) {np.flatnonzero(bad).tolist()} are outside {space} "
                f"(got {a[bad].tolist()}); no env was stepped"
            )
        buf[...] = a


class DreamVectorEnv(Lifecycle, VectorEnv):
    """A batch of dreams of one bundle, stepped together.

    Args:
        bundle: a bundle folder, or a loaded `Bundle`.
        num_envs: how many dreams to step together.
        obs_mode: "state" (the decoded observation, in the real env's own space), "pixels" (the
            rendered frame) or "latent" (the model's feature vector).
        render_mode: None, "rgb_array" (``render()`` returns one frame per env) or "human".
        device: "auto" (CUDA when onnxruntime offers it, else CPU), "cpu" or "cuda".
        autoreset_mode: NEXT_STEP (Gymnasium's default), SAME_STEP or DISABLED (then reset finished
            envs with ``reset(options={"reset_mask": mask})``).
        max_episode_steps: truncation horizon. None (the default): the bundle's training horizon when its
            manifest sets one (``env_defaults.max_episode_steps``: short dreams branched from real states),
            else the manifest's ``max_episode_steps`` (the real env's); pass the latter to dream whole episodes.
        threads: onnxruntime intra-op threads. None (the default) picks the CPU schedule from the work
            per step: one thread for small steps, else one block of rows per core run side by side,
            or onnxruntime's own threads when the state is large (see ``dreamgym.engine``).
        noise_scale: multiplies the sampling noise fed to the graphs: 1 samples the model, 0 gives
            its mean (Gaussian latents) or mode (categorical, Gumbel-max) -- a deterministic dream.
        engine_options: advanced, for benchmarks: keyword arguments of ``dreamgym.engine.Engine``
            (``shards``, ``tile_rows``) that override the schedule it picks. Results are identical.
        uncertainty_penalty: λ, for bundles whose step graph gives an ``uncertainty``: the reward becomes
            the model's reward minus λ·uncertainty (the MOPO idea). ``"bundle"`` (the default) takes the
            bundle's own default from its manifest (``env_defaults``); 0 gives the model's reward.
        uncertainty_limit: τ: an episode is truncated when the uncertainty exceeds τ (the MOReL idea);
            None never truncates for it; ``"bundle"`` (the default) takes the bundle's default.

    Action Space:
        The bundle's action space, batched. Continuous actions outside the bounds are **clipped** to
        them; an action of the wrong shape or dtype, a non-finite value, or a discrete action out of
        range raises `ActionError` naming the env index, and no env's state changes.

    Observation Space:
        The bundle's observation space (obs_mode="state"), uint8 frames (``"pixels"``) or float32
        features (``"latent"``), batched.

    Rewards / Episode End:
        The reward and the termination come from the model's heads; truncation after
        `max_episode_steps` steps, and when the uncertainty exceeds ``uncertainty_limit``.

    Info:
        Every optional per-step output the bundle declares, under its name (one value per env); with an
        uncertainty penalty, ``info["model_reward"]`` is the reward before it.

    Reset:
        ``reset(seed=...)`` draws real context windows from the bundle's bank with the env's
        generator and filters them through ``reset.onnx``. ``options={"context": {"obs": ...,
        "actions": ...}}`` starts from your own real history instead (shape [num_envs or rows, C, ...]).
    """

    def __init__(
        self,
        bundle: str | Path | Bundle,
        num_envs: int = 1,
        obs_mode: str = "state",
        render_mode: str | None = None,
        device: str = "auto",
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        max_episode_steps: int | None = None,
        threads: int | None = None,
        noise_scale: float = 1.0,
        engine_options: dict | None = None,
        uncertainty_penalty: float | str = "bundle",
        uncertainty_limit: float | str | None = "bundle",
    ):
        self.bundle = bundle if isinstance(bundle, Bundle) else Bundle.load(bundle)
        b = self.bundle
        if b.is_multi_agent:
            raise ValueError(
                f"{b.id} is a multi-agent dream (agents {list(b.agents)}): open it with "
                f"dreamgym.make_parallel({b.id!r}) (PettingZoo), dreamgym.make_batched(...) (N games per call) or "
                f"dreamgym.make_agent_env({b.id!r}, agent=...) (one agent as a Gymnasium env)"
            )
        if int(num_envs) < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        if obs_mode not in b.obs_modes:
            raise ValueError(f"obs_mode {obs_mode!r} is not offered by {b.id}; choose one of {b.obs_modes}")
        if render_mode not in (None, "rgb_array", "human"):
            raise ValueError(f"render_mode must be None, 'rgb_array' or 'human', got {render_mode!r}")
        self.autoreset_mode = AutoresetMode(autoreset_mode)
        self.num_envs = int(num_envs)
        self.obs_mode = obs_mode
        self.render_mode = render_mode
        self.metadata = {
            "render_modes": ["rgb_array", "human"],
            "render_fps": b.render_fps,
            "autoreset_mode": self.autoreset_mode,
        }
        self.noise_scale = float(noise_scale)
        if max_episode_steps is None:
            max_episode_steps = b.manifest.env_defaults.max_episode_steps or b.max_episode_steps
        self.max_episode_steps = None if max_episode_steps is None else int(max_episode_steps)
        self.uncertainty_penalty, self.uncertainty_limit = _uncertainty_options(
            b, uncertainty_penalty, uncertainty_limit
        )

        self.engine = Engine(b, self.num_envs, device=device, threads=threads, **(engine_options or {}))
        self.device = self.engine.device
        self.single_action_space = b.action_space
        if obs_mode == "state":
            self.single_observation_space = b.observation_space
        elif obs_mode == "pixels":
            self.single_observation_space = spaces.Box(0, 255, b.frame_shape, np.uint8)
        else:
            self.single_observation_space = spaces.Box(-np.inf, np.inf, (b.latent_dim,), np.float32)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)

        n = self.num_envs
        self._init_lifecycle()
        self._steps = np.zeros(n, np.int64)
        self._needs_reset = np.zeros(n, bool)
        self._any_needs_reset = False
        self._has_latent = obs_mode == "latent"  # the latent is copied out only when it is the observation
        self._obs = np.zeros((n, *b.observation_space.shape), b.observation_space.dtype)
        self._latent = np.zeros((n, b.latent_dim or 0), np.float32)
        self._np_random, self._np_random_seed = seeding.np_random(None)
        self._is_box = isinstance(b.action_space, spaces.Box)
        self._low = self._high = None
        if self._is_box:
            self._low = b.action_space.low.astype(self.engine.action_dtype)
            self._high = b.action_space.high.astype(self.engine.action_dtype)
        # a step graph that clips its action input to the action space (the manifest says so) gets the
        # actions as they are; otherwise they are clipped here
        self._graph_clips = self._is_box and b.manifest.graphs["step"].clips_action
        self._extra = [o.name for o in b.manifest.outputs]  # optional per-step outputs, given in info
        self._uncertain = "uncertainty" in self._extra
        self._step_noise = []  # (noise spec, the bound input buffer, its work buffer)
        for nz in b.noise_for("step"):
            buf = self.engine.inputs[nz.name]
            self._step_noise.append((nz, buf, noise_scratch(nz.distribution, buf)))

    # -- reset ------------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Reset all envs, or only those in ``options["reset_mask"]``; returns (obs, info)."""
        self._enter("reset")
        try:
            return self._reset(seed, options)
        finally:
            self._busy.release()

    def _reset(self, seed, options):
        if self.closed:
            self._refuse("reset")
        super().reset(seed=seed)  # seeds self._np_random when seed is given
        options = dict(options or {})
        mask = options.pop("reset_mask", None)
        context = options.pop("context", None)
        if options:
            raise ValueError(f"unknown reset options {sorted(options)}; expected 'reset_mask' and/or 'context'")
        if mask is None:
            rows = np.arange(self.num_envs)
        else:
            mask = np.asarray(mask)
            if mask.shape != (self.num_envs,) or mask.dtype != bool:
                raise ValueError(
                    f"reset_mask must be a bool array of shape ({self.num_envs},), got {mask.dtype} {mask.shape}"
                )
            rows = np.flatnonzero(mask)
            if not self._live and len(rows) < self.num_envs:
                raise ValueError(
                    f"{self.bundle.id}: the first reset must reset every env (a reset_mask of all True, or none); "
                    f"{self.num_envs - len(rows)} env(s) would have no state"
                )
        if len(rows):
            self._reset_rows(rows, context)
        self._live = True
        return self._observe(), {}

    def _reset_rows(self, rows: np.ndarray, context: dict | None = None) -> None:
        b, k = self.bundle, len(rows)
        if context is None:
            idx = self._np_random.integers(len(b.contexts["obs"]), size=k)
            c_obs, c_act = b.contexts["obs"][idx], b.contexts["actions"][idx]
        else:
            c_obs, c_act = self._check_context(context, k)
        feeds = {
            "context_obs": np.asarray(c_obs, dtype=np.float32),
            "context_actions": np.asarray(c_act, dtype=self.engine.action_dtype),
        }
        for nz in b.noise_for("reset"):
            feeds[nz.name] = draw_noise(
                self._np_random, nz.distribution, np.empty((k, *nz.shape), nz.np_dtype), self.noise_scale
            )
        out = self.engine.reset_rows(None if k == self.num_envs else rows, feeds)
        self._obs = self._obs.copy()  # the last array handed out stays the caller's
        self._obs[rows] = out["obs"]
        if "latent" in out:
            self._latent = self._latent.copy()
            self._latent[rows] = out["latent"]
        self._steps[rows] = 0
        self._needs_reset[rows] = False
        self._any_needs_reset = bool(self._needs_reset.any())

    def _check_context(self, context: dict, k: int) -> tuple[np.ndarray, np.ndarray]:
        b = self.bundle
        try:
            c_obs = np.asarray(context["obs"], dtype=np.float32)
            c_act = np.asarray(context["actions"])
        except (KeyError, TypeError) as e:
            raise ValueError(
                "options['context'] must be a dict with 'obs' [N, C, ...] and 'actions' [N, C, ...]"
            ) from e
        want_o = (k, b.context_length, *b.observation_space.shape)
        want_a = (k, b.context_length, *b.action_space.shape)
        if c_obs.shape != want_o or c_act.shape != want_a:
            raise ValueError(
                f"options['context'] must hold obs of shape {want_o} and actions of shape {want_a} "
                f"(one real window of C={b.context_length} steps per env reset), got {c_obs.shape} and {c_act.shape}"
            )
        if not (np.isfinite(c_obs).all() and np.isfinite(c_act.astype(np.float64)).all()):
            raise ValueError("options['context'] holds non-finite values")
        return c_obs, c_act

    # -- step -------------------------------------------------------------------------------------
    def step(self, actions):
        """Step every env with `actions` [num_envs, ...]; returns (obs, reward, terminated, truncated, info).
        One thread at a time: a second thread stepping the same env gets a RuntimeError."""
        self._enter("step")
        try:
            return self._step(actions)
        finally:
            self._busy.release()

    def _step(self, actions):
        # The hot path of every env-step: a handful of numpy calls around one onnxruntime call, and
        # only the arrays handed to the caller are allocated.
        out = self._advance(actions)
        # a fresh array each step: the caller may keep it (a replay buffer), and resets write into ours
        self._obs = out["obs"].astype(self._obs.dtype)
        if self._has_latent:
            self._latent = out["latent"].copy()
        reward = out["reward"].astype(np.float64)
        terminated = out["terminated"].copy()
        self._steps += 1
        if self.max_episode_steps:
            truncated = self._steps >= self.max_episode_steps
            truncated &= ~terminated
        else:
            truncated = np.zeros(self.num_envs, bool)
        info: dict[str, Any] = self._extra_info(out, reward, terminated, truncated) if self._extra else {}

        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            if self._any_needs_reset:  # these envs finished last step: this step is their reset
                rows = np.flatnonzero(self._needs_reset)
                self._reset_rows(rows)
                reward[rows], terminated[rows], truncated[rows] = 0.0, False, False
                for k in list(info):  # no step happened in these rows: Gymnasium's info mask says so
                    if k.startswith("_"):
                        info[k][rows] = False
            np.logical_or(terminated, truncated, out=self._needs_reset)
            self._any_needs_reset = bool(self._needs_reset.any())
            return self._observe_fresh(), reward, terminated, truncated, info
        done = terminated | truncated
        if self.autoreset_mode == AutoresetMode.SAME_STEP and done.any():
            rows = np.flatnonzero(done)
            final = self._observe()
            info["final_obs"] = np.full(self.num_envs, None, dtype=object)
            for i in rows:
                info["final_obs"][i] = final[i]
            info["_final_obs"] = done.copy()
            info["final_info"], info["_final_info"] = {}, done.copy()
            self._reset_rows(rows)
        elif self.autoreset_mode == AutoresetMode.DISABLED:
            self._needs_reset |= done
        return self._observe(), reward, terminated, truncated, info

    def step_one(self, action) -> tuple:
        """`step` of a vector of one env in DISABLED autoreset mode, returning that env's values: the
        same checks, state and counters, with scalars in place of arrays of one (DreamEnv's hot path)."""
        self._enter("step")
        try:
            return self._step_one(action)
        finally:
            self._busy.release()

    def _step_one(self, action) -> tuple:
        out = self._advance(action)
        self._obs = out["obs"].astype(self._obs.dtype)  # fresh: the caller keeps it, resets copy before writing
        if self._has_latent:
            self._latent = out["latent"].copy()
        steps = self._steps.item() + 1  # arrays of one: item() gives the Python scalar without indexing
        self._steps[0] = steps
        terminated = out["terminated"].item()
        truncated = bool(self.max_episode_steps) and steps >= self.max_episode_steps and not terminated
        reward, info = out["reward"].item(), {}
        if self._extra:
            info = {k: out[k].item() if out[k].ndim == 1 else out[k][0].copy() for k in self._extra}
            if self._uncertain:
                u = info["uncertainty"]
                info["model_reward"] = reward
                reward -= self.uncertainty_penalty * u  # in float64, as the vector path computes it
                if self.uncertainty_limit is not None and u > self.uncertainty_limit and not terminated:
                    truncated = True
        if terminated or truncated:
            self._needs_reset[0] = self._any_needs_reset = True
        obs = self._obs[0] if self.obs_mode == "state" else self._observe_fresh()[0]
        return obs, reward, terminated, truncated, info

    def _extra_info(self, out: dict, reward: np.ndarray, terminated: np.ndarray, truncated: np.ndarray) -> dict:
        """info of the bundle's optional outputs (Gymnasium's vector form: values and a mask per key); the
        uncertainty options act on `reward` and `truncated` in place."""
        n = self.num_envs
        info: dict[str, Any] = {}
        for k in self._extra:
            info[k], info[f"_{k}"] = out[k].copy(), np.ones(n, bool)
        if self._uncertain:
            u = info["uncertainty"]
            info["model_reward"], info["_model_reward"] = reward.copy(), np.ones(n, bool)
            if self.uncertainty_penalty:
                reward -= self.uncertainty_penalty * u.astype(np.float64)  # as the one-env path does
            if self.uncertainty_limit is not None:
                truncated |= (u > self.uncertainty_limit) & ~terminated
        return info

    def _advance(self, actions) -> dict[str, np.ndarray]:
        """Check and write the actions, draw the step's noise, run the step; the engine's outputs."""
        if not self._live:
            self._refuse("step")
        self._write_action(actions)  # checks first: a bad action changes nothing
        for nz, buf, scratch in self._step_noise:
            draw_noise(self._np_random, nz.distribution, buf, self.noise_scale, scratch)
        self.engine.step()
        return self.engine.outputs

    def _write_action(self, actions) -> None:
        buf = self.engine.inputs["action"]
        a = actions if type(actions) is np.ndarray else np.asarray(actions)
        if a.shape != buf.shape:
            if self.num_envs == 1 and a.shape == self.single_action_space.shape:  # one env's action
                a = a[None]
            else:
                raise ActionError(
                    f"{self.bundle.id}: expected actions of shape {buf.shape} (num_envs={self.num_envs}, "
                    f"action shape {self.single_action_space.shape}), got {a.shape}"
                )
        write_actions(buf, a, self.single_action_space, self._low, self._high, self._graph_clips, self.bundle.id)

    # -- observations, state and frames -----------------------------------------------------------
    def _observe_fresh(self) -> np.ndarray:
        """Like `_observe`, for right after a step, whose arrays are already fresh."""
        if self.obs_mode == "state":
            return self._obs
        if self.obs_mode == "latent":
            return self._latent
        return self.engine.render().copy()

    def _observe(self) -> np.ndarray:
        if self.obs_mode == "state":
            return self._obs.copy()
        if self.obs_mode == "latent":
            return self._latent.copy()
        return self.engine.render().copy()

    def render(self):
        """A tuple of one uint8 (H, W, 3) frame per env ("rgb_array"), as Gymnasium's vector envs return
        (so its RecordVideo wrappers work), or shown in a window ("human")."""
        if self.render_mode is None:
            return None
        if not self._live:
            self._refuse("render")
        frames = self.engine.render().copy()
        if self.render_mode == "human":
            from ._human import show

            show(self, frames)
            return None
        return tuple(frames)

    def get_state(self) -> dict[str, np.ndarray]:
        """A snapshot of everything that determines the future: model state, counters, obs (exact rewind)."""
        snap = {f"state/{k}": v for k, v in self.engine.get_state().items()}
        snap.update(
            steps=self._steps.copy(),
            needs_reset=self._needs_reset.copy(),
            obs=self._obs.copy(),
            latent=self._latent.copy(),
        )
        return snap

    def set_state(self, snap: dict[str, np.ndarray]) -> None:
        """Restore a `get_state` snapshot (the env then has a state, as after a reset)."""
        if self.closed:
            self._refuse("set_state")
        self.engine.set_state({k[6:]: v for k, v in snap.items() if k.startswith("state/")})
        self._steps[...], self._needs_reset[...] = snap["steps"], snap["needs_reset"]
        self._any_needs_reset = bool(self._needs_reset.any())
        self._obs, self._latent = snap["obs"].copy(), snap["latent"].copy()
        self._live = True

    @property
    def elapsed_steps(self) -> np.ndarray:
        return self._steps.copy()

    def close_extras(self, **kwargs):
        """Release the sessions; `close()` a second time does nothing (Gymnasium's `closed` flag). Safe on an
        env whose `__init__` raised part-way (a bundle that failed to load): Gymnasium's `__del__` closes it
        when it is collected, and only what was built is released."""
        self._live = False
        _human.close(self)
        engine = getattr(self, "engine", None)  # absent when __init__ raised before the engine was made
        if engine is not None:
            engine.close()

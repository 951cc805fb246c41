"""The real environments behind dreamgym's dreams: the `dreamgym.source.SourceEnv` implementations of the
``export`` extra, and the frame makers the collectors share with them.

Three kinds, registered in pyproject.toml under ``[project.entry-points."dreamgym.sources"]``:

- ``mujoco``: a Gymnasium MuJoCo env, frames from `MujocoFrames` (the tracking camera, shadows, reflections
  and skybox off, a plain floor), exactly as `collect.py` made the training frames. Snapshots are
  (qpos, qvel).
- ``ale``: an Atari env from ale-py; its observations are the screen area-averaged to the frame shape
  (`area_resize`, as `data/atari.py` made them), and the frame is that observation. Snapshots are the
  emulator's cloned state with the frame it shows.
- ``gym``: any Gymnasium env made with ``render_mode="rgb_array"``; frames resized (nearest) to the frame
  shape. It cannot be rewound (its snapshot is None).

The manifest's ``source.render`` carries the options (``camera``, ``plain_floor``, ``make_kwargs``).
This module imports numpy and gymnasium only; the simulators are imported when an env is made, and a
missing one is a `DependencyNotInstalled` naming the pip command. No torch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from dreamgym.errors import DependencyNotInstalled

MUJOCO_RENDER = {"kind": "mujoco", "camera": "track", "plain_floor": True}
"""`Source.render` of the MuJoCo dreams: how `MujocoFrames` made their frames."""


def default_gl() -> None:
    """Headless machines render MuJoCo through EGL; with a display, MuJoCo's own default (GLFW) works
    beside a pygame window where EGL may be refused (EGL_BAD_ACCESS under X). Call before gymnasium
    imports mujoco."""
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ.setdefault("MUJOCO_GL", "egl")


class MujocoFrames:
    """Offscreen frames of a gymnasium MuJoCo env's tracking camera, cheap enough for data collection:
    shadows, reflections and the skybox off (hundreds of frames per second instead of about twenty).
    With `plain_floor` the floor's checker texture is removed and the floor made large, so the frame is
    a function of the body's pose (HalfCheetah's observation leaves out the x position that sets the
    checker's offset under the camera)."""

    def __init__(self, env: gym.Env, size: int = 64, camera: str = "track", plain_floor: bool = True):
        default_gl()
        import mujoco

        u = env.unwrapped
        self.model, self.data, self._mj = u.model, u.data, mujoco
        floor = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_GEOM, "floor")
        if plain_floor and floor >= 0:
            self.model.geom_size[floor][:2] = 10000.0
            self.model.geom_matid[floor] = -1
        self.camera = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_CAMERA, camera)
        self.renderer = mujoco.Renderer(self.model, size, size)

    def __call__(self) -> np.ndarray:
        flags = self._mj.mjtRndFlag
        self.renderer.update_scene(self.data, camera=self.camera)
        for f in (flags.mjRND_SHADOW, flags.mjRND_REFLECTION, flags.mjRND_SKYBOX):
            self.renderer.scene.flags[f] = 0
        return self.renderer.render().copy()

    def close(self) -> None:
        self.renderer.close()


def area_resize(frame: np.ndarray, size: int) -> np.ndarray:
    """Area-average resize of an RGB frame to size x size (how the Atari dreams' frames are made)."""
    h, w, _ = frame.shape
    ys = (np.arange(size + 1) * h / size).astype(int)
    xs = (np.arange(size + 1) * w / size).astype(int)
    rows = np.add.reduceat(frame.astype(np.float32), ys[:-1], axis=0) / np.diff(ys)[:, None, None]
    out = np.add.reduceat(rows, xs[:-1], axis=1) / np.diff(xs)[None, :, None]
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def resize_nearest(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of an (H, W, C) image to `size` = (h, w)."""
    h, w = size
    ys = (np.arange(h) * img.shape[0] / h).astype(int)
    xs = (np.arange(w) * img.shape[1] / w).astype(int)
    return img[ys][:, xs]


def make_source_env(env_id: str, **kwargs) -> gym.Env:
    """gym.make for a bundle's source env; Atari ids ("ALE/...") need ale_py imported to be registered.
    A missing simulator is a `DependencyNotInstalled` that names the pip command."""
    try:
        if env_id.startswith("ALE/"):
            import ale_py

            gym.register_envs(ale_py)
        return gym.make(env_id, **kwargs)
    except (gym.error.DependencyNotInstalled, ImportError, gym.error.NamespaceNotFound, gym.error.NameNotFound) as e:
        raise DependencyNotInstalled(
            f'the real env {env_id} is not installed here ({e}); run `pip install "dreamgym[export]"` '
            "to get the source environments (gymnasium[mujoco], ale-py, pettingzoo)"
        ) from e


class GymSource:
    """Kind ``gym``: any Gymnasium env, frames from ``render_mode="rgb_array"`` resized to the frame shape.
    The other kinds change how the env is made, what its observations become, and how frames are drawn."""

    def __init__(self, manifest, seed: int | None = None):
        self.render = dict(manifest.source.render)
        self.env_id = manifest.source.env_id
        self.make_kwargs = dict(self.render.get("make_kwargs") or {})
        self.frame_shape = tuple(manifest.frame_shape)
        self.seed = seed
        self._started = False
        self.env = self._open()

    def _open(self) -> gym.Env:
        return make_source_env(self.env_id, render_mode="rgb_array", **self.make_kwargs)

    def _observe(self, obs) -> np.ndarray:
        return obs

    def make_env(self) -> gym.Env:
        return make_source_env(self.env_id, **self.make_kwargs)

    def reset(self, seed: int | None = None) -> np.ndarray:
        if seed is None and not self._started:
            seed = self.seed
        self._started = True
        obs, _ = self.env.reset(seed=seed)
        return self._observe(obs)

    def step(self, action) -> tuple[np.ndarray, float, bool, bool]:
        if isinstance(self.env.action_space, gym.spaces.Discrete):
            action = int(np.asarray(action).reshape(()))
        obs, r, term, trunc, _ = self.env.step(action)
        return self._observe(obs), float(r), bool(term), bool(trunc)

    def frame(self) -> np.ndarray:
        return resize_nearest(self.env.render(), self.frame_shape[:2])

    def snapshot(self) -> object | None:
        return None

    def restore(self, snap) -> None:
        raise ValueError(f"the real env {self.env_id} cannot be rewound (its snapshot is None)")

    def close(self) -> None:
        self.env.close()


@dataclass(frozen=True)
class MujocoSnapshot:
    qpos: np.ndarray
    qvel: np.ndarray
    act: np.ndarray
    qacc_warmstart: np.ndarray
    """the solver's starting point, so the steps after a restore repeat the first ones exactly"""
    time: float
    frame: np.ndarray
    """the frame shown: after a step the scene's poses lag one physics substep behind qpos (the training
    frames have that lag too), which re-deriving the scene from qpos on restore would not reproduce"""


class MujocoSource(GymSource):
    """Kind ``mujoco``: frames from `MujocoFrames` with the manifest's camera and floor."""

    def _open(self) -> gym.Env:
        default_gl()  # before gymnasium imports mujoco
        env = make_source_env(self.env_id, **self.make_kwargs)
        self.frames = MujocoFrames(
            env, self.frame_shape[0], self.render.get("camera", "track"), self.render.get("plain_floor", True)
        )
        self._frame = None
        return env

    def _observe(self, obs) -> np.ndarray:
        self._frame = None  # the state moved: render again when asked
        return obs

    def frame(self) -> np.ndarray:
        if self._frame is None:
            self._frame = self.frames()
        return self._frame

    def snapshot(self) -> MujocoSnapshot:
        d = self.env.unwrapped.data
        return MujocoSnapshot(
            d.qpos.copy(), d.qvel.copy(), d.act.copy(), d.qacc_warmstart.copy(), float(d.time), self.frame()
        )

    def restore(self, snap: MujocoSnapshot) -> None:
        u = self.env.unwrapped
        u.set_state(snap.qpos, snap.qvel)
        d = u.data
        d.act[:], d.qacc_warmstart[:], d.time = snap.act, snap.qacc_warmstart, snap.time
        self._frame = snap.frame

    def close(self) -> None:
        self.frames.close()
        super().close()


@dataclass(frozen=True)
class AleSnapshot:
    state: object
    """the emulator's cloned state"""
    frame: np.ndarray
    """the reduced screen it shows"""


class AleSource(GymSource):
    """Kind ``ale``: observations and frames are the screen area-averaged to the frame shape."""

    def _open(self) -> gym.Env:
        self._last = np.zeros(self.frame_shape, np.uint8)
        return make_source_env(self.env_id, **self.make_kwargs)

    def _observe(self, obs) -> np.ndarray:
        self._last = area_resize(obs, self.frame_shape[0])
        return self._last

    def frame(self) -> np.ndarray:
        return self._last

    def snapshot(self) -> AleSnapshot:
        return AleSnapshot(self.env.unwrapped.ale.cloneState(), self._last)

    def restore(self, snap: AleSnapshot) -> None:
        self.env.unwrapped.ale.restoreState(snap.state)
        self._last = snap.frame

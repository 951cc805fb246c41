"""The real environment behind a bundle, with frames rendered the way its training data was.

Used where a dream is shown beside reality (`dreamgym play`'s side-by-side view, `dreamgym record
--compare`) and by the collector. The manifest's ``source`` names the env id and how frames were
made (``source.render``); the simulator packages are imported only here, only when asked for, and a
missing one is a `DependencyNotInstalled` naming the pip command.
"""

from __future__ import annotations

import os

import gymnasium as gym
import numpy as np

from .errors import DependencyNotInstalled

MUJOCO_RENDER = {"kind": "mujoco", "camera": "track", "plain_floor": True}


def default_gl() -> None:
    """Headless machines render MuJoCo through EGL; with a display, MuJoCo's own default (GLFW) works
    beside a pygame window where EGL may be refused (EGL_BAD_ACCESS under X)."""
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


def _resize_nearest(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    h, w = size
    ys = (np.arange(h) * img.shape[0] / h).astype(int)
    xs = (np.arange(w) * img.shape[1] / w).astype(int)
    return img[ys][:, xs]


def area_resize(frame: np.ndarray, size: int) -> np.ndarray:
    """Area-average resize of an RGB frame to size x size (how the Atari dreams' frames are made)."""
    h, w, _ = frame.shape
    ys = (np.arange(size + 1) * h / size).astype(int)
    xs = (np.arange(size + 1) * w / size).astype(int)
    rows = np.add.reduceat(frame.astype(np.float32), ys[:-1], axis=0) / np.diff(ys)[:, None, None]
    out = np.add.reduceat(rows, xs[:-1], axis=1) / np.diff(xs)[None, :, None]
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def make_source_env(env_id: str, **kwargs) -> gym.Env:
    """gym.make for a bundle's source env; Atari ids ("ALE/...") need ale_py imported to be registered."""
    if env_id.startswith("ALE/"):
        import ale_py

        gym.register_envs(ale_py)
    return gym.make(env_id, **kwargs)


class RealEnv:
    """The bundle's source env, stepping one env and returning frames of the dream's frame shape.

    For a dream whose observations are frames of an Atari screen (`source.render.kind == "ale"`), the real
    observations are turned into the dream's: the screen area-averaged to the frame shape."""

    def __init__(self, manifest, seed: int | None = None):
        default_gl()  # before gymnasium imports mujoco
        env_id = manifest.source.env_id
        if not env_id:
            raise ValueError(f"bundle {manifest.id} names no source env, so there is no real env to show")
        render = manifest.source.render
        self.frame_shape = tuple(manifest.frame_shape)
        kind = render.get("kind") or ("mujoco" if env_id.split("-")[0] in _MUJOCO_ENVS else "env")
        self._obs_fn = None
        try:
            if kind == "ale":
                self.env = make_source_env(env_id, **render.get("make_kwargs", {}))
                self._obs_fn = lambda o: area_resize(o, self.frame_shape[0])
                self.frames = lambda: self._last
            elif kind == "mujoco":
                self.env = gym.make(env_id)
                self.frames = MujocoFrames(self.env, self.frame_shape[0], render.get("camera", "track"),
                                           render.get("plain_floor", True))
            else:
                self.env = gym.make(env_id, render_mode="rgb_array", **render.get("make_kwargs", {}))
                self.frames = lambda: _resize_nearest(self.env.render(), self.frame_shape[:2])
        except (gym.error.DependencyNotInstalled, ImportError, gym.error.NamespaceNotFound, gym.error.NameNotFound) as e:
            raise DependencyNotInstalled(
                f"the real env {env_id} is not installed here ({e}); run `pip install \"dreamgym[export]\"` "
                "to get the source environments (gymnasium[mujoco], ale-py, pettingzoo)"
            ) from e
        self.seed = seed

    def _observe(self, obs):
        if self._obs_fn is None:
            return obs
        self._last = self._obs_fn(obs)
        return self._last

    def reset(self, seed: int | None = None):
        obs, info = self.env.reset(seed=seed)
        return self._observe(obs)

    def step(self, action):
        if isinstance(self.env.action_space, gym.spaces.Discrete):
            action = int(np.asarray(action).reshape(()))
        obs, r, term, trunc, _ = self.env.step(action)
        return self._observe(obs), float(r), bool(term), bool(trunc)

    def frame(self) -> np.ndarray:
        return self.frames()

    def get_state(self):
        u = self.env.unwrapped
        if hasattr(u, "data") and hasattr(u, "set_state"):
            return (u.data.qpos.copy(), u.data.qvel.copy())
        if hasattr(u, "ale"):  # an Atari emulator snapshot, and the frame it shows
            return ("ale", u.ale.cloneState(), self._last)
        return None

    def set_state(self, st) -> bool:
        if st is None:
            return False
        if st[0] == "ale":
            self.env.unwrapped.ale.restoreState(st[1])
            self._last = st[2]
            return True
        self.env.unwrapped.set_state(*st)
        return True

    def close(self) -> None:
        if isinstance(self.frames, MujocoFrames):
            self.frames.close()
        self.env.close()


_MUJOCO_ENVS = {"HalfCheetah", "Hopper", "Walker2d", "Ant", "Humanoid", "HumanoidStandup", "Swimmer", "Reacher",
                "Pusher", "InvertedPendulum", "InvertedDoublePendulum"}

"""dreamgym: trained world models as batched Gymnasium environments.

    import gymnasium as gym, dreamgym
    env = gym.make("Dream-HalfCheetah-v0", render_mode="rgb_array")
    venv = gym.make_vec("Dream-HalfCheetah-v0", num_envs=4096)
    env = dreamgym.make_env("path/to/bundle")

The runtime imports numpy, gymnasium and onnxruntime only.
"""

from __future__ import annotations

from pathlib import Path

from .bundle import FORMAT_VERSION, Bundle
from .env import DreamEnv
from .errors import ActionError, BundleError
from .registration import register_bundle, register_shipped, resolve, shipped_bundles
from .vector_env import DreamVectorEnv

__version__ = "0.1.0"


def make_env(bundle: str | Path, **kwargs) -> DreamEnv:
    """A single dream from a registered id or any bundle folder (kwargs as `DreamEnv`)."""
    return DreamEnv(resolve(bundle), **kwargs)


def make_vec(bundle: str | Path, num_envs: int = 1, **kwargs) -> DreamVectorEnv:
    """A batch of dreams from a registered id or any bundle folder (kwargs as `DreamVectorEnv`)."""
    return DreamVectorEnv(resolve(bundle), num_envs=num_envs, **kwargs)


register_shipped()

__all__ = [
    "FORMAT_VERSION", "ActionError", "Bundle", "BundleError", "DreamEnv", "DreamVectorEnv", "make_env",
    "make_vec", "register_bundle", "resolve", "shipped_bundles",
]

"""dreamgym: trained world models as batched Gymnasium environments.

    import gymnasium as gym, dreamgym
    env = gym.make("Dream-HalfCheetah-v0", render_mode="rgb_array")
    venv = gym.make_vec("Dream-HalfCheetah-v0", num_envs=4096)
    env = dreamgym.make_env("path/to/bundle")

The runtime imports numpy, gymnasium and onnxruntime only.
"""

from __future__ import annotations

from pathlib import Path


def _add_checkout_root() -> None:
    """Run from a source checkout (its root on sys.path, as with `python -c` or `pytest` there), this
    folder shadows the installed package, whose subpackages assets, play and export are mapped in from
    sibling folders (pyproject.toml's package-dir). The checkout's root joins the package's search path,
    so those subpackages resolve to the sibling folders there too."""
    root = Path(__file__).resolve().parent.parent
    if (root / "pyproject.toml").is_file() and all(
        (root / d / "__init__.py").is_file() for d in ("assets", "play", "export")
    ):
        if str(root) not in __path__:
            __path__.append(str(root))


_add_checkout_root()

# after the search path is set
from .bundle import FORMAT_VERSION, Bundle  # noqa: E402
from .env import DreamEnv  # noqa: E402
from .errors import ActionError, BundleError  # noqa: E402
from .manifest import Manifest  # noqa: E402
from .registration import register_bundle, register_shipped, resolve, shipped_bundles  # noqa: E402
from .vector_env import DreamVectorEnv  # noqa: E402

__version__ = "0.1.0"


def make_env(bundle: str | Path, **kwargs) -> DreamEnv:
    """A single dream from a registered id or any bundle folder (kwargs as `DreamEnv`)."""
    return DreamEnv(resolve(bundle), **kwargs)


def make_vec(bundle: str | Path, num_envs: int = 1, **kwargs) -> DreamVectorEnv:
    """A batch of dreams from a registered id or any bundle folder (kwargs as `DreamVectorEnv`)."""
    return DreamVectorEnv(resolve(bundle), num_envs=num_envs, **kwargs)


register_shipped()

__all__ = [
    "FORMAT_VERSION",
    "ActionError",
    "Manifest",
    "Bundle",
    "BundleError",
    "DreamEnv",
    "DreamVectorEnv",
    "make_env",
    "make_vec",
    "register_bundle",
    "resolve",
    "shipped_bundles",
]

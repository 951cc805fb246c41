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
from .multi_agent import AgentDreamEnv, BatchedParallelDreamEnv  # noqa: E402
from .registration import register_bundle, register_shipped, resolve, shipped_bundles  # noqa: E402
from .vector_env import DreamVectorEnv  # noqa: E402

__version__ = "0.1.0"


def make_env(bundle: str | Path, **kwargs) -> DreamEnv:
    """A single dream from a registered id or any bundle folder (kwargs as `DreamEnv`)."""
    return DreamEnv(resolve(bundle), **kwargs)


def make_vec(bundle: str | Path, num_envs: int = 1, **kwargs) -> DreamVectorEnv:
    """A batch of dreams from a registered id or any bundle folder (kwargs as `DreamVectorEnv`)."""
    return DreamVectorEnv(resolve(bundle), num_envs=num_envs, **kwargs)


def _bundle(bundle):
    """A loaded `Bundle` as it is; an id or a folder resolved."""
    return bundle if isinstance(bundle, Bundle) else resolve(bundle)


def make_parallel(bundle: str | Path | Bundle, **kwargs):
    """One game of a multi-agent dream as a PettingZoo `ParallelEnv` (`dreamgym.ParallelDreamEnv`), from a
    shipped id or a bundle folder. Needs the `pettingzoo` extra."""
    from .parallel_env import ParallelDreamEnv

    return ParallelDreamEnv(_bundle(bundle), **kwargs)


def make_batched(bundle: str | Path | Bundle, num_games: int = 1, **kwargs) -> BatchedParallelDreamEnv:
    """`num_games` games of a multi-agent dream stepped in one call, per-agent arrays (kwargs as
    `BatchedParallelDreamEnv`)."""
    return BatchedParallelDreamEnv(_bundle(bundle), num_games=num_games, **kwargs)


def make_agent_env(bundle: str | Path | Bundle, agent: str, **kwargs) -> AgentDreamEnv:
    """One agent of a multi-agent dream as a Gymnasium env, the others driven by the bundle's policies."""
    return AgentDreamEnv(_bundle(bundle), agent, **kwargs)


def __getattr__(name: str):
    if name == "ParallelDreamEnv":  # imports pettingzoo: only when asked for
        from .parallel_env import ParallelDreamEnv

        return ParallelDreamEnv
    raise AttributeError(f"module 'dreamgym' has no attribute {name!r}")


register_shipped()

__all__ = [
    "FORMAT_VERSION",
    "ActionError",
    "AgentDreamEnv",
    "BatchedParallelDreamEnv",
    "Manifest",
    "Bundle",
    "BundleError",
    "DreamEnv",
    "DreamVectorEnv",
    "make_agent_env",
    "make_batched",
    "make_env",
    "make_parallel",
    "make_vec",
    "register_bundle",
    "resolve",
    "shipped_bundles",
]

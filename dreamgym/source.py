"""The real environment behind a bundle, through one small interface the runtime defines.

Where a dream is shown or measured beside reality (the play front end's side-by-side view,
`dreamgym record --compare`, the real-env figures of `dreamgym bench`), the runtime opens the bundle's
source env with `open_source_env(manifest)` and uses only the `SourceEnv` methods below. It knows no
simulator: the implementation for the manifest's ``source.render["kind"]`` comes from whichever
installed package declares that kind in the entry-point group ``dreamgym.sources``. dreamgym's own
``export`` extra provides the kinds its recipes use (``gym``: any Gymnasium env rendered as rgb_array,
and the two simulators of the shipped dreams); another package adds a kind by declaring it::

    [project.entry-points."dreamgym.sources"]
    mykind = "mypackage.sources:MySource"     # MySource(manifest, seed=None) -> a SourceEnv

The options in ``source.render`` (a camera, make kwargs, ...) belong to the kind: the runtime passes the
manifest on without reading them. A manifest without a kind means ``gym``.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np

from .errors import DependencyNotInstalled

GROUP = "dreamgym.sources"
INSTALL = 'pip install "dreamgym[export]"'


@runtime_checkable
class SourceEnv(Protocol):
    """One real env, stepped beside a dream in the dream's terms.

    Observations are the dream's (for a pixel dream, the real screen reduced the way the training frames
    were); `frame()` is the picture the dream's `render()` is compared with, at the manifest's frame shape.
    Snapshots are opaque: only the env that took one reads it.
    """

    def reset(self, seed: int | None = None) -> np.ndarray:
        """Start an episode (the first one with the seed given to the constructor, unless `seed` is given);
        returns the first observation."""
        ...

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool]:
        """One step under `action` (an element of the bundle's action space): (obs, reward, terminated,
        truncated)."""
        ...

    def frame(self) -> np.ndarray:
        """The current frame: uint8 (H, W, 3) at the manifest's `frame_shape`."""
        ...

    def snapshot(self) -> object | None:
        """An opaque copy of the current state, for `restore`; None when this env cannot go back."""
        ...

    def restore(self, snap: object) -> None:
        """Go back to a snapshot this env took (then `frame()` shows that moment again)."""
        ...

    def make_env(self) -> gym.Env:
        """A new plain Gymnasium env of the same source (same id and make options, rendering nothing): what
        `dreamgym bench` steps alone and in a sync vector env to measure the real env's throughput."""
        ...

    def close(self) -> None:
        """Release the env and anything it renders with."""
        ...


def source_kinds() -> dict[str, EntryPoint]:
    """{kind: entry point} of every installed source-env implementation (nothing is imported)."""
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def open_source_env(manifest, seed: int | None = None) -> SourceEnv:
    """The real env a dream was learned from (`manifest.source`), as a `SourceEnv`.

    Raises ValueError when the manifest names no source env, and `DependencyNotInstalled` (naming the pip
    command) when no installed package provides its kind or the simulator behind it is missing.
    """
    src = manifest.source
    if not src.env_id:
        raise ValueError(f"bundle {manifest.id} names no source env, so there is no real env to open")
    kind = src.render.get("kind") or "gym"
    kinds = source_kinds()
    if kind not in kinds:
        have = ", ".join(sorted(kinds)) or "none"
        raise DependencyNotInstalled(
            f"the real env of {manifest.id} ({src.env_id}) is a source of kind {kind!r}, which no installed package "
            f"provides (installed kinds: {have}); run `{INSTALL}` to get the source environments"
        )
    try:
        impl = kinds[kind].load()
    except ImportError as e:
        raise DependencyNotInstalled(
            f"the source-env kind {kind!r} ({kinds[kind].value}) cannot be imported ({e}); run `{INSTALL}`"
        ) from e
    return impl(manifest, seed=seed)


__all__ = ["GROUP", "SourceEnv", "open_source_env", "source_kinds"]

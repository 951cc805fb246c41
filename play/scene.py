"""Where a multi-agent scene's entities are, and markers for those the frame does not show (no pygame).

A scene-drawn bundle (Dream-SimpleTag-v0: family joint-*, `source.render.kind` "mpe-scene") renders a fixed
window of the world, [-extent, extent] on both axes around the origin, from the joint observation (every
agent's observation, concatenated in the manifest's agent order). Its manifest's `model.config` says how:
`scene_positions` (per entity, the indices of the joint observation whose sum is its x; y is each index
+ 1), `scene_colors`, `scene_radii` and `scene_extent` (the drawer is export's `SceneDrawer`). MPE has no
walls, and mpe2's own renderer follows the agents, but the bundle's render graph cannot (bundles stay as
they were exported), so the front end marks an entity that has left the frame at the frame's edge, in its
colour, pointing towards it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Marker:
    """An entity out of the frame, seen from the frame's edge."""

    entity: int
    """its index in the scene (the drawer's order)"""
    color: tuple[int, int, int]
    """its colour as the frame draws it (uint8 RGB)"""
    at: tuple[float, float]
    """the point of the frame's edge nearest to it, as fractions of the frame's width and height ((0, 0): the
    top-left corner)"""
    towards: tuple[float, float]
    """the unit direction from `at` to it, in the frame's axes (x right, y down)"""
    distance: float
    """how far beyond the edge it is, in world units"""


class Scene:
    """The layout of a scene-drawn bundle's frame (`Scene.of(manifest)`; None for any other bundle)."""

    def __init__(self, agents, positions, colors, radii, extent: float):
        self.agents = tuple(agents)
        self.positions_of = [tuple(int(i) for i in idx) for idx in positions]
        self.colors = [tuple(int(v) for v in np.round(np.asarray(c, np.float64) * 255.0)) for c in colors]
        self.radii = [float(r) for r in radii]
        self.extent = float(extent)

    @classmethod
    def of(cls, manifest) -> Scene | None:
        cfg = dict(getattr(manifest.model, "config", None) or {})
        keys = ("scene_positions", "scene_colors", "scene_radii", "scene_extent")
        if not manifest.agents or not all(k in cfg for k in keys):
            return None
        if not (len(cfg["scene_positions"]) == len(cfg["scene_colors"]) == len(cfg["scene_radii"])):
            return None
        return cls(
            manifest.agent_names, cfg["scene_positions"], cfg["scene_colors"], cfg["scene_radii"], cfg["scene_extent"]
        )

    def joint(self, obs: dict[str, np.ndarray]) -> np.ndarray | None:
        """The joint observation of one game from its observations by agent (None: an agent's is missing)."""
        if not obs or any(a not in obs for a in self.agents):
            return None
        return np.concatenate([np.ravel(np.asarray(obs[a], np.float64)) for a in self.agents])

    def positions(self, obs: dict[str, np.ndarray]) -> np.ndarray | None:
        """(E, 2): every entity's (x, y) in world units (+y up), as the drawer places it."""
        o = self.joint(obs)
        if o is None:
            return None
        return np.array([[sum(o[i] for i in idx), sum(o[i + 1] for i in idx)] for idx in self.positions_of])

    def markers(self, obs: dict[str, np.ndarray]) -> list[Marker]:
        """A marker for every entity whose centre lies outside the frame."""
        pos = self.positions(obs)
        if pos is None:
            return []
        e = self.extent
        out = []
        for i, (x, y) in enumerate(pos):
            if not (np.isfinite(x) and np.isfinite(y)) or (abs(x) <= e and abs(y) <= e):
                continue
            cx, cy = float(np.clip(x, -e, e)), float(np.clip(y, -e, e))
            dx, dy = x - cx, -(y - cy)  # the frame's y points down
            d = float(np.hypot(dx, dy))
            out.append(
                Marker(
                    entity=i,
                    color=self.colors[i],
                    at=((cx + e) / (2 * e), (e - cy) / (2 * e)),
                    towards=(float(dx / d), float(dy / d)),
                    distance=d,
                )
            )
        return out

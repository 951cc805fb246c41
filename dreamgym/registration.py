"""The zoo: every bundle shipped in `dreamgym/assets/` is registered with Gymnasium under its id (a multi-agent
one too, so that `gym.make` on it says to open it with `dreamgym.make_parallel`)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import gymnasium as gym

from .errors import BundleError
from .manifest import MANIFEST, Manifest


def assets_dir() -> Path:
    return Path(str(resources.files("dreamgym.assets")))


def shipped_bundles(multi_agent: bool | None = None) -> dict[str, Path]:
    """{id: folder} of the shipped bundles (read from their manifests only; nothing is verified here).
    `multi_agent`: True for the multi-agent ones only, False for the single-agent ones, None for all."""
    out = {}
    for m in sorted(assets_dir().glob(f"*/{MANIFEST}")):
        if m.parent.name.startswith("."):  # a bundle being written (exporter.staged), not a shipped one
            continue
        try:
            man = Manifest.read(m)
        except BundleError:  # a broken bundle is reported when it is opened
            continue
        if multi_agent is None or bool(man.agents) == multi_agent:
            out[man.id] = m.parent
    return out


def resolve(id_or_path: str | Path) -> Path:
    """A registered id (with or without the 'dreamgym:' prefix) or a bundle folder -> the folder."""
    s = str(id_or_path)
    if s.startswith("dreamgym:"):
        s = s.split(":", 1)[1]
    zoo = shipped_bundles()
    if s in zoo:
        return zoo[s]
    spec = gym.registry.get(s)
    if spec is not None and "bundle" in (spec.kwargs or {}):
        return Path(spec.kwargs["bundle"])
    p = Path(s).expanduser()
    if p.is_dir():
        return p
    known = ", ".join(sorted(zoo)) or "none"
    raise gym.error.Error(f"{s!r} is neither a registered dream id ({known}) nor a bundle folder")


def make_single(bundle: str, **kwargs):
    from .env import DreamEnv

    return DreamEnv(bundle, **kwargs)


def make_vector(bundle: str, num_envs: int = 1, **kwargs):
    from .vector_env import DreamVectorEnv

    return DreamVectorEnv(bundle, num_envs=num_envs, **kwargs)


def register_bundle(path: str | Path, id: str | None = None) -> str:
    """Register a bundle folder with Gymnasium (both `make` and `make_vec`); returns its id."""
    path = Path(path).resolve()
    if id is None:
        id = Manifest.read(path / MANIFEST).id
    gym.register(
        id=id,
        entry_point="dreamgym.registration:make_single",
        vector_entry_point="dreamgym.registration:make_vector",
        kwargs={"bundle": str(path)},
        max_episode_steps=None,  # the dream truncates itself, in the single and the vector env alike
        disable_env_checker=False,
    )
    return id


def register_shipped() -> list[str]:
    return [register_bundle(p, i) for i, p in shipped_bundles().items() if i not in gym.registry]

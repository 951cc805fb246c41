"""The parts of a bundle's manifest (`dreamgym.manifest.Manifest`): the state, noise and output tensors, the
graphs, the context bank, the source env, the model, the fidelity summary, the env defaults, the agents, and
the `Signature` the graphs' names derive from. Each is a frozen dataclass whose fields are the JSON keys;
`dreamgym.manifest` reads and writes them (re-exporting every name here) and nothing here imports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from gymnasium import spaces

from .errors import BundleError

NOISE_DISTRIBUTIONS = ("normal", "uniform", "gumbel")
DTYPES = ("float32", "float16", "float64", "int64", "int32", "uint8", "bool")


# -- the parts ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TensorSpec:
    """A named state tensor: its per-env shape (the batch axis is implied) and dtype."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"

    @property
    def np_dtype(self) -> np.dtype:
        return np.dtype(self.dtype)

    def _check(self, where: str) -> None:
        if not self.name.isidentifier():
            raise BundleError(f"{where}.name must be an identifier (letters, digits, _), got {self.name!r}")
        if any(s < 0 for s in self.shape) or len(self.shape) > 8:
            raise BundleError(f"{where}.shape must be at most 8 sizes, none negative; got {list(self.shape)}")
        if int(np.prod(self.shape, dtype=np.float64)) > 1 << 28:
            raise BundleError(f"{where}.shape {list(self.shape)} holds more than 2**28 values per env")
        if self.dtype not in DTYPES:
            raise BundleError(f"{where}.dtype must be one of {DTYPES}, got {self.dtype!r}")


@dataclass(frozen=True)
class NoiseSpec(TensorSpec):
    """A noise input: drawn by the runtime from the env's generator and fed to one graph."""

    distribution: str = "normal"
    graph: str = "step"

    def _check(self, where: str) -> None:
        super()._check(where)
        if self.distribution not in NOISE_DISTRIBUTIONS:
            raise BundleError(f"{where}.distribution must be one of {NOISE_DISTRIBUTIONS}, got {self.distribution!r}")
        if self.graph not in ("reset", "step"):
            raise BundleError(f"{where}.graph must be 'reset' or 'step', got {self.graph!r}")


@dataclass(frozen=True)
class GraphSpec:
    """One ONNX graph of the bundle: its file, hash, and the names it takes and gives."""

    file: str
    sha256: str
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    clips_action: bool = False
    """the step graph clips a Box action to the action space itself (the runtime then copies actions in)"""


@dataclass(frozen=True)
class ContextBank:
    """contexts.npz: real windows obs [N, C, ...] and actions [N, C, ...]."""

    file: str
    sha256: str
    windows: int | None = None


@dataclass(frozen=True)
class Source:
    """The real env the dream was learned from. `render` holds the options of the source env kind that
    made its frames (`render["kind"]`); the runtime passes them on without reading them."""

    env_id: str | None = None
    render: Mapping[str, Any] = field(default_factory=dict)
    frames: str | None = None
    """how frames were made, in words"""
    packages: Mapping[str, str] = field(default_factory=dict)
    """versions of the packages the data came from"""


@dataclass(frozen=True)
class ModelInfo:
    config: Mapping[str, Any] = field(default_factory=dict)
    """the family's config dataclass, as written by `dataclasses.asdict`"""
    parameters: int | None = None
    step_parameters: int | None = None
    step_macs: int | None = None
    step_flops: int | None = None


@dataclass(frozen=True)
class Preview:
    file: str
    command: str = ""


def figure(v: float, digits: int = 2) -> str:
    """`v` with `digits` decimals, or with two significant digits where those decimals would show a nonzero
    figure as zero (0.0022, not 0.00)."""
    return f"{v:.2g}" if 0 < abs(v) < 10.0 ** (1 - digits) else f"{v:.{digits}f}"


@dataclass(frozen=True)
class Summary:
    """The headline of a bundle's fidelity, whatever its family: one figure per horizon (with its name
    and format) and the frame PSNR where measured. Written by the evaluator that measured it."""

    metric: str
    """what the per-horizon figure is, e.g. 'std. RMSE ÷ copy-last' or 'token accuracy'"""
    horizons: Mapping[str, float] = field(default_factory=dict)
    unit: str = ""
    """appended to each figure, e.g. '×'"""
    digits: int = 2
    frame_psnr_db: Mapping[str, float] = field(default_factory=dict)

    def cell(self) -> str:
        if not self.horizons:
            return "—"
        return " / ".join(figure(v, self.digits) + self.unit for v in self.horizons.values()) + f" {self.metric}"

    def headline(self, keys: tuple[str, ...] = ("1", "50")) -> str:
        parts = [f"h{k} {figure(self.horizons[k], self.digits)}{self.unit}" for k in keys if k in self.horizons]
        return f"{self.metric}: " + ", ".join(parts) if parts else "not evaluated"


@dataclass(frozen=True)
class OutputSpec:
    """An optional per-step output of the step graph (after the contract's own), given to the caller in
    `info[name]`. The runtime does not know what it means; `uncertainty` (shape ()) is the one the env
    options `uncertainty_penalty` and `uncertainty_limit` act on."""

    name: str
    shape: tuple[int, ...] = ()
    dtype: str = "float32"
    description: str = ""

    _check = TensorSpec._check


@dataclass(frozen=True)
class EnvDefaults:
    """The bundle's defaults for env options, chosen by its recipe (a caller's arguments override them)."""

    uncertainty_penalty: float = 0.0
    """reward minus this times info["uncertainty"] (needs an `uncertainty` output)"""
    uncertainty_limit: float | None = None
    """truncate an episode when info["uncertainty"] exceeds this (None: never)"""
    max_episode_steps: int | None = None
    """truncate the episodes a learner sees after this many steps: short dreams from the bank's real states,
    as MBPO and MOPO branch their model rollouts from real data (None: the manifest's `max_episode_steps`,
    the real env's). Tools that show or measure whole episodes (play, record, evaluate, transfer) keep the
    manifest's horizon."""


@dataclass(frozen=True)
class AgentSpec:
    """One agent of a multi-agent bundle: its name (as the source env names it), its own spaces (the
    real env's for that agent), and the keys a person drives it with in `dreamgym play`."""

    name: str
    observation_space: spaces.Space
    action_space: spaces.Space
    keymap: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""

    def _check(self, where: str) -> None:
        if not self.name.isidentifier():
            raise BundleError(f"{where}.name must be an identifier (letters, digits, _), got {self.name!r}")


@dataclass(frozen=True)
class Signature:
    """What the graphs' input and output names depend on: the state, the noise, and whether the graphs
    give a latent. The exporter derives one from a model before any manifest exists."""

    state: tuple[TensorSpec, ...]
    noise: tuple[NoiseSpec, ...] = ()
    latent: bool = True
    outputs: tuple[OutputSpec, ...] = ()
    agents: tuple[str, ...] = ()
    """agent names of a multi-agent bundle, in order (empty: one agent, the contract's plain names)"""

    def noise_for(self, graph: str) -> tuple[NoiseSpec, ...]:
        return tuple(n for n in self.noise if n.graph == graph)

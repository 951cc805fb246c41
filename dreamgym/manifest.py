"""`Manifest`: the typed form of a bundle's `dreamgym.json`, its only reader and writer.

The exporter builds one, `Bundle` holds one, and everything else reads its fields. Graph input and
output names come from `io_names(manifest, graph)`, which the exporter and the loader both call: no
family spells them.

Every field is declared once below with its type; `Manifest.from_json` checks a JSON object against
those declarations (an unknown key, a missing required key or a value of the wrong type is a
`BundleError` naming the key and the expected form) and `Manifest.to_json` writes it back. Adding a
field to the contract is adding it to one of these dataclasses, with a default so older bundles load.

Format versions (`format_version`):

- **1** — the first bundles (dreamgym 0.1). Same keys as 2, without `summary`; loaded by deriving the
  summary from `metrics.fidelity` (see `_upgrade_v1`).
- **2** — adds `summary`, the family-agnostic headline of the fidelity metrics that `dreamgym list` and
  `info` print.
- **3** — adds `outputs` (optional per-step outputs of the step graph, surfaced in `info` under their
  names) and `env_defaults` (the bundle's defaults for the env options that use them).
- **4** — adds `agents` (multi-agent bundles: named agents, each with its own observation and action
  space and keys; the top-level `observation_space` and `action_space` are then absent, and the graphs
  take and give one tensor per agent, named by `io_names`).

The writer writes the oldest version that holds the manifest (2 unless `outputs`, `env_defaults` or
`agents` are used), so bundles that use nothing new stay readable by older readers. A bundle newer than this reader is
refused with the upgrade command; an older one is upgraded in memory (its files are not rewritten).
"""

from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import numpy as np
from gymnasium import spaces

from .errors import BundleError
from .spaces import space_from_json, space_to_json

FORMAT_VERSION = 4
READS_VERSIONS = (1, 2, 3, 4)
MANIFEST = "dreamgym.json"
GRAPHS = ("reset", "step", "render", "policy")
REQUIRED_GRAPHS = ("reset", "step", "render")
NOISE_DISTRIBUTIONS = ("normal", "uniform", "gumbel")
OBS_MODES = ("state", "pixels", "latent")
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


@dataclass(frozen=True, kw_only=True)
class Manifest:
    """Everything a bundle declares. Build one in code (the exporter) or read one with `from_json`/`read`."""

    id: str
    family: str
    observation_space: spaces.Space | None = None
    """the observation space of a single-agent bundle (absent when `agents` are declared)"""
    action_space: spaces.Space | None = None
    """the action space of a single-agent bundle (absent when `agents` are declared)"""
    state: tuple[TensorSpec, ...]
    graphs: Mapping[str, GraphSpec]
    contexts: ContextBank
    context_length: int
    frame_shape: tuple[int, ...]
    format_version: int = FORMAT_VERSION
    description: str = ""
    source: Source = Source()
    obs_modes: tuple[str, ...] = ("state",)
    noise: tuple[NoiseSpec, ...] = ()
    latent_dim: int | None = None
    max_episode_steps: int | None = None
    render_fps: int = 30
    keymap: Mapping[str, Any] = field(default_factory=dict)
    """the front end's key binding: key pairs per continuous dimension, keys for discrete actions"""
    action_meanings: tuple[str, ...] | None = None
    model: ModelInfo = ModelInfo()
    metrics: Mapping[str, Any] = field(default_factory=dict)
    """what the evaluator measured, free-form JSON (the model card reads it)"""
    summary: Summary | None = None
    license: str = "MIT"
    files: Mapping[str, str] = field(default_factory=dict)
    """sha256 of the other files of the bundle (model card, plots, preview)"""
    preview: Preview | None = None
    outputs: tuple[OutputSpec, ...] = ()
    """optional per-step outputs of the step graph (format 3)"""
    env_defaults: EnvDefaults = EnvDefaults()
    """defaults of the env options, chosen by the recipe (format 3)"""
    agents: tuple[AgentSpec, ...] = ()
    """the agents of a multi-agent bundle, in the order the graphs take them (format 4)"""

    # -- derived ----------------------------------------------------------------------------------
    @property
    def signature(self) -> Signature:
        return Signature(
            self.state, self.noise, "latent" in self.obs_modes, self.outputs, tuple(a.name for a in self.agents)
        )

    @property
    def agent_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.agents)

    def agent(self, name: str) -> AgentSpec:
        for a in self.agents:
            if a.name == name:
                return a
        raise KeyError(f"{self.id} has no agent {name!r}; its agents are {list(self.agent_names)}")

    def noise_for(self, graph: str) -> tuple[NoiseSpec, ...]:
        return tuple(n for n in self.noise if n.graph == graph)

    @property
    def step_flops(self) -> float | None:
        """FLOPs of one env-step: counted from step.onnx by the exporter, else twice the multiply-adds."""
        flops = self.model.step_flops or 2 * (self.model.step_macs or 0)
        return float(flops) if flops else None

    def replace(self, **changes) -> Manifest:
        return dataclasses.replace(self, **changes)

    # -- JSON -------------------------------------------------------------------------------------
    @classmethod
    def from_json(cls, d: Any, where: str = MANIFEST) -> Manifest:
        """Check a JSON object against the declarations and build the manifest; `BundleError` otherwise."""
        if not isinstance(d, dict):
            raise BundleError(f"{where} must hold a JSON object, got {type(d).__name__}")
        version = d.get("format_version")
        if type(version) is not int:
            raise BundleError(f"{where}: 'format_version' must be an integer, got {version!r}")
        if version > FORMAT_VERSION:
            raise BundleError(
                f"{where} has format_version {version} but this dreamgym reads up to {FORMAT_VERSION}; "
                "upgrade with `pip install -U dreamgym`"
            )
        if version not in READS_VERSIONS:
            raise BundleError(
                f"{where}: format_version {version} is not a known version (expected one of {READS_VERSIONS})"
            )
        if version == 1:
            d = _upgrade_v1(d)
        m = _parse(cls, d, where)
        m._check(where)
        return m

    @property
    def needs_version(self) -> int:
        """The oldest format that holds this manifest."""
        if self.agents:
            return 4
        return 3 if (self.outputs or self.env_defaults != EnvDefaults()) else 2

    def to_json(self) -> dict:
        d = _dump(self)
        d["format_version"] = self.needs_version
        if d["format_version"] < 4:  # what older formats do not know, left out when unused
            d.pop("agents")
        if d["format_version"] < 3:
            d.pop("outputs"), d.pop("env_defaults")
        return {k: d[k] for k in _JSON_ORDER if k in d}

    @classmethod
    def read(cls, path: str | os.PathLike) -> Manifest:
        path = Path(path)
        try:
            d = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise BundleError(f"{path} is not valid JSON: {e}") from e
        return cls.from_json(d, str(path))

    def write(self, path: str | os.PathLike) -> None:
        """Write atomically: a reader sees the old manifest or the new one, never half of one."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n")
        os.replace(tmp, path)

    # -- checks beyond types ----------------------------------------------------------------------
    def _check(self, where: str) -> None:
        if self.agents:
            if self.observation_space is not None or self.action_space is not None:
                raise BundleError(
                    f"{where}: a multi-agent manifest (with 'agents') declares each agent's spaces there; "
                    "leave out the top-level 'observation_space' and 'action_space'"
                )
            for i, a in enumerate(self.agents):
                a._check(f"{where}: agents[{i}]")
            names = self.agent_names
            if len(set(names)) != len(names):
                raise BundleError(f"{where}: agent names must be unique, got {list(names)}")
            if "latent" in self.obs_modes or "pixels" in self.obs_modes:
                raise BundleError(
                    f"{where}: a multi-agent bundle offers obs_modes ['state'] only (each agent observes in "
                    f"its real env's space), got {list(self.obs_modes)}"
                )
        elif self.observation_space is None or self.action_space is None:
            raise BundleError(
                f"{where} lacks 'observation_space' and 'action_space' (a single-agent bundle needs both; a "
                "multi-agent one declares 'agents')"
            )
        for i, s in enumerate(self.state):
            s._check(f"{where}: state[{i}]")
        for i, n in enumerate(self.noise):
            n._check(f"{where}: noise[{i}]")
        for i, o in enumerate(self.outputs):
            o._check(f"{where}: outputs[{i}]")
        names = [s.name for s in self.state] + [n.name for n in self.noise] + [o.name for o in self.outputs]
        if len(set(names)) != len(names):
            raise BundleError(f"{where}: state, noise and output names must be unique, got {names}")
        reserved = {"context_obs", "context_actions", "action", "obs", "reward", "terminated", "latent", "frame"}
        if reserved & set(names):
            raise BundleError(
                f"{where}: state, noise and outputs may not be named {sorted(reserved & set(names))} "
                "(those names belong to the contract)"
            )
        missing = [g for g in REQUIRED_GRAPHS if g not in self.graphs]
        if missing:
            raise BundleError(
                f"{where}: graphs.{missing[0]} is missing; every bundle needs {', '.join(REQUIRED_GRAPHS)}"
            )
        unknown = sorted(set(self.graphs) - set(GRAPHS))
        if unknown:
            raise BundleError(f"{where}: unknown graphs {unknown}; expected some of {GRAPHS}")
        if not set(self.obs_modes) <= set(OBS_MODES) or not self.obs_modes:
            raise BundleError(f"{where}: obs_modes {list(self.obs_modes)} must be drawn from {OBS_MODES}")
        if "latent" in self.obs_modes and not self.latent_dim:
            raise BundleError(f"{where}: obs_mode 'latent' needs a positive 'latent_dim'")
        if (
            len(self.frame_shape) != 3
            or self.frame_shape[2] != 3
            or min(self.frame_shape) < 1
            or max(self.frame_shape) > 4096
        ):
            raise BundleError(
                f"{where}: frame_shape must be [H, W, 3] with sizes 1..4096, got {list(self.frame_shape)}"
            )
        if self.context_length < 1 or self.context_length > 1 << 16:
            raise BundleError(f"{where}: context_length must be a positive integer, got {self.context_length}")
        if self.render_fps < 1:
            raise BundleError(f"{where}: render_fps must be positive, got {self.render_fps}")
        unc = next((o for o in self.outputs if o.name == "uncertainty"), None)
        if unc is not None and unc.shape != ():
            raise BundleError(
                f"{where}: the 'uncertainty' output must be one number per env (shape []), got {list(unc.shape)}"
            )
        d = self.env_defaults
        if (d.uncertainty_penalty or d.uncertainty_limit is not None) and unc is None:
            raise BundleError(
                f"{where}: env_defaults use an uncertainty, but the step graph declares no 'uncertainty' output"
            )
        if d.uncertainty_penalty < 0 or not np.isfinite(d.uncertainty_penalty):
            raise BundleError(f"{where}: env_defaults.uncertainty_penalty must be a finite number >= 0")
        if d.max_episode_steps is not None and d.max_episode_steps < 1:
            raise BundleError(
                f"{where}: env_defaults.max_episode_steps must be positive or null, got {d.max_episode_steps}"
            )
        if self.max_episode_steps is not None and self.max_episode_steps < 1:
            raise BundleError(f"{where}: max_episode_steps must be positive or null, got {self.max_episode_steps}")


# the order keys are written in: what a reader looks for first, the hashes last
_JSON_ORDER = (
    "format_version",
    "id",
    "family",
    "description",
    "source",
    "observation_space",
    "action_space",
    "obs_modes",
    "state",
    "noise",
    "outputs",
    "latent_dim",
    "frame_shape",
    "context_length",
    "max_episode_steps",
    "render_fps",
    "env_defaults",
    "agents",
    "keymap",
    "action_meanings",
    "model",
    "summary",
    "metrics",
    "license",
    "graphs",
    "contexts",
    "files",
    "preview",
)
assert set(_JSON_ORDER) == {f.name for f in dataclasses.fields(Manifest)}, (
    "a Manifest field is missing from _JSON_ORDER"
)


def io_names(m: Manifest | Signature, graph: str) -> tuple[list[str], list[str]]:
    """The input and output names of `graph` under the contract, from the manifest (or the signature of a
    model being exported) alone.

        reset   (context_obs, context_actions, <reset noise>...) -> (<state>..., obs[, latent])
        step    (<state>..., action, <step noise>...)            -> (next_<state>..., obs, reward, terminated[, latent],
                                                                     <outputs>...)
        render  (<state>...)                                     -> (frame,)
        policy  (obs,)                                           -> (action,)

    In a multi-agent bundle every per-agent name X becomes one name per agent, `X.<agent>`, in the
    manifest's agent order: the step takes `action.a`, `action.b`, ... and gives `obs.a`, `obs.b`, ...,
    `reward.a`, ..., `terminated.a`, ...; reset takes `context_obs.<agent>`... then
    `context_actions.<agent>`...; the policy maps every agent's obs to every agent's action.
    A written graph may leave out state inputs it does not read; its outputs are always complete."""
    sig = m.signature if isinstance(m, Manifest) else m
    st = [s.name for s in sig.state]
    latent = ["latent"] if sig.latent else []
    noise = [n.name for n in sig.noise_for(graph)]

    def per(x: str) -> list[str]:
        return [f"{x}.{a}" for a in sig.agents] if sig.agents else [x]

    if graph == "reset":
        return [*per("context_obs"), *per("context_actions"), *noise], [*st, *per("obs"), *latent]
    if graph == "step":
        extra = [o.name for o in sig.outputs]
        outs = [*(f"next_{s}" for s in st), *per("obs"), *per("reward"), *per("terminated"), *latent, *extra]
        return [*st, *per("action"), *noise], outs
    if graph == "render":
        return st, ["frame"]
    if graph == "policy":
        return per("obs"), per("action")
    raise BundleError(f"unknown graph {graph!r}; expected one of {GRAPHS}")


# -- format 1 -----------------------------------------------------------------------------------------
def _upgrade_v1(d: dict) -> dict:
    """Format 1 had no `summary`: derive it from `metrics.fidelity` as the tools of 0.1 displayed it
    (token accuracy for token dreams, std. RMSE ÷ copy-last for observation vectors)."""
    d = dict(d)
    f = d.get("metrics", {}).get("fidelity", {}) if isinstance(d.get("metrics"), dict) else {}
    h = f.get("horizons", {}) if isinstance(f, dict) else {}
    if h and "summary" not in d:
        tokens = f.get("kind") == "tokens"
        key = "token_accuracy" if tokens else "ratio"
        d["summary"] = {
            "metric": "token accuracy" if tokens else "std. RMSE ÷ copy-last",
            "horizons": {k: v[key] for k, v in h.items() if key in v},
            "unit": "" if tokens else "×",
            "frame_psnr_db": {k: v["frame_psnr_db"] for k, v in h.items() if "frame_psnr_db" in v},
        }
    return d


# -- a small typed reader for the declarations above ----------------------------------------------------
def _type_name(tp: Any) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _type_name(a) for a in args)
    if origin is tuple:
        return f"a list of {_type_name(args[0])}"
    if origin in (dict, Mapping):
        return "an object"
    if tp is spaces.Space:
        return "a space object ({'type': 'Box', ...})"
    if dataclasses.is_dataclass(tp):
        req = [f.name for f in dataclasses.fields(tp) if _required(f)]
        return f"an object with {', '.join(map(repr, req)) or 'optional keys'}"
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(tp, str(tp))


def _required(f: dataclasses.Field) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def _parse(tp: Any, v: Any, where: str) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    bad = BundleError(
        f"{where} must be {_type_name(tp)}, got {json.dumps(v)[:80] if _jsonable(v) else type(v).__name__}"
    )
    if origin in (Union, types.UnionType):
        if v is None and type(None) in args:
            return None
        try:
            return _parse(next(a for a in args if a is not type(None)), v, where)
        except BundleError as e:
            if str(e).startswith(f"{where} must be "):  # this value's own type is wrong: name the whole union
                raise bad from None
            raise
    if tp is spaces.Space:
        return space_from_json(v)
    if dataclasses.is_dataclass(tp):
        if not isinstance(v, dict):
            raise bad
        hints = typing.get_type_hints(tp)
        fields = {f.name: f for f in dataclasses.fields(tp)}
        unknown = sorted(set(v) - set(fields))
        if unknown:
            raise BundleError(f"{where} has the unknown key {unknown[0]!r}; expected keys: {', '.join(fields)}")
        kw = {}
        for name, f in fields.items():
            if name in v:
                kw[name] = _parse(hints[name], v[name], f"{where}.{name}")
            elif _required(f):
                raise BundleError(f"{where} lacks the required key {name!r} ({_type_name(hints[name])})")
        return tp(**kw)
    if origin is tuple:
        if not isinstance(v, list):
            raise bad
        return tuple(_parse(args[0], x, f"{where}[{i}]") for i, x in enumerate(v))
    if origin in (dict, Mapping):
        if not isinstance(v, dict):
            raise bad
        if args and args[1] is not Any:
            return {k: _parse(args[1], x, f"{where}.{k}") for k, x in v.items()}
        return v
    if tp is bool:
        if type(v) is not bool:
            raise bad
        return v
    if tp is int:
        if type(v) is not int:
            raise bad
        return v
    if tp is float:
        if type(v) not in (int, float):
            raise bad
        return float(v)
    if tp is str:
        if not isinstance(v, str):
            raise bad
        return v
    raise TypeError(f"no JSON reader for {tp!r}")  # a declaration above that this reader does not know


def _jsonable(v: Any) -> bool:
    try:
        json.dumps(v)
        return True
    except (TypeError, ValueError):
        return False


def _dump(v: Any) -> Any:
    if isinstance(v, spaces.Space):
        return space_to_json(v)
    if dataclasses.is_dataclass(v):
        out = {}
        for f in dataclasses.fields(v):
            x = getattr(v, f.name)
            if x is None and f.default is None:
                continue  # optional and absent
            out[f.name] = _dump(x)
        return out
    if isinstance(v, (tuple, list)):
        return [_dump(x) for x in v]
    if isinstance(v, Mapping):
        return {k: _dump(x) for k, x in v.items()}
    if isinstance(v, np.generic):
        return v.item()
    return v

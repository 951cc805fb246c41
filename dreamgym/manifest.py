"""`Manifest`: the typed form of a bundle's `dreamgym.json`, its only reader and writer.

The exporter builds one, `Bundle` holds one, and everything else reads its fields. Graph input and
output names come from `io_names(manifest, graph)`, which the exporter and the loader both call: no
family spells them.

Every field is declared once with its type (the parts in `dreamgym.manifest_specs`, the whole below);
`Manifest.from_json` checks a JSON object against those declarations (an unknown key, a missing required
key or a value of the wrong type is a `BundleError` naming the key and the expected form) and
`Manifest.to_json` writes it back, both through the typed reader of `dreamgym.manifest_json`. Adding a
field to the contract is adding it to one of these dataclasses, with a default so older bundles load.
Every public name of the parts is importable from here as well.

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
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces

from .errors import BundleError
from .manifest_json import _dump, _parse
from .manifest_specs import (
    DTYPES,
    NOISE_DISTRIBUTIONS,
    AgentSpec,
    ContextBank,
    EnvDefaults,
    GraphSpec,
    ModelInfo,
    NoiseSpec,
    OutputSpec,
    Preview,
    Signature,
    Source,
    Summary,
    TensorSpec,
    figure,
)

FORMAT_VERSION = 4
READS_VERSIONS = (1, 2, 3, 4)
MANIFEST = "dreamgym.json"
GRAPHS = ("reset", "step", "render", "policy")
REQUIRED_GRAPHS = ("reset", "step", "render")
OBS_MODES = ("state", "pixels", "latent")


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


__all__ = [
    "DTYPES",
    "FORMAT_VERSION",
    "GRAPHS",
    "MANIFEST",
    "NOISE_DISTRIBUTIONS",
    "OBS_MODES",
    "READS_VERSIONS",
    "REQUIRED_GRAPHS",
    "AgentSpec",
    "ContextBank",
    "EnvDefaults",
    "GraphSpec",
    "Manifest",
    "ModelInfo",
    "NoiseSpec",
    "OutputSpec",
    "Preview",
    "Signature",
    "Source",
    "Summary",
    "TensorSpec",
    "figure",
    "io_names",
]

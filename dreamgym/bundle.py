"""The bundle: a folder holding a manifest (`dreamgym.json`), ONNX graphs and a bank of real contexts.

This module is the one contract between `dreamgym.export` and the runtime. Every model family exports
the same graph signatures, with state tensors named in the manifest:

    reset.onnx   (context_obs, context_actions, <reset noise>...) -> (<state>..., obs[, latent])
    step.onnx    (<state>..., action, <step noise>...)            -> (next_<state>..., obs, reward, terminated[, latent])

A graph may leave out state inputs it does not read (its manifest entry lists what it takes); its
outputs are always complete.
    render.onnx  (<state>...)                                     -> (frame,)          uint8 [B, H, W, 3]
    policy.onnx  (obs,)                                           -> (action,)         optional

Every graph has a dynamic batch axis first. All randomness is a graph input ("noise") drawn by the
runtime from the env's seeded generator, so a seed fixes a trajectory.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces

from .errors import BundleError
from .spaces import space_from_json

FORMAT_VERSION = 1
MANIFEST = "dreamgym.json"
GRAPHS = ("reset", "step", "render", "policy")
REQUIRED_GRAPHS = ("reset", "step", "render")
NOISE_DISTRIBUTIONS = ("normal", "uniform", "gumbel")
OBS_MODES = ("state", "pixels", "latent")
_ORT_DTYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(uint8)": "uint8",
    "tensor(bool)": "bool",
}


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class TensorSpec:
    """A named tensor with its per-env shape (the batch axis is implied) and dtype."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    distribution: str | None = None  # noise only
    graph: str | None = None  # noise only: which graph takes it

    @property
    def np_dtype(self) -> np.dtype:
        return np.dtype(self.dtype)


@dataclass
class Bundle:
    """A loaded, checked bundle. Use `Bundle.load(path)`; sessions are opened by the runtime."""

    path: Path
    manifest: dict
    observation_space: spaces.Space
    action_space: spaces.Space
    state: list[TensorSpec]
    noise: list[TensorSpec]
    contexts: dict[str, np.ndarray] = field(repr=False)

    # -- convenient manifest fields -------------------------------------------------------------
    @property
    def id(self) -> str:
        return self.manifest["id"]

    @property
    def family(self) -> str:
        return self.manifest["family"]

    @property
    def context_length(self) -> int:
        return int(self.manifest["context_length"])

    @property
    def max_episode_steps(self) -> int | None:
        v = self.manifest.get("max_episode_steps")
        return None if v is None else int(v)

    @property
    def render_fps(self) -> int:
        return int(self.manifest.get("render_fps", 30))

    @property
    def frame_shape(self) -> tuple[int, int, int]:
        return tuple(self.manifest["frame_shape"])

    @property
    def latent_dim(self) -> int | None:
        v = self.manifest.get("latent_dim")
        return None if v is None else int(v)

    @property
    def obs_modes(self) -> list[str]:
        return list(self.manifest.get("obs_modes", ["state"]))

    @property
    def metrics(self) -> dict:
        return self.manifest.get("metrics", {})

    def graph_file(self, name: str) -> Path | None:
        g = self.manifest["graphs"].get(name)
        return None if g is None else self.path / g["file"]

    def has_graph(self, name: str) -> bool:
        return name in self.manifest["graphs"]

    def noise_for(self, graph: str) -> list[TensorSpec]:
        return [n for n in self.noise if n.graph == graph]

    def expected_io(self, graph: str) -> tuple[list[str], list[str]]:
        """The input and output names the contract demands of `graph`, given this manifest."""
        st = [s.name for s in self.state]
        latent = ["latent"] if "latent" in self.obs_modes else []
        noise = [n.name for n in self.noise_for(graph)]
        if graph == "reset":
            return ["context_obs", "context_actions", *noise], [*st, "obs", *latent]
        if graph == "step":
            return [*st, "action", *noise], [*(f"next_{s}" for s in st), "obs", "reward", "terminated", *latent]
        if graph == "render":
            return st, ["frame"]
        if graph == "policy":
            return ["obs"], ["action"]
        raise BundleError(f"unknown graph {graph!r}; expected one of {GRAPHS}")

    # -- loading --------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path, verify_hashes: bool = True) -> "Bundle":
        """Read and check a bundle folder; raise `BundleError` saying what is wrong otherwise."""
        root = Path(path).expanduser()
        if not root.is_dir():
            raise BundleError(f"bundle folder {str(root)!r} does not exist (expected a folder holding {MANIFEST})")
        root = root.resolve()
        mpath = root / MANIFEST
        if not mpath.is_file():
            raise BundleError(f"{str(root)!r} is not a bundle: it has no {MANIFEST}")
        try:
            manifest = json.loads(mpath.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise BundleError(f"{mpath} is not valid JSON: {e}") from e
        if not isinstance(manifest, dict):
            raise BundleError(f"{mpath} must hold a JSON object, got {type(manifest).__name__}")

        version = manifest.get("format_version")
        if not isinstance(version, int):
            raise BundleError(f"{mpath}: 'format_version' must be an integer, got {version!r}")
        if version > FORMAT_VERSION:
            raise BundleError(
                f"{mpath} has format_version {version} but this dreamgym reads up to {FORMAT_VERSION}; "
                "upgrade with `pip install -U dreamgym`"
            )
        if version < 1:
            raise BundleError(f"{mpath}: format_version {version} is not a known version (expected 1)")
        for key in ("id", "family", "observation_space", "action_space", "state", "graphs", "context_length"):
            if key not in manifest:
                raise BundleError(f"{mpath} lacks the required key {key!r}")

        files = dict(manifest.get("files", {}))
        for g in GRAPHS:
            if g in manifest["graphs"]:
                gspec = manifest["graphs"][g]
                if not isinstance(gspec, dict) or "file" not in gspec or "sha256" not in gspec:
                    raise BundleError(f"{mpath}: graphs.{g} must name a 'file' and its 'sha256'")
                files[gspec["file"]] = gspec["sha256"]
        for g in REQUIRED_GRAPHS:
            if g not in manifest["graphs"]:
                raise BundleError(f"{mpath}: graphs.{g} is missing; every bundle needs {', '.join(REQUIRED_GRAPHS)}")
        unknown = set(manifest["graphs"]) - set(GRAPHS)
        if unknown:
            raise BundleError(f"{mpath}: unknown graphs {sorted(unknown)}; expected some of {GRAPHS}")
        if "contexts" not in manifest:
            raise BundleError(f"{mpath} lacks 'contexts' (the file name and sha256 of the context bank)")
        files[manifest["contexts"]["file"]] = manifest["contexts"]["sha256"]

        for name, digest in files.items():
            fpath = _inside(root, name)
            if not fpath.is_file():
                raise BundleError(f"bundle {root.name}: file {name!r} named in the manifest is missing")
            if verify_hashes and sha256_file(fpath) != digest:
                raise BundleError(
                    f"bundle {root.name}: {name} does not match its sha256 in the manifest "
                    "(the file was changed or damaged; re-export the bundle or restore the file)"
                )

        obs_space = space_from_json(manifest["observation_space"])
        act_space = space_from_json(manifest["action_space"])
        state = [_tensor(s, "state") for s in manifest["state"]]
        noise = [_tensor(n, "noise") for n in manifest.get("noise", [])]
        for n in noise:
            if n.distribution not in NOISE_DISTRIBUTIONS:
                raise BundleError(f"noise {n.name!r}: distribution {n.distribution!r} is not one of {NOISE_DISTRIBUTIONS}")
            if n.graph not in ("reset", "step"):
                raise BundleError(f"noise {n.name!r}: 'graph' must be 'reset' or 'step', got {n.graph!r}")
        names = [s.name for s in state] + [n.name for n in noise]
        if len(set(names)) != len(names):
            raise BundleError(f"{mpath}: state and noise names must be unique, got {names}")
        modes = manifest.get("obs_modes", ["state"])
        if not set(modes) <= set(OBS_MODES):
            raise BundleError(f"{mpath}: obs_modes {modes} must be drawn from {OBS_MODES}")

        contexts = _load_contexts(_inside(root, manifest["contexts"]["file"]), obs_space, act_space,
                                  int(manifest["context_length"]))
        b = cls(root, manifest, obs_space, act_space, state, noise, contexts)
        for g in manifest["graphs"]:
            ins, outs = b.expected_io(g)
            spec = manifest["graphs"][g]
            declared = list(spec.get("inputs", []))
            if not b._inputs_ok(g, declared) or list(spec.get("outputs", [])) != outs:
                raise BundleError(
                    f"bundle {b.id}: graphs.{g} declares inputs {spec.get('inputs')} and outputs "
                    f"{spec.get('outputs')}, but the contract for this manifest is inputs {ins} (state tensors the "
                    f"graph does not read may be left out) and outputs {outs}"
                )
        return b

    def _inputs_ok(self, graph: str, declared: list[str]) -> bool:
        """A graph takes the contract's inputs in order, except that it may leave out state tensors it
        does not read (exporters drop unused inputs: a TSSM step recomputes h from its cache)."""
        ins, _ = self.expected_io(graph)
        state = {s.name for s in self.state}
        it = iter(ins)
        if not all(any(x == d for x in it) for d in declared):  # an ordered subsequence
            return False
        return all(i in declared for i in ins if i not in state)

    def check_session(self, graph: str, session: Any) -> None:
        """Compare an onnxruntime session's inputs and outputs with the manifest."""
        ins, outs = self.expected_io(graph)
        declared = list(self.manifest["graphs"][graph].get("inputs", ins))
        got_in = [i.name for i in session.get_inputs()]
        got_out = [o.name for o in session.get_outputs()]
        if got_in != declared or got_out != outs:
            raise BundleError(
                f"bundle {self.id}: {self.graph_file(graph).name} has inputs {got_in} and outputs {got_out}, "
                f"but the manifest says inputs {declared} and outputs {outs}"
            )
        specs = {s.name: s for s in self.state} | {n.name: n for n in self.noise}
        specs |= {f"next_{s.name}": s for s in self.state}
        for arg in [*session.get_inputs(), *session.get_outputs()]:
            spec = specs.get(arg.name)
            if spec is None:
                continue
            dtype = _ORT_DTYPES.get(arg.type, arg.type)
            tail = tuple(arg.shape[1:])
            # symbolic dims (strings) are what exporters write when they cannot infer a size; accept them
            fixed = len(tail) == len(spec.shape) and all(not isinstance(t, int) or t == s for t, s in zip(tail, spec.shape))
            if dtype != spec.dtype or not fixed:
                raise BundleError(
                    f"bundle {self.id}: {graph} tensor {arg.name!r} is {dtype} {['B', *tail]} in the graph "
                    f"but {spec.dtype} {['B', *spec.shape]} in the manifest"
                )


def _inside(root: Path, name: str) -> Path:
    """Resolve a file name from the manifest, refusing anything that leaves the bundle folder."""
    if not isinstance(name, str) or not name or Path(name).is_absolute():
        raise BundleError(f"bundle {root.name}: file name {name!r} must be a relative path inside the bundle")
    p = (root / name).resolve()
    if p != root and root not in p.parents:
        raise BundleError(f"bundle {root.name}: file name {name!r} points outside the bundle folder; refusing it")
    return p


def _tensor(d: Any, what: str) -> TensorSpec:
    try:
        return TensorSpec(
            name=str(d["name"]),
            shape=tuple(int(x) for x in d["shape"]),
            dtype=str(d.get("dtype", "float32")),
            distribution=d.get("distribution"),
            graph=d.get("graph"),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise BundleError(f"a {what} entry must have 'name', 'shape' (a list of ints) and 'dtype'; got {d!r}") from e


def _load_contexts(path: Path, obs_space: spaces.Space, act_space: spaces.Space, C: int) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except ValueError as e:  # object arrays need pickles, which we refuse
        raise BundleError(f"{path.name} cannot be read without pickles, which dreamgym refuses: {e}") from e
    except Exception as e:
        raise BundleError(f"{path.name} is not a readable npz file: {e}") from e
    for key in ("obs", "actions"):
        if key not in data:
            raise BundleError(f"{path.name} lacks the array {key!r} (expected obs [N, C, ...] and actions [N, C, ...])")
    obs, act = data["obs"], data["actions"]
    if obs.shape[1:] != (C, *obs_space.shape) or act.shape[1:] != (C, *act_space.shape) or len(obs) != len(act):
        raise BundleError(
            f"{path.name}: obs {obs.shape} and actions {act.shape} do not match "
            f"[N, {C}, *{obs_space.shape}] and [N, {C}, *{act_space.shape}]"
        )
    if len(obs) == 0:
        raise BundleError(f"{path.name} holds no context windows")
    return data

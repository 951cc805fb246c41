"""The bundle: a folder holding a manifest (`dreamgym.json`), ONNX graphs and a bank of real contexts.

This module is the one contract between the exporter and the runtime. The manifest is typed
(`dreamgym.manifest.Manifest`) and the graph names come from `io_names`. Every model family exports
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces

from .errors import BundleError
from .manifest import (
    FORMAT_VERSION,
    GRAPHS,
    MANIFEST,
    NOISE_DISTRIBUTIONS,
    OBS_MODES,
    REQUIRED_GRAPHS,
    Manifest,
    NoiseSpec,
    TensorSpec,
    io_names,
)

__all__ = [
    "FORMAT_VERSION",
    "GRAPHS",
    "MANIFEST",
    "NOISE_DISTRIBUTIONS",
    "OBS_MODES",
    "REQUIRED_GRAPHS",
    "ORT_DTYPES",
    "Bundle",
    "Manifest",
    "NoiseSpec",
    "TensorSpec",
    "io_names",
    "sha256_file",
]

ORT_DTYPES = {  # onnxruntime's type names of the dtypes a bundle may use
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


@dataclass
class Bundle:
    """A loaded, checked bundle: its folder, its typed `Manifest` and its bank of real contexts. Use
    `Bundle.load(path)`; sessions are opened by the runtime."""

    path: Path
    manifest: Manifest
    contexts: dict[str, np.ndarray] = field(repr=False)

    # -- the manifest's fields the runtime reads most -------------------------------------------
    @property
    def id(self) -> str:
        return self.manifest.id

    @property
    def family(self) -> str:
        return self.manifest.family

    @property
    def observation_space(self) -> spaces.Space:
        return self.manifest.observation_space

    @property
    def action_space(self) -> spaces.Space:
        return self.manifest.action_space

    @property
    def agents(self) -> tuple[str, ...]:
        """The agent names of a multi-agent bundle, in order; empty for a single-agent one."""
        return self.manifest.agent_names

    @property
    def is_multi_agent(self) -> bool:
        return bool(self.manifest.agents)

    @property
    def state(self) -> tuple[TensorSpec, ...]:
        return self.manifest.state

    @property
    def noise(self) -> tuple[NoiseSpec, ...]:
        return self.manifest.noise

    @property
    def context_length(self) -> int:
        return self.manifest.context_length

    @property
    def max_episode_steps(self) -> int | None:
        return self.manifest.max_episode_steps

    @property
    def render_fps(self) -> int:
        return self.manifest.render_fps

    @property
    def frame_shape(self) -> tuple[int, int, int]:
        return tuple(self.manifest.frame_shape)

    @property
    def latent_dim(self) -> int | None:
        return self.manifest.latent_dim

    @property
    def obs_modes(self) -> list[str]:
        return list(self.manifest.obs_modes)

    @property
    def step_flops(self) -> float | None:
        """FLOPs of one env-step (counted from step.onnx by the exporter; twice the multiply-adds if only
        those are known), or None when the manifest does not say."""
        return self.manifest.step_flops

    @property
    def metrics(self) -> dict:
        return dict(self.manifest.metrics)

    def graph_file(self, name: str) -> Path | None:
        g = self.manifest.graphs.get(name)
        return None if g is None else self.path / g.file

    def has_graph(self, name: str) -> bool:
        return name in self.manifest.graphs

    def noise_for(self, graph: str) -> tuple[NoiseSpec, ...]:
        return self.manifest.noise_for(graph)

    def expected_io(self, graph: str) -> tuple[list[str], list[str]]:
        """The input and output names the contract demands of `graph`, given this manifest."""
        return io_names(self.manifest, graph)

    # -- loading --------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path, verify_hashes: bool = True) -> Bundle:
        """Read and check a bundle folder; raise `BundleError` saying what is wrong otherwise."""
        root = Path(path).expanduser()
        if not root.is_dir():
            raise BundleError(f"bundle folder {str(root)!r} does not exist (expected a folder holding {MANIFEST})")
        root = root.resolve()
        mpath = root / MANIFEST
        if not mpath.is_file():
            raise BundleError(f"{str(root)!r} is not a bundle: it has no {MANIFEST}")
        m = Manifest.read(mpath)

        files = dict(m.files)
        for g in m.graphs.values():
            files[g.file] = g.sha256
        files[m.contexts.file] = m.contexts.sha256
        for name, digest in files.items():
            fpath = _inside(root, name)
            if not fpath.is_file():
                raise BundleError(f"bundle {root.name}: file {name!r} named in the manifest is missing")
            if verify_hashes and sha256_file(fpath) != digest:
                raise BundleError(
                    f"bundle {root.name}: {name} does not match its sha256 in the manifest "
                    "(the file was changed or damaged; re-export the bundle or restore the file)"
                )

        contexts = _load_contexts(_inside(root, m.contexts.file), m)
        b = cls(root, m, contexts)
        for g, spec in m.graphs.items():
            ins, outs = io_names(m, g)
            if not b._inputs_ok(g, list(spec.inputs)) or list(spec.outputs) != outs:
                raise BundleError(
                    f"bundle {b.id}: graphs.{g} declares inputs {list(spec.inputs)} and outputs "
                    f"{list(spec.outputs)}, but the contract for this manifest is inputs {ins} (state tensors the "
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
        declared = list(self.manifest.graphs[graph].inputs) or ins
        got_in = [i.name for i in session.get_inputs()]
        got_out = [o.name for o in session.get_outputs()]
        if got_in != declared or got_out != outs:
            raise BundleError(
                f"bundle {self.id}: {self.graph_file(graph).name} has inputs {got_in} and outputs {got_out}, "
                f"but the manifest says inputs {declared} and outputs {outs}"
            )
        specs = {s.name: s for s in self.state} | {n.name: n for n in self.noise}
        specs |= {o.name: o for o in self.manifest.outputs}
        specs |= {f"next_{s.name}": s for s in self.state}
        for arg in [*session.get_inputs(), *session.get_outputs()]:
            spec = specs.get(arg.name)
            if spec is None:
                continue
            dtype = ORT_DTYPES.get(arg.type, arg.type)
            tail = tuple(arg.shape[1:])
            # symbolic dims (strings) are what exporters write when they cannot infer a size; accept them
            fixed = len(tail) == len(spec.shape) and all(
                not isinstance(t, int) or t == s for t, s in zip(tail, spec.shape)
            )
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


def _load_contexts(path: Path, m: Manifest) -> dict[str, np.ndarray]:
    """The bank of real windows: `obs` and `actions` [N, C, ...]; in a multi-agent bundle one pair per
    agent, `obs.<agent>` and `actions.<agent>`, all with the same N."""
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except ValueError as e:  # object arrays need pickles, which we refuse
        raise BundleError(f"{path.name} cannot be read without pickles, which dreamgym refuses: {e}") from e
    except Exception as e:
        raise BundleError(f"{path.name} is not a readable npz file: {e}") from e
    C = m.context_length
    if m.agents:
        pairs = [(f"obs.{a.name}", f"actions.{a.name}", a.observation_space, a.action_space) for a in m.agents]
    else:
        pairs = [("obs", "actions", m.observation_space, m.action_space)]
    sizes = set()
    for ko, ka, obs_space, act_space in pairs:
        for key in (ko, ka):
            if key not in data:
                raise BundleError(
                    f"{path.name} lacks the array {key!r} (expected {ko} [N, C, ...] and {ka} [N, C, ...])"
                )
        obs, act = data[ko], data[ka]
        if obs.shape[1:] != (C, *obs_space.shape) or act.shape[1:] != (C, *act_space.shape) or len(obs) != len(act):
            raise BundleError(
                f"{path.name}: {ko} {obs.shape} and {ka} {act.shape} do not match "
                f"[N, {C}, *{obs_space.shape}] and [N, {C}, *{act_space.shape}]"
            )
        sizes.add(len(obs))
    if len(sizes) > 1:
        raise BundleError(f"{path.name}: every agent's bank must hold the same number of windows, got {sorted(sizes)}")
    if sizes == {0}:
        raise BundleError(f"{path.name} holds no context windows")
    return data

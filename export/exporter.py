"""torch -> ONNX: the three graphs of the bundle contract, a parity check, and the bundle writer.

Family-agnostic: a model family exposes the small surface in `families.WorldModel` (the functions behind
the graphs, example inputs, and its state and noise tensors), and everything here works for it. The graphs'
input and output names are not the family's to choose: they come from `dreamgym.manifest.io_names` of
the model's signature, as the loader derives them. Every graph gets a dynamic batch axis and is written
as a single file (no external data).
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import io
import os
import shutil
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from dreamgym.bundle import MANIFEST, Bundle, sha256_file
from dreamgym.export.families import WorldModel
from dreamgym.manifest import (
    AgentSpec,
    ContextBank,
    EnvDefaults,
    GraphSpec,
    Manifest,
    ModelInfo,
    Signature,
    Source,
    io_names,
)
from dreamgym.spaces import space_from_json

OPSET = 17


class _Graph(nn.Module):
    """Wraps one of a model's functions so torch.onnx sees a module whose forward is that function.
    `clip`: (argument index, low, high) per clipped argument — those arguments (the step's actions) are
    first clipped to [low, high]."""

    def __init__(self, model: nn.Module, fn: Callable, clip: list[tuple[int, np.ndarray, np.ndarray]] = ()):
        super().__init__()
        self.model, self.fn, self.clip = model, fn, list(clip)

    def forward(self, *args):
        args = list(args)
        for i, lo, hi in self.clip:
            if np.all(lo == lo.flat[0]) and np.all(hi == hi.flat[0]):  # one Clip node
                args[i] = torch.clamp(args[i], float(lo.flat[0]), float(hi.flat[0]))
            else:
                args[i] = torch.maximum(torch.minimum(args[i], torch.from_numpy(hi)), torch.from_numpy(lo))
        return self.fn(*args)


def signature(model: WorldModel, context_length: int) -> Signature:
    """The model's state and noise tensors and its optional step outputs (`output_spec`, if it has one): all
    the graph names depend on."""
    outputs = tuple(model.output_spec()) if hasattr(model, "output_spec") else ()
    agents = tuple(model.agent_names()) if hasattr(model, "agent_names") else ()
    # a multi-agent model gives no latent (its agents observe in their own spaces only)
    return Signature(tuple(model.state_spec()), tuple(model.noise_spec(context_length)), not agents, outputs, agents)


def action_bounds(space) -> tuple[np.ndarray, np.ndarray] | None:
    """(low, high) of a Box action space with finite bounds, as float32; else None."""
    if isinstance(space, dict):
        space = space_from_json(space)
    low, high = getattr(space, "low", None), getattr(space, "high", None)
    if low is None or not (np.isfinite(low).all() and np.isfinite(high).all()):
        return None
    return low.astype(np.float32), high.astype(np.float32)


class LinearPolicyGraph(nn.Module):
    """The ARS policy (`dreamgym.export.data.ars.LinearPolicy`) as a graph: y = M (o - mean) / std, then
    a = clip(y, -1, 1) mapped onto [low, high] (the identity by default), or a = argmax y (`discrete`)."""

    def __init__(self, M, mean, var, low=None, high=None, discrete: bool = False):
        super().__init__()
        f = lambda x: torch.as_tensor(np.asarray(x), dtype=torch.float32)  # noqa: E731
        self.register_buffer("M", f(M))
        self.register_buffer("mean", f(mean))
        self.register_buffer("inv_std", f(1.0 / np.sqrt(np.asarray(var) + 1e-8)))
        self.discrete = bool(discrete)
        self.scaled = low is not None
        if self.scaled:
            self.register_buffer("low", f(low))
            self.register_buffer("half_range", f((np.asarray(high) - np.asarray(low)) / 2))

    @classmethod
    def of(cls, policy) -> LinearPolicyGraph:
        """The graph of a `LinearPolicy`."""
        return cls(policy.M, policy.mean, policy.var, policy.low, policy.high, policy.discrete)

    def forward(self, obs):
        y = ((obs - self.mean) * self.inv_std) @ self.M.T
        if self.discrete:
            return torch.argmax(y, -1)
        y = torch.clamp(y, -1.0, 1.0)
        return self.low + (y + 1.0) * self.half_range if self.scaled else y


def _export(module: nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str]) -> None:
    axes = {n: {0: "batch"} for n in inputs + outputs}
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module.eval(),
            args,
            buf,
            input_names=inputs,
            output_names=outputs,
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
            # no folding: every weight keeps its parameter name (onnxruntime folds at load anyway),
            # so a bundle's torch model can be rebuilt from its graphs by name
            do_constant_folding=False,
        )
    path.write_bytes(buf.getvalue())


def export_graphs(
    model: WorldModel,
    out_dir: Path,
    context_length: int,
    clip_action: tuple[np.ndarray, np.ndarray] | dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> dict[str, Path]:
    """Write reset.onnx, step.onnx and render.onnx of `model` into `out_dir`. `clip_action`: (low, high),
    or {step input name: (low, high)} for a multi-agent model — the step graph clips its action inputs to
    them (the runtime then only copies actions in, which is cheaper at one env: benchmarks/README.md)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.eval()
    ex = model.example_inputs(2, context_length, np.random.default_rng(0))
    fns = getattr(model, "export_functions", model.graph_functions)()
    sig = signature(model, context_length)
    paths = {}
    for g in ("reset", "step", "render"):
        ins, outs = io_names(sig, g)
        paths[g] = out_dir / f"{g}.onnx"
        clip = []
        if clip_action is not None and g == "step":
            named = clip_action if isinstance(clip_action, dict) else {"action": clip_action}
            clip = [(ins.index(k), *b) for k, b in named.items()]
        _export(_Graph(model, fns[g], clip), tuple(torch.from_numpy(ex[g][n]) for n in ins), paths[g], ins, outs)
    return paths


def graph_inputs(path: Path) -> list[str]:
    """The inputs a written graph takes (torch.onnx drops inputs the function does not read)."""
    import onnx

    g = onnx.load(str(path)).graph
    inits = {i.name for i in g.initializer}
    return [i.name for i in g.input if i.name not in inits]


def export_policy(policy: nn.Module, obs_dim: int | None, path: Path, example: torch.Tensor | None = None) -> Path:
    """policy.onnx: obs -> action; `example` is a batch of observations (default: zeros (2, obs_dim))."""
    _export(policy, (torch.zeros(2, obs_dim) if example is None else example,), path, ["obs"], ["action"])
    return path


def export_joint_policy(policy: nn.Module, manifest: Manifest, path: Path) -> Path:
    """policy.onnx of a multi-agent bundle: every agent's obs -> every agent's action (io_names order)."""
    ins, outs = io_names(manifest, "policy")
    example = tuple(torch.zeros(2, *a.observation_space.shape) for a in manifest.agents)
    _export(policy, example, path, ins, outs)
    return path


def parity(
    model: WorldModel, graphs: dict[str, Path], context_length: int, batch: int = 64, seed: int = 0
) -> dict[str, float]:
    """Max abs error, torch (`graph_functions`, the reference) vs onnxruntime, of every output of every graph
    on random inputs."""
    import onnxruntime as ort

    ex = model.example_inputs(batch, context_length, np.random.default_rng(seed))
    fns, sig = model.graph_functions(), signature(model, context_length)
    report = {}
    for g, path in graphs.items():
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        takes = {i.name for i in sess.get_inputs()}
        got = sess.run(None, {k: v for k, v in ex[g].items() if k in takes})
        with torch.no_grad():
            want = fns[g](*(torch.from_numpy(ex[g][n]) for n in io_names(sig, g)[0]))
        want = want if isinstance(want, tuple) else (want,)
        for o, w, y in zip(sess.get_outputs(), want, got):
            w = w.numpy()
            report[f"{g}.{o.name}"] = (
                float(np.abs(w.astype(np.float64) - y.astype(np.float64)).max()) if w.size else 0.0
            )
    return report


def context_windows(
    episodes: list[dict],
    C: int,
    n: int,
    rng: np.random.Generator,
    start_share: float = 0.1,
    obs_dtype=np.float32,
    action_dtype=np.float32,
) -> dict[str, np.ndarray]:
    """n real windows of C steps from aligned episodes (`obs`, and `prev_act`: the action taken before each
    observation, as in a bundle's contexts.npz). A `start_share` of the windows open their episode, so a
    dream is also reset from rest. Episodes shorter than C are passed over; none as long is an error."""
    long = [e for e in episodes if len(e["obs"]) >= C]
    if not long:
        lengths = sorted(len(e["obs"]) for e in episodes)
        raise ValueError(
            f"no episode holds the {C}-step context a bundle's bank needs (episode lengths {lengths[:5]} ... "
            f"{lengths[-1:]}): collect longer episodes, or build with a shorter context_length"
        )
    obs, act = [], []
    for _ in range(n):
        e = long[int(rng.integers(len(long)))]
        s = 0 if start_share and rng.random() < start_share else int(rng.integers(len(e["obs"]) - C + 1))
        obs.append(e["obs"][s : s + C]), act.append(e["prev_act"][s : s + C])
    return {"obs": np.stack(obs).astype(obs_dtype), "actions": np.stack(act).astype(action_dtype)}


# -- writing bundles atomically ------------------------------------------------------------------------------
def _exchange(a: Path, b: Path) -> bool:
    """Swap two folders in one step (Linux renameat2 RENAME_EXCHANGE); False where that is not offered."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


@contextlib.contextmanager
def staged(out: str | Path, copy: bool = False) -> Iterator[Path]:
    """Change a bundle folder atomically: yields a staging folder beside `out` (empty, or with `copy` a copy of
    `out`); when the block ends without error and the staging folder loads as a bundle, it takes `out`'s
    place in one step (the folders are exchanged, then the old one removed; where the OS cannot exchange
    folders, two renames a moment apart). A process killed at any point leaves `out` as it was or as it
    became, never half-written; an error leaves `out` untouched. Left-over staging folders are removed the
    next time."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for old in out.parent.glob(f".{out.name}.staging-*"):
        shutil.rmtree(old, ignore_errors=True)
    tmp = out.parent / f".{out.name}.staging-{os.getpid()}"
    if copy:
        shutil.copytree(out, tmp)
    else:
        tmp.mkdir()
    try:
        yield tmp
        Bundle.load(tmp)  # never put a bundle in place that the runtime would refuse
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists() and _exchange(tmp, out):
        shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the old bundle
        return
    if out.exists():
        gone = out.parent / f".{out.name}.staging-{os.getpid()}-old"
        os.rename(out, gone)
        os.rename(tmp, out)
        shutil.rmtree(gone, ignore_errors=True)
    else:
        os.rename(tmp, out)


def write_bundle(
    out_dir: str | Path,
    *,
    model: WorldModel,
    manifest: Manifest,
    contexts: dict[str, np.ndarray],
    policy: nn.Module | None = None,
    card: Callable[[Manifest], str] | None = None,
    policy_input: torch.Tensor | None = None,
    extras: Callable[[Path], None] | None = None,
) -> Path:
    """Export the graphs, write contexts.npz, the manifest (with sha256s) and the model card, atomically
    (`staged`): `out_dir` holds the old bundle or the new one. `extras(folder)` writes more files into the
    new bundle before it is hashed and checked (a Genie's lam.onnx)."""
    with staged(out_dir) as out:
        _write_bundle(out, model, manifest, contexts, policy, card, policy_input, extras)
    return Path(out_dir)


def _write_bundle(out: Path, model, manifest, contexts, policy, card, policy_input, extras) -> None:
    C = manifest.context_length
    if manifest.agents:  # every agent's action clipped to its bounds, when all have finite ones
        each = {f"action.{a.name}": action_bounds(a.action_space) for a in manifest.agents}
        bounds = each if all(b is not None for b in each.values()) else None
    else:
        bounds = action_bounds(manifest.action_space)
    graphs = export_graphs(model, out, C, clip_action=bounds)
    if policy is not None and manifest.agents:
        graphs["policy"] = export_joint_policy(policy, manifest, out / "policy.onnx")
    elif policy is not None:
        obs_dim = None if policy_input is not None else model.cfg.obs_dim
        graphs["policy"] = export_policy(policy, obs_dim, out / "policy.onnx", policy_input)
    np.savez_compressed(out / "contexts.npz", **contexts)
    specs = {}
    for g, p in graphs.items():
        specs[g] = GraphSpec(
            file=p.name,
            sha256=sha256_file(p),
            inputs=tuple(graph_inputs(p)),
            outputs=tuple(io_names(manifest, g)[1]),
            # the runtime then copies actions in without clipping
            clips_action=g == "step" and bounds is not None,
        )
    model_info = manifest.model
    try:
        from dreamgym.export.flops import count_flops

        model_info = dataclasses.replace(model_info, step_flops=int(count_flops(graphs["step"])["flops"]))
    except ImportError:
        pass
    manifest = manifest.replace(
        graphs=specs,
        model=model_info,
        contexts=ContextBank(
            "contexts.npz", sha256_file(out / "contexts.npz"), int(len(next(iter(contexts.values()))))
        ),
    )
    manifest.write(out / MANIFEST)
    if extras is not None:
        extras(out)
    finalize(out, card)


def finalize(out: Path, card: Callable[[Manifest], str] | None = None) -> Manifest:
    """Rewrite the model card from the manifest and refresh the hashes of the other files."""
    out = Path(out)
    manifest = Manifest.read(out / MANIFEST)
    if card is not None:
        (out / "README.md").write_text(card(manifest))
    # every file the manifest does not already hash (card, plots, preview, extras such as a Genie's lam.onnx)
    hashed = {MANIFEST, manifest.contexts.file, *(g.file for g in manifest.graphs.values())}
    files = {p.name: sha256_file(p) for p in sorted(out.iterdir()) if p.is_file() and p.name not in hashed}
    manifest = manifest.replace(files=files)
    manifest.write(out / MANIFEST)
    Bundle.load(out)  # refuse to leave a bundle behind that the runtime would refuse
    return manifest


def make_manifest(
    model: WorldModel,
    *,
    id: str,
    description: str,
    source: Source,
    observation_space,
    action_space,
    context_length: int,
    max_episode_steps: int,
    render_fps: int,
    keymap: dict | None = None,
    action_meanings: list[str] | None = None,
    license: str = "MIT",
    metrics: dict | None = None,
    step_parameters: int | None = None,
    env_defaults: EnvDefaults | None = None,
    agents: tuple[AgentSpec, ...] = (),
) -> Manifest:
    """The manifest of a bundle of `model`, but for what only exporting tells (graphs, hashes, the
    context bank and the FLOP count), which `write_bundle` fills in. `step_parameters`: the parameters
    a step runs (default: all but the frame decoder's)."""
    c = model.cfg
    n_params = sum(p.numel() for p in model.parameters())
    if step_parameters is None:
        step_parameters = n_params - sum(p.numel() for p in model.frame_decoder.parameters())
    sig = signature(model, context_length)
    return Manifest(
        id=id,
        family=model.family,
        description=description,
        source=source,
        observation_space=None if agents else observation_space,
        action_space=None if agents else action_space,
        agents=tuple(agents),
        obs_modes=("state",) if agents else ("state", "pixels", "latent"),
        state=sig.state,
        noise=sig.noise,
        outputs=sig.outputs,
        env_defaults=env_defaults or EnvDefaults(),
        latent_dim=None if agents else int(model.latent_dim),
        frame_shape=(c.frame_size, c.frame_size, 3),
        context_length=context_length,
        max_episode_steps=max_episode_steps,
        render_fps=render_fps,
        keymap=keymap or {},
        action_meanings=tuple(action_meanings) if action_meanings else None,
        model=ModelInfo(
            config=dataclasses.asdict(c),
            parameters=int(n_params),
            step_parameters=int(step_parameters),
            step_macs=int(model.step_macs()),
        ),
        metrics=metrics or {},
        license=license,
        graphs={},
        contexts=ContextBank("contexts.npz", ""),  # filled in by write_bundle
    )

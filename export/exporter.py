"""torch -> ONNX: the three graphs of the bundle contract, a parity check, and the bundle writer.

Every graph gets a dynamic batch axis and is written as a single file (no external data). The state
tensors are named `h` and `z` for the RSSM; the manifest names are the contract the runtime reads.
"""

from __future__ import annotations

import dataclasses
import io
import json
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn

from dreamgym.bundle import FORMAT_VERSION, MANIFEST, Bundle, sha256_file
from dreamgym.spaces import space_to_json

OPSET = 17


class _Reset(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, context_obs, context_actions, noise_context):
        return self.m.filter_context(context_obs, context_actions, noise_context)


class _Step(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, h, z, action, noise_z):
        return self.m.imagine_step(h, z, action, noise_z)


class _Render(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, h, z):
        return self.m.render_frame(h, z)


class LinearPolicyGraph(nn.Module):
    """The ARS policy a = clip(M (o - mean) / std, -1, 1) as a graph."""

    def __init__(self, M, mean, var):
        super().__init__()
        self.register_buffer("M", torch.as_tensor(np.asarray(M), dtype=torch.float32))
        self.register_buffer("mean", torch.as_tensor(np.asarray(mean), dtype=torch.float32))
        self.register_buffer("inv_std", torch.as_tensor(1.0 / np.sqrt(np.asarray(var) + 1e-8), dtype=torch.float32))

    def forward(self, obs):
        return torch.clamp(((obs - self.mean) * self.inv_std) @ self.M.T, -1.0, 1.0)


def _export(module: nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str]) -> None:
    axes = {n: {0: "batch"} for n in inputs + outputs}
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), args, buf, input_names=inputs, output_names=outputs,
                          dynamic_axes=axes, opset_version=OPSET, dynamo=False, do_constant_folding=True)
    path.write_bytes(buf.getvalue())


def rssm_graph_io(model) -> dict[str, tuple[list[str], list[str]]]:
    return {
        "reset": (["context_obs", "context_actions", "noise_context"], ["h", "z", "obs", "latent"]),
        "step": (["h", "z", "action", "noise_z"], ["next_h", "next_z", "obs", "reward", "terminated", "latent"]),
        "render": (["h", "z"], ["frame"]),
    }


def example_inputs(model, batch: int, context_length: int, rng: np.random.Generator) -> dict[str, dict[str, np.ndarray]]:
    """Random states, actions and noise for each graph (what the parity check feeds)."""
    c = model.cfg
    f = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    if c.classes:
        noise = lambda *s: -np.log(-np.log(rng.uniform(1e-6, 1 - 1e-6, s))).astype(np.float32)  # noqa: E731
        z = np.eye(c.classes, dtype=np.float32)[rng.integers(c.classes, size=(batch, c.stoch))].reshape(batch, -1)
    else:
        noise, z = f, f(batch, c.z_dim)
    a = rng.uniform(-1, 1, (batch, c.act_dim)).astype(np.float32)
    return {
        "reset": {"context_obs": f(batch, context_length, c.obs_dim),
                  "context_actions": rng.uniform(-1, 1, (batch, context_length, c.act_dim)).astype(np.float32),
                  "noise_context": noise(batch, context_length, *c.noise_shape)},
        "step": {"h": np.tanh(f(batch, c.deter)), "z": z, "action": a, "noise_z": noise(batch, *c.noise_shape)},
        "render": {"h": np.tanh(f(batch, c.deter)), "z": z},
    }


def export_rssm(model, out_dir: Path, context_length: int) -> dict[str, Path]:
    """Write reset.onnx, step.onnx and render.onnx for an RSSM into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    ex = example_inputs(model, 2, context_length, np.random.default_rng(0))
    mods = {"reset": _Reset(model), "step": _Step(model), "render": _Render(model)}
    paths = {}
    for g, (ins, outs) in rssm_graph_io(model).items():
        args = tuple(torch.from_numpy(ex[g][n]) for n in ins)
        paths[g] = out_dir / f"{g}.onnx"
        _export(mods[g], args, paths[g], ins, outs)
    return paths


def export_policy(policy: nn.Module, obs_dim: int, path: Path) -> Path:
    _export(policy, (torch.zeros(2, obs_dim),), path, ["obs"], ["action"])
    return path


def parity(model, graphs: dict[str, Path], context_length: int, batch: int = 64, seed: int = 0) -> dict[str, float]:
    """Max abs error, torch vs onnxruntime, of every output of every graph on random inputs."""
    import onnxruntime as ort

    ex = example_inputs(model, batch, context_length, np.random.default_rng(seed))
    mods = {"reset": _Reset(model), "step": _Step(model), "render": _Render(model)}
    report = {}
    for g, path in graphs.items():
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = sess.run(None, ex[g])
        with torch.no_grad():
            want = mods[g](*(torch.from_numpy(ex[g][n]) for n in rssm_graph_io(model)[g][0]))
        want = want if isinstance(want, tuple) else (want,)
        for o, w, y in zip(sess.get_outputs(), want, got):
            w = w.numpy()
            err = float(np.abs(w.astype(np.float64) - y.astype(np.float64)).max()) if w.size else 0.0
            report[f"{g}.{o.name}"] = err
    return report


def context_windows(episodes: list[dict], C: int, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """n real windows of C steps (obs and the actions before them) from aligned held-out episodes."""
    obs, act = [], []
    for _ in range(n):
        e = episodes[int(rng.integers(len(episodes)))]
        s = 0 if rng.random() < 0.1 else int(rng.integers(len(e["obs"]) - C + 1))
        obs.append(e["obs"][s:s + C]), act.append(e["prev_act"][s:s + C])
    return {"obs": np.stack(obs).astype(np.float32), "actions": np.stack(act).astype(np.float32)}


def write_bundle(out_dir: str | Path, *, model, manifest: dict[str, Any], contexts: dict[str, np.ndarray],
                 policy: nn.Module | None = None, card: Callable[[dict], str] | None = None) -> Path:
    """Export the graphs, write contexts.npz, the manifest (with sha256s) and the model card."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    C = manifest["context_length"]
    graphs = export_rssm(model, out, C)
    if policy is not None:
        graphs["policy"] = export_policy(policy, model.cfg.obs_dim, out / "policy.onnx")
    np.savez_compressed(out / "contexts.npz", **contexts)
    io_map = rssm_graph_io(model) | {"policy": (["obs"], ["action"])}
    manifest = {"format_version": FORMAT_VERSION, **manifest}
    manifest["graphs"] = {g: {"file": p.name, "sha256": sha256_file(p), "inputs": io_map[g][0], "outputs": io_map[g][1]}
                          for g, p in graphs.items()}
    manifest["contexts"] = {"file": "contexts.npz", "sha256": sha256_file(out / "contexts.npz"),
                            "windows": int(len(contexts["obs"]))}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    finalize(out, card)
    return out


def finalize(out: Path, card: Callable[[dict], str] | None = None) -> dict:
    """Rewrite the model card from the manifest and refresh the hashes of the other files."""
    manifest = json.loads((out / MANIFEST).read_text())
    if card is not None:
        (out / "README.md").write_text(card(manifest))
    manifest["files"] = {p.name: sha256_file(p) for p in sorted(out.iterdir())
                         if p.is_file() and p.suffix in (".md", ".gif", ".png")}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    Bundle.load(out)  # refuse to leave a bundle behind that the runtime would refuse
    return manifest


def rssm_manifest(model, *, id: str, description: str, source: dict, observation_space, action_space,
                  context_length: int, max_episode_steps: int, render_fps: int, keymap: dict | None = None,
                  action_meanings: list[str] | None = None, license: str = "MIT") -> dict[str, Any]:
    """The manifest fields an RSSM bundle needs (graphs and hashes are added by `write_bundle`)."""
    c = model.cfg
    dist = "gumbel" if c.classes else "normal"
    n_params = sum(p.numel() for p in model.parameters())
    return {
        "id": id, "family": "rssm", "description": description, "source": source,
        "observation_space": space_to_json(observation_space), "action_space": space_to_json(action_space),
        "obs_modes": ["state", "pixels", "latent"],
        "state": [{"name": "h", "shape": [c.deter], "dtype": "float32"},
                  {"name": "z", "shape": [c.z_dim], "dtype": "float32"}],
        "noise": [{"name": "noise_context", "graph": "reset", "shape": [context_length, *c.noise_shape], "distribution": dist},
                  {"name": "noise_z", "graph": "step", "shape": list(c.noise_shape), "distribution": dist}],
        "latent_dim": c.feat_dim,
        "frame_shape": [c.frame_size, c.frame_size, 3],
        "context_length": context_length, "max_episode_steps": max_episode_steps, "render_fps": render_fps,
        "keymap": keymap or {}, "action_meanings": action_meanings,
        "model": {"config": dataclasses.asdict(c), "parameters": int(n_params),
                  "step_parameters": int(n_params - sum(p.numel() for p in model.frame_decoder.parameters())),
                  "step_macs": int(model.step_macs())},
        "metrics": {}, "license": license,
    }

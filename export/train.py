"""Training loop: progress bar, periodic held-out evaluation, checkpoint and resume.

Checkpoints are ``.npz`` files of named arrays plus a JSON string (config, step, optimizer state),
never pickles, so a checkpoint is safe to open and loads with ``allow_pickle=False``.
Two phases: first the frame decoder on (obs, frame) pairs (the outboard renderer, then frozen),
then the dynamics on sequences.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .data import FrameSampler, SequenceSampler


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 3000
    """dynamics updates"""
    frame_steps: int = 1500
    """frame-decoder updates, done first"""
    batch: int = 32
    """sequences per dynamics update"""
    seq_len: int = 50
    """steps per training sequence"""
    frame_batch: int = 64
    """frames per frame-decoder update"""
    lr: float = 6e-4
    """Adam learning rate (cosine-decayed to a tenth)"""
    grad_clip: float = 100.0
    """gradient norm clip"""
    eval_every: int = 250
    """held-out evaluation period, in updates"""
    ckpt_every: int = 500
    """checkpoint period, in updates"""
    seed: int = 0
    """seed of torch and the samplers"""
    threads: int = 0
    """torch threads (0: torch's default)"""


def save_checkpoint(path: Path, model: torch.nn.Module, opts: dict[str, torch.optim.Optimizer], meta: dict) -> None:
    arrays = {f"model/{k}": v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    opt_meta = {}
    for name, opt in opts.items():
        sd = opt.state_dict()
        for pid, st in sd["state"].items():
            for k, v in st.items():
                if torch.is_tensor(v):
                    arrays[f"opt/{name}/{pid}/{k}"] = v.cpu().numpy()
        opt_meta[name] = sd["param_groups"]
    meta = {**meta, "opt_groups": opt_meta}
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, meta=np.array(json.dumps(meta)), **arrays)
    tmp.replace(path)


def load_checkpoint(path: Path, model: torch.nn.Module | None = None, opts: dict | None = None) -> dict:
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        arrays = {k: z[k] for k in z.files if k != "meta"}
    if model is not None:
        sd = {k[6:]: torch.from_numpy(v) for k, v in arrays.items() if k.startswith("model/")}
        model.load_state_dict(sd)
    for name, opt in (opts or {}).items():
        state: dict = {}
        for k, v in arrays.items():
            if k.startswith(f"opt/{name}/"):
                _, _, pid, key = k.split("/", 3)
                state.setdefault(int(pid), {})[key] = torch.from_numpy(v)
        opt.load_state_dict({"state": state, "param_groups": meta["opt_groups"][name]})
    return meta


def _t(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x))


def train(model, train_eps, heldout_eps, cfg: TrainConfig, out_dir: str | Path, progress: bool = True,
          log=print) -> dict:
    """Train `model` (which has `loss` and `frame_loss`) and write ``model.npz`` and ``log.jsonl``."""
    from tqdm.auto import tqdm

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    frame_params = list(model.frame_decoder.parameters())
    ids = {id(p) for p in frame_params}
    dyn_params = [p for p in model.parameters() if id(p) not in ids]
    opts = {"frames": torch.optim.Adam(frame_params, lr=cfg.lr), "dynamics": torch.optim.Adam(dyn_params, lr=cfg.lr)}
    ckpt = out / "model.npz"
    step, wall = 0, 0.0
    if ckpt.exists():
        meta = load_checkpoint(ckpt, model, opts)
        step, wall = meta["step"], meta.get("wall_s", 0.0)
        log(f"resumed from {ckpt} at update {step}")
    total = cfg.frame_steps + cfg.steps
    has_frames = any("frames" in e for e in train_eps)
    seqs = SequenceSampler(train_eps, cfg.seq_len, cfg.seed)
    held = SequenceSampler(heldout_eps, cfg.seq_len, cfg.seed + 1)
    frames = FrameSampler(train_eps, cfg.seed) if has_frames else None
    held_frames = FrameSampler(heldout_eps, cfg.seed + 1) if has_frames else None
    logf = open(out / "log.jsonl", "a")
    bar = tqdm(total=total, initial=step, desc="train", disable=not progress, unit="upd")
    t0 = time.time() - wall
    last: dict = {}
    while step < total:
        model.train()
        phase = "frames" if step < cfg.frame_steps else "dynamics"
        if phase == "frames" and frames is None:
            step = cfg.frame_steps
            continue
        n_phase = cfg.frame_steps if phase == "frames" else cfg.steps
        k = step if phase == "frames" else step - cfg.frame_steps
        lr = cfg.lr * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * k / max(n_phase, 1))))
        opt = opts[phase]
        for g in opt.param_groups:
            g["lr"] = lr
        if phase == "frames":
            o, f = frames.sample(cfg.frame_batch)
            loss, logs = model.frame_loss(_t(o), _t(f))
        else:
            b = {k2: _t(v) for k2, v in seqs.sample(cfg.batch).items()}
            loss, logs = model.loss(b["obs"], b["prev_act"], b["reward"], b["cont"], b["mask"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], cfg.grad_clip)
        opt.step()
        step += 1
        bar.update(1)
        bar.set_postfix({k2: f"{v:.3g}" for k2, v in list(logs.items())[:4]})
        if step % cfg.eval_every == 0 or step == total or step == cfg.frame_steps:
            model.eval()
            with torch.no_grad():
                if phase == "frames":
                    o, f = held_frames.sample(256)
                    _, ev = model.frame_loss(_t(o), _t(f))
                else:
                    b = {k2: _t(v) for k2, v in held.sample(64).items()}
                    _, ev = model.loss(b["obs"], b["prev_act"], b["reward"], b["cont"], b["mask"])
            last = {"step": step, "phase": phase, "wall_s": round(time.time() - t0, 1),
                    "train": logs, "heldout": ev}
            logf.write(json.dumps(last) + "\n")
            logf.flush()
        if step % cfg.ckpt_every == 0 or step == total or step == cfg.frame_steps:
            save_checkpoint(ckpt, model, opts, {"step": step, "wall_s": time.time() - t0,
                                                "model_config": dataclasses.asdict(model.cfg),
                                                "train_config": dataclasses.asdict(cfg)})
    bar.close()
    logf.close()
    return {"step": step, "wall_s": time.time() - t0, "last_eval": last}

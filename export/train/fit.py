"""The one training loop: every model that is trained (an RSSM's frame decoder and dynamics, a TSSM, the
REM tokenizer and world model) goes through `fit`.

Phases differ only in what is passed in: the module (checkpointed), the parameters to update, a batch
sampler, a `loss(batch) -> (loss, logs)` callable, a held-out evaluation and a `FitConfig`. The loop gives
them all the same things: a tqdm bar, the learning-rate schedule (`lr_at`), gradient clipping, periodic
held-out evaluation into ``log.jsonl``, and resumable checkpoints.

Checkpoints are ``.npz`` files of named arrays plus a JSON string (config, step, optimizer state), never
pickles, so a checkpoint is safe to open and loads with ``allow_pickle=False``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch


@dataclass(frozen=True)
class FitConfig:
    steps: int = 1000
    """updates"""
    batch: int = 16
    """items (sequences, frames) per update"""
    lr: float = 6e-4
    """peak learning rate (Adam, or AdamW with weight_decay > 0)"""
    warmup: int = 0
    """updates of linear warm-up before the cosine decay to a tenth of lr"""
    weight_decay: float = 0.0
    """AdamW weight decay (0: plain Adam)"""
    grad_clip: float = 0.0
    """clip the gradient norm to this (0: no clipping)"""
    eval_every: int = 250
    """held-out evaluation period, in updates (and at the end)"""
    ckpt_every: int = 250
    """checkpoint period, in updates (and at the end)"""
    seed: int = 0
    """seed of torch for this phase"""


def lr_at(step: int, cfg: FitConfig) -> float:
    """Linear warm-up over `cfg.warmup` updates, then cosine from lr down to lr / 10 at `cfg.steps`."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / max(cfg.steps, 1))))


# -- checkpoints ----------------------------------------------------------------------------------------
def save_checkpoint(path: Path, model: torch.nn.Module, opts: dict[str, torch.optim.Optimizer], meta: dict) -> None:
    """`model`'s state dict under model/..., each optimizer's state under opt/NAME/..., `meta` as JSON."""
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
    path = Path(path)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, meta=np.array(json.dumps(meta)), **arrays)
    tmp.replace(path)


def load_checkpoint(
    path: Path, model: torch.nn.Module | None = None, opts: dict | None = None, prefix: str = ""
) -> dict:
    """Load what `save_checkpoint` wrote (into `model` and the optimizers named in `opts`); returns the meta.
    `prefix`: load only the model arrays under that sub-module (e.g. "frame_decoder.")."""
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        arrays = {k: z[k] for k in z.files if k != "meta"}
    if model is not None:
        sd = {k[6 + len(prefix) :]: torch.from_numpy(v) for k, v in arrays.items() if k.startswith("model/" + prefix)}
        # a buffer added to a model after the checkpoint was written (statistics its recipe sets from the data
        # before training) keeps the value it has; a missing or unknown weight is an error
        missing, unexpected = model.load_state_dict(sd, strict=False)
        params = {n for n, _ in model.named_parameters()}
        if unexpected or any(k in params for k in missing):
            raise RuntimeError(f"{path}: does not fit the model (missing {missing}, unexpected {unexpected})")
    for name, opt in (opts or {}).items():
        state: dict = {}
        for k, v in arrays.items():
            if k.startswith(f"opt/{name}/"):
                _, _, pid, key = k.split("/", 3)
                state.setdefault(int(pid), {})[key] = torch.from_numpy(v)
        opt.load_state_dict({"state": state, "param_groups": meta["opt_groups"][name]})
    return meta


def checkpoint_step(path: Path) -> int:
    """Updates a checkpoint holds (0 when there is none)."""
    return int(load_checkpoint(path)["step"]) if Path(path).exists() else 0


def last_eval(out_dir: Path, name: str) -> dict:
    """The last held-out evaluation `fit` logged for phase `name` in `out_dir/log.jsonl` ({} if none)."""
    path = Path(out_dir) / "log.jsonl"
    if not path.exists():
        return {}
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut short by a process killed while writing it
            continue
    rows = [r for r in rows if r.get("phase", name) == name]
    return rows[-1] if rows else {}


# -- the loop -------------------------------------------------------------------------------------------
def fit(
    module: torch.nn.Module,
    loss: Callable[[Any], tuple[torch.Tensor, dict]],
    sample: Callable[[int], Any],
    cfg: FitConfig,
    out_dir: str | Path,
    *,
    name: str = "model",
    params: Iterable[torch.nn.Parameter] | None = None,
    heldout: Callable[[], dict] | None = None,
    on_step: Callable[[int, dict], None] | None = None,
    meta: dict | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> dict:
    """Train `params` (default: all of `module`'s) for `cfg.steps` updates of `loss(sample(cfg.batch))`.

    Writes ``out_dir/NAME.npz`` (module, optimizer, step, wall time; resumed from when present) and appends
    held-out evaluations (`heldout()`, run under no_grad in eval mode) to ``out_dir/log.jsonl``.
    `on_step(step, logs)` runs after each update (before logging, so it may pop non-scalar logs), e.g. the
    tokenizer's dead-code restarts. Returns {"step", "wall_s" (training time summed over resumes),
    "last_eval"}."""
    from tqdm.auto import tqdm

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    params = list(module.parameters() if params is None else params)
    opt_cls = torch.optim.AdamW if cfg.weight_decay else torch.optim.Adam
    opt = opt_cls(params, lr=cfg.lr, **({"weight_decay": cfg.weight_decay} if cfg.weight_decay else {}))
    ckpt = out / f"{name}.npz"
    step, wall = 0, 0.0
    if ckpt.exists():
        saved = load_checkpoint(ckpt)
        groups = saved.get("opt_groups", {})
        # older checkpoints named their one optimizer after their loop ("tok", "world")
        key = name if name in groups else next(iter(groups)) if len(groups) == 1 else None
        step, wall = int(saved["step"]), float(saved.get("wall_s", 0.0))
        # a finished phase needs its weights only (its optimizer may have held parameters it no longer trains)
        load_checkpoint(ckpt, module, {key: opt} if key and step < cfg.steps else {})
        if step < cfg.steps:
            log(f"{name}: resumed from {ckpt} at update {step}")
    last = last_eval(out, name)
    t0 = time.time() - wall
    logf = open(out / "log.jsonl", "a")
    bar = tqdm(total=cfg.steps, initial=min(step, cfg.steps), desc=name, disable=not progress, unit="upd")
    try:
        while step < cfg.steps:
            module.train()
            for g in opt.param_groups:
                g["lr"] = lr_at(step, cfg)
            value, logs = loss(sample(cfg.batch))
            opt.zero_grad(set_to_none=True)
            value.backward()
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            opt.step()
            step += 1
            wall = time.time() - t0
            if on_step is not None:
                on_step(step, logs)
            bar.update(1)
            bar.set_postfix({k: f"{v:.3g}" for k, v in list(logs.items())[:4] if isinstance(v, (int, float))})
            if heldout is not None and (step % cfg.eval_every == 0 or step == cfg.steps):
                module.eval()
                with torch.no_grad():
                    ev = heldout()
                last = {"step": step, "phase": name, "wall_s": round(time.time() - t0, 1), "train": logs, "heldout": ev}
                logf.write(json.dumps(last) + "\n")
                logf.flush()
            if step % cfg.ckpt_every == 0 or step == cfg.steps:
                save_checkpoint(
                    ckpt,
                    module,
                    {name: opt},
                    {**(meta or {}), "step": step, "wall_s": wall, "fit": dataclasses.asdict(cfg)},
                )
    finally:
        bar.close()
        logf.close()
    module.eval()
    # training time only: a resumed run with nothing left to do reports the time it was trained for
    return {"step": step, "wall_s": round(wall, 1), "last_eval": last}


def fit_frame_decoder(model, train_eps: list[dict], held_eps: list[dict], cfg: FitConfig, out_dir, **kw) -> dict:
    """The vector families' first phase: the outboard frame decoder on (obs, frame) pairs of the episodes that
    carry frames (held out: those of `held_eps`, else the training ones). `kw` goes to `fit` (meta, progress)."""
    from dreamgym.export.data.episodes import FrameSampler

    t = lambda x: torch.from_numpy(np.ascontiguousarray(x))  # noqa: E731
    frames = FrameSampler(train_eps, cfg.seed)
    held = FrameSampler([e for e in held_eps if "frames" in e] or train_eps, cfg.seed + 1)
    loss = lambda b: model.frame_loss(*b)  # noqa: E731
    return fit(
        model.frame_decoder,
        loss,
        lambda n: tuple(map(t, frames.sample(n))),
        cfg,
        out_dir,
        name="frames",
        heldout=lambda: loss(tuple(map(t, held.sample(256))))[1],
        **kw,
    )

"""Why Dream-SimpleTag-v0 v1 is a memoryless step with speed caps: a one-step probe on the recipe's games.

    python benchmarks/studies/tag_onestep.py [--hidden 256] [--updates 3000] [--cap] [--margin 0.001]

Fits o' = o + [L(x) + MLP(x)] · std(Δ), x = [standardised o, every action, every pair's overlap]
(`dreamgym.export.families.joint.Contacts`), on the recipe's 400 training games (batches of 1024 transitions, Adam,
cosine to zero), optionally with every velocity's length capped at the fastest in the training data
(`--cap`, as `JointMLP` does) and MPE's softened penetration (`--margin`). Prints, on the 24 held-out games:
each agent's std. RMSE ÷ copy-last at h = 1 / 5 / 10 / 25 / 50 open loop from the evaluator's windows, and
how the one-step error splits between steps with a contact (two bodies overlapping), steps where a speed
is at its cap, and the rest. The games are collected as the recipe does (seeds 1 and 2) when missing.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from dreamgym.export.data import mpe
from dreamgym.export.families.joint import Contacts
from dreamgym.export.families.joint_mlp import JointMLPConfig
from dreamgym.export.train.recipes.simple_tag import AGENT_SIZES

OWN_SPEED = (0, 14, 28)  # each agent's own velocity


def games(folder: Path, n: int, seed: int) -> list[dict]:
    if len(list(folder.glob("episode_*.npz"))) < n:
        mpe.collect(folder, n, mpe.BEHAVIOURS, seed=seed, max_cycles=mpe.TAG["max_cycles"])
    return mpe.load(folder)[:n]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="runs/simple-tag")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--updates", type=int, default=3000)
    ap.add_argument("--cap", action="store_true")
    ap.add_argument("--margin", type=float, default=0.0)
    a = ap.parse_args(argv)
    torch.manual_seed(0)
    train, held = games(Path(a.data) / "train", 400, 1), games(Path(a.data) / "heldout", 24, 2)
    t = lambda x: torch.from_numpy(np.asarray(x, np.float32))  # noqa: E731
    o0 = np.concatenate([e["obs"][:-1] for e in train])
    o1 = np.concatenate([e["obs"][1:] for e in train])
    act = t(np.concatenate([e["prev_act"][1:] for e in train]))
    mean, std, dstd = t(o0.mean(0)), t(np.maximum(o0.std(0), 1e-3)), t(np.maximum((o1 - o0).std(0), 1e-4))
    slots = mpe.SPEED_SLOTS
    top = t([max(float(np.sqrt((e["obs"][:, i : i + 2] ** 2).sum(-1)).max()) for e in train) for i in slots])
    o0, o1 = t(o0), t(o1)
    contacts = Contacts(JointMLPConfig(**AGENT_SIZES, **mpe.scene(), contact_margin=a.margin))
    k = 40 + 15 + contacts.size
    lin = nn.Linear(k, 40)
    h = a.hidden
    mlp = nn.Sequential(
        nn.Linear(k, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, 40)
    )

    def step(o, u):
        x = torch.cat([(o - mean) / std, u, contacts(o)], -1)
        o = o + (lin(x) + mlp(x)) * dstd
        if not a.cap:
            return o
        parts, prev = [], 0
        for j, i in enumerate(slots):
            v = o[:, i : i + 2]
            n = torch.sqrt((v * v).sum(-1, keepdim=True) + 1e-12)
            parts += [o[:, prev:i], v * torch.clamp(top[j] / n, max=1.0)]
            prev = i + 2
        return torch.cat([*parts, o[:, prev:]], -1)

    opt = torch.optim.Adam([*lin.parameters(), *mlp.parameters()], 1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, a.updates)
    t0 = time.time()
    for _ in range(a.updates):
        idx = torch.randint(0, len(o0), (1024,))
        loss = (((step(o0[idx], act[idx]) - o1[idx]) / dstd) ** 2).mean()
        opt.zero_grad(), loss.backward(), opt.step(), sched.step()
    print(f"{a.updates} updates in {time.time() - t0:.0f} s, last loss {loss.item():.2e}")

    C, H = 10, 50  # the joint evaluator's windows
    starts = [(i, s) for i, e in enumerate(held) for s in range(0, len(e["obs"]) - C - H + 1, 25)]
    o = t(np.stack([held[i]["obs"][s + C - 1] for i, s in starts]))
    last, pred, true = o.numpy(), [], []
    with torch.no_grad():
        for hh in range(1, H + 1):
            o = step(o, t(np.stack([held[i]["prev_act"][s + C - 1 + hh] for i, s in starts])))
            pred.append(o.numpy()), true.append(np.stack([held[i]["obs"][s + C - 1 + hh] for i, s in starts]))
    pred, true = np.stack(pred, 1), np.stack(true, 1)
    every = np.concatenate([e["obs"] for e in held])
    print("std. RMSE ÷ copy-last at h = 1 / 5 / 10 / 25 / 50:")
    for (name, _, _), lo, hi in zip(mpe.AGENTS, (0, 14, 28), (14, 28, 40)):
        s = np.maximum(every[:, lo:hi].std(0), 1e-3)
        err = np.sqrt((((pred[..., lo:hi] - true[..., lo:hi]) / s) ** 2).mean((0, 2)))
        base = np.sqrt((((last[:, None, lo:hi] - true[..., lo:hi]) / s) ** 2).mean((0, 2)))
        print(f"  {name}: " + " / ".join(f"{err[x - 1] / base[x - 1]:.3f}" for x in (1, 5, 10, 25, 50)))

    h0 = t(np.concatenate([e["obs"][:-1] for e in held]))
    h1 = t(np.concatenate([e["obs"][1:] for e in held]))
    ha = t(np.concatenate([e["prev_act"][1:] for e in held]))
    with torch.no_grad():
        e = (((step(h0, ha) - h1) / dstd) ** 2).mean(-1)
        touching = (contacts(h0)[:, : contacts.size // 3] > 0).any(-1)
    speed = torch.stack([torch.sqrt((h1[:, i : i + 2] ** 2).sum(-1)) for i in OWN_SPEED], -1)
    capped = (speed >= top[[0, 2, 4]] - 1e-3).any(-1)
    print(f"held-out one-step error (squared, in units of the change's std): mean {e.mean():.2e}")
    for name, m in (("contact", touching), ("at a speed cap", capped & ~touching), ("neither", ~capped & ~touching)):
        print(f"  {name}: {m.float().mean():.1%} of steps, {e[m].sum() / e.sum():.1%} of the error")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

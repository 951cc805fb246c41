"""Would HalfCheetah take the step that made Dream-SimpleTag-v0 true? A memoryless one-step probe.

    python benchmarks/studies/cheetah_markov.py [--hidden 256] [--updates 20000] [--out runs/cheetah-markov]

HalfCheetah-v5's observation is its whole state but the x position (qpos[1:], qvel), and the simulator is
deterministic, so, as for simple_tag, the next observation is a function of this one and the action. This
collects 120 training and 16 held-out episodes without frames (behaviours: random, bang, ou, sine, mixed and
the shipped bundle's ARS policy with 0 / 0.1 / 0.3 action noise), fits o' = o + [L(x) + MLP(x)] · std(Δ),
x = [standardised o, action] (three SiLU layers, batches of 1024 transitions, Adam, cosine to zero), and
prints the std. RMSE ÷ copy-last at h = 1 / 10 / 50 / 100 open loop from every 50th step of the held-out
episodes (C = 10), the shipped RSSM card's measure (its card: 0.19 / 0.21 / 0.29 / 0.27).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
import torch.nn as nn

from dreamgym.export.data.collect import CollectConfig, collect, load_episodes

MIX = ("random", "bang", "ou", "sine", "mixed", "policy:0.1", "policy:0.3", "policy:0.0")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--updates", type=int, default=20000)
    ap.add_argument("--out", default="runs/cheetah-markov")
    a = ap.parse_args(argv)
    torch.manual_seed(0)
    root = Path(a.out)
    sess = ort.InferenceSession("assets/halfcheetah-rssm/policy.onnx", providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    policy = lambda o: sess.run(None, {name: np.asarray(o, np.float32)[None]})[0][0]  # noqa: E731
    collect(CollectConfig(behaviours=MIX, episodes=120, frame_size=0, seed=0), root / "train", policy, progress=False)
    collect(CollectConfig(behaviours=MIX, episodes=16, frame_size=0, seed=1), root / "heldout", policy, progress=False)
    train, held = list(load_episodes(root / "train")), list(load_episodes(root / "heldout"))
    t = lambda x: torch.from_numpy(np.asarray(x, np.float32))  # noqa: E731
    o0 = np.concatenate([e["obs"][:-1] for e in train])
    o1 = np.concatenate([e["obs"][1:] for e in train])
    act = t(np.concatenate([e["actions"] for e in train]))
    mean, std, dstd = t(o0.mean(0)), t(np.maximum(o0.std(0), 1e-3)), t(np.maximum((o1 - o0).std(0), 1e-4))
    o0, o1 = t(o0), t(o1)
    k, h = 17 + 6, a.hidden
    lin = nn.Linear(k, 17)
    mlp = nn.Sequential(
        nn.Linear(k, h), nn.SiLU(), nn.Linear(h, h), nn.SiLU(), nn.Linear(h, h), nn.SiLU(), nn.Linear(h, 17)
    )

    def step(o, u):
        x = torch.cat([(o - mean) / std, u], -1)
        return o + (lin(x) + mlp(x)) * dstd

    opt = torch.optim.Adam([*lin.parameters(), *mlp.parameters()], 1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, a.updates)
    t0 = time.time()
    for _ in range(a.updates):
        idx = torch.randint(0, len(o0), (1024,))
        loss = (((step(o0[idx], act[idx]) - o1[idx]) / dstd) ** 2).mean()
        opt.zero_grad(), loss.backward(), opt.step(), sched.step()
    print(f"{a.updates} updates in {time.time() - t0:.0f} s, last loss {loss.item():.2e}")

    C, H = 10, 100
    starts = [(i, s) for i, e in enumerate(held) for s in range(0, len(e["obs"]) - C - H, 50)]
    o = t(np.stack([held[i]["obs"][s + C - 1] for i, s in starts]))
    last, pred, true = o.numpy(), [], []
    with torch.no_grad():
        for hh in range(1, H + 1):
            o = step(o, t(np.stack([held[i]["actions"][s + C - 2 + hh] for i, s in starts])))
            pred.append(o.numpy()), true.append(np.stack([held[i]["obs"][s + C - 1 + hh] for i, s in starts]))
    pred, true = np.stack(pred, 1), np.stack(true, 1)
    s = np.maximum(np.concatenate([e["obs"] for e in held]).std(0), 1e-3)
    err = np.sqrt((((pred - true) / s) ** 2).mean((0, 2)))
    base = np.sqrt((((last[:, None] - true) / s) ** 2).mean((0, 2)))
    ratios = " / ".join(f"{err[x - 1] / base[x - 1]:.3f}" for x in (1, 10, 50, 100))
    print(f"{len(starts)} windows: std. RMSE ÷ copy-last at h = 1 / 10 / 50 / 100: {ratios}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

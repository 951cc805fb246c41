"""Would a MOPO/MBPO-style dream transfer? An ensemble of memoryless HalfCheetah steps, tried before it is built.

    python benchmarks/ensemble_trial.py --horizon 5 --penalty 1.0 --steps 100000 --out runs/ens-h5-l1

`branch_trial.py` showed that short dreams from real states are not enough with the shipped RSSM: after 20k
SAC steps in 5-step dreams, the shipped dream rates the learner about 4,400 from real starts, and reality
about −290. The exploit is in the model's one-step answer to the learner's actions, and the bundle's
uncertainty (five small heads on one shared recurrent state) does not see it. MBPO and MOPO instead use an
ensemble of whole dynamics models, each fitted on its own draw of the data, and MOPO takes their
disagreement off the reward.

HalfCheetah-v5's observation is its state less the x position, and the simulator is deterministic, so each
member is a memoryless step: [standardised o, a] -> standardised [o' - o, r], four SiLU layers (--hidden
wide), fitted by mean squared error on the recipe's training data (re-collected without frames into --data),
each member on its own random batches. The learner's env (plain torch, no ONNX: this is a trial) starts from
a random state of the data (a tenth at an episode's start), steps with one member drawn at random per step
(MBPO), pays reward minus --penalty × the members' disagreement (the norm of their standard deviation on the
standardised next observation: MOPO), and ends after --horizon steps (a truncation, through which SB3
bootstraps). SB3 SAC with its defaults trains there; at --evals points its deterministic policy runs 10
seeded real episodes (as `dreamgym transfer` does) and the ensemble's mean dream from the same real states
after C = 10 steps (the calibration pair). Results go to OUT/ensemble-trial.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn

from dreamgym.export.recipes.halfcheetah_rssm import frameless_data
from dreamgym.export.transfer import real_returns
from dreamgym.source import open_source_env

C, T = 10, 1000


class Ensemble(nn.Module):
    """K MLPs evaluated together: x [K, B, din] -> [K, B, dout]."""

    def __init__(self, k: int, din: int, dout: int, hidden: int, layers: int):
        super().__init__()
        dims = [din] + [hidden] * layers + [dout]
        self.w = nn.ParameterList(
            nn.Parameter(torch.randn(k, i, o) * (1.0 / i) ** 0.5) for i, o in zip(dims[:-1], dims[1:], strict=True)
        )
        self.b = nn.ParameterList(nn.Parameter(torch.zeros(k, 1, o)) for o in dims[1:])

    def forward(self, x):
        for i, (w, b) in enumerate(zip(self.w, self.b, strict=True)):
            x = torch.baddbmm(b, x, w)
            if i < len(self.w) - 1:
                x = torch.nn.functional.silu(x)
        return x


class Dynamics:
    """The fitted ensemble with its standardisation: predict(o, a) -> (next obs [K, B, 17], reward [K, B])."""

    def __init__(self, model: Ensemble, stats: dict):
        self.model, self.s = model, {k: torch.as_tensor(v, dtype=torch.float32) for k, v in stats.items()}

    @torch.no_grad()
    def predict(self, o: np.ndarray, a: np.ndarray):
        s = self.s
        x = torch.cat(
            [(torch.as_tensor(o, dtype=torch.float32) - s["om"]) / s["os"], torch.as_tensor(a, dtype=torch.float32)], -1
        )
        y = self.model(x.expand(len(self.model.w[0]), *x.shape))
        nxt = torch.as_tensor(o, dtype=torch.float32) + y[..., :17] * s["ds"] + s["dm"]
        rew = y[..., 17] * s["rs"] + s["rm"]
        return nxt.numpy(), rew.numpy(), y[..., :17].std(0).norm(dim=-1).numpy()


def transitions(eps: list[dict]) -> tuple[np.ndarray, ...]:
    o0 = np.concatenate([e["obs"][:-1] for e in eps]).astype(np.float32)
    o1 = np.concatenate([e["obs"][1:] for e in eps]).astype(np.float32)
    a = np.concatenate([e["prev_act"][1:] for e in eps]).astype(np.float32)  # aligned: the action into obs[t]
    r = np.concatenate([e["reward"][1:] for e in eps]).astype(np.float32)
    return o0, a, o1, r


def fit_ensemble(eps: list[dict], k: int, hidden: int, layers: int, updates: int, batch: int, seed: int, log):
    torch.manual_seed(seed)
    o0, a, o1, r = transitions(eps)
    d = o1 - o0
    stats = {
        "om": o0.mean(0), "os": np.maximum(o0.std(0), 1e-3), "dm": d.mean(0), "ds": np.maximum(d.std(0), 1e-4),
        "rm": np.float32(r.mean()), "rs": np.float32(max(r.std(), 1e-3)),
    }  # fmt: skip
    X = torch.from_numpy(np.concatenate([(o0 - stats["om"]) / stats["os"], a], 1))
    Y = torch.from_numpy(
        np.concatenate([(d - stats["dm"]) / stats["ds"], ((r - stats["rm"]) / stats["rs"])[:, None]], 1)
    )
    model = Ensemble(k, X.shape[1], Y.shape[1], hidden, layers)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, updates)
    g = torch.Generator().manual_seed(seed)
    t0 = time.time()
    for i in range(updates):
        idx = torch.randint(len(X), (k, batch), generator=g)
        loss = ((model(X[idx]) - Y[idx]) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if i % 2000 == 0 or i == updates - 1:
            log(f"fit {i:6d} loss {loss.item():.4f} {time.time() - t0:.0f} s")
    return Dynamics(model.eval(), stats)


def open_loop(dyn: Dynamics, eps: list[dict], horizons=(1, 10, 50, 100), every: int = 50) -> dict:
    """Std. RMSE of the ensemble mean open loop ÷ copy-last, from every `every`-th step after C (the cards' measure)."""
    H = max(horizons)
    err = {h: [] for h in horizons}
    base = {h: [] for h in horizons}
    s = dyn.s["os"].numpy()
    starts = [(e, t) for e in eps for t in range(C, len(e["obs"]) - H, every)]
    o = np.stack([e["obs"][t] for e, t in starts])
    for h in range(1, H + 1):
        a = np.stack([e["prev_act"][t + h] for e, t in starts])
        nxt, _, _ = dyn.predict(o, a)
        o = nxt.mean(0)
        if h in err:
            real = np.stack([e["obs"][t + h] for e, t in starts])
            last = np.stack([e["obs"][t] for e, t in starts])
            err[h] = float(np.sqrt((((o - real) / s) ** 2).mean()))
            base[h] = float(np.sqrt((((last - real) / s) ** 2).mean()))
    return {h: err[h] / base[h] for h in horizons}


class EnsembleDream(gym.Env):
    """The learner's dream: starts from data states, one random member per step, MOPO penalty, H steps."""

    def __init__(self, dyn: Dynamics, starts: np.ndarray, first: np.ndarray, horizon: int, penalty: float):
        self.dyn, self.starts, self.first, self.h, self.lam = dyn, starts, first, horizon, penalty
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (17,), np.float64)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (6,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        pool = self.first if self.np_random.random() < 0.1 else self.starts
        self.o, self.t = pool[self.np_random.integers(len(pool))].astype(np.float32), 0
        return self.o.astype(np.float64), {}

    def step(self, action):
        a = np.clip(np.asarray(action, np.float32), -1, 1)[None]
        nxt, rew, u = self.dyn.predict(self.o[None], a)
        k = self.np_random.integers(len(nxt))
        self.o, self.t = nxt[k, 0], self.t + 1
        r = float(rew[k, 0]) - self.lam * float(u[0])
        return self.o.astype(np.float64), r, False, self.t >= self.h, {"uncertainty": float(u[0])}


def dream_from(dyn: Dynamics, context_obs: np.ndarray, act, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Ensemble-mean dream of `steps` steps from each real state: (raw returns, mean disagreement)."""
    o = context_obs[:, -1].astype(np.float32)
    ret, unc = np.zeros(len(o)), np.zeros(len(o))
    for _ in range(steps):
        nxt, rew, u = dyn.predict(o, np.asarray(act(o), np.float32))
        o = nxt.mean(0)
        ret += rew.mean(0)
        unc += u / steps
    return ret, unc


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--members", type=int, default=5)
    ap.add_argument("--hidden", type=int, default=200)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--updates", type=int, default=20000)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--horizon", type=int, default=5)
    ap.add_argument("--penalty", type=float, default=1.0)
    ap.add_argument("--steps", type=int, default=100_000)
    ap.add_argument("--evals", type=int, default=5)
    ap.add_argument("--episodes", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--data", default="runs/halfcheetah-noframes")
    ap.add_argument("--out", default="runs/ens")
    a = ap.parse_args(argv)
    from stable_baselines3 import SAC
    from stable_baselines3.common.env_util import make_vec_env

    if a.threads:
        torch.set_num_threads(a.threads)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    log = lambda s: print(s, flush=True)  # noqa: E731
    _, eps = frameless_data(a.data, ("train", "wide"), progress=False)
    _, held = frameless_data(a.data, ("heldout",), progress=False)
    ck = out / "ensemble.pt"
    if ck.exists():
        saved = torch.load(ck, weights_only=True)
        model = Ensemble(a.members, 23, 18, a.hidden, a.layers)
        model.load_state_dict(saved["model"])
        dyn = Dynamics(model.eval(), {k: v.numpy() for k, v in saved["stats"].items()})
    else:
        dyn = fit_ensemble(eps, a.members, a.hidden, a.layers, a.updates, a.batch, a.seed, log)
        torch.save({"model": dyn.model.state_dict(), "stats": dyn.s}, ck)
    fid = open_loop(dyn, held)
    o0, a0, _, _ = transitions(held)
    u_held = dyn.predict(o0, a0)[2]
    log(
        f"open loop ÷ copy-last {fid}; held-out disagreement median {np.median(u_held):.3f} p99 {np.quantile(u_held, 0.99):.3f}"
    )
    starts = np.concatenate([e["obs"][:-1] for e in eps])
    first = np.stack([e["obs"][0] for e in eps])
    venv = make_vec_env(lambda: EnsembleDream(dyn, starts, first, a.horizon, a.penalty), n_envs=1, seed=a.seed)
    sac = SAC("MlpPolicy", venv, seed=a.seed, verbose=0, device="cpu")
    src = open_source_env_for_cheetah()
    rows, done, t0 = [], 0, time.time()
    res = {"args": vars(a), "open_loop": fid, "heldout_disagreement_median": float(np.median(u_held)), "points": rows}
    for p in np.linspace(a.steps / a.evals, a.steps, a.evals).round().astype(int).tolist():
        sac.learn(total_timesteps=p - done, reset_num_timesteps=done == 0)
        done = p
        act = lambda o: sac.predict(np.asarray(o, np.float32), deterministic=True)[0]  # noqa: E731
        real = real_returns(src, act, a.episodes, T, seed=20_000 + 100 * a.seed, context=C)
        dream, unc = dream_from(dyn, real["context"]["obs"], act, T - C + 1)
        row = {
            "steps": p,
            "real_return": float(np.mean(real["returns"])),
            "real_return_std": float(np.std(real["returns"])),
            "calibration": {"real": float(np.mean(real["returns_after_context"])), "dream": float(np.mean(dream))},
            "dream_disagreement": float(unc.mean()),
            "wall_s": round(time.time() - t0, 1),
        }
        rows.append(row)
        log(json.dumps(row))
        sac.save(out / f"sac-ens-seed{a.seed}.zip")
        (out / "ensemble-trial.json").write_text(json.dumps(res, indent=1) + "\n")
    src.close()
    return 0


def open_source_env_for_cheetah():
    import dreamgym

    return open_source_env(dreamgym.Bundle.load(dreamgym.resolve("Dream-HalfCheetah-v0")).manifest)


if __name__ == "__main__":
    raise SystemExit(main())

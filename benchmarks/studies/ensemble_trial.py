"""Would a MOPO/MBPO-style dream transfer? An ensemble of memoryless HalfCheetah steps, tried before it is built.

    python benchmarks/studies/ensemble_trial.py --horizon 5 --penalty 1.0 --steps 100000 --out runs/ens-h5-l1

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
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from dreamgym.export.families.ensemble import EnsembleConfig, StepEnsemble
from dreamgym.export.measure.transfer import real_returns, sac_trial
from dreamgym.export.train.recipes.halfcheetah_rssm import frameless_data
from dreamgym.source import open_source_env

C, T = 10, 1000


class Dynamics:
    """The fitted ensemble (the `step-ensemble` family's model, its standardisation in its buffers):
    predict(o, a) -> (every member's next obs [K, B, 17], reward [K, B], disagreement [B])."""

    def __init__(self, model: StepEnsemble):
        self.model = model.eval()

    @torch.no_grad()
    def predict(self, o: np.ndarray, a: np.ndarray):
        m, o = self.model, torch.as_tensor(o, dtype=torch.float32)
        y = m.members(o, torch.as_tensor(a, dtype=torch.float32))
        nxt = o + y[..., :17] * m.delta_std + m.delta_mean
        return nxt.numpy(), (y[..., 17] * m.reward_std + m.reward_mean).numpy(), m.disagreement(y).numpy()


def transitions(eps: list[dict]) -> tuple[np.ndarray, ...]:
    o0 = np.concatenate([e["obs"][:-1] for e in eps]).astype(np.float32)
    o1 = np.concatenate([e["obs"][1:] for e in eps]).astype(np.float32)
    a = np.concatenate([e["prev_act"][1:] for e in eps]).astype(np.float32)  # aligned: the action into obs[t]
    r = np.concatenate([e["reward"][1:] for e in eps]).astype(np.float32)
    return o0, a, o1, r


def fit_ensemble(eps: list[dict], k: int, hidden: int, layers: int, updates: int, batch: int, seed: int, log):
    """Each member on its own random batches of the transitions (so the family's bootstrap share is not used)."""
    torch.manual_seed(seed)
    model = StepEnsemble(EnsembleConfig(members=k, hidden=hidden, layers=layers, bootstrap=1.0))
    model.set_stats(eps)
    o0, a, o1, r = (torch.from_numpy(x) for x in transitions(eps))
    X = torch.cat([(o0 - model.obs_mean) / model.obs_std, a], 1)
    Y = torch.cat(
        [(o1 - o0 - model.delta_mean) / model.delta_std, ((r - model.reward_mean) / model.reward_std)[:, None]], 1
    )
    params = [*model.w, *model.b]
    opt = torch.optim.Adam(params, 1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, updates)
    g = torch.Generator().manual_seed(seed)
    t0 = time.time()
    for i in range(updates):
        idx = torch.randint(len(X), (k, batch), generator=g)
        loss = ((model.layers(X[idx]) - Y[idx]) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if i % 2000 == 0 or i == updates - 1:
            log(f"fit {i:6d} loss {loss.item():.4f} {time.time() - t0:.0f} s")
    return Dynamics(model)


def open_loop(dyn: Dynamics, eps: list[dict], horizons=(1, 10, 50, 100), every: int = 50) -> dict:
    """Std. RMSE of the ensemble mean open loop ÷ copy-last, from every `every`-th step after C (the cards' measure)."""
    H = max(horizons)
    err = {h: [] for h in horizons}
    base = {h: [] for h in horizons}
    s = dyn.model.obs_std.numpy()
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
    if a.threads:
        torch.set_num_threads(a.threads)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    log = lambda s: print(s, flush=True)  # noqa: E731
    _, eps = frameless_data(a.data, ("train", "wide"), progress=False)
    _, held = frameless_data(a.data, ("heldout",), progress=False)
    ck = out / "ensemble.pt"
    if ck.exists():
        model = StepEnsemble(EnsembleConfig(members=a.members, hidden=a.hidden, layers=a.layers, bootstrap=1.0))
        model.load_state_dict(torch.load(ck, weights_only=True))
        dyn = Dynamics(model)
    else:
        dyn = fit_ensemble(eps, a.members, a.hidden, a.layers, a.updates, a.batch, a.seed, log)
        torch.save(dyn.model.state_dict(), ck)
    fid = open_loop(dyn, held)
    o0, a0, _, _ = transitions(held)
    u_held = dyn.predict(o0, a0)[2]
    log(
        f"open loop ÷ copy-last {fid}; held-out disagreement median {np.median(u_held):.3f} p99 {np.quantile(u_held, 0.99):.3f}"
    )
    starts = np.concatenate([e["obs"][:-1] for e in eps])
    first = np.stack([e["obs"][0] for e in eps])
    src = open_source_env_for_cheetah()

    def measure(act):
        real = real_returns(src, act, a.episodes, T, seed=20_000 + 100 * a.seed, context=C)
        dream, unc = dream_from(dyn, real["context"]["obs"], act, T - C + 1)
        return {
            "real_return": float(np.mean(real["returns"])),
            "real_return_std": float(np.std(real["returns"])),
            "calibration": {"real": float(np.mean(real["returns_after_context"])), "dream": float(np.mean(dream))},
            "dream_disagreement": float(unc.mean()),
        }

    header = {"args": vars(a), "open_loop": fid, "heldout_disagreement_median": float(np.median(u_held))}
    sac_trial(
        lambda: EnsembleDream(dyn, starts, first, a.horizon, a.penalty),
        a.seed,
        a.steps,
        a.evals,
        measure,
        out,
        "ensemble",
        header,
    )
    src.close()
    return 0


def open_source_env_for_cheetah():
    import dreamgym

    return open_source_env(dreamgym.Bundle.load(dreamgym.resolve("Dream-HalfCheetah-v0")).manifest)


if __name__ == "__main__":
    raise SystemExit(main())

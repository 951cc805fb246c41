"""How true a multi-agent dream is, per agent: the joint evaluator.

- open loop: from every `stride`-th window of held-out real games, the dream is reset from C real steps
  and then driven `horizon` steps by the recorded actions of every agent; per agent, the standardised RMSE
  of its observation at each horizon against copy-last (the last real observation held), as the
  single-agent evaluator measures it; per agent, the correlation of the predicted with the real rewards
  over the first 50 steps; the frame PSNR of the dream's frame against the same drawing of the real state;
- closed loop: the bundled policies play the real env and the dream from the same real starts, and each
  agent's return over `horizon` steps is compared.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from dreamgym.export.measure.fidelity import HORIZONS, _psnr
from dreamgym.export.measure.vector import VectorEvaluator
from dreamgym.manifest import Manifest, Summary, figure


def _drawer(bundle):
    from dreamgym.export.families import get_family
    from dreamgym.export.families.joint import SceneDrawer

    fam = get_family(bundle.family)
    return SceneDrawer(fam.config_from_dict(bundle.manifest.model.config))


def open_loop(bundle_path, episodes: list[dict], horizon: int = 50, stride: int = 25, seed: int = 0) -> dict:
    import torch

    import dreamgym

    b = dreamgym.Bundle.load(bundle_path)
    C, agents = b.context_length, b.agents
    starts = [(i, s) for i, e in enumerate(episodes) for s in range(0, len(e["obs"]) - C - horizon + 1, stride)]
    env = dreamgym.make_batched(
        b, len(starts), autoreset="disabled", render_mode="rgb_array", noise_scale=0.0, max_episode_steps=10**9
    )
    ctx = {
        "obs": {a: np.stack([episodes[i][f"obs.{a}"][s : s + C] for i, s in starts]) for a in agents},
        "actions": {a: np.stack([_prev(episodes[i], a)[s : s + C] for i, s in starts]) for a in agents},
    }
    env.reset(seed=seed, options={"context": ctx})
    draw = _drawer(b)
    pred = {a: [] for a in agents}
    true = {a: [] for a in agents}
    pr = {a: [] for a in agents}
    tr = {a: [] for a in agents}
    psnr = []
    for h in range(1, horizon + 1):
        t = [s + C - 1 + h for _, s in starts]
        acts = {a: np.stack([_prev(episodes[i], a)[tt] for (i, _), tt in zip(starts, t)]) for a in agents}
        obs, rew, *_ = env.step(acts)
        for a in agents:
            pred[a].append(obs[a]), pr[a].append(rew[a])
            true[a].append(np.stack([episodes[i][f"obs.{a}"][tt] for (i, _), tt in zip(starts, t)]))
            tr[a].append(np.stack([episodes[i][f"rew.{a}"][tt - 1] for (i, _), tt in zip(starts, t)]))
        joint = np.stack([episodes[i]["obs"][tt] for (i, _), tt in zip(starts, t)])
        with torch.no_grad():
            real = draw(torch.from_numpy(joint.astype(np.float32))).numpy()
        psnr.append(_psnr(env.render(), real))
    last = {a: np.stack([episodes[i][f"obs.{a}"][s + C - 1] for i, s in starts]) for a in agents}
    env.close()
    return {
        "pred_obs": {a: np.stack(v, 1) for a, v in pred.items()},
        "true_obs": {a: np.stack(v, 1) for a, v in true.items()},
        "last_obs": last,
        "pred_reward": {a: np.stack(v, 1) for a, v in pr.items()},
        "true_reward": {a: np.stack(v, 1) for a, v in tr.items()},
        "psnr": np.stack(psnr, 1),
        "starts": len(starts),
    }


def _prev(ep: dict, agent: str) -> np.ndarray:
    """An agent's action before each observation (zeros first), aligned with `obs.<agent>`."""
    act = ep[f"act.{agent}"]
    return np.concatenate([np.zeros((1, act.shape[1]), np.float32), act])


def _corr(p: np.ndarray, t: np.ndarray) -> float:
    return float(np.corrcoef(p, t)[0, 1]) if t.std() > 0 and p.std() > 0 else float("nan")


def fidelity(res: dict, episodes: list[dict]) -> dict:
    """Per agent: standardised RMSE per horizon and its ratio to copy-last, reward RMSE and correlation
    over the first 50 steps; the frame PSNR per horizon; a summary over agents (the worst agent's ratio)."""
    agents = list(res["pred_obs"])
    out: dict = {"agents": {}, "windows": int(res["starts"]), "curve": {}}
    for a in agents:
        std = np.concatenate([e[f"obs.{a}"] for e in episodes]).std(0)
        std = np.maximum(std, 1e-3)
        err = (res["pred_obs"][a] - res["true_obs"][a]) / std
        base = (res["last_obs"][a][:, None] - res["true_obs"][a]) / std
        rmse, brmse = np.sqrt((err**2).mean((0, 2))), np.sqrt((base**2).mean((0, 2)))
        row = {"horizons": {}}
        for h in HORIZONS:
            if h <= len(rmse):
                row["horizons"][str(h)] = {
                    "std_rmse": float(rmse[h - 1]),
                    "copy_last_std_rmse": float(brmse[h - 1]),
                    "ratio": float(rmse[h - 1] / brmse[h - 1]),
                }
        H = min(50, res["pred_reward"][a].shape[1])
        p, t = res["pred_reward"][a][:, :H].ravel(), res["true_reward"][a][:, :H].ravel()
        row["reward_rmse_50"] = float(np.sqrt(((p - t) ** 2).mean()))
        row["reward_corr_50"] = _corr(p, t)
        # the first step alone: the reward head on a state still close to the real one
        row["reward_corr_1"] = _corr(res["pred_reward"][a][:, 0], res["true_reward"][a][:, 0])
        out["agents"][a] = row
        out["curve"][a] = {"model": rmse.tolist(), "copy_last": brmse.tolist()}
    psnr = res["psnr"].mean(0)
    out["frame_psnr_db"] = {str(h): float(psnr[h - 1]) for h in HORIZONS if h <= len(psnr)}
    worst = {
        h: max(out["agents"][a]["horizons"][h]["ratio"] for a in agents) for h in out["agents"][agents[0]]["horizons"]
    }
    out["summary"] = dataclasses.asdict(
        Summary(
            metric="std. RMSE ÷ copy-last (worst agent)", unit="×", horizons=worst, frame_psnr_db=out["frame_psnr_db"]
        )
    )
    return out


def real_starts(games, make_real, n: int, horizon: int, seed: int = 1000):
    """Real starts for closed-loop comparisons: for each of `n` games, a real episode (`make_real()`: a
    PettingZoo parallel env, reset with seed `seed + i`) runs the bundled policies of `games` (a batched dream
    env) through a warm-up of random length (0-39 steps, drawn from `seed`), then `horizon` more steps.

    Returns `(context, obs, rewards)`: the warm-up's last C steps as a dream context for
    `games.reset(options={"context": context})`, and the real per-step observations `{agent: [n, horizon, d]}`
    and rewards `{agent: [n, horizon]}` after it."""
    b = games.bundle
    C, agents = b.context_length, b.agents
    rng = np.random.default_rng(seed)
    real = make_real()
    ctx_o = {a: [] for a in agents}
    ctx_a = {a: [] for a in agents}
    real_obs = {a: np.zeros((n, horizon, *b.manifest.agent(a).observation_space.shape)) for a in agents}
    real_rew = {a: np.zeros((n, horizon)) for a in agents}

    def act(obs):
        out = games.policy_actions({a: np.asarray(obs[a], np.float32)[None] for a in agents})
        return {a: v[0] for a, v in out.items()}

    try:
        for i in range(n):
            obs, _ = real.reset(seed=seed + i)
            warm = int(rng.integers(0, 40))
            hist_o = {a: [obs[a]] for a in agents}
            hist_a = {a: [np.zeros(b.manifest.agent(a).action_space.shape, np.float32)] for a in agents}
            for _ in range(warm + C - 1):
                a_t = act(obs)
                obs, *_ = real.step(a_t)
                for a in agents:
                    hist_o[a].append(obs[a]), hist_a[a].append(a_t[a])
            for a in agents:
                ctx_o[a].append(np.asarray(hist_o[a][-C:])), ctx_a[a].append(np.asarray(hist_a[a][-C:]))
            for t in range(horizon):
                obs, r, *_ = real.step(act(obs))
                for a in agents:
                    real_obs[a][i, t], real_rew[a][i, t] = obs[a], r[a]
    finally:
        real.close()
    context = {
        "obs": {a: np.stack(v) for a, v in ctx_o.items()},
        "actions": {a: np.stack(v) for a, v in ctx_a.items()},
    }
    return context, real_obs, real_rew


def policy_returns(bundle_path, make_real, n: int = 16, horizon: int = 100, seed: int = 1000) -> dict:
    """The bundled policies drive every agent, in the real env (`make_real()`: a PettingZoo parallel env)
    and in the dream from the same real start (`real_starts`: the last C steps of a real warm-up of random
    length). Per agent: mean real and dream return over `horizon` steps and the relative error."""
    import dreamgym

    b = dreamgym.Bundle.load(bundle_path)
    agents = b.agents
    games = dreamgym.make_batched(b, n, autoreset="disabled", noise_scale=0.0, max_episode_steps=10**9)
    context, _, rewards = real_starts(games, make_real, n, horizon, seed)
    real_ret = {a: rewards[a].sum(1) for a in agents}
    obs, _ = games.reset(seed=seed, options={"context": context})
    dream_ret = {a: np.zeros(n) for a in agents}
    for _ in range(horizon):
        obs, r, *_ = games.step(games.policy_actions(obs))
        for a in agents:
            dream_ret[a] += r[a]
    games.close()
    out = {"starts": n, "horizon": horizon, "agents": {}}
    for a in agents:
        rr, dr = float(real_ret[a].mean()), float(dream_ret[a].mean())
        out["agents"][a] = {
            "real_return": rr,
            "dream_return": dr,
            "real_se": float(real_ret[a].std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0,
            "dream_se": float(dream_ret[a].std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0,
            "relative_error": abs(dr - rr) / max(abs(rr), 1e-9),
            "within_25pct": abs(dr - rr) <= 0.25 * abs(rr),
        }
    return out


def card_fidelity(m: Manifest) -> list[str]:
    """The card's per-agent tables from `m.metrics`."""
    f = m.metrics.get("fidelity")
    if not f:
        return []
    lines = [
        "## Fidelity, per agent",
        "",
        f"Open loop on held-out real games ({f['windows']} windows): each agent's standardised RMSE ÷ copy-last "
        "at horizon h (lower is better; 1 = no better than holding the last real observation), and the "
        "correlation of its predicted with its real rewards over the first 50 steps (and at the first step "
        "alone, where the dream's state is still close to the real one).",
        "",
    ]
    hs = list(next(iter(f["agents"].values()))["horizons"])
    first = "reward_corr_1" in next(iter(f["agents"].values()))
    lines.append(
        "| agent | "
        + " | ".join(f"h = {h}" for h in hs)
        + " | reward corr. | reward RMSE |"
        + (" reward corr. at h = 1 |" if first else "")
    )
    lines.append("|---|" + "---:|" * (len(hs) + 2 + first))
    for a, row in f["agents"].items():
        cells = " | ".join(figure(row["horizons"][h]["ratio"]) + "×" for h in hs)
        tail = f" {row['reward_corr_1']:.2f} |" if first else ""
        lines.append(f"| {a} | {cells} | {row['reward_corr_50']:.2f} | {row['reward_rmse_50']:.2f} |{tail}")
    lines += [
        "",
        "Frame PSNR (the dream's frame against the same drawing of the real state): "
        + ", ".join(f"h{h} {v:.1f} dB" for h, v in f["frame_psnr_db"].items()),
        "",
    ]
    p = m.metrics.get("policy_returns")
    if p:
        lines += [
            f"Closed loop: the bundled policies play every agent for {p['horizon']} steps from {p['starts']} real "
            "starts, in the real env and in the dream from the same start (mean ± standard error over the starts).",
            "",
            "| agent | real return | dream return | relative error |",
            "|---|---:|---:|---:|",
        ]
        for a, r in p["agents"].items():
            real, dream = (
                f"{r[k + '_return']:.1f}" + (f" ± {r[k + '_se']:.1f}" if k + "_se" in r else "")
                for k in ("real", "dream")
            )
            lines.append(f"| {a} | {real} | {dream} | {100 * r['relative_error']:.0f} % |")
        lines.append("")
    return lines


def plot(metrics: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    for i, (a, c) in enumerate(metrics["curve"].items()):
        h = np.arange(1, len(c["model"]) + 1)
        ax.plot(h, c["model"], color=f"C{i}", label=f"{a}: dream")
        ax.plot(h, c["copy_last"], color=f"C{i}", ls=":", label=f"{a}: copy-last")
    ax.set_xlabel("open-loop horizon (steps)")
    ax.set_ylabel("standardised RMSE")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


class JointEvaluator(VectorEvaluator):
    """The evaluator of multi-agent dreams of mpe2 scenes (the joint families): per-agent open-loop error
    against copy-last, reward correlation, frame PSNR against the same drawing of the real state, and the
    bundled policies' returns per agent in the dream and the real env from the same real starts. Fresh
    held-out games come from mpe2 under the collector's behaviour mix (`mpe.BEHAVIOURS`)."""

    def _check(self, bundle) -> None:
        from dreamgym.export.data import mpe

        if bundle.manifest.source.env_id != mpe.ENV_ID:
            raise ValueError(
                f"{bundle.id}: the joint evaluator measures dreams of {mpe.ENV_ID} (its real env is built by "
                f"dreamgym.export.data.mpe); this bundle's source is {bundle.manifest.source.env_id!r}"
            )

    def heldout(self, bundle, episodes: int, seed: int, out: Path, max_steps: int = 1000) -> None:
        from dreamgym.export.data import mpe

        self._check(bundle)
        mpe.collect(out, episodes, mpe.BEHAVIOURS, seed=seed, max_cycles=min(max_steps, bundle.max_episode_steps))

    def load(self, folder) -> list[dict]:
        from dreamgym.export.data import mpe

        return mpe.load(folder)

    def evaluate(self, bundle_path, episodes: list[dict], samples: bool = False, starts: int = 64) -> dict:
        """Fidelity on `episodes` (open loop, up to 50 steps) and, under "policy_returns", the closed-loop
        comparison from `starts` real starts (100 steps, or the episode length if shorter)."""
        import dreamgym
        from dreamgym.export.data import mpe

        b = dreamgym.Bundle.load(bundle_path)
        self._check(b)
        if samples:
            raise ValueError(f"{b.id} is deterministic (no noise inputs): there is nothing to sample")
        length = min(len(e["obs"]) for e in episodes)
        f = fidelity(open_loop(bundle_path, episodes, horizon=min(50, length - b.context_length - 1)), episodes)
        f["policy_returns"] = policy_returns(
            bundle_path, lambda: mpe.make_env(max_cycles=10**6), n=starts, horizon=min(100, b.max_episode_steps)
        )
        return f

    def card_fidelity(self, m: Manifest) -> list[str]:
        return card_fidelity(m)

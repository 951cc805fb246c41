"""What every evaluator shares: open-loop imagination through the runtime from real context windows, the
error per horizon against copying the last real observation, frame PSNR, the fidelity plot and a rank
correlation. The evaluators of each kind of dream (`vector`, `token`, `genie`, `joint`) build on these; the
command is `dreamgym evaluate ID [--episodes DIR] [--write]`.

Protocol: on held-out real episodes, observe C real steps, then imagine under the recorded actions. Reported
per horizon h: the standardised RMSE of the observation (per-dimension standard deviation of the held-out
data) next to a copy-last-observation baseline, and frame PSNR against the real frame of the same step.
Imagination uses the prior mean (noise_scale=0) unless samples are asked for.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from dreamgym.manifest import Summary

HORIZONS = (1, 10, 50, 100)


def _psnr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    mse = ((a.astype(np.float64) - b.astype(np.float64)) ** 2).reshape(len(a), -1).mean(1) / 255.0**2
    return -10 * np.log10(np.maximum(mse, 1e-10))


def _windows(bundle_path, episodes: list[dict], horizon: int, stride: int, noise_scale: float, seed: int):
    """A vector dream with one env per `stride`-th real window (room for `horizon` steps after it), each
    reset from its C real steps. Returns (env, [(episode, start)], C)."""
    import dreamgym

    C = dreamgym.Bundle.load(bundle_path).context_length
    starts = [(i, s) for i, e in enumerate(episodes) for s in range(0, len(e["obs"]) - C - horizon + 1, stride)]
    env = dreamgym.make_vec(
        bundle_path,
        len(starts),
        render_mode="rgb_array",
        noise_scale=noise_scale,
        autoreset_mode="Disabled",
        max_episode_steps=10**9,
        uncertainty_penalty=0.0,  # the model itself: its own reward, never cut short
        uncertainty_limit=None,
    )
    ctx = {
        "obs": np.stack([episodes[i]["obs"][s : s + C] for i, s in starts]),
        "actions": np.stack([episodes[i]["prev_act"][s : s + C] for i, s in starts]),
    }
    env.reset(seed=seed, options={"context": ctx})
    return env, starts, C


def open_loop(
    bundle_path, episodes: list[dict], horizon: int = 100, stride: int = 50, noise_scale: float = 0.0, seed: int = 0
) -> dict:
    """Imagine `horizon` steps from every `stride`-th real window; returns predictions and truths."""
    env, starts, C = _windows(bundle_path, episodes, horizon, stride, noise_scale, seed)
    n = len(starts)
    has_frames = all("frames" in e for e in episodes)
    pred_o, true_o, pred_r, true_r, psnr = [], [], [], [], []
    for h in range(1, horizon + 1):
        t = [s + C - 1 + h for _, s in starts]  # index of the real obs the h-th imagined step predicts
        a = np.stack([episodes[i]["prev_act"][tt] for (i, _), tt in zip(starts, t)])
        o, r, *_ = env.step(a)
        pred_o.append(o), pred_r.append(r)
        true_o.append(np.stack([episodes[i]["obs"][tt] for (i, _), tt in zip(starts, t)]))
        true_r.append(np.stack([episodes[i]["reward"][tt] for (i, _), tt in zip(starts, t)]))
        if has_frames:
            real = np.stack([episodes[i]["frames"][tt] for (i, _), tt in zip(starts, t)])
            psnr.append(_psnr(np.stack(env.render()), real))
    last = np.stack([episodes[i]["obs"][s + C - 1] for i, s in starts])
    env.close()
    return {
        "pred_obs": np.stack(pred_o, 1),
        "true_obs": np.stack(true_o, 1),
        "last_obs": last,
        "pred_reward": np.stack(pred_r, 1),
        "true_reward": np.stack(true_r, 1),
        "psnr": np.stack(psnr, 1) if psnr else None,
        "starts": n,
    }


def fidelity(res: dict, std: np.ndarray) -> dict:
    """Standardised RMSE per horizon (model and copy-last), reward and frame metrics."""
    err = (res["pred_obs"] - res["true_obs"]) / std  # (N, H, O)
    base = (res["last_obs"][:, None] - res["true_obs"]) / std
    rmse = np.sqrt((err**2).mean((0, 2)))  # (H,)
    brmse = np.sqrt((base**2).mean((0, 2)))
    out = {"horizons": {}, "curve": {"model": rmse.tolist(), "copy_last": brmse.tolist()}}
    for h in HORIZONS:
        if h <= len(rmse):
            row = {
                "std_rmse": float(rmse[h - 1]),
                "copy_last_std_rmse": float(brmse[h - 1]),
                "ratio": float(rmse[h - 1] / brmse[h - 1]),
            }
            if res["psnr"] is not None:
                row["frame_psnr_db"] = float(res["psnr"][:, h - 1].mean())
            out["horizons"][str(h)] = row
    H = min(50, res["pred_reward"].shape[1])
    pr, tr = res["pred_reward"][:, :H].ravel(), res["true_reward"][:, :H].ravel()
    out["reward_rmse_50"] = float(np.sqrt(((pr - tr) ** 2).mean()))
    out["reward_corr_50"] = float(np.corrcoef(pr, tr)[0, 1])
    out["windows"] = int(res["starts"])
    out["summary"] = dataclasses.asdict(
        Summary(
            metric="std. RMSE ÷ copy-last",
            unit="×",
            horizons={k: r["ratio"] for k, r in out["horizons"].items()},
            frame_psnr_db={k: r["frame_psnr_db"] for k, r in out["horizons"].items() if "frame_psnr_db" in r},
        )
    )
    return out


def _events(r: np.ndarray, tol: int) -> tuple[int, int, int, int]:
    """Nonzero-reward events in (dream, real) rewards (N, H, 2): dream events matched by a real event of
    the same sign within `tol` steps, dream events, real events matched by the dream, real events."""

    def matched(ev: np.ndarray, other: np.ndarray) -> int:
        H = len(ev)
        return sum(
            bool(np.any(np.sign(other[max(0, t - tol) : min(H, t + tol + 1)]) == np.sign(ev[t])))
            for t in np.flatnonzero(ev)
        )

    pred, real = r[..., 0], r[..., 1]
    tp = sum(matched(p, q) for p, q in zip(pred, real))
    found = sum(matched(q, p) for p, q in zip(pred, real))
    return tp, int(np.count_nonzero(pred)), found, int(np.count_nonzero(real))


def plot(metrics: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m, c = metrics["curve"]["model"], metrics["curve"]["copy_last"]
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=110)
    hs = np.arange(1, len(m) + 1)
    ax.plot(hs, m, label=f"dream ({metrics.get('imagination', 'prior mean')})")
    ax.plot(hs, c, label="copy last observation", ls="--")
    ax.set_xlabel("imagined steps after C real ones")
    ax.set_ylabel(metrics["curve"].get("metric", "standardised RMSE"))
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation (ties broken by order: the values here are continuous)."""
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])

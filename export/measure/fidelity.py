"""Fidelity of a dream against its real environment, measured through the runtime (onnxruntime).

    dreamgym evaluate Dream-HalfCheetah-v0 [--episodes DIR] [--write]   # or python -m dreamgym.export.evaluate

Each family names its evaluator (`families.Family.evaluator`): `VectorEvaluator` for vector dreams,
`TokenEvaluator` for token dreams over pixels (frame PSNR, token accuracy, points scored).

Vector protocol: on held-out real episodes, observe C real steps, then imagine under the recorded actions.
Reported per horizon h (1, 10, 50, 100): the standardised RMSE of the observation (per-dimension
standard deviation of the held-out data) next to a copy-last-observation baseline; the reward's RMSE
and correlation over the first 50 imagined steps; frame PSNR against the real MuJoCo render of the
same trajectory. Imagination uses the prior mean (noise_scale=0) unless --samples is given. With a
policy in the bundle, the 100-step return of the policy acting in the dream is compared with the
same policy acting in the real env from the same real start (closed loop, both sides).
With --write, the numbers go into the manifest's `metrics`, a plot `fidelity.png`, and the model card.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from dreamgym.manifest import MANIFEST, Manifest, Summary

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


def token_episodes(eps: list[dict]) -> list[dict]:
    """Raw discrete-action pixel episodes (obs T+1 frames, actions, rewards after each action) in the
    runtime's context alignment: prev_act[t] is the action taken before frame t (0 at the start)."""
    out = []
    for e in eps:
        a = np.asarray(e["actions"], np.int64)
        out.append(
            {
                "obs": e["obs"],
                "prev_act": np.concatenate([[0], a]),
                "reward": np.concatenate([[0.0], np.asarray(e["rewards"], np.float32)]),
            }
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


def token_fidelity(
    bundle_path,
    episodes: list[dict],
    horizon: int = 100,
    stride: int = 25,
    noise_scale: float = 0.0,
    seed: int = 0,
    tolerances: tuple[int, ...] = (0, 4),
) -> dict:
    """Fidelity of a token dream over pixels (the REM family): frame PSNR and token accuracy per horizon
    against the real frames, and precision / recall of nonzero rewards (points scored). The real frames'
    tokens come from the bundle's own tokenizer (its weights, read from reset.onnx)."""
    import torch

    import dreamgym

    from .families import model_from_bundle

    model = model_from_bundle(dreamgym.Bundle.load(bundle_path))
    env, starts, C = _windows(bundle_path, episodes, horizon, stride, noise_scale, seed)
    n = len(starts)

    def encode(frames):
        with torch.no_grad():
            return torch.cat(
                [
                    model.tokenizer.encode(torch.from_numpy(np.ascontiguousarray(frames[a : a + 512])))
                    for a in range(0, len(frames), 512)
                ]
            ).numpy()

    last_real = np.stack([episodes[i]["obs"][s + C - 1] for i, s in starts])
    last_tok = encode(last_real)
    psnr, copy_psnr, recon_psnr, acc, acc_moving, copy_acc = [], [], [], [], [], []
    rewards = np.zeros((n, horizon, 2))
    for h in range(1, horizon + 1):
        t = [s + C - 1 + h for _, s in starts]  # the real frame the h-th imagined step predicts
        a = np.array([episodes[i]["prev_act"][tt] for (i, _), tt in zip(starts, t)])
        o, r, *_ = env.step(a)
        dream_tok = env.engine.get_state()["tokens"]
        real = np.stack([episodes[i]["obs"][tt] for (i, _), tt in zip(starts, t)])
        real_tok = encode(real)
        rewards[:, h - 1, 0] = r
        rewards[:, h - 1, 1] = [episodes[i]["reward"][tt] for (i, _), tt in zip(starts, t)]
        psnr.append(_psnr(o, real))
        copy_psnr.append(_psnr(last_real, real))
        if h in HORIZONS:
            with torch.no_grad():
                recon = model.tokenizer.decode_uint8(torch.from_numpy(real_tok)).numpy()
            recon_psnr.append(_psnr(recon, real).mean())
        hit = dream_tok == real_tok
        moving = real_tok != last_tok
        acc.append(hit.mean())
        acc_moving.append(hit[moving].mean() if moving.any() else np.nan)
        copy_acc.append((last_tok == real_tok).mean())
    env.close()
    psnr, copy_psnr = np.stack(psnr, 1), np.stack(copy_psnr, 1)
    out = {
        "kind": "tokens",
        "horizons": {},
        "windows": n,
        "heldout_episodes": len(episodes),
        "imagination": "most likely tokens (noise_scale=0)"
        if noise_scale == 0
        else f"Gumbel-max samples (noise_scale={noise_scale})",
        "curve": {"model": psnr.mean(0).tolist(), "copy_last": copy_psnr.mean(0).tolist(), "metric": "frame PSNR (dB)"},
    }
    k = 0
    for h in HORIZONS:
        if h <= horizon:
            out["horizons"][str(h)] = {
                "frame_psnr_db": float(psnr[:, h - 1].mean()),
                "copy_last_psnr_db": float(copy_psnr[:, h - 1].mean()),
                "tokenizer_psnr_db": float(recon_psnr[k]),
                "token_accuracy": float(acc[h - 1]),
                "moving_token_accuracy": float(acc_moving[h - 1]),
                "copy_last_token_accuracy": float(copy_acc[h - 1]),
            }
            k += 1
    out["rewards"] = {}
    for tol in tolerances:
        tp, n_pred, found, n_real = _events(rewards, tol)
        out["rewards"][f"within_{tol}"] = {
            "precision": tp / n_pred if n_pred else None,
            "recall": found / n_real if n_real else None,
            "dream_points": int(n_pred),
            "real_points": int(n_real),
        }
    out["summary"] = dataclasses.asdict(
        Summary(
            metric="token accuracy",
            horizons={k: r["token_accuracy"] for k, r in out["horizons"].items()},
            frame_psnr_db={k: r["frame_psnr_db"] for k, r in out["horizons"].items()},
        )
    )
    return out


def policy_returns(bundle_path, n: int = 16, horizon: int = 100, seed: int = 1000, noise_scale: float = 0.0) -> dict:
    """Closed loop: the bundle's policy drives the real env and the dream from the same real start."""
    import gymnasium as gym

    import dreamgym
    from dreamgym.record import make_policy

    b = dreamgym.Bundle.load(bundle_path)
    C = b.context_length
    rng = np.random.default_rng(seed)
    policy = make_policy("bundle", b, rng)
    act = lambda o: policy(np.asarray(o, np.float32).reshape(-1, b.observation_space.shape[0]))  # noqa: E731
    real_env = gym.make(b.manifest.source.env_id)
    ctx_o, ctx_a, real_ret = [], [], []
    for i in range(n):
        obs, _ = real_env.reset(seed=seed + i)
        warm = int(rng.integers(0, 400))  # start anywhere in a run, not only from rest
        o_hist, a_hist = [obs], [np.zeros(b.action_space.shape, np.float32)]
        for _t in range(warm + C - 1):
            a = act(obs)[0]
            obs, *_ = real_env.step(a)
            o_hist.append(obs), a_hist.append(a)
        ctx_o.append(np.asarray(o_hist[-C:])), ctx_a.append(np.asarray(a_hist[-C:]))
        ret = 0.0
        for _t in range(horizon):
            obs, r, term, trunc, _ = real_env.step(act(obs)[0])
            ret += r
        real_ret.append(ret)
    env = dreamgym.make_vec(
        bundle_path,
        n,
        noise_scale=noise_scale,
        autoreset_mode="Disabled",
        max_episode_steps=10**9,
        uncertainty_penalty=0.0,  # the model's own reward
        uncertainty_limit=None,
    )
    obs, _ = env.reset(seed=seed, options={"context": {"obs": np.stack(ctx_o), "actions": np.stack(ctx_a)}})
    dream_ret = np.zeros(n)
    for _t in range(horizon):
        obs, r, *_ = env.step(act(obs))
        dream_ret += r
    real_ret = np.asarray(real_ret)
    return {
        "real_return_100": float(real_ret.mean()),
        "dream_return_100": float(dream_ret.mean()),
        "relative_error": float(abs(dream_ret.mean() - real_ret.mean()) / abs(real_ret.mean())),
        "per_start_relative_error": float(np.mean(np.abs(dream_ret - real_ret) / np.abs(real_ret))),
        "starts": n,
    }


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


def one_step(bundle_path, episodes: list[dict], stride: int = 10, seed: int = 0) -> dict:
    """From every `stride`-th real window: C real steps, then one imagined step under the real action.
    Returns the standardised RMSE of each predicted observation (standard deviations of `episodes`), its
    reward error, and the step's `uncertainty` output."""
    env, starts, C = _windows(bundle_path, episodes, 1, stride, 0.0, seed)
    t = [s + C for _, s in starts]
    a = np.stack([episodes[i]["prev_act"][tt] for (i, _), tt in zip(starts, t)])
    o, r, _, _, info = env.step(a)
    env.close()
    if "uncertainty" not in info:
        raise ValueError(f"{bundle_path}: the step graph gives no `uncertainty` output")
    std = np.concatenate([e["obs"] for e in episodes]).std(0) + 1e-6
    true_o = np.stack([episodes[i]["obs"][tt] for (i, _), tt in zip(starts, t)])
    true_r = np.array([episodes[i]["reward"][tt] for (i, _), tt in zip(starts, t)])
    return {
        "obs_error": np.sqrt((((o - true_o) / std) ** 2).mean(1)),
        "reward_error": np.abs(r - true_r),
        "uncertainty": np.asarray(info["uncertainty"], np.float64),
    }


def uncertainty_report(
    bundle_path,
    probe: list[dict],
    heldout: list[dict],
    stride: int = 10,
    quantiles: tuple[float, ...] = (0.5, 0.9, 0.99, 0.999),
) -> dict:
    """Does the dream know what it does not know? On `probe` episodes (policies not in the training data),
    Spearman's correlation of the one-step `uncertainty` with the real one-step observation error; and the
    uncertainty's quantiles on both sets (`heldout`: the training distribution), which a recipe uses to set
    the bundle's `uncertainty_limit`."""
    p, h = one_step(bundle_path, probe, stride), one_step(bundle_path, heldout, stride)

    def qs(u):
        return {str(k): float(np.quantile(u, k)) for k in quantiles}

    return {
        "spearman_obs_error": spearman(p["uncertainty"], p["obs_error"]),
        "spearman_reward_error": spearman(p["uncertainty"], p["reward_error"]),
        "spearman_obs_error_heldout": spearman(h["uncertainty"], h["obs_error"]),
        "probe_steps": len(p["uncertainty"]),
        "heldout_steps": len(h["uncertainty"]),
        "probe_obs_error_mean": float(p["obs_error"].mean()),
        "heldout_obs_error_mean": float(h["obs_error"].mean()),
        "probe_quantiles": qs(p["uncertainty"]),
        "heldout_quantiles": qs(h["uncertainty"]),
    }


def evaluate(bundle_path, episodes: list[dict], samples: bool = False, with_policy: bool = True) -> dict:
    std = np.concatenate([e["obs"] for e in episodes]).std(0) + 1e-6
    t0 = time.time()
    res = open_loop(bundle_path, episodes, noise_scale=1.0 if samples else 0.0)
    m = fidelity(res, std)
    from .families import get_family

    text = get_family(Manifest.read(Path(bundle_path) / MANIFEST).family).card_text
    m["imagination"] = (
        text.get("samples", "prior samples") if samples else text.get("mean", "prior mean (noise_scale=0)")
    )
    m["heldout_episodes"] = len(episodes)
    import dreamgym

    if with_policy and dreamgym.Bundle.load(bundle_path).has_graph("policy"):
        m["policy_return"] = policy_returns(bundle_path, noise_scale=1.0 if samples else 0.0)
    m["eval_wall_s"] = round(time.time() - t0, 1)
    return m


def write_metrics(bundle_path: Path, metrics: dict, extra: dict | None = None) -> None:
    """Fidelity `metrics` (with their `summary`, which becomes the manifest's) and `extra` metrics into the
    bundle's manifest, the fidelity plot and the model card."""
    from .card import model_card
    from .exporter import finalize, staged

    metrics = dict(metrics)
    summary = metrics.pop("summary", None)
    with staged(bundle_path, copy=True) as folder:  # the bundle as it was, or with every new figure
        mpath = folder / MANIFEST
        man = Manifest.read(mpath)
        man = man.replace(
            metrics={**man.metrics, "fidelity": metrics, **(extra or {})},
            summary=Summary(**summary) if summary else man.summary,
        )
        man.write(mpath)
        if man.agents:
            from .evaluate_joint import plot as plot_agents

            plot_agents(metrics, folder / "fidelity.png", f"{man.id}: held-out fidelity per agent")
        else:
            plot(metrics, folder / "fidelity.png", f"{man.id}: held-out fidelity")
        finalize(folder, model_card)


class VectorEvaluator:
    """The evaluator of vector dreams (RSSM, TSSM): standardised RMSE per horizon against copy-last, reward
    error, frame PSNR against the real MuJoCo render, and the bundled policy's return in dream and reality."""

    def heldout(self, bundle, episodes: int, seed: int, out: Path, max_steps: int = 1000) -> None:
        from .collect import CollectConfig, collect

        policy = None
        if bundle.has_graph("policy"):
            from dreamgym.record import make_policy

            batch_policy = make_policy("bundle", bundle, np.random.default_rng(0))
            policy = lambda o: batch_policy(np.asarray(o, np.float32)[None])[0]  # noqa: E731
        mix = ("random", "policy:0.1", "mixed") if policy else ("random", "sine")
        collect(
            CollectConfig(
                env_id=bundle.manifest.source.env_id,
                behaviours=mix,
                episodes=episodes,
                seed=seed,
                max_steps=max_steps,
                frame_size=bundle.frame_shape[0],
            ),
            out,
            policy=policy,
        )

    def load(self, folder) -> list[dict]:
        from .data import load_folder

        return load_folder(folder)

    def evaluate(self, bundle_path, episodes: list[dict], samples: bool = False) -> dict:
        return evaluate(bundle_path, episodes, samples=samples)

    def card_fidelity(self, m: Manifest) -> list[str]:
        from .card import vector_fidelity_section

        return vector_fidelity_section(m)

    def card_parity(self, parity: dict) -> list[str]:
        from .card import vector_parity_section

        return vector_parity_section(parity)


class TokenEvaluator:
    """The evaluator of token dreams over pixels (REM): frame PSNR and token accuracy per horizon against
    the real frames, and precision / recall of the points scored. Fresh held-out episodes come from ALE
    Pong (`collect_atari.py`), the one ALE game with a scripted collector."""

    def heldout(self, bundle, episodes: int, seed: int, out: Path, max_steps: int = 1000) -> None:
        from .collect_atari import PongCollectConfig, collect_pong

        env_id = bundle.manifest.source.env_id
        if env_id != "ALE/Pong-v5":
            raise ValueError(
                f"fresh held-out episodes of {env_id} cannot be collected here (only ALE/Pong-v5 has a "
                "collector); pass a folder of recorded episodes with --episodes"
            )
        collect_pong(
            PongCollectConfig(episodes=episodes, max_steps=max_steps, size=bundle.frame_shape[0], seed=seed), out
        )

    def load(self, folder) -> list[dict]:
        from .collect import load_episodes

        eps = list(load_episodes(folder))
        if not eps:
            raise FileNotFoundError(f"no episode_*.npz files in {folder!s}")
        return token_episodes(eps)

    def evaluate(self, bundle_path, episodes: list[dict], samples: bool = False) -> dict:
        out = token_fidelity(bundle_path, episodes, noise_scale=1.0 if samples else 0.0)
        import dreamgym

        if dreamgym.Bundle.load(bundle_path).manifest.source.env_id == "ALE/Pong-v5":
            from .evaluate_pong import pong_game

            out["game"] = pong_game(bundle_path, episodes)  # ball, paddle, points, control (issue 17)
        return out

    def card_fidelity(self, m: Manifest) -> list[str]:
        from .card import token_fidelity_section

        return token_fidelity_section(m)

    def card_parity(self, parity: dict) -> list[str]:
        from .card import token_parity_section

        return token_parity_section(parity)


def main(argv=None) -> int:
    """`python -m dreamgym.export.evaluate`: an alias of `dreamgym evaluate`."""
    import sys

    from .commands import evaluate as evaluate_command

    return evaluate_command(sys.argv[1:] if argv is None else list(argv))


if __name__ == "__main__":
    raise SystemExit(main())

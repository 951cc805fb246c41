"""The evaluator of vector dreams (RSSM, TSSM, the step ensemble): standardised RMSE per horizon against
copy-last, reward error, frame PSNR against the real MuJoCo render, the bundled policy's return in dream and
reality (closed loop from the same real start), the uncertainty output against the real one-step error, and
the card's fidelity and parity sections these make.

With `dreamgym evaluate ID --write`, the numbers go into the manifest's `metrics`, a plot `fidelity.png`,
and the model card (`report.write_metrics`).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from dreamgym.export.card import fmt as _fmt
from dreamgym.export.measure.fidelity import _windows, fidelity, open_loop, spearman
from dreamgym.manifest import MANIFEST, Manifest


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
    real_env = gym.make(b.manifest.source.env_id, **dict(b.manifest.source.render.get("make_kwargs") or {}))
    ctx_o, ctx_a, real_ret = [], [], []
    for i in range(n):
        warm = int(rng.integers(0, 400))  # start anywhere in a run, not only from rest
        while True:  # an env that ends during the warm-up starts again, warming up less
            obs, _ = real_env.reset(seed=seed + i)
            o_hist, a_hist, ended = [obs], [np.zeros(b.action_space.shape, b.action_space.dtype)], False
            for _t in range(warm + C - 1):
                a = act(obs)[0]
                obs, _, term, trunc, _ = real_env.step(a)
                o_hist.append(obs), a_hist.append(a)
                if term or trunc:
                    ended = True
                    break
            if not ended or warm == 0:
                break
            warm //= 2
        ctx_o.append(np.asarray(o_hist[-C:])), ctx_a.append(np.asarray(a_hist[-C:]))
        ret = 0.0
        for _t in range(horizon):  # the return up to the horizon or the episode's end
            obs, r, term, trunc, _ = real_env.step(act(obs)[0])
            ret += r
            if term or trunc:
                break
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
    dream_ret, alive = np.zeros(n), np.ones(n, bool)
    for _t in range(horizon):
        obs, r, term, *_ = env.step(act(obs))
        dream_ret += np.where(alive, r, 0.0)
        alive &= ~term
    real_ret = np.asarray(real_ret)
    some = real_ret != 0  # a relative error has no meaning where the real return is 0 (None where none has one)
    return {
        "real_return_100": float(real_ret.mean()),
        "dream_return_100": float(dream_ret.mean()),
        "relative_error": float(abs(dream_ret.mean() - real_ret.mean()) / abs(real_ret.mean()))
        if real_ret.mean() != 0
        else None,
        "per_start_relative_error": float(np.mean(np.abs(dream_ret - real_ret)[some] / np.abs(real_ret[some])))
        if some.any()
        else None,
        "starts": n,
    }


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
    """Fidelity over 100 imagined steps (or as many as the longest held-out episode leaves after the context)."""
    import dreamgym

    std = np.concatenate([e["obs"] for e in episodes]).std(0) + 1e-6
    t0 = time.time()
    C = dreamgym.Bundle.load(bundle_path).context_length
    horizon = min(100, max(len(e["obs"]) for e in episodes) - C)
    if horizon < 1:
        raise ValueError(f"the held-out episodes are too short for the dream's {C}-step context")
    stride = 50 if horizon == 100 else max(1, horizon // 2)
    res = open_loop(bundle_path, episodes, horizon=horizon, stride=stride, noise_scale=1.0 if samples else 0.0)
    m = fidelity(res, std)
    from dreamgym.export.families import get_family

    text = get_family(Manifest.read(Path(bundle_path) / MANIFEST).family).card_text
    m["imagination"] = (
        text.get("samples", "prior samples") if samples else text.get("mean", "prior mean (noise_scale=0)")
    )
    m["heldout_episodes"] = len(episodes)
    if with_policy and dreamgym.Bundle.load(bundle_path).has_graph("policy"):
        m["policy_return"] = policy_returns(bundle_path, noise_scale=1.0 if samples else 0.0)
    m["eval_wall_s"] = round(time.time() - t0, 1)
    return m


class VectorEvaluator:
    """The evaluator of vector dreams (RSSM, TSSM): standardised RMSE per horizon against copy-last, reward
    error, frame PSNR against the real MuJoCo render, and the bundled policy's return in dream and reality."""

    def heldout(self, bundle, episodes: int, seed: int, out: Path, max_steps: int = 1000) -> None:
        from dreamgym.export.data.collect import CollectConfig, collect

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
        from dreamgym.export.data.episodes import load_folder

        return load_folder(folder)

    def evaluate(self, bundle_path, episodes: list[dict], samples: bool = False) -> dict:
        return evaluate(bundle_path, episodes, samples=samples)

    def card_fidelity(self, m: Manifest) -> list[str]:
        return vector_fidelity_section(m)

    def card_parity(self, parity: dict) -> list[str]:
        return vector_parity_section(parity)


def _pct(x: float | None) -> str:
    return "n/a (a real return of 0)" if x is None else f"{100 * x:.1f}%"


def fidelity_table(f: dict) -> str:
    rows = [
        "| horizon h | std. RMSE (dream) | std. RMSE (copy last) | ratio | frame PSNR (dB) |",
        "|---:|---:|---:|---:|---:|",
    ]
    for h, r in f.get("horizons", {}).items():
        rows.append(
            f"| {h} | {_fmt(r['std_rmse'])} | {_fmt(r['copy_last_std_rmse'])} | {_fmt(r['ratio'], 2)}× | "
            f"{_fmt(r.get('frame_psnr_db'), 1)} |"
        )
    return "\n".join(rows)


def vector_fidelity_section(m: Manifest) -> list[str]:
    """The fidelity section of a vector dream's card (`evaluate.fidelity`'s metrics)."""
    f = m.metrics.get("fidelity", {})
    if not f:
        return []
    lines: list[str] = []
    lines += [
        "## Fidelity (held-out episodes)",
        "",
        f"Observe C = {m.context_length} real steps, then imagine under the recorded actions; "
        f"{f.get('imagination')}; {f.get('windows')} windows from {f.get('heldout_episodes')} held-out episodes. "
        "Standardised RMSE uses the per-dimension std of the held-out observations; frame PSNR compares "
        "`render()` with the real frame of the same step.",
        "",
        fidelity_table(f),
        "",
        f"Reward over the first 50 imagined steps: RMSE {_fmt(f.get('reward_rmse_50'))}, "
        f"correlation {_fmt(f.get('reward_corr_50'))}.",
        "",
    ]
    if "policy_return" in f:
        p = f["policy_return"]
        lines += [
            f"Closed loop with the bundled policy from the same real start ({p['starts']} starts): 100-step "
            f"return {p['dream_return_100']:.1f} in the dream vs {p['real_return_100']:.1f} in the real env "
            f"(relative error of the mean {_pct(p['relative_error'])}, mean per-start "
            f"{_pct(p['per_start_relative_error'])}).",
            "",
        ]
    lines += ["![fidelity over horizon](fidelity.png)", ""]
    return lines


def vector_parity_section(par: dict) -> list[str]:
    worst = max(par.items(), key=lambda kv: kv[1] if not kv[0].endswith("frame") else -1)
    return [
        "## Export parity",
        "",
        f"torch vs onnxruntime on random states, actions and noise: largest error {worst[1]:.2e} "
        f"({worst[0]}); frames within {par.get('render.frame', 0):.0f} grey level(s).",
        "",
    ]

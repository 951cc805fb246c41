"""The evaluator of token dreams over pixels (REM): frame PSNR and token accuracy per horizon against the
real frames, precision / recall of the points scored, and the card's fidelity and parity sections.

A game may add its own measures (ball, paddle, points in closed loop): `GAMES` names, per source env, the
module that holds them (as `families.FAMILIES` names the families), so this module imports none of them.
"""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path

import numpy as np

from dreamgym.export.card import fmt as _fmt
from dreamgym.export.measure.fidelity import HORIZONS, _events, _psnr, _windows
from dreamgym.manifest import Manifest, Summary

GAMES: dict[str, str] = {"ALE/Pong-v5": "dreamgym.export.measure.pong"}
"""source env id -> the module with that game's measures: `game_metrics(bundle_path, episodes) -> dict` and
`card_lines(game) -> list[str]` (the card's lines of what `game_metrics` measured)"""


def game_module(env_id: str):
    """The module of a game's own measures, or None for a game that has none."""
    return importlib.import_module(GAMES[env_id]) if env_id in GAMES else None


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
    from dreamgym.export.families import model_from_bundle

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


class TokenEvaluator:
    """The evaluator of token dreams over pixels (REM): frame PSNR and token accuracy per horizon against
    the real frames, and precision / recall of the points scored. Fresh held-out episodes come from ALE
    Pong (`data/atari.py`), the one ALE game with a scripted collector."""

    def heldout(self, bundle, episodes: int, seed: int, out: Path, max_steps: int = 1000) -> None:
        from dreamgym.export.data.atari import PongCollectConfig, collect_pong

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
        from dreamgym.export.data.collect import load_episodes

        eps = list(load_episodes(folder))
        if not eps:
            raise FileNotFoundError(f"no episode_*.npz files in {folder!s}")
        return token_episodes(eps)

    def evaluate(self, bundle_path, episodes: list[dict], samples: bool = False) -> dict:
        out = token_fidelity(bundle_path, episodes, noise_scale=1.0 if samples else 0.0)
        import dreamgym

        game = game_module(dreamgym.Bundle.load(bundle_path).manifest.source.env_id)
        if game is not None:
            out["game"] = game.game_metrics(bundle_path, episodes)  # e.g. Pong's ball, paddle, points, control
        return out

    def card_fidelity(self, m: Manifest) -> list[str]:
        return token_fidelity_section(m)

    def card_parity(self, parity: dict) -> list[str]:
        return token_parity_section(parity)


def token_fidelity_table(f: dict) -> str:
    rows = [
        "| horizon h | frame PSNR (dB) | copy last (dB) | tokenizer ceiling (dB) | token accuracy | "
        "moving-token accuracy | copy last token accuracy |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for h, r in f.get("horizons", {}).items():
        rows.append(
            f"| {h} | {_fmt(r['frame_psnr_db'], 1)} | {_fmt(r['copy_last_psnr_db'], 1)} | "
            f"{_fmt(r['tokenizer_psnr_db'], 1)} | {_fmt(r['token_accuracy'])} | "
            f"{_fmt(r['moving_token_accuracy'])} | {_fmt(r['copy_last_token_accuracy'])} |"
        )
    return "\n".join(rows)


def reward_events_table(f: dict) -> str:
    rows = [
        "| matched within | precision | recall | points in the dream | points in reality |",
        "|---|---:|---:|---:|---:|",
    ]
    for k, r in f.get("rewards", {}).items():
        rows.append(
            f"| {k.split('_')[1]} steps | {_fmt(r['precision'])} | {_fmt(r['recall'])} | "
            f"{r['dream_points']} | {r['real_points']} |"
        )
    return "\n".join(rows)


def token_fidelity_section(m: Manifest) -> list[str]:
    """The fidelity section of a token dream's card (`evaluate.token_fidelity`'s metrics)."""
    met, f = m.metrics, m.metrics.get("fidelity", {})
    if not f:
        return []
    lines: list[str] = []
    lines += [
        "## Fidelity (held-out episodes)",
        "",
        f"Observe C = {m.context_length} real frames, then imagine under the recorded actions; "
        f"{f.get('imagination')}; {f.get('windows')} windows from {f.get('heldout_episodes')} held-out episodes. "
        "Frame PSNR compares the dream's frame with the real frame of the same step (next to copying the last "
        "real frame, and to the tokenizer's own reconstruction of the real frame, the ceiling); token accuracy "
        "compares the dream's tokens with the tokenizer's tokens of the real frame, over all tokens and over the "
        "tokens that changed since the last real frame (the ball, the paddles, the score).",
        "",
        token_fidelity_table(f),
        "",
        "Points: a nonzero reward in the dream counts for precision when the real episode has a point of the "
        "same sign within the given number of steps, and a real point counts for recall when the dream has one.",
        "",
        reward_events_table(f),
        "",
    ]
    if "reward_head" in met:
        rh = met["reward_head"]
        lines += [
            f"The reward head alone, reading real frames (teacher forcing, {rh['real_points']} real points, "
            f"exact step): precision {_fmt(rh['precision'])}, recall {_fmt(rh['recall'])} — the gap to the "
            "table above is the dream's ball drifting from the real one.",
            "",
        ]
    if "fidelity_mode" in met:
        fm = met["fidelity_mode"]
        hs = fm["horizons"]
        lines += [
            "With the most likely tokens instead (`noise_scale=0`): frame PSNR "
            + " / ".join(f"{hs[k]['frame_psnr_db']:.1f}" for k in hs)
            + " dB, moving-token accuracy "
            + " / ".join(f"{hs[k]['moving_token_accuracy']:.2f}" for k in hs)
            + f" at h = {' / '.join(hs)}; {fm['rewards']['within_4']['dream_points']} points in the dream "
            f"against {fm['rewards']['within_4']['real_points']} real ones (the ball fades when no single "
            "token is sure of it).",
            "",
        ]
    lines += ["![fidelity over horizon](fidelity.png)", ""]
    game = game_module(m.source.env_id)
    if "game" in f and game is not None:
        lines += game.card_lines(f["game"])
    return lines


def token_parity_section(par: dict) -> list[str]:
    floats = {k: v for k, v in par.items() if k.split(".")[1] in ("retention", "next_retention", "latent")}
    frames = max(v for k, v in par.items() if k.split(".")[1] in ("obs", "frame"))
    tokens = max(v for k, v in par.items() if k.split(".")[1] in ("tokens", "next_tokens"))
    worst = max(floats.items(), key=lambda kv: kv[1])
    return [
        "## Export parity",
        "",
        f"torch vs onnxruntime on random states, actions and Gumbel noise (reset: real held-out context windows): largest error {worst[1]:.2e} "
        f"({worst[0]}); sampled tokens {'identical' if tokens == 0 else f'differ (max id gap {tokens:.0f})'}; "
        f"frames within {frames:.0f} grey level(s).",
        "",
    ]

"""How far a latent-action dream can be trusted: controllability, what its codes mean, and frame fidelity.

Measured through the runtime (onnxruntime) on held-out real clips, with the latent actions of a clip inferred by
the bundle's own latent action model (`lam.onnx`, beside the graphs):

- **frame PSNR per horizon** (1 .. 16) of the dream driven by the inferred latent actions from C real frames,
  next to copying the last real frame;
- **ΔPSNR** (Genie's controllability): the PSNR of the dream driven by the inferred actions minus that of
  the same dream (same starts, same sampling noise) driven by random latent actions, at t = 1, 4, 16. Per
  latent action k: the inferred actions again, but every step whose inferred action is k given another code
  at random; the difference at t = 1 and 4 over the windows where k occurs before t is what k carries;
- **what the codes mean**: the latent -> real action confusion table on every held-out transition and the
  best many-to-one mapping (each code to one real action). Accuracy counts a transition as right when the
  mapped action would have given the same next frame as the action taken (the collector tried every action
  from the cloned emulator state: `same_effect`), over the transitions where the action taken visibly
  mattered (not every action gave the same frame). The same figure for the best single action (a mapping
  that ignores the code) is the baseline;
- the tests' **action sensitivity** check lives in `dreamgym.testing.check_latent_actions`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from dreamgym.export.measure.fidelity import _psnr
from dreamgym.manifest import Manifest, Summary

HORIZONS = (1, 4, 16)


def lam_session(bundle_path):
    import onnxruntime as ort

    path = Path(bundle_path) / "lam.onnx"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: a latent-action bundle carries its latent action model there")
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def infer_codes(sess, frames: np.ndarray, window: int, batch: int = 256) -> np.ndarray:
    """The latent action between frames j and j + 1 of a clip (T frames -> T - 1 codes), the first frame repeated
    to give the first transitions their past (as the recipe labelled its training video)."""
    padded = np.concatenate([np.repeat(frames[:1], window - 1, 0), frames]) if window > 1 else frames
    idx = np.arange(len(frames) - 1)[:, None] + np.arange(window + 1)[None]
    out = [
        sess.run(None, {"frames": padded[idx[a : a + batch]].astype(np.float32)})[0] for a in range(0, len(idx), batch)
    ]
    return np.concatenate(out).astype(np.int64)


def _drive(bundle_path, episodes, starts, C, actions: np.ndarray, noise_scale: float, seed: int) -> np.ndarray:
    """PSNR (n, H) of the dream reset from each start's C real frames and driven by `actions` (n, H)."""
    import dreamgym

    n, H = actions.shape
    env = dreamgym.make_vec(bundle_path, n, noise_scale=noise_scale, autoreset_mode="Disabled", max_episode_steps=10**9)
    ctx = {
        "obs": np.stack([episodes[i]["obs"][s : s + C] for i, s in starts]),
        "actions": np.zeros((n, C), np.int64),
    }
    env.reset(seed=seed, options={"context": ctx})
    out = np.zeros((n, H))
    for h in range(1, H + 1):
        o, *_ = env.step(actions[:, h - 1])
        real = np.stack([episodes[i]["obs"][s + C - 1 + h] for i, s in starts])
        out[:, h - 1] = _psnr(o, real)
    env.close()
    return out


def mapping_accuracy(codes: np.ndarray, actions: np.ndarray, same: np.ndarray | None, K: int, A: int) -> dict:
    """The best many-to-one mapping of codes to real actions. Without `same_effect` a transition is right when
    the mapped action is the one taken; with it, when the mapped action would have drawn the same next frame,
    over the transitions where the action taken visibly mattered."""
    if same is None:
        hit = actions[:, None] == np.arange(A)[None]  # (n, A): would mapping to a be right here
        keep = np.ones(len(codes), bool)
    else:
        hit = ((same[:, None].astype(np.int64) >> np.arange(A)[None]) & 1).astype(bool)
        keep = ~hit.all(1)  # some action would have drawn another frame
    hit, codes = hit[keep], codes[keep]
    gain = np.zeros((K, A))
    np.add.at(gain, codes, hit)
    mapping = gain.argmax(1)
    n = max(int(keep.sum()), 1)
    return {
        "accuracy": float(gain.max(1).sum() / n),
        "baseline": float(hit.mean(0).max()) if len(hit) else 0.0,
        "mapping": mapping.tolist(),
        "transitions": int(keep.sum()),
        "rule": "same next frame, transitions where the action mattered" if same is not None else "exact action",
    }


def genie_fidelity(
    bundle_path, episodes: list[dict], samples: bool = True, horizon: int = 16, stride: int = 8, seed: int = 0
) -> dict:
    """Every figure of the module docstring on held-out `episodes` ({"obs"}, optionally "actions",
    "same_effect" and "meta")."""
    import dreamgym

    b = dreamgym.Bundle.load(bundle_path)
    C, K = b.context_length, int(b.action_space.n)
    W = int(b.manifest.model.config.get("window", 1))
    noise = 1.0 if samples else 0.0
    sess = lam_session(bundle_path)
    codes = [infer_codes(sess, e["obs"], W) for e in episodes]
    starts = [(i, s) for i, e in enumerate(episodes) for s in range(0, len(e["obs"]) - C - horizon + 1, stride)]
    if not starts:
        raise ValueError(f"the held-out clips are too short: each needs more than C + {horizon} = {C + horizon} frames")
    rng = np.random.default_rng(seed)
    inferred = np.stack([codes[i][s + C - 1 : s + C - 1 + horizon] for i, s in starts])
    p_inf = _drive(bundle_path, episodes, starts, C, inferred, noise, seed)
    p_rand = _drive(bundle_path, episodes, starts, C, rng.integers(K, size=inferred.shape), noise, seed)
    last = np.stack([episodes[i]["obs"][s + C - 1] for i, s in starts])
    p_copy = np.stack(
        [_psnr(last, np.stack([episodes[i]["obs"][s + C - 1 + h] for i, s in starts])) for h in range(1, horizon + 1)],
        1,
    )
    out: dict = {
        "kind": "latent actions",
        "windows": len(starts),
        "heldout_episodes": len(episodes),
        "imagination": "MaskGIT samples (noise_scale=1)" if samples else "most likely tokens (noise_scale=0)",
        "horizons": {},
        "curve": {"model": p_inf.mean(0).tolist(), "copy_last": p_copy.mean(0).tolist(), "metric": "frame PSNR (dB)"},
    }
    for h in HORIZONS:
        if h <= horizon:
            out["horizons"][str(h)] = {
                "frame_psnr_db": float(p_inf[:, h - 1].mean()),
                "random_actions_psnr_db": float(p_rand[:, h - 1].mean()),
                "delta_psnr_db": float((p_inf[:, h - 1] - p_rand[:, h - 1]).mean()),
                "copy_last_psnr_db": float(p_copy[:, h - 1].mean()),
            }
    out["delta_psnr"] = {h: r["delta_psnr_db"] for h, r in out["horizons"].items()}

    # per latent action: take k away, keep the rest
    T = min(4, horizon)
    per = []
    for k in range(K):
        swapped = inferred[:, :T].copy()
        where = swapped == k
        swapped[where] = (k + rng.integers(1, K, size=int(where.sum()))) % K
        p_k = _drive(bundle_path, episodes, starts, C, swapped, noise, seed)
        row = {"code": k, "share": float((inferred == k).mean())}
        for t in (1, T):
            sel = where[:, :t].any(1)
            row[f"windows_{t}"] = int(sel.sum())
            row[f"delta_psnr_{t}"] = float((p_inf[sel, t - 1] - p_k[sel, t - 1]).mean()) if sel.any() else None
        per.append(row)
    out["per_action"] = per

    if all("actions" in e for e in episodes):
        meta = episodes[0].get("meta") or {}
        names = list(meta.get("action_meanings") or [])
        A = max(len(names), max(int(e["actions"].max()) for e in episodes) + 1)
        names += [str(a) for a in range(len(names), A)]
        cs = np.concatenate([c[: len(e["actions"])] for c, e in zip(codes, episodes)])
        acts = np.concatenate([e["actions"] for e in episodes])
        conf = np.zeros((K, A), np.int64)
        np.add.at(conf, (cs, acts), 1)
        same = (
            np.concatenate([e["same_effect"] for e in episodes]) if all("same_effect" in e for e in episodes) else None
        )
        out["confusion"] = {"actions": names, "counts": conf.tolist()}
        out["mapping"] = mapping_accuracy(cs, acts, same, K, A)
        out["mapping_exact"] = mapping_accuracy(cs, acts, None, K, A)
    out["summary"] = dataclasses.asdict(
        Summary(
            metric=f"frame PSNR, inferred latent actions (h = {' / '.join(out['horizons'])})",
            horizons={h: r["frame_psnr_db"] for h, r in out["horizons"].items()},
            unit=" dB",
            digits=1,
            frame_psnr_db={h: r["frame_psnr_db"] for h, r in out["horizons"].items()},
        )
    )
    return out


def card_fidelity(m: Manifest) -> list[str]:
    f = m.metrics.get("fidelity", {})
    if not f:
        return []
    names = list(m.action_meanings or [f"code {k}" for k in range(int(m.action_space.n))])
    lines = [
        "## Controllability and fidelity (held-out episodes)",
        "",
        f"Observe C = {m.context_length} real frames, then imagine {max(int(h) for h in f['horizons'])} steps driven "
        f"by the latent actions the bundle's latent action model (`lam.onnx`) infers from the real clip; "
        f"{f['imagination']}; {f['windows']} windows from {f['heldout_episodes']} held-out episodes. ΔPSNR is "
        "the PSNR with the inferred actions minus the PSNR of the same dreams (same sampling noise) under random "
        "latent actions: above zero, the latent actions steer the dream the way reality went.",
        "",
        "| h | PSNR, inferred actions | PSNR, random actions | ΔPSNR | copy last frame |",
        "|---:|---:|---:|---:|---:|",
    ]
    for h, r in f["horizons"].items():
        lines.append(
            f"| {h} | {r['frame_psnr_db']:.2f} dB | {r['random_actions_psnr_db']:.2f} dB | "
            f"{r['delta_psnr_db']:+.3f} dB | {r['copy_last_psnr_db']:.2f} dB |"
        )
    lines += [
        "",
        "Per latent action: ΔPSNR when only that action's steps get another code at random (over the windows "
        "where it occurs by then).",
        "",
        "| code | meaning | share of steps | ΔPSNR t = 1 | ΔPSNR t = 4 |",
        "|---:|---|---:|---:|---:|",
    ]
    fmt = lambda x: "—" if x is None else f"{x:+.3f} dB"  # noqa: E731
    for r in f.get("per_action", []):
        k = r["code"]
        lines.append(
            f"| {k} | {names[k] if k < len(names) else k} | {100 * r['share']:.1f} % | {fmt(r.get('delta_psnr_1'))} "
            f"({r.get('windows_1', 0)}) | {fmt(r.get('delta_psnr_4'))} ({r.get('windows_4', 0)}) |"
        )
    lines.append("")
    if "confusion" in f:
        acts, counts = f["confusion"]["actions"], f["confusion"]["counts"]
        mp, ex = f["mapping"], f["mapping_exact"]
        lines += [
            "What the codes mean: held-out transitions per latent code (rows) and real action taken (columns).",
            "",
            "| code | meaning | " + " | ".join(acts) + " |",
            "|---:|---|" + "---:|" * len(acts),
        ]
        for k, row in enumerate(counts):
            lines.append(f"| {k} | {names[k] if k < len(names) else k} | " + " | ".join(str(x) for x in row) + " |")
        lines += [
            "",
            f"Best many-to-one mapping of codes to real actions: **{100 * mp['accuracy']:.1f} %** right "
            f"({mp['rule']}; {mp['transitions']} transitions; the best single action scores "
            f"{100 * mp['baseline']:.1f} %). Counting only the exact action taken, over all "
            f"{ex['transitions']} transitions: {100 * ex['accuracy']:.1f} % (single action {100 * ex['baseline']:.1f} %).",
            "",
        ]
    return lines


class GenieEvaluator:
    """The evaluator of latent-action dreams (the Genie family). Fresh held-out episodes come from ALE
    Breakout (`data.atari.collect_breakout`, with every action's effect recorded); a dream of other video is
    measured on a folder of clips given with --episodes (no confusion table without their actions)."""

    def heldout(self, bundle, episodes: int, seed: int, out: Path, max_steps: int = 1000) -> None:
        from dreamgym.export.data.atari import BreakoutCollectConfig, collect_breakout

        env_id = bundle.manifest.source.env_id
        if env_id != "ALE/Breakout-v5":
            raise ValueError(
                f"fresh held-out episodes of {env_id} cannot be collected here (only ALE/Breakout-v5 has a "
                "collector for latent-action dreams); pass a folder of recorded episodes with --episodes"
            )
        collect_breakout(
            BreakoutCollectConfig(
                episodes=episodes, max_steps=max_steps, size=bundle.frame_shape[0], effects=True, seed=seed
            ),
            out,
        )

    def load(self, folder) -> list[dict]:
        from dreamgym.export.data.collect import load_episodes

        eps = list(load_episodes(folder))
        if not eps:
            raise FileNotFoundError(f"no episode_*.npz files in {folder!s}")
        return eps

    def evaluate(self, bundle_path, episodes: list[dict], samples: bool = False) -> dict:
        return genie_fidelity(bundle_path, episodes, samples=samples)

    def card_fidelity(self, m: Manifest) -> list[str]:
        return card_fidelity(m)

    def card_parity(self, parity: dict) -> list[str]:
        from dreamgym.export.measure.token import token_parity_section

        return token_parity_section(parity)

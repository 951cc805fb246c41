"""Is the dream's return calibrated, and what do the uncertainty options do to it? No training: fixed
policies (random actions, the bundle's policy, and any saved Stable-Baselines3 learners, e.g. one trained in
an older dream that learned to exploit it) run in the real env and in the dream from the same real start
states, under several settings of `uncertainty_penalty` and `uncertainty_limit`.

    python benchmarks/calibration_check.py [BUNDLE] [--sb3 sac:path/to/model.zip ...] [--episodes 5]
        [--settings raw,bundle,penalty=2.5,limit=0.4,penalty=2.5:limit=0.4]

Prints a markdown table: per policy, the real return after the C context steps and the dream's return from
the same C steps under each setting, and whether it is within the transfer benchmark's tolerance (20 %, or
±300 for small returns). `bundle` is the bundle's own defaults, `raw` no penalty and no limit.

With `raw` and a setting that only penalises (no limit, so the dreams are the same dreams), it also prints each
policy's λ window: the penalties λ for which raw − λ·U (U: the summed uncertainty of its dreams) is within that
tolerance, and the window every policy shares, if any. An empty common window means no choice of λ calibrates
the dream for all these policies at once.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

import dreamgym
from dreamgym.export.measure.transfer import _same_starts, real_returns
from dreamgym.record import make_policy
from dreamgym.source import open_source_env


def parse_setting(text: str) -> dict:
    if text == "bundle":
        return {}
    if text == "raw":
        return {"uncertainty_penalty": 0.0, "uncertainty_limit": None}
    out = {"uncertainty_penalty": 0.0, "uncertainty_limit": None}
    for part in text.split(":"):
        k, _, v = part.partition("=")
        out[{"penalty": "uncertainty_penalty", "limit": "uncertainty_limit"}[k]] = float(v)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle", nargs="?", default="Dream-HalfCheetah-v0")
    ap.add_argument("--sb3", nargs="*", default=[], help="ALGO:PATH of saved SB3 learners (sac, ppo)")
    ap.add_argument("--episodes", type=int, default=5)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--settings", default="raw,bundle")
    a = ap.parse_args()
    path = dreamgym.resolve(a.bundle)
    b = dreamgym.Bundle.load(path)
    C, T = b.context_length, a.steps
    source = open_source_env(b.manifest)
    space = b.action_space
    space.seed(0)
    policies = {"random": (lambda o: space.sample(), lambda o: np.stack([space.sample() for _ in o]))}
    if b.has_graph("policy"):
        pol = make_policy("bundle", b, np.random.default_rng(0))
        batch = lambda o: np.asarray(pol(np.asarray(o, np.float32).reshape(len(o), -1)))  # noqa: E731
        policies["bundled policy"] = (lambda o: batch(np.asarray(o)[None])[0], batch)
    for spec in a.sb3:
        algo, _, p = spec.partition(":")
        import stable_baselines3 as sb3

        model = getattr(sb3, algo.upper()).load(p, device="cpu")
        pred = lambda o, m=model: m.predict(np.asarray(o, np.float32), deterministic=True)[0]  # noqa: E731
        policies[f"{algo} {p}"] = (pred, pred)
    settings = a.settings.split(",")
    rows = []
    for name, (one, batch) in policies.items():
        real = real_returns(source, one, a.episodes, T, seed=40_000, context=C)
        row = {"policy": name}
        for s in settings:
            c = _same_starts(path, real, batch, T, C, parse_setting(s))
            row["real"] = c["real"]
            row[s] = c["dream"]
        rows.append(row)
    source.close()
    print(f"| policy | real | {' | '.join(settings)} |")
    print("|---|---:|" + "---:|" * len(settings))
    for r in rows:
        tol = max(0.2 * abs(r["real"]), 300.0)
        cells = [f"{r[s]:.0f}{'' if abs(r[s] - r['real']) <= tol else ' ✗'}" for s in settings]
        print(f"| {r['policy']} | {r['real']:.0f} | {' | '.join(cells)} |")
    windows = lambda_windows(rows, settings, b.manifest.env_defaults)
    if windows:
        print("\n| policy | summed uncertainty U | λ window |\n|---|---:|---|")
        for name, (u, lo, hi) in windows["policies"].items():
            print(f"| {name} | {u:.1f} | {_window_text(lo, hi)} |")
        print(f"| **all** | | {_window_text(*windows['common'])} |")
    print(json.dumps({"bundle": str(path), "episodes": a.episodes, "rows": rows, "lambda_windows": windows}))


def _window_text(lo: float, hi: float) -> str:
    return "empty" if lo > hi else f"{lo:.2f} … {'∞' if hi == float('inf') else f'{hi:.2f}'}"


def lambda_windows(rows: list[dict], settings: list[str], defaults) -> dict | None:
    """Per policy, the λ for which its penalised dream return is calibrated, from a raw run and a penalty-only
    run of the same dreams (λ ≥ 0); None without such a pair."""
    pen = None
    for s in settings:
        opts = (
            parse_setting(s)
            if s != "bundle"
            else {
                "uncertainty_penalty": defaults.uncertainty_penalty,
                "uncertainty_limit": defaults.uncertainty_limit,
            }
        )
        if s != "raw" and opts["uncertainty_limit"] is None and opts["uncertainty_penalty"] > 0:
            pen = (s, opts["uncertainty_penalty"])
            break
    if "raw" not in settings or pen is None:
        return None
    s, lam = pen
    out, common = {}, [0.0, float("inf")]
    for r in rows:
        u = (r["raw"] - r[s]) / lam  # the dreams are the same with and without the penalty
        tol = max(0.2 * abs(r["real"]), 300.0)
        lo, hi = r["raw"] - r["real"] - tol, r["raw"] - r["real"] + tol  # λ·U must lie in [lo, hi]
        if u > 1e-9:
            lo, hi = max(lo / u, 0.0), hi / u
        else:
            lo, hi = (0.0, float("inf")) if lo <= 0 <= hi else (1.0, 0.0)
        out[r["policy"]] = (float(u), float(lo), float(hi))
        common = [max(common[0], lo), min(common[1], hi)]
    return {"from": s, "policies": out, "common": common}


if __name__ == "__main__":
    main()

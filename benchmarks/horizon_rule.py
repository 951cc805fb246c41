"""The horizon rule of `dreamgym train --env`, on a bundle: its held-out open-loop error per imagined step and
the dream length the rule gives (the most steps whose standardised RMSE stays within ε).

    python benchmarks/horizon_rule.py Dream-HalfCheetah-v0 [--episodes 12] [--error 0.18] [--most 20]

The held-out episodes are collected fresh from the bundle's source env with the collector's frame behaviours
(random, the bundled policy with noise, sine gaits, switches), seed 2 as the recipes' held-out split. This is how
ε = 0.18 was calibrated once on the shipped HalfCheetah dream (2026-12-07: 0.171 at 5 steps, 0.191 at 6, so 5
steps, MOPO's HalfCheetah horizon, with which SAC trained in it transferred).
"""

from __future__ import annotations

import argparse
import json
import tempfile

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle")
    ap.add_argument("--episodes", type=int, default=12)
    ap.add_argument("--error", type=float, default=0.18)
    ap.add_argument("--most", type=int, default=20)
    a = ap.parse_args()

    import dreamgym
    from dreamgym.export.data.collect import CollectConfig, collect
    from dreamgym.export.data.episodes import load_folder
    from dreamgym.export.measure.fidelity import fidelity, open_loop
    from dreamgym.export.train.recipes.any_env import horizon_rule
    from dreamgym.export.train.recipes.any_env_stages import FRAME_MIX
    from dreamgym.record import make_policy

    path = dreamgym.resolve(a.bundle)
    b = dreamgym.Bundle.load(path)
    policy = None
    if b.has_graph("policy"):
        batch = make_policy("bundle", b, np.random.default_rng(0))
        policy = lambda o: batch(np.asarray(o, np.float32)[None])[0]  # noqa: E731
    mix = FRAME_MIX if policy else ("random", "sine")
    with tempfile.TemporaryDirectory() as tmp:
        cfg = CollectConfig(env_id=b.manifest.source.env_id, behaviours=mix, episodes=a.episodes, frame_size=0, seed=2)
        collect(cfg, tmp, policy)
        held = load_folder(tmp)
    std = np.concatenate([e["obs"] for e in held]).std(0) + 1e-6
    H = min(a.most, max(len(e["obs"]) for e in held) - b.context_length)
    curve = fidelity(open_loop(path, held, horizon=H, stride=10), std)["curve"]["model"]
    h, rule = horizon_rule(curve, a.error, a.most)
    print(json.dumps({"bundle": b.id, "curve": [round(c, 4) for c in curve], "horizon": h, "rule": rule}, indent=1))


if __name__ == "__main__":
    main()

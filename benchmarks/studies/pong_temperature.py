"""The Pong dream's sampling temperature, swept without retraining: frame PSNR, token accuracy, the share of
frames with one ball and points per 1000 steps, per temperature, in one run.

    python benchmarks/studies/pong_temperature.py [BUNDLE] [--scales 1,0.8,0.6] [--out runs/pong-temperature.json]

The step graph samples each token by Gumbel-max: argmax(logits / T + s·g), where T is the temperature baked
into the graph and s the env's `noise_scale`. Dividing by s does not move the argmax, so noise_scale s samples
exactly as a graph of temperature T·s would: the sweep needs the shipped bundle only. The held-out episodes
are the Pong recipe's (8 episodes of seed 1, collected afresh); the closed-loop rows are the dream's, played as
the card's game table plays them (the real game's rows do not depend on the temperature: they are on the card).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import dreamgym
from dreamgym.export.measure.pong import closed_loop
from dreamgym.export.measure.token import token_episodes, token_fidelity
from dreamgym.export.train.recipes.pong_rem_tokens import heldout_episodes


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bundle", nargs="?", default="Dream-Pong-v0")
    ap.add_argument("--scales", default="1,0.8,0.6", help="noise_scale values (effective temperature T·s)")
    ap.add_argument("--steps", type=int, default=3000, help="closed-loop env-steps per policy")
    ap.add_argument("--out", default="runs/pong-temperature.json")
    a = ap.parse_args(argv)
    path = dreamgym.resolve(a.bundle)
    T = dreamgym.Bundle.load(path).manifest.model.config["temperature"]
    eps = token_episodes(heldout_episodes())
    rows = []
    for s in (float(x) for x in a.scales.split(",")):
        t0 = time.perf_counter()
        fid = token_fidelity(path, eps, noise_scale=s)
        games = {p: closed_loop(path, p, a.steps, noise_scale=s, real=False)["dream"] for p in ("bundle", "random")}
        rows.append(
            {
                "noise_scale": s,
                "temperature": T * s,
                "frame_psnr_db": {h: v["frame_psnr_db"] for h, v in fid["horizons"].items()},
                "token_accuracy": {h: v["token_accuracy"] for h, v in fid["horizons"].items()},
                "moving_token_accuracy": {h: v["moving_token_accuracy"] for h, v in fid["horizons"].items()},
                "points_within_4": fid["rewards"]["within_4"],
                "closed_loop": games,
                "seconds": time.perf_counter() - t0,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps({"bundle": str(path), "rows": rows}, indent=2) + "\n")
    hs = list(rows[0]["frame_psnr_db"])
    print(
        f"\n| temperature | PSNR h = {' / '.join(hs)} (dB) | token acc. | one ball (bundle / random) | points/1000 (bundle / random) |"
    )
    print("|---|---|---|---|---|")
    for r in rows:
        cl = r["closed_loop"]
        psnr = " / ".join(f"{r['frame_psnr_db'][h]:.1f}" for h in hs)
        acc = " / ".join(f"{r['token_accuracy'][h]:.3f}" for h in hs)
        print(
            f"| {r['temperature']:.2f} | {psnr} | {acc} | "
            f"{cl['bundle']['one_ball_share']:.0%} / {cl['random']['one_ball_share']:.0%} | "
            f"{cl['bundle']['points_per_1000']:.1f} / {cl['random']['points_per_1000']:.1f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

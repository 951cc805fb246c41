"""The Pong dream's held-out fidelity over several sampling seeds: how much of a card's frame PSNR and token
accuracy is the one draw of noise it was measured with.

    python benchmarks/pong_seeds.py BUNDLE [BUNDLE ...] [--seeds 0,1,2,3] [--heldout DIR] [--out runs/pong-seeds.json]

A card measures each held-out window once, sampling with the evaluator's seed 0 (`token_fidelity`), so a card's
figure is one draw of the dream's noise; whether a gap of a few tenths of a dB between two cards is the models'
or the draws' is what this measures (v5 at h = 100: 33.18 / 33.14 dB with seeds 0 / 1). Here every bundle is
measured on the same windows (the Pong recipe's 8 held-out episodes of seed 1, collected afresh unless
`--heldout` names a folder of them) with each seed, and the table gives the mean over seeds ± its standard error,
and each bundle's difference from the first one, seed by seed (the windows are the same, only the models differ).
Old bundles load from git: `mkdir -p /tmp/v0 && git archive 99c52e9 assets/pong-rem | tar -x -C /tmp/v0`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import dreamgym
from dreamgym.export.measure.token import token_episodes, token_fidelity
from dreamgym.export.train.recipes.pong_rem_tokens import heldout_episodes


def mean_se(x) -> tuple[float, float]:
    """Mean and standard error of the mean over seeds (0 with one seed)."""
    x = np.asarray(x, float)
    return float(x.mean()), float(x.std(ddof=1) / np.sqrt(len(x))) if len(x) > 1 else 0.0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bundles", nargs="+")
    ap.add_argument("--seeds", default="0,1,2,3", help="sampling seeds of the evaluator (the card's is 0)")
    ap.add_argument("--heldout", default=None, help="a folder of the recipe's held-out episodes (default: collect)")
    ap.add_argument("--out", default="runs/pong-seeds.json")
    a = ap.parse_args(argv)
    seeds = [int(s) for s in a.seeds.split(",")]
    eps = token_episodes(heldout_episodes(a.heldout))
    runs = {}
    for b in a.bundles:
        path = dreamgym.resolve(b)
        runs[b] = []
        for s in seeds:
            t0 = time.perf_counter()
            fid = token_fidelity(path, eps, noise_scale=1.0, seed=s)
            row = {
                "seed": s,
                "windows": fid["windows"],
                "frame_psnr_db": {h: v["frame_psnr_db"] for h, v in fid["horizons"].items()},
                "token_accuracy": {h: v["token_accuracy"] for h, v in fid["horizons"].items()},
                "seconds": time.perf_counter() - t0,
            }
            runs[b].append(row)
            print(json.dumps({"bundle": b, **row}), flush=True)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps({"seeds": seeds, "runs": runs}, indent=2) + "\n")
    first = a.bundles[0]
    hs = list(runs[first][0]["frame_psnr_db"])
    for key, unit, fmt in (("frame_psnr_db", " dB", "{:.2f}"), ("token_accuracy", "", "{:.4f}")):
        print(f"\n{key}, mean over seeds {a.seeds} ± standard error (difference from {first}, seed by seed):")
        print("| bundle | " + " | ".join(f"h = {h}" for h in hs) + " |")
        print("|---|" + "---:|" * len(hs))
        for b in a.bundles:
            cells = []
            for h in hs:
                m, se = mean_se([r[key][h] for r in runs[b]])
                cell = f"{fmt.format(m)} ± {fmt.format(se)}{unit}"
                if b != first:
                    d, dse = mean_se([r[key][h] - f[key][h] for r, f in zip(runs[b], runs[first])])
                    cell += f" ({'+' if d >= 0 else ''}{fmt.format(d)} ± {fmt.format(dse)})"
                cells.append(cell)
            print(f"| {b} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Model size against fidelity and speed: the trade-off behind the shipped Dream-HalfCheetah-v0.

    python benchmarks/size_tradeoff.py [--train]   # --train builds the larger variant first (~45 min)

Builds the larger RSSM (deter 200, hidden 200) with the HalfCheetah recipe's data, policy and protocol
(bundle in runs/halfcheetah/bundle_large, never shipped), then prints one markdown row per size: fidelity
ratios from the same evaluator, multiply-adds per step, and env-steps/s at 1, 64 and 4096 envs next to
the real env's best vectorised throughput, all speeds from one run.
"""

import argparse
import json
from pathlib import Path

import dreamgym
from dreamgym.bench import bench

WORK = Path("runs/halfcheetah")
LARGE_OUT = WORK / "bundle_large"


def build_large():
    from dreamgym.export.recipes.halfcheetah_rssm import FULL, build
    from dreamgym.export.rssm import RSSMConfig
    from dreamgym.export.train import TrainConfig

    sizes = {**FULL, "run": "run", "model": RSSMConfig(deter=200, stoch=30, hidden=200),
             "train": TrainConfig(steps=8000, frame_steps=1500, batch=16, seq_len=50)}
    build(WORK, LARGE_OUT, sizes, id="Dream-HalfCheetah-large-v0")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", action="store_true")
    ap.add_argument("--seconds", type=float, default=1.5)
    a = ap.parse_args()
    if a.train:
        build_large()
    paths = ([LARGE_OUT] if LARGE_OUT.exists() else []) + [dreamgym.resolve("Dream-HalfCheetah-v0")]
    print("| model | multiply-adds / step | train updates | h=1 | h=10 | h=50 | h=100 | reward corr | PSNR h=1 / 50 "
          "| steps/s @1 | @64 | @4096 | @4096 ÷ real best vector | roofline share @4096 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for p in paths:
        b = dreamgym.Bundle.load(p)
        res = bench(p, sizes=(1, 64, 4096), seconds=a.seconds, torch=False, memory=False)
        f = b.metrics["fidelity"]
        h = f["horizons"]
        by = {r["num_envs"]: r for r in res["rows"]}
        best = res["real"]["best_vector_steps_per_s"]
        cfg = b.manifest["model"]["config"]
        print(f"| {b.id} (deter {cfg['deter']}, hidden {cfg['hidden']}) | {b.manifest['model']['step_macs']:,} | "
              f"{b.metrics['recipe']['train_config']['steps']:,} | "
              + " | ".join(f"{h[k]['ratio']:.2f}×" for k in ("1", "10", "50", "100"))
              + f" | {f['reward_corr_50']:.3f} | {h['1']['frame_psnr_db']:.1f} / {h['50']['frame_psnr_db']:.1f} | "
              + " | ".join(f"{by[n]['steps_per_s']:,.0f}" for n in (1, 64, 4096))
              + f" | {by[4096]['steps_per_s'] / best:.1f}× | {by[4096]['gflops'] / res['roofline_gflops']:.0%} |")
        print(json.dumps({"id": b.id, "real": res["real"], "roofline": res["roofline_gflops"]}), file=open(
            Path("benchmarks/results") / f"tradeoff-{b.id}.json", "w"))


if __name__ == "__main__":
    main()

"""Model size against fidelity and speed: the trade-off behind the shipped Dream-HalfCheetah-RSSM-v0.

    python benchmarks/studies/size_tradeoff.py [--train large|small|layer|rms|lean|lean96]   # builds a variant first (~45 / ~16 / ~17 / ~30 / ~15 / ~22 min)

Builds RSSM variants with the HalfCheetah recipe's data, policy and protocol (bundles in
runs/halfcheetah/bundle_<variant>, never shipped): `large` (deter 200, hidden 200, symlog observations),
`small` (deter 96, hidden 96, standardised observations), `layer` (deter 128, hidden 128, standardised
observations, LayerNorm), `rms` (the same with RMSNorm; shipped before the lean one), `lean` (the same
width with no norm, ReLU, one shared head MLP and a sigmoid std: the fewest onnxruntime nodes; the shipped
model) and `lean96` (the lean one 96 wide, 10,000 updates), then prints one
markdown row per size: fidelity ratios from the same evaluator, multiply-adds per step, and env-steps/s
at 1, 64 and 4096 envs and the single env through gym.make next to the real env, speeds from one run.
"""

import argparse
import dataclasses
import json
from pathlib import Path

import dreamgym
from dreamgym.bench import bench
from dreamgym.manifest import MANIFEST, Manifest

WORK = Path("runs/halfcheetah")
VARIANTS = ("large", "small", "layer", "rms", "lean", "lean96")


def build_variant(name: str):
    from dreamgym.export.families.rssm import RSSMConfig
    from dreamgym.export.train.recipes.halfcheetah_rssm import PRESETS, build

    full = PRESETS["full"]
    variants = {
        "large": {
            "run": "run",
            "model": RSSMConfig(deter=200, stoch=30, hidden=200),
            "world": dataclasses.replace(full.world, steps=8000),
        },
        "small": {"run": "run_small96", "model": RSSMConfig(deter=96, stoch=24, hidden=96, symlog_inputs=False)},
        # the 128-wide recipe with LayerNorm (DreamerV2's norm; shipped before RMSNorm), then with RMSNorm
        "layer": {"run": "run_std", "model": RSSMConfig(deter=128, stoch=24, hidden=128, symlog_inputs=False)},
        "rms": {
            "run": "run_rms",
            "model": RSSMConfig(deter=128, stoch=24, hidden=128, symlog_inputs=False, norm="rms"),
        },
        # the fewest nodes: the shipped lean model, and the same 96 wide trained longer
        "lean": {"run": "run_lean"},
        "lean96": {
            "run": "run_lean96_10k",
            "model": dataclasses.replace(full.model, deter=96, hidden=96),
            "world": dataclasses.replace(full.world, steps=10000),
        },
    }
    v = dict(variants[name])
    build(
        dataclasses.replace(
            full,
            run=str(WORK / v.pop("run")),
            data=str(WORK),
            out=str(WORK / f"bundle_{name}"),
            id=f"Dream-HalfCheetah-{name}-v0",
            **v,
        )
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", choices=VARIANTS, help="build this variant first")
    ap.add_argument("--seconds", type=float, default=1.5)
    a = ap.parse_args()
    if a.train:
        build_variant(a.train)
    shipped = dreamgym.resolve("Dream-HalfCheetah-RSSM-v0")
    config = lambda p: Manifest.read(Path(p) / MANIFEST).model.config  # noqa: E731
    # every variant built, except one with the shipped model's config (the shipped bundle stands for it)
    paths = [
        WORK / f"bundle_{v}"
        for v in VARIANTS
        if (WORK / f"bundle_{v}").exists() and config(WORK / f"bundle_{v}") != config(shipped)
    ]
    paths.append(shipped)
    print(
        "| model | multiply-adds / step | train updates | h=1 | h=10 | h=50 | h=100 | reward corr | PSNR h=1 / 50 "
        "| steps/s @1 | @64 | @4096 | single (gym.make) ÷ real single | @64 ÷ real best vector "
        "| @4096 ÷ real best vector | roofline share @4096 |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for p in paths:
        b = dreamgym.Bundle.load(p)
        res = bench(p, sizes=(1, 64, 4096), seconds=a.seconds, torch=False, memory=False)
        f = b.metrics["fidelity"]
        h = f["horizons"]
        by = {r["num_envs"]: r for r in res["rows"]}
        best = res["real"]["best_vector_steps_per_s"]
        cfg = b.manifest.model.config
        obs = "symlog" if cfg.get("symlog_inputs", True) else "standardised"
        norm = cfg.get("norm", "layer")
        arch = "lean: no norm, ReLU, shared heads, sigmoid std" if norm == "none" else f"{norm} norm"
        print(
            f"| {b.id} (deter {cfg['deter']}, hidden {cfg['hidden']}, {obs} obs., {arch}) | {b.manifest.model.step_macs:,} | "
            f"{b.metrics['recipe']['train_config']['steps']:,} | "
            + " | ".join(f"{h[k]['ratio']:.2f}×" for k in ("1", "10", "50", "100"))
            + f" | {f['reward_corr_50']:.3f} | {h['1']['frame_psnr_db']:.1f} / {h['50']['frame_psnr_db']:.1f} | "
            + " | ".join(f"{by[n]['steps_per_s']:,.0f}" for n in (1, 64, 4096))
            + f" | {res['single_env_steps_per_s'] / res['real']['single_steps_per_s']:.2f}× "
            + f"| {by[64]['steps_per_s'] / best:.1f}× | {by[4096]['steps_per_s'] / best:.1f}× "
            + f"| {by[4096]['gflops'] / res['roofline_gflops']:.0%} |",
            flush=True,
        )
        print(
            json.dumps({"id": b.id, "real": res["real"], "roofline": res["roofline_gflops"]}),
            file=open(Path("benchmarks/results") / f"tradeoff-{b.id}.json", "w"),
        )


if __name__ == "__main__":
    main()

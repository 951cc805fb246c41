"""Rebuild the shipped Dream-HalfCheetah-TSSM-v0 from nothing on a 2-core CPU:

    python -m dreamgym.export.recipes.halfcheetah_tssm [--work runs/halfcheetah] [--out assets/halfcheetah-tssm]

The same policy, data and held-out protocol as the RSSM recipe (shared stages in --work are reused when
present), with a TSSM: a causal transformer over (z, action) tokens trained in its parallel form, exported
with a KV cache of W tokens so one env-step is O(W).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dreamgym.export.recipes.halfcheetah_rssm import FULL, TINY, build
from dreamgym.export.train import TrainConfig
from dreamgym.export.tssm import TSSMConfig

FULL_TSSM = {**FULL, "run": "run_tssm", "model": TSSMConfig(),
             "train": TrainConfig(steps=12000, frame_steps=1500, batch=16, seq_len=64)}
TINY_TSSM = {**TINY, "run": "run_tssm", "model": TSSMConfig(d_model=32, layers=1, heads=2, window=8, hidden=32, stoch=8,
                                                            frame_channels=8)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default="runs/halfcheetah", help="folder for the policy, data and checkpoints")
    ap.add_argument("--out", default=None, help="bundle folder (default: assets/halfcheetah-tssm, or WORK/bundle_tssm with --tiny)")
    ap.add_argument("--tiny", action="store_true", help="toy sizes: every stage in about a minute")
    a = ap.parse_args(argv)
    work = Path(a.work)
    out = Path(a.out) if a.out else (work / "bundle_tssm" if a.tiny else Path("assets/halfcheetah-tssm"))
    res = build(work, out, TINY_TSSM if a.tiny else FULL_TSSM,
                id="Dream-HalfCheetahTinyTSSM-v0" if a.tiny else "Dream-HalfCheetah-TSSM-v0")
    f = res["fidelity"]
    print(json.dumps({"horizons": f["horizons"], "reward_corr_50": f["reward_corr_50"],
                      "policy_return": f.get("policy_return"), "wall_s": res["recipe"]["wall_s"]}, indent=2))
    print(f"bundle written to {out}")


if __name__ == "__main__":
    main()

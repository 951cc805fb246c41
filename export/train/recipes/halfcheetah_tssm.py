"""Rebuild the shipped Dream-HalfCheetah-TSSM-v0 from nothing on a 2-core CPU:

    dreamgym train halfcheetah_tssm [--preset tiny|full] [--run DIR] [--out DIR] [--world.steps N ...]

The same policy, data and held-out protocol as the RSSM recipe (the shared stages in --data are reused
when present), with a TSSM: a causal transformer over (z, action) tokens trained in its parallel form,
exported with a KV cache of W tokens so one env-step is O(W).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from dreamgym.export.families.tssm import TSSMConfig
from dreamgym.export.train.fit import FitConfig
from dreamgym.export.train.recipes import main as recipe_main
from dreamgym.export.train.recipes.halfcheetah_rssm import TINY as RSSM_TINY
from dreamgym.export.train.recipes.halfcheetah_rssm import Recipe as RSSMRecipe
from dreamgym.export.train.recipes.halfcheetah_rssm import build, summary

__all__ = ["Recipe", "PRESETS", "build", "summary", "main"]


@dataclass(frozen=True)
class Recipe(RSSMRecipe):
    run: str = "runs/halfcheetah/run_tssm"
    """folder of the model's checkpoints, training log and stage timings (stages resume from it)"""
    out: str = "assets/halfcheetah-tssm"
    """the bundle folder written"""
    id: str = "Dream-HalfCheetah-TSSM-v0"
    """the bundle's id"""
    model: TSSMConfig = TSSMConfig()
    """the world model"""
    world: FitConfig = FitConfig(steps=12000, batch=16, lr=6e-4, grad_clip=100.0, eval_every=250, ckpt_every=500)
    """training of the dynamics on sequences (batch: sequences per update)"""
    seq_len: int = 64
    """steps per training sequence"""


TINY = Recipe(
    **{
        **{f.name: getattr(RSSM_TINY, f.name) for f in dataclasses.fields(RSSM_TINY)},
        "run": "runs/halfcheetah-tiny/run_tssm",
        "out": "runs/halfcheetah-tiny/bundle-tssm",
        "id": "Dream-HalfCheetah-TSSMTiny-v0",
        "model": TSSMConfig(d_model=32, layers=1, heads=2, window=8, hidden=32, stoch=8, frame_channels=8),
    }
)
PRESETS = {"full": Recipe(), "tiny": TINY}


def main(argv=None) -> int:
    return recipe_main("halfcheetah_tssm", argv)


if __name__ == "__main__":
    raise SystemExit(main())

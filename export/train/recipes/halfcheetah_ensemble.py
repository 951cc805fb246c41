"""Rebuild Dream-HalfCheetah-v0 from nothing on a 2-core CPU:

    dreamgym train halfcheetah_ensemble [--preset tiny|full] [--run DIR] [--out DIR] [--world.steps N ...]

The same policy, data and held-out protocol as the RSSM recipe (the shared stages in --data are reused when
present), with the `step-ensemble` family: five memoryless one-step models in HalfCheetah's own observation
space, a random member per dream step and their disagreement as the uncertainty (MBPO, MOPO). The bundle is
set up as those papers train their learners: a dream starts from a real state of the training data (the bank
holds single-step windows, a tenth of them episode starts) and runs a short horizon (env_defaults: 5 steps,
a truncation that learners bootstrap through), and its reward is the model's minus λ × the disagreement.
Tools that show or measure whole episodes (play, record, evaluate, transfer) run 1000 steps.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from dreamgym.export.families.ensemble import EnsembleConfig
from dreamgym.export.train.fit import FitConfig
from dreamgym.export.train.recipes import main as recipe_main
from dreamgym.export.train.recipes.halfcheetah_rssm import TINY as RSSM_TINY
from dreamgym.export.train.recipes.halfcheetah_rssm import Recipe as RSSMRecipe
from dreamgym.export.train.recipes.halfcheetah_rssm import build, summary

__all__ = ["Recipe", "PRESETS", "build", "summary", "main"]


@dataclass(frozen=True)
class Recipe(RSSMRecipe):
    run: str = "runs/halfcheetah/run_ensemble"
    """folder of the model's checkpoints, training log and stage timings (stages resume from it)"""
    out: str = "assets/halfcheetah-ensemble"
    """the bundle folder written"""
    id: str = "Dream-HalfCheetah-v0"
    """the bundle's id"""
    model: EnsembleConfig = EnsembleConfig(members=5, hidden=200, layers=4)
    """the world model"""
    world: FitConfig = FitConfig(steps=30000, batch=32, lr=1e-3, grad_clip=100.0, eval_every=1000, ckpt_every=2000)
    """training of the members on transitions (batch: sequences of seq_len steps per update)"""
    seq_len: int = 9
    """steps per training sequence (8 transitions each: the members are memoryless)"""
    context_length: int = 1
    """C: a memoryless model starts from one real observation"""
    context_windows: int = 16384
    """real starting states in the bundle's bank"""
    context_source: str = "train"
    """the bank holds states of the training data, where the members are fitted"""
    horizon: int | None = 5
    """the learner's dreams are 5 steps long (MOPO's HalfCheetah horizon)"""
    uncertainty_penalty_scale: float = 2.95
    """λ = this × the training rewards' standard deviation (1.69): about 5"""
    uncertainty_limit_scale: float = 0.0
    """no truncation for uncertainty: the penalty and the short horizon keep the learner near the data"""


TINY = Recipe(
    **{
        **{f.name: getattr(RSSM_TINY, f.name) for f in dataclasses.fields(RSSM_TINY)},
        "run": "runs/halfcheetah-tiny/run_ensemble",
        "out": "runs/halfcheetah-tiny/bundle-ensemble",
        "id": "Dream-HalfCheetah-EnsembleTiny-v0",
        "model": EnsembleConfig(members=3, hidden=16, layers=2, frame_channels=8),
        "seq_len": 9,
        "context_length": 1,
        "context_windows": 64,
        "context_source": "train",
        "horizon": 5,
        "uncertainty_penalty_scale": 2.95,
        "uncertainty_limit_scale": 0.0,
    }
)
PRESETS = {"full": Recipe(), "tiny": TINY}


def main(argv=None) -> int:
    return recipe_main("halfcheetah_ensemble", argv)


if __name__ == "__main__":
    raise SystemExit(main())

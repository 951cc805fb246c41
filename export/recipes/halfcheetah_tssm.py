"""Rebuild the shipped Dream-HalfCheetah-TSSM-v0 from nothing on a 2-core CPU:

    python -m dreamgym.export.recipes.halfcheetah_tssm [--work runs/halfcheetah] [--out assets/halfcheetah-tssm]

The same policy, data and held-out protocol as the RSSM recipe (shared stages in --work are reused when
present), with a TSSM: a causal transformer over (z, action) tokens trained in its parallel form, exported
with a KV cache of W tokens so one env-step is O(W).
"""

from __future__ import annotations

from dreamgym.export.recipes.halfcheetah_rssm import FULL, TINY, cli
from dreamgym.export.train import TrainConfig
from dreamgym.export.tssm import TSSMConfig

FULL_TSSM = {**FULL, "run": "run_tssm", "model": TSSMConfig(),
             "train": TrainConfig(steps=12000, frame_steps=1500, batch=16, seq_len=64)}
TINY_TSSM = {**TINY, "run": "run_tssm", "model": TSSMConfig(d_model=32, layers=1, heads=2, window=8, hidden=32, stoch=8,
                                                            frame_channels=8)}


def main(argv=None) -> None:
    cli(__doc__.splitlines()[0], FULL_TSSM, TINY_TSSM, "Dream-HalfCheetah-TSSM-v0", "halfcheetah-tssm", argv)


if __name__ == "__main__":
    main()

"""Updates per second of the training loops, before and after `fit` (issue 12): the same models, configs and
batch shapes through the old loops (a worktree of the commit before, e.g. `git worktree add /tmp/old 6c4c000`)
and through `dreamgym.export.train.fit.fit`, on synthetic data of the recipes' shapes (the loop is measured, not the
data). One process per measurement, one after another:

    python benchmarks/studies/fit_speed.py --old /tmp/old            # all four phases, old then new, a markdown table
    python benchmarks/studies/fit_speed.py --phase rssm --impl new   # one measurement (JSON)

Phases: rssm (the shipped lean RSSM config, 200 dynamics updates, 16 x 50), tssm (TSSMConfig(), 100 updates,
16 x 64), tokenizer (REM's VQ-VAE, 100 updates of 32 frames) and world (the REM world model, 100 updates,
16 x 10). Evaluation and checkpoints at the end only, in both.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

STEPS = {"rssm": 200, "tssm": 100, "tokenizer": 100, "world": 100}


def _old_package(root: Path):
    """The old `export/` folder imported as the package `oldexport` (its relative imports then resolve inside it)."""
    import dreamgym.export.data.sources as sources

    sys.modules.setdefault("dreamgym.real", sources)  # the old collectors' import of what moved to sources.py
    spec = importlib.util.spec_from_file_location(
        "oldexport", root / "export" / "__init__.py", submodule_search_locations=[str(root / "export")]
    )
    mod = importlib.util.module_from_spec(spec)
    sys.modules["oldexport"] = mod
    spec.loader.exec_module(mod)
    return mod


def _vector_episodes(n: int, T: int, rng) -> list[dict]:
    eps = []
    for _ in range(n):
        eps.append(
            {
                "obs": rng.standard_normal((T + 1, 17)).astype(np.float32),
                "prev_act": rng.uniform(-1, 1, (T + 1, 6)).astype(np.float32),
                "reward": rng.standard_normal(T + 1).astype(np.float32),
                "cont": np.ones(T + 1, np.float32),
                "mask": np.r_[0.0, np.ones(T)].astype(np.float32),
            }
        )
    return eps


def _pong_episodes(n: int, T: int, rng) -> list[dict]:
    eps = []
    for _ in range(n):
        frames = np.full((T + 1, 64, 64, 3), 90, np.uint8)
        ys = rng.integers(0, 60, T + 1)
        for t, y in enumerate(ys):  # a moving bright block: foreground for the weighted loss
            frames[t, y : y + 4, 30:34] = 236
        eps.append(
            {
                "obs": frames,
                "actions": rng.integers(6, size=T).astype(np.int64),
                "rewards": rng.choice([-1.0, 0.0, 1.0], size=T, p=[0.02, 0.96, 0.02]).astype(np.float32),
                "terminations": np.zeros(T, bool),
            }
        )
    return eps


def measure(phase: str, impl: str, old_root: Path | None, steps: int) -> dict:
    rng = np.random.default_rng(0)
    out = Path(tempfile.mkdtemp(prefix=f"fit-speed-{phase}-{impl}-"))
    if impl == "old":
        _old_package(old_root)
    if phase in ("rssm", "tssm"):
        eps = _vector_episodes(8, 1000, rng)
        if phase == "rssm":
            from dreamgym.export.train.recipes.halfcheetah_rssm import Recipe
        else:
            from dreamgym.export.train.recipes.halfcheetah_tssm import Recipe
        r = Recipe()
        if impl == "old":
            mod = importlib.import_module(f"oldexport.{phase}")
            cfg_cls = mod.RSSMConfig if phase == "rssm" else mod.TSSMConfig
            model = (mod.RSSM if phase == "rssm" else mod.TSSM)(cfg_cls(**r.model.__dict__))
            train = importlib.import_module("oldexport.train")
            tc = train.TrainConfig(
                steps=steps, frame_steps=0, batch=r.world.batch, seq_len=r.seq_len, eval_every=10**9, ckpt_every=10**9
            )
            t0 = time.perf_counter()
            train.train(model, eps, eps[:2], tc, out, progress=False)
        else:  # the recipe's own training function, through fit
            import dataclasses

            from dreamgym.export.families import family_of
            from dreamgym.export.train.recipes import Stages
            from dreamgym.export.train.recipes.halfcheetah_rssm import train

            model = family_of(r.model).build(r.model)
            r = dataclasses.replace(
                r, run=str(out), world=dataclasses.replace(r.world, steps=steps, eval_every=10**9, ckpt_every=10**9)
            )
            t0 = time.perf_counter()
            train(model, eps, eps[:2], r, Stages(out, log=lambda *a: None), progress=False)
    else:
        from dreamgym.export.train.recipes.pong_rem_config import FULL

        eps = _pong_episodes(4, 500, rng)
        frames = np.concatenate([e["obs"] for e in eps])
        if impl == "old":
            rem = importlib.import_module("oldexport.rem")
            pong = importlib.import_module("oldexport.recipes.pong_rem")
            model = rem.REM(rem.REMConfig(**FULL.model.__dict__))
            if phase == "tokenizer":
                cfg = pong.TokenizerTrainConfig(steps=steps)
                t0 = time.perf_counter()
                pong.train_tokenizer(
                    model.tokenizer, frames, frames[::50], cfg, out, progress=False, log=lambda *a: None
                )
            else:
                tok = [rng.integers(512, size=(len(e["obs"]), 64)).astype(np.int16) for e in eps]
                cfg = pong.WorldTrainConfig(steps=steps, eval_every=10**9, ckpt_every=10**9)
                t0 = time.perf_counter()
                pong.train_world(
                    model,
                    pong.TokenSequences(tok, eps, cfg.seq_len, 0),
                    pong.TokenSequences(tok, eps, cfg.seq_len, 1),
                    cfg,
                    out,
                    progress=False,
                    log=lambda *a: None,
                )
        else:
            import dataclasses

            from dreamgym.export.families.rem import REM
            from dreamgym.export.train.recipes import pong_rem_tokens as pong

            model = REM(FULL.model)
            if phase == "tokenizer":
                r = dataclasses.replace(FULL, tokenizer=dataclasses.replace(FULL.tokenizer, steps=steps))
                t0 = time.perf_counter()
                pong.train_tokenizer(model.tokenizer, frames, frames[::50], r, out, progress=False)
            else:
                tok = [rng.integers(512, size=(len(e["obs"]), 64)).astype(np.int16) for e in eps]
                r = dataclasses.replace(
                    FULL, world=dataclasses.replace(FULL.world, steps=steps, eval_every=10**9, ckpt_every=10**9)
                )
                t0 = time.perf_counter()
                pong.train_world(
                    model,
                    pong.TokenSequences(tok, eps, r.seq_len, 0),
                    pong.TokenSequences(tok, eps, r.seq_len, 1),
                    r,
                    out,
                    progress=False,
                )
    wall = time.perf_counter() - t0
    return {
        "phase": phase,
        "impl": impl,
        "updates": steps,
        "wall_s": round(wall, 2),
        "updates_per_s": round(steps / wall, 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--new-first", action="store_true", help="measure fit before the old loop (to see order effects)")
    ap.add_argument("--phase", choices=list(STEPS))
    ap.add_argument("--impl", choices=["old", "new"])
    ap.add_argument("--old", default="/tmp/old", help="worktree of the commit before fit (for --impl old)")
    ap.add_argument("--steps", type=int, default=None)
    a = ap.parse_args()
    if a.phase and a.impl:
        print(json.dumps(measure(a.phase, a.impl, Path(a.old), a.steps or STEPS[a.phase])))
        return
    rows = []
    for phase in [a.phase] if a.phase else STEPS:
        res = {}
        for impl in ("new", "old") if a.new_first else ("old", "new"):  # one process each, one after another
            cmd = [sys.executable, __file__, "--phase", phase, "--impl", impl, "--old", a.old]
            if a.steps:
                cmd += ["--steps", str(a.steps)]
            res[impl] = json.loads(
                subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()[-1]
            )
            print(json.dumps(res[impl]), flush=True)
        rows.append(
            f"| {phase} | {res['old']['updates']} | {res['old']['updates_per_s']:.2f} | "
            f"{res['new']['updates_per_s']:.2f} | {res['new']['updates_per_s'] / res['old']['updates_per_s']:.2f} |"
        )
    print("| phase | updates | old updates/s | fit updates/s | new / old |\n|---|---:|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()

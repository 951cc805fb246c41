"""Short dreams from many real states: does an off-the-shelf learner then transfer from the HalfCheetah dream?

    python benchmarks/studies/branch_trial.py --horizon 10 --bank 4096 --steps 100000 --out runs/branch-h10

The shipped dream starts every episode from one of 512 real windows of 12 held-out episodes and lets it run
1000 steps, so a learner has 990 steps in which the model's errors compound, far from any real state. MBPO
and MOPO train their learners on model rollouts of a few steps (MBPO's HalfCheetah: 1; MOPO's: 5) branched
from every state of the real data, and let the learner's value function carry the rest: a rollout never
drifts far from a state the model was trained on, and the learner bootstraps through the cut (Stable-
Baselines3 does not count a truncation as an end).

This trial builds that dream from the bundle's own graphs, changing only two env-level things, as a user
could: a bank of `--bank` real windows drawn from the recipe's training data (re-collected without frames
into --data; each window opens at a random step, a tenth at the episode's start), and episodes of
`--horizon` steps (a truncation). The bundle's uncertainty penalty and limit stay as the bundle sets them.
SB3 SAC with its defaults trains only there; at `--evals` points its deterministic policy is measured in the
real env (10 seeded episodes of 1000 steps, as `dreamgym transfer` runs them) and, for calibration, in the
bundle's own dream of 1000 steps from the same first real steps. Results go to OUT/branch-trial.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

import dreamgym
from dreamgym.bundle import sha256_file
from dreamgym.export import exporter
from dreamgym.export.measure.transfer import measure_point, sac_trial
from dreamgym.export.train.recipes.halfcheetah_rssm import frameless_data
from dreamgym.manifest import MANIFEST
from dreamgym.source import open_source_env


def with_bank(src: Path, out: Path, episodes: list[dict], n: int, seed: int) -> Path:
    """A copy of bundle `src` in `out` whose context bank holds `n` windows of `episodes`."""
    b = dreamgym.Bundle.load(src)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp)
    ctx = exporter.context_windows(episodes, b.context_length, n, np.random.default_rng(seed))
    np.savez(tmp / "contexts.npz", **ctx)
    m = json.loads((tmp / MANIFEST).read_text())
    m["contexts"].update(sha256=sha256_file(tmp / "contexts.npz"), windows=n)
    (tmp / MANIFEST).write_text(json.dumps(m, indent=1) + "\n")
    dreamgym.Bundle.load(tmp)  # refuses a copy that does not hold together
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", default="Dream-HalfCheetah-RSSM-v0")
    ap.add_argument("--horizon", type=int, default=10, help="steps per dream episode the learner sees")
    ap.add_argument("--bank", type=int, default=4096, help="real windows to start from (0: the bundle's own)")
    ap.add_argument("--steps", type=int, default=100_000)
    ap.add_argument("--evals", type=int, default=5)
    ap.add_argument("--episodes", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--data", default="runs/halfcheetah-noframes")
    ap.add_argument("--out", default="runs/branch")
    a = ap.parse_args(argv)
    if a.horizon < 1 or a.bank < 0 or a.steps < a.evals or a.evals < 1:
        ap.error(f"need --horizon >= 1, --bank >= 0 and --steps >= --evals >= 1; got {vars(a)}")
    import torch

    if a.threads:
        torch.set_num_threads(a.threads)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    shipped = dreamgym.resolve(a.bundle)
    if a.bank:
        _, eps = frameless_data(a.data, ("train", "wide"))
        path = with_bank(shipped, out / "bundle", eps, a.bank, seed=a.seed)
    else:
        path = shipped
    b = dreamgym.Bundle.load(shipped)
    C, T = b.context_length, b.max_episode_steps or 1000
    src = open_source_env(b.manifest)
    threads = {"threads": a.threads} if a.threads else {}

    sac_trial(
        lambda: dreamgym.make_env(path, device="cpu", max_episode_steps=a.horizon, **threads),
        a.seed,
        a.steps,
        a.evals,
        lambda act: measure_point(src, shipped, act, a.episodes, T, C, a.seed),
        out,
        "branch",
        {"bundle": b.id, "args": vars(a)},
    )
    src.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

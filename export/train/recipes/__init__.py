"""Recipes: each rebuilds a shipped bundle from nothing, and all take the same command line.

    dreamgym train RECIPE [--preset tiny|full] [--run DIR] [--out DIR] [--world.steps 100 ...]
    python -m dreamgym.export.train.recipes.RECIPE [the same flags]

A recipe module holds one frozen dataclass `Recipe` (every size and path of the rebuild, each field with a
one-line docstring, so `--help` explains it), named presets `PRESETS = {"full": ..., "tiny": ...}` and
`build(recipe, progress=True) -> dict`. Its stages resume from the run folder: `Stages` skips what is done
and records each stage's wall time in RUN/timings.json. Nothing here imports torch, so listing the
recipes is cheap.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RECIPES: dict[str, tuple[str, str]] = {
    "env": (
        "dreamgym.export.train.recipes.any_env",
        "a dream of any Gymnasium env (family `step-ensemble`): `dreamgym train --env ENV_ID`, or --dataset PATH of logged episodes",
    ),
    "halfcheetah_rssm": (
        "dreamgym.export.train.recipes.halfcheetah_rssm",
        "Dream-HalfCheetah-RSSM-v0 (family `rssm`): an RSSM of MuJoCo HalfCheetah-v5 (ARS policy, mixed data)",
    ),
    "halfcheetah_tssm": (
        "dreamgym.export.train.recipes.halfcheetah_tssm",
        "Dream-HalfCheetah-TSSM-v0 (family `tssm`): a transformer state-space model (KV-cache step) of the same data",
    ),
    "halfcheetah_ensemble": (
        "dreamgym.export.train.recipes.halfcheetah_ensemble",
        "Dream-HalfCheetah-v0 (family `step-ensemble`, the default): five memoryless steps of the same data (MBPO/MOPO), short dreams from real states",
    ),
    "simple_tag": (
        "dreamgym.export.train.recipes.simple_tag",
        "Dream-SimpleTag-v0 (family `joint-mlp`): one memoryless joint step of mpe2 simple_tag (two predators, one prey), a PettingZoo dream",
    ),
    "genie": (
        "dreamgym.export.train.recipes.genie",
        "Dream-Breakout-v0 (family `genie`): latent actions and MaskGIT learned from Breakout video alone; --videos DIR for yours",
    ),
    "pong_rem": (
        "dreamgym.export.train.recipes.pong_rem",
        "Dream-Pong-v0 (family `rem`): a Simulus/REM token dream of ALE Pong at 64x64 RGB",
    ),
}
"""recipe name -> (module, one-line description: the id it builds and, in backticks, its family)"""


def get_recipe(name: str):
    """The recipe module called `name` (hyphens or underscores)."""
    key = name.replace("-", "_")
    if key not in RECIPES:
        raise KeyError(f"unknown recipe {name!r}; known: {', '.join(sorted(RECIPES))}")
    return importlib.import_module(RECIPES[key][0])


class Stages:
    """A recipe's resumable stages: `stages("collect", fn, done=...)` runs `fn` unless `done`, and records
    its wall time in FOLDER/timings.json (kept across resumes)."""

    def __init__(self, folder: str | Path, log: Callable[[str], None] = print):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / "timings.json"
        self.timings: dict[str, float] = json.loads(self.path.read_text()) if self.path.exists() else {}
        self.log = log

    def __call__(self, name: str, fn: Callable[[], Any], done: bool = False) -> Any:
        if done:
            self.log(f"[{name}] done in {self.folder}, skipped")
            return None
        t0 = time.time()
        out = fn()
        self.record(name, time.time() - t0)
        return out

    def record(self, name: str, seconds: float) -> None:
        """Set a stage's time (e.g. training time summed over resumes, as its checkpoint tells)."""
        self.timings[name] = round(float(seconds), 1)
        self.path.write_text(json.dumps(self.timings, indent=2) + "\n")


def parse(name: str, argv: list[str] | None = None):
    """The recipe a command line asks for: `--preset NAME` picks a preset (default "full"), every other flag
    overrides one of its fields (tyro)."""
    import argparse

    import tyro

    module = get_recipe(name)
    argv = sys.argv[1:] if argv is None else list(argv)
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--preset", choices=list(module.PRESETS), default="full")
    known, rest = pre.parse_known_args(argv)
    doc = (module.__doc__ or "").strip()
    presets = ", ".join(module.PRESETS)
    description = (
        f"{doc}\n\n--preset {{{presets}}}: the sizes to start from (default full; tiny runs every stage "
        "in about a minute); every option below overrides one field of the preset."
    )
    return module, tyro.cli(
        module.Recipe,
        default=module.PRESETS[known.preset],
        args=rest,
        prog=f"dreamgym train {name}",
        description=description,
    )


def main(name: str, argv: list[str] | None = None) -> int:
    """Parse the command line of recipe `name`, build it, print what it measured."""
    module, recipe = parse(name, argv)
    res = module.build(recipe)
    print(json.dumps(module.summary(res) if hasattr(module, "summary") else res, indent=2, default=str))
    print(f"bundle written to {res.get('out', recipe.out) if isinstance(res, dict) else recipe.out}")
    return 0

"""`dreamgym train` and `dreamgym evaluate`: the export side's commands, reached by the `dreamgym` CLI
through entry points (`dreamgym.export.commands:train`, `dreamgym.export.commands:evaluate`).

Nothing here imports torch at module level: the CLI imports this module to print help.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro


def _recipe_list() -> str:
    from dreamgym.export.train.recipes import RECIPES

    width = max(map(len, RECIPES))
    return "\n".join(f"  {name:<{width}}  {desc}" for name, (_, desc) in sorted(RECIPES.items()))


def train(argv: list[str]) -> int:
    """dreamgym train RECIPE [--preset tiny|full] [--run DIR] [--out DIR] [overrides]: rebuild a bundle."""
    from dreamgym.export.train.recipes import RECIPES, main

    argv = list(argv)
    if argv and argv[0].split("=")[0] in ("--env", "--dataset"):  # the own-env form: the `env` recipe
        argv = ["env", *argv]
    if not argv or argv[0].startswith("-"):
        print(
            "usage: dreamgym train --env ENV_ID [--env-kwargs JSON] [--transfer] [--FIELD VALUE ...]\n"
            "       dreamgym train --dataset PATH (--env ENV_ID | --spaces JSON) [--FIELD VALUE ...]\n"
            "       dreamgym train RECIPE [--preset tiny|full] [--run DIR] [--out DIR] [--FIELD VALUE ...]\n\n"
            "Make a dream of your env, or of its logged episodes, or rebuild a shipped bundle from nothing: collect\n"
            "data, train, export, evaluate; every stage resumes from --run.\n"
            "`dreamgym train --env X --help` and `dreamgym train RECIPE --help` list every option.\n\nrecipes:\n"
            + _recipe_list()
        )
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    name = argv[0].replace("-", "_")
    if name not in RECIPES:
        print(f"dreamgym train: unknown recipe {argv[0]!r}\n\nrecipes:\n{_recipe_list()}", file=sys.stderr)
        return 2
    return main(name, argv[1:])


@dataclass(frozen=True)
class EvaluateArgs:
    bundle: Annotated[str, tyro.conf.Positional, tyro.conf.arg(metavar="ID")]
    """a registered id or a bundle folder"""
    episodes: Annotated[str | None, tyro.conf.arg(metavar="DIR")] = None
    """folder of held-out episode_*.npz (default: collect fresh ones)"""
    count: int = 6
    """fresh held-out episodes to collect when --episodes is not given"""
    max_steps: int = 1000
    """steps per fresh episode at most"""
    seed: int = 12345
    """seed of the fresh episodes"""
    samples: bool = False
    """imagine with samples (noise_scale=1) instead of the most likely outcome (noise_scale=0)"""
    write: bool = False
    """write the metrics, the plot and the model card into the bundle"""


def evaluate(argv: list[str]) -> int:
    """dreamgym evaluate ID [--write] ...: fidelity of a dream on held-out real episodes, for every family."""
    doc = (
        "Fidelity of a dream against its real environment, measured through the runtime: observe C real steps "
        "of held-out episodes, imagine under the recorded actions, compare. Vector dreams: standardised RMSE per "
        "horizon against copy-last, reward error, frame PSNR, the bundled policy's return in dream and reality. "
        "Token dreams (pixels): frame PSNR, token accuracy, points scored. Latent-action dreams (Genie): ΔPSNR "
        "(inferred against random latent actions), the code -> real action confusion and mapping accuracy, frame "
        "PSNR driven by the inferred actions. Without --episodes, fresh held-out episodes are collected from the "
        "bundle's source env (MuJoCo, ALE Pong, ALE Breakout or mpe2)."
    )
    a = tyro.cli(EvaluateArgs, args=list(argv), prog="dreamgym evaluate", description=doc)
    return run_evaluation(a)


def run_evaluation(a: EvaluateArgs) -> int:
    import tempfile

    import dreamgym
    from dreamgym.export.families import get_family, load_evaluator
    from dreamgym.export.measure.report import write_metrics
    from dreamgym.registration import resolve

    path = Path(resolve(a.bundle))
    bundle = dreamgym.Bundle.load(path)
    evaluator = load_evaluator(get_family(bundle.family).evaluator)
    if a.episodes:
        folder = Path(a.episodes)
    else:
        folder = Path(tempfile.mkdtemp(prefix="dreamgym-eval-"))
        evaluator.heldout(bundle, a.count, a.seed, folder, a.max_steps)
    m = evaluator.evaluate(path, evaluator.load(folder), samples=a.samples)
    extra = {"policy_returns": m.pop("policy_returns")} if "policy_returns" in m else None  # multi-agent
    if a.write:
        write_metrics(path, m, extra)
    m.pop("curve", None)
    m.pop("summary", None)
    print(json.dumps(m | (extra or {}), indent=2))
    return 0

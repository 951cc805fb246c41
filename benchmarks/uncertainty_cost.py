"""What the uncertainty output costs: a bundle whose step graph gives `uncertainty` against its twin without
the ensemble (the same weights otherwise), stepped at each batch size in turn, in one run.

The twin of an RSSM drops its ensemble of heads. A step ensemble (`step-ensemble`) *is* its ensemble, so its
twin is one of its members alone (member 0, the mean dream's): the model a learner would get with no
disagreement to measure, and what computing the uncertainty costs is running the other K − 1 members.

    python benchmarks/uncertainty_cost.py [BUNDLE] [--sizes 1,64,1024,4096] [--rounds 3] [--seconds 1.0]

The twin is written to runs/uncertainty-twin (never shipped). Both are stepped through `DreamVectorEnv`
with their defaults, so "with" also pays for the penalty and limit applied to the uncertainty. Each figure is
the best of `--rounds` measurements taken alternately, so a slow spell of the shared machine hits both.
Prints a markdown table of env-steps/s and the ratio (with ÷ without; the issue's bar: ≥ 0.75 at 4096).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np

from dreamgym import Bundle
from dreamgym.bench import measure_vector
from dreamgym.manifest import EnvDefaults


def write_twin(bundle: Path, out: Path) -> Path:
    """The bundle's model without its ensemble, exported with the same exporter (no `uncertainty` output)."""
    from dreamgym.export import exporter
    from dreamgym.export.families import get_family, model_from_bundle

    b = Bundle.load(bundle)
    model = model_from_bundle(b)
    if b.family == "step-ensemble":
        return _write_one_member(b, model, out)
    fam = get_family(b.family)
    cfg = dataclasses.replace(model.cfg, ensemble=0)
    twin = fam.build(cfg)
    sd = {k: v for k, v in model.state_dict().items() if not k.startswith("ensemble.") and k != "reward_std"}
    twin.load_state_dict(sd)
    twin.eval()
    with np.load(b.path / b.manifest.contexts.file, allow_pickle=False) as z:
        ctx = {k: z[k] for k in z.files}
    m = b.manifest.replace(
        outputs=(),
        env_defaults=EnvDefaults(),
        model=dataclasses.replace(b.manifest.model, config=dataclasses.asdict(cfg)),
    )
    exporter.write_bundle(out, model=twin, manifest=m, contexts=ctx)
    return out


def _write_one_member(b: Bundle, model, out: Path) -> Path:
    """Member 0 of a step ensemble alone, with no noise and no uncertainty output."""
    import torch

    from dreamgym.export import exporter
    from dreamgym.export.families.ensemble import StepEnsemble

    class OneMember(StepEnsemble):
        """Its weights cut to member 0's: `layers` then runs that member alone."""

        def step_graph(self, o, action):
            nxt, reward = self.outcome(o, self.layers(self.inputs(o, action).unsqueeze(0))[0])
            return nxt, nxt, reward, torch.zeros_like(reward) > 1.0, nxt

        def noise_spec(self, context_length):
            return ()

        def output_spec(self):
            return ()

        def example_inputs(self, batch, context_length, rng):
            ex = super().example_inputs(batch, context_length, rng)
            ex["step"].pop("noise_member")
            return ex

    twin = OneMember(model.cfg)
    twin.load_state_dict(model.state_dict())
    for params in (twin.w, twin.b):
        for i, w in enumerate(params):
            params[i] = torch.nn.Parameter(w.data[:1].clone())
    twin.eval()
    with np.load(b.path / b.manifest.contexts.file, allow_pickle=False) as z:
        ctx = {k: z[k] for k in z.files}
    m = b.manifest.replace(noise=(), outputs=(), env_defaults=EnvDefaults())
    exporter.write_bundle(out, model=twin, manifest=m, contexts=ctx)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle", nargs="?", default="assets/halfcheetah-rssm")
    ap.add_argument("--sizes", default="1,64,1024,4096")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--twin", default="runs/uncertainty-twin")
    a = ap.parse_args()
    full = Bundle.load(a.bundle)
    if not any(o.name == "uncertainty" for o in full.manifest.outputs):
        raise SystemExit(f"{a.bundle} gives no uncertainty output; nothing to compare")
    twin = Bundle.load(write_twin(Path(a.bundle), Path(a.twin)))
    sizes = [int(s) for s in a.sizes.split(",")]
    best: dict = {}
    for _ in range(a.rounds):
        for n in sizes:
            for name, b in (("with", full), ("without", twin)):
                r = measure_vector(b, n, "cpu", None, a.seconds, None)["steps_per_s"]
                best[name, n] = max(best.get((name, n), 0.0), r)
    rows = [
        {
            "num_envs": n,
            "with": best["with", n],
            "without": best["without", n],
            "ratio": best["with", n] / best["without", n],
        }
        for n in sizes
    ]
    print("| envs | with uncertainty (steps/s) | without (steps/s) | with ÷ without |")
    print("|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['num_envs']} | {r['with']:,.0f} | {r['without']:,.0f} | {r['ratio']:.2f} |")
    print(json.dumps({"bundle": str(a.bundle), "rounds": a.rounds, "rows": rows}))


if __name__ == "__main__":
    main()

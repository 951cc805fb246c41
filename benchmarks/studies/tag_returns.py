"""The bundled policies' returns in multi-agent simple_tag dreams against mpe2, on many real starts, for one or
more bundles on the same starts (issue 14's "policy returns within 25 %").

    python benchmarks/studies/tag_returns.py [BUNDLE ...] [--starts 256] [--horizon 100] [--seed 1000]

A tag is a rare event (about one per 10 steps per predator under the bundled policies), so a return over
64 starts has a standard error near 20 % of its mean; this measures the same comparison as the card's
(`measure.joint.policy_returns`: a real warm-up of random length, its last C steps as the dream's context,
then `--horizon` steps of the bundled policies on both sides) on as many starts as asked, every bundle on the
same ones. Per agent: real and dream mean return ± standard error, and the relative error.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import dreamgym
from dreamgym.export.data import mpe
from dreamgym.export.measure.joint import policy_returns


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bundles", nargs="*", default=["Dream-SimpleTag-v0"])
    ap.add_argument("--starts", type=int, default=256)
    ap.add_argument("--horizon", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1000)
    ap.add_argument("--out", default="runs/tag-returns.json")
    a = ap.parse_args(argv)
    res = {}
    print(f"| bundle | agent | real return | dream return | relative error | {a.starts} starts |")
    print("|---|---|---:|---:|---:|---|")
    for name in a.bundles:
        path = dreamgym.resolve(name)
        r = policy_returns(path, lambda: mpe.make_env(max_cycles=10**6), n=a.starts, horizon=a.horizon, seed=a.seed)
        res[str(path)] = r
        for agent, v in r["agents"].items():
            print(
                f"| {name} | `{agent}` | {v['real_return']:.1f} ± {v['real_se']:.1f} | "
                f"{v['dream_return']:.1f} ± {v['dream_se']:.1f} | {v['relative_error']:.0%} | "
                f"{'within 25 %' if v['within_25pct'] else 'not within 25 %'} |",
                flush=True,
            )
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Soak every shipped dream: 1,000,000 env-steps each with random actions and masked resets (`dreamgym.soak`).

    python benchmarks/soak.py [--steps 1000000] [--ids ID ...] [--json out.json]

Prints the markdown table of benchmarks/README.md ("Soak"). Bars of issue 16: 0 non-finite values and memory
growth at most 5 % after warm-up, for every shipped dream.
"""

from __future__ import annotations

import argparse
import json

import dreamgym
from dreamgym.soak import HEADER, markdown_row, soak

# envs per call: enough for throughput, few enough for the token dreams' memory
NUM_ENVS = {"Dream-Pong-v0": 64, "Dream-Breakout-v0": 64}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=1_000_000)
    p.add_argument("--ids", nargs="*", default=sorted(dreamgym.shipped_bundles()))
    p.add_argument("--json", default=None)
    a = p.parse_args()
    rows = []
    print(HEADER, flush=True)
    for i in a.ids:
        r = soak(i, steps=a.steps, num_envs=NUM_ENVS.get(i, 256), progress=True)
        rows.append(r)
        print(markdown_row(r), flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()

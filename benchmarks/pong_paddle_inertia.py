"""How much of the real player's paddle's next row the frames before tell: a lookup table from (its last k rows,
the last m actions) to the next row, as the slot token holds it (the detector's centre, rounded), counted on some
of the recipe's held-out episodes and tried on the others.

    python benchmarks/pong_paddle_inertia.py [--heldout DIR] [--fit 6] [--train RUN/data/train]

For each (k, m): the share of the other episodes' steps whose (rows, actions) the table has seen ("seen") and,
of those, the share where its most common next row is the real one ("right"); and, in the episodes it was
counted on, the share of steps its most common next row covers ("in-sample": how deterministic the next row is
given the history). ALE Pong without sticky actions is deterministic; the paddle moves with inertia, so the current
row and action tell little and three of each tell nearly all (`REMConfig.slot_history`).

With `--train` (a folder of the recipe's training episodes, e.g. `runs/pong/data/train`) the table is counted on
those instead and tried on every held-out episode: what the data a world model learns from tells of the paddle.
"""

from __future__ import annotations

import argparse
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from dreamgym.export.data.collect import load_episodes
from dreamgym.export.measure.pong import detect
from dreamgym.export.train.recipes.pong_rem_tokens import heldout_episodes

HISTORIES = ((1, 1), (2, 1), (2, 2), (3, 2), (3, 3), (4, 4))


def rows_and_actions(episodes) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for e in episodes:
        p = detect(e["obs"])["paddle_y"]
        out.append((np.where(np.isnan(p), -1, np.round(p)).astype(int), np.asarray(e["actions"])))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--heldout", default=None, help="a folder of the recipe's held-out episodes (default: collect)")
    ap.add_argument("--fit", type=int, default=6, help="episodes the table is counted on (the rest try it)")
    ap.add_argument("--train", default=None, help="count the table on the episodes in this folder instead")
    a = ap.parse_args(argv)
    seqs = rows_and_actions(heldout_episodes(a.heldout))
    fit, test = seqs[: a.fit], seqs[a.fit :]
    if a.train:
        fit, test = rows_and_actions(load_episodes(Path(a.train))), seqs
    print("| last rows k | last actions m | seen | right, of seen | in-sample |")
    print("|---:|---:|---:|---:|---:|")
    for k, m in HISTORIES:

        def key(r, act, t, k=k, m=m):
            return (*r[t - k + 1 : t + 1], *act[t - m + 1 : t + 1])

        table = defaultdict(Counter)
        for r, act in fit:
            for t in range(8, len(act)):
                table[key(r, act, t)][r[t + 1]] += 1
        right = seen = n = 0
        for r, act in test:
            for t in range(8, len(act)):
                n += 1
                c = table.get(key(r, act, t))
                if c:
                    seen += 1
                    right += c.most_common(1)[0][0] == r[t + 1]
        inside = sum(c.most_common(1)[0][1] for c in table.values()) / sum(sum(c.values()) for c in table.values())
        print(f"| {k} | {m} | {seen / n:.0%} | {right / max(seen, 1):.1%} | {inside:.1%} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

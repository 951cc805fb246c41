"""Where a Pong dream's frame error lies: the held-out frame PSNR of the card, split by the part of the frame
the squared error comes from.

    python benchmarks/pong_psnr_parts.py BUNDLE [BUNDLE ...] [--seed 0] [--heldout DIR] [--out runs/pong-psnr-parts.json]

The windows, actions and sampling are the card's (`token_fidelity`: the Pong recipe's 8 held-out episodes of
seed 1, every 25th window, the bundle's temperature, the evaluator's seed), so the "all" column is the card's
frame PSNR. Each frame's squared error is split over disjoint parts of the 64×64 frame:

- ball: the pixels where the real frame or the dream's frame shows the ball (`ball_weight` > 0), grown by one
  pixel on every side (the resize to 64×64 smears it);
- player / opponent: the rest of the two paddles' columns in the play field;
- score band: the rows above the play field (the score and the top wall); bottom: the rows below it;
- field: everything else (the floor of the play field).

The dream's ball against the real one at each horizon: of the real frames with one ball, the share where the
dream's one ball is within 3 pixels of it, where the dream shows none, and elsewhere (a ball away from it, or
several); and of the real frames without a ball, the share where the dream draws one.

The player's paddle (`detect`'s centre of its green) against the real one: the median and mean error and the
share of frames more than 2 pixels off, at each horizon.

For each part the table gives its share of the mean squared error at each horizon, and the PSNR the frames would
have if that part's pixels were exact and nothing else changed (per frame, then averaged, as the card averages).
Old bundles load from git: `mkdir -p /tmp/v0 && git archive 99c52e9 assets/pong-rem | tar -x -C /tmp/v0`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import dreamgym
from dreamgym.export.measure.fidelity import _windows
from dreamgym.export.measure.pong import FIELD, PLAYER_COLS, ball_weight, detect
from dreamgym.export.measure.token import token_episodes
from dreamgym.export.train.recipes.pong_rem_tokens import heldout_episodes

HORIZONS = (1, 10, 20, 50, 100)
NEAR = 3.0  # pixels: a dream's ball this close to the real one is where the real one is
OPPONENT_COLS = (3, 11)  # the opponent's paddle, with room around it (ALE columns 16-19 of 160)
PARTS = ("ball", "player", "opponent", "score band", "bottom", "field")


def part_masks(dream: np.ndarray, real: np.ndarray) -> dict[str, np.ndarray]:
    """(N, 64, 64, 3) uint8 frames → disjoint (N, 64, 64) boolean masks that cover every pixel."""
    n, s = dream.shape[:2]
    assert s == 64, "the parts are laid out for 64x64 frames"
    ball = (ball_weight(dream) > 0) | (ball_weight(real) > 0)
    grown = ball.copy()
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            grown |= np.roll(np.roll(ball, dy, 1), dx, 2)
    rows = np.arange(s)[None, :, None]
    cols = np.arange(s)[None, None, :]
    in_field = (rows >= FIELD[0]) & (rows < FIELD[1])
    player = in_field & (cols >= PLAYER_COLS[0]) & (cols < PLAYER_COLS[1]) & ~grown
    opponent = in_field & (cols >= OPPONENT_COLS[0]) & (cols < OPPONENT_COLS[1]) & ~grown
    masks = {
        "ball": grown,
        "player": np.broadcast_to(player, (n, s, s)),
        "opponent": np.broadcast_to(opponent, (n, s, s)),
        "score band": np.broadcast_to((rows < FIELD[0]) & ~grown, (n, s, s)),
        "bottom": np.broadcast_to((rows >= FIELD[1]) & ~grown, (n, s, s)),
    }
    masks["field"] = ~np.logical_or.reduce(list(masks.values()))
    return masks


def psnr_parts(bundle_path, episodes: list[dict], horizon: int = 100, stride: int = 25, seed: int = 0) -> dict:
    env, starts, C = _windows(bundle_path, episodes, horizon, stride, noise_scale=1.0, seed=seed)
    out = {"windows": len(starts), "horizons": {}}
    for h in range(1, horizon + 1):
        t = [s + C - 1 + h for _, s in starts]
        a = np.array([episodes[i]["prev_act"][tt] for (i, _), tt in zip(starts, t)])
        o, *_ = env.step(a)
        if h not in HORIZONS:
            continue
        real = np.stack([episodes[i]["obs"][tt] for (i, _), tt in zip(starts, t)])
        err = ((o.astype(np.float64) - real.astype(np.float64)) ** 2).sum(-1) / 3.0 / 255.0**2  # (N, 64, 64)
        pixels = err[0].size
        mse = err.reshape(len(err), -1).sum(1) / pixels
        psnr = lambda m: float((-10 * np.log10(np.maximum(m, 1e-10))).mean())  # noqa: E731
        row = {"all": {"psnr_db": psnr(mse), "mse": float(mse.mean())}}
        for name, m in part_masks(o, real).items():
            part = (err * m).reshape(len(err), -1).sum(1) / pixels
            row[name] = {
                "mse_share": float(part.mean() / mse.mean()),
                "psnr_if_exact_db": psnr(mse - part),
                "pixels_share": float(m.mean()),
            }
        d, q = detect(o), detect(real)
        one = q["balls"] == 1
        dist = np.hypot(d["ball_y"] - q["ball_y"], d["ball_x"] - q["ball_x"])[one]
        none_real = q["balls"] == 0
        row["ball"]["real_one_ball_frames"] = int(one.sum())
        row["ball"]["near"] = float((dist <= NEAR).mean())  # of the real frames with one ball
        row["ball"]["missing"] = float((d["balls"][one] == 0).mean())
        row["ball"]["elsewhere"] = float(1 - (dist <= NEAR).mean() - (d["balls"][one] == 0).mean())
        row["ball"]["drawn_where_none"] = float((d["balls"][none_real] > 0).mean()) if none_real.any() else None
        pe = np.abs(d["paddle_y"] - q["paddle_y"])
        pe = pe[~np.isnan(pe)]
        row["player"]["paddle_error_median_px"] = float(np.median(pe)) if len(pe) else None
        row["player"]["paddle_error_mean_px"] = float(pe.mean()) if len(pe) else None
        row["player"]["paddle_off_2px"] = float((pe > 2).mean()) if len(pe) else None
        out["horizons"][str(h)] = row
    env.close()
    return out


def by_horizon(runs: dict, part: str, cell) -> None:
    """Print a markdown table: a row per bundle, a column per horizon, `cell` of that part's figures."""
    print("| bundle | " + " | ".join(f"h = {h}" for h in HORIZONS) + " |")
    print("|---|" + "---|" * len(HORIZONS))
    for b, run in runs.items():
        print(f"| {b} | " + " | ".join(cell(run["horizons"][str(h)][part]) for h in HORIZONS) + " |")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bundles", nargs="+")
    ap.add_argument("--seed", type=int, default=0, help="the evaluator's sampling seed (the card's is 0)")
    ap.add_argument("--heldout", default=None, help="a folder of the recipe's held-out episodes (default: collect)")
    ap.add_argument("--out", default="runs/pong-psnr-parts.json")
    a = ap.parse_args(argv)
    eps = token_episodes(heldout_episodes(a.heldout))
    runs = {}
    for b in a.bundles:
        t0 = time.perf_counter()
        runs[b] = psnr_parts(dreamgym.resolve(b), eps, seed=a.seed)
        runs[b]["seconds"] = time.perf_counter() - t0
        print(json.dumps({"bundle": b, **runs[b]}), flush=True)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps({"seed": a.seed, "runs": runs}, indent=2) + "\n")
    for h in map(str, HORIZONS):
        print(f"\nh = {h}: frame PSNR, and per part: its share of the squared error / the PSNR were it exact (dB)")
        print("| bundle | all | " + " | ".join(PARTS) + " |")
        print("|---|---:|" + "---:|" * len(PARTS))
        for b in a.bundles:
            r = runs[b]["horizons"][h]
            cells = [f"{100 * r[p]['mse_share']:.0f} % / {r[p]['psnr_if_exact_db']:.2f}" for p in PARTS]
            print(f"| {b} | {r['all']['psnr_db']:.2f} | " + " | ".join(cells) + " |")
    print(f"\nthe dream's ball, of the real frames with one ball: within {NEAR:g} px / none / elsewhere; and of the")
    print("real frames with none, the share where the dream draws one")
    by_horizon(
        runs,
        "ball",
        lambda r: (
            f"{100 * r['near']:.0f} / {100 * r['missing']:.0f} / {100 * r['elsewhere']:.0f} %; "
            + ("–" if r["drawn_where_none"] is None else f"{100 * r['drawn_where_none']:.0f} %")
        ),
    )
    print("\nthe player's paddle: median / mean error (px), share of frames more than 2 px off")
    by_horizon(
        runs,
        "player",
        lambda r: (
            f"{r['paddle_error_median_px']:.1f} / {r['paddle_error_mean_px']:.1f}; {100 * r['paddle_off_2px']:.0f} %"
        ),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""How well can the contact be told from the ball's and the paddle's places? The ceiling a Pong dream can reach.

    python benchmarks/pong_contact_ceiling.py [--data runs/pong/data] [--world RUN/world/world.npz ...]
        [--updates 3000] [--out runs/pong-contact-ceiling.json]

`--data` is a Pong run's data folder (`dreamgym train pong_rem --run RUN` collects it: RUN/data with train/,
train_clean/ and heldout/ episodes). In every episode the evaluator's detector finds the ball and the player's
paddle, and the decisive steps are those of `pong_bounce.py`: the ball near the player's paddle and moving
towards it, and in the next frame either turned back or past the paddle's face. A small MLP is trained on the
training episodes' decisive steps to say which, from the ball's row and column in the frame before and this one,
the paddle's row in both, and the action (the places rounded to the pixel, as the dream's slot tokens hold them),
and is scored on the held-out episodes' steps. What it gets right is known from the frames a dream reads;
`pong_bounce.py` measures how much of it a dream has learned. Also trained without the actions, and on the
detector's unrounded centres.

Each `--world` checkpoint (a Pong recipe's world model, `RUN/world/world.npz`, during or after training) is scored
on the same held-out steps, teacher-forced: the held-out frames tokenised by its own tokenizer, the window of up
to `--window` steps that ends at the step read from a zero state (as it is trained), and p(bounce) the mass its
ball-column token puts on columns left of the current one (temperature 1).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from pong_bounce import outcome
from pong_contact import report
from tqdm.auto import tqdm

from dreamgym.export.data.collect import load_episodes
from dreamgym.export.measure.pong import detect


def decisive(folders: list[Path], progress: bool = True, where: list | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Features (N, 6 + 6): ball row, ball column at t - 1 and t, paddle row at t - 1 and t, the action at t
    one-hot; and whether the ball turned back (N,), over the decisive steps of the episodes in `folders`.
    `where`, if given, receives (episode, t) of each step."""
    X, Y = [], []
    eps = [e for f in folders for e in load_episodes(f)]
    for i, e in enumerate(tqdm(eps, desc="detect", disable=not progress, unit="ep")):
        d = detect(e["obs"])
        by, bx, py, a = d["ball_y"], d["ball_x"], d["paddle_y"], e["actions"]
        for t in range(1, len(a)):
            y = outcome(bx[t - 1], bx[t], bx[t + 1])
            if y is None or not np.isfinite([py[t - 1], py[t]]).all():
                continue
            X.append([by[t - 1], bx[t - 1], by[t], bx[t], py[t - 1], py[t], *np.eye(6)[a[t]]])
            Y.append(y)
            if where is not None:
                where.append((i, t))
    return np.asarray(X, np.float32).reshape(-1, 12), np.asarray(Y, bool)


def scores(p: np.ndarray, Yh: np.ndarray) -> dict:
    """p(bounce) (N,) against the outcomes (N,)."""
    p = np.asarray(p, np.float64)
    eps = 1e-6
    return {
        "accuracy": float(((p > 0.5) == Yh).mean()),
        "p_bounce_when_real_bounces": float(p[Yh].mean()) if Yh.any() else float("nan"),
        "p_bounce_when_real_misses": float(p[~Yh].mean()) if (~Yh).any() else float("nan"),
        "log_loss": float(-np.mean(np.where(Yh, np.log(p + eps), np.log(1 - p + eps)))),
    }


def world_p_bounce(ckpt: Path, eps: list[dict], where: list, window: int) -> tuple[np.ndarray, int]:
    """A Pong world model checkpoint's teacher-forced p(bounce) at each (episode, t) of `where`, and its step."""
    from dreamgym.export.families.rem import REM, REMConfig
    from dreamgym.export.train.fit import load_checkpoint
    from dreamgym.export.train.recipes.pong_rem_tokens import tokenize

    meta = load_checkpoint(ckpt)
    model = REM(REMConfig(**meta["config"]))
    load_checkpoint(ckpt, model)
    model.eval()
    c = model.cfg
    G, col0 = c.grid * c.grid, c.tokenizer_config.slots[1][0]
    toks = tokenize(model.tokenizer, eps)
    out = []
    with torch.no_grad():
        for i, t in where:
            e, s = eps[i], max(0, t - window + 1)
            tok = torch.from_numpy(toks[i][s : t + 1].astype(np.int64))[None]
            act = torch.from_numpy(e["actions"][s : t + 1].astype(np.int64))[None]
            before = e["rewards"][s - 1] if s > 0 else 0.0
            prev = torch.from_numpy(np.concatenate([[before], e["rewards"][s:t]]).astype(np.float32))[None]
            _, pred, _ = model.run(model.embed_blocks(tok, act, prev), model.initial_state(1))
            logits = model.token_logits(model.mix_slots(pred, tok, act))[0, -1, G + 1]  # the ball's column at t + 1
            col = torch.arange(len(logits)) - col0
            left = (col >= 0) & (col < int(tok[0, -1, G + 1]) - col0)
            out.append(float(torch.softmax(logits, -1)[left].sum()))
    return np.asarray(out), int(meta["step"])


def fit_and_score(X, Y, Xh, Yh, updates: int, seed: int = 0) -> dict:
    """An MLP (2 x 128) trained with Adam on (X, Y), scored on (Xh, Yh)."""
    mu, sd = X.mean(0), X.std(0) + 1e-6
    x, xh = torch.from_numpy((X - mu) / sd), torch.from_numpy((Xh - mu) / sd)
    y = torch.from_numpy(Y.astype(np.float32))
    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Linear(X.shape[1], 128),
        torch.nn.ReLU(),
        torch.nn.Linear(128, 128),
        torch.nn.ReLU(),
        torch.nn.Linear(128, 1),
    )
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    for _ in range(updates):
        i = torch.randint(0, len(x), (256,))
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net(x[i])[:, 0], y[i])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return scores(torch.sigmoid(net(xh)[:, 0]).numpy(), Yh)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="runs/pong/data")
    ap.add_argument("--world", nargs="*", default=[], help="world model checkpoints to score beside the ceiling")
    ap.add_argument("--window", type=int, default=10, help="steps a checkpoint reads up to the decisive one")
    ap.add_argument("--updates", type=int, default=3000)
    ap.add_argument("--out", default="runs/pong-contact-ceiling.json")
    a = ap.parse_args(argv)
    data = Path(a.data)
    train = [data / n for n in ("train", "train_clean") if (data / n).is_dir()]
    if not train or not (data / "heldout").is_dir():
        raise SystemExit(
            f"{data}: expected train/ (and train_clean/) and heldout/ episode folders; "
            "collect them with `dreamgym train pong_rem --run RUN` and pass --data RUN/data"
        )
    torch.set_num_threads(1)
    X, Y = decisive(train)
    where: list = []
    Xh, Yh = decisive([data / "heldout"], where=where)
    if not (len(Y) and len(Yh)):
        raise SystemExit(f"{data}: no decisive steps found (train {len(Y)}, held-out {len(Yh)})")
    rnd = lambda v: np.concatenate([np.round(v[:, :6]), v[:, 6:]], 1)  # noqa: E731  the slot tokens' pixels
    res = {
        "data": str(data),
        "train_steps": len(Y),
        "train_bounce_share": float(Y.mean()),
        "heldout_steps": len(Yh),
        "heldout_bounce_share": float(Yh.mean()),
        "updates": a.updates,
        "ceiling": {
            "places and action": fit_and_score(rnd(X), Y, rnd(Xh), Yh, a.updates),
            "places only": fit_and_score(rnd(X)[:, :6], Y, rnd(Xh)[:, :6], Yh, a.updates),
            "unrounded places and action": fit_and_score(X, Y, Xh, Yh, a.updates),
        },
    }
    if a.world:
        held = list(load_episodes(data / "heldout"))
        for ckpt in a.world:
            p, step = world_p_bounce(Path(ckpt), held, where, a.window)
            res["ceiling"][f"world model {ckpt} at update {step}, teacher-forced"] = scores(p, Yh)
    lines = [
        f"decisive steps: {len(Y)} to train on ({Y.mean():.0%} bounces), {len(Yh)} held out ({Yh.mean():.0%} "
        f"bounces: always saying 'miss' is right at {1 - Yh.mean():.0%})",
        "| inputs | held-out accuracy | mean p(bounce) where reality bounces | where it misses | log loss |",
        "|---|---:|---:|---:|---:|",
    ]
    for what, m in res["ceiling"].items():
        lines.append(
            f"| {what} | {m['accuracy']:.1%} | {m['p_bounce_when_real_bounces']:.2f} | "
            f"{m['p_bounce_when_real_misses']:.2f} | {m['log_loss']:.3f} |"
        )
    return report(lines, res, a.out)


if __name__ == "__main__":
    raise SystemExit(main())

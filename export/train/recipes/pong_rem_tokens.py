"""Dream-Pong-v0's frames as tokens: the recipe's episodes, the tokenizer trained on them with its weighting of
what moves, the tokenised sequences the world model samples (with windows around the paddle's contact), and
the world model's training through `fit`."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

from dreamgym.export.data.atari import collect_pong
from dreamgym.export.data.collect import load_episodes
from dreamgym.export.families.rem import REM
from dreamgym.export.families.tokenizer import ImageTokenizer, ImageTokenizerConfig
from dreamgym.export.measure.pong import ball_weight
from dreamgym.export.train.fit import fit
from dreamgym.export.train.recipes.pong_rem_config import FULL, Recipe


def heldout_episodes(folder: str | Path | None = None) -> list[dict[str, np.ndarray]]:
    """The recipe's held-out episodes (8 of seed 1): read from `folder` (a run's `data/heldout`), or collected
    afresh into a temporary folder (the same episodes: the collection is seeded)."""
    if folder is not None:
        return load_pong(Path(folder))
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        collect_pong(FULL.collect_heldout, Path(tmp) / "heldout", progress=True)
        return load_pong(Path(tmp) / "heldout")


def load_pong(folder: Path) -> list[dict[str, np.ndarray]]:
    eps = list(load_episodes(folder))
    if not eps:
        raise FileNotFoundError(f"no episode_*.npz in {folder}; run the collect stage first")
    return eps


def background(frames: np.ndarray) -> np.ndarray:
    """The static background: the per-pixel median of the frames."""
    return np.median(frames, axis=0).astype(np.float32)


def foreground_weight(frames: np.ndarray, bg: np.ndarray, extra: float, ball: float = 0.0) -> np.ndarray:
    """Per-pixel weights of the tokenizer's loss: 1, plus `extra` where a pixel differs from the static
    background, plus `ball` where it looks like the ball (`measure.pong.ball_weight`: one or two faint pixels
    that, weighted like a paddle's, the codes still round away)."""
    diff = np.abs(frames.astype(np.float32) - bg).max(-1)
    w = 1.0 + extra * (diff > 20)
    if ball:
        w = w + ball * (ball_weight(frames) > 0)
    return w.astype(np.float32)


def train_tokenizer(
    tok: ImageTokenizer,
    frames: np.ndarray,
    held: np.ndarray,
    r: Recipe,
    out: Path,
    progress: bool = True,
    ball: float = 0.0,
) -> dict:
    """Train the VQ-VAE on uint8 frames (N, S, S, 3) through `fit`, with dead codes restarted every
    `r.restart_every` updates; checkpoint and log in `out`, the held-out quality in out/tokenizer.json.
    `ball`: extra loss weight of Pong's ball pixels (0 for other games, e.g. the Genie recipe's Breakout)."""
    cfg = r.tokenizer
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    bg = background(frames[rng.integers(len(frames), size=min(len(frames), 2000))])
    if not (out / "tokenizer.npz").exists():  # codes start on encoder outputs of real frames, not around zero
        torch.manual_seed(cfg.seed)
        with torch.no_grad():
            x = torch.from_numpy(frames[rng.integers(len(frames), size=256)]).permute(0, 3, 1, 2).float()
            tok.restart_codes(
                torch.ones(tok.c.codebook, dtype=torch.bool), tok.encoder(x / 127.5 - 1.0).permute(0, 2, 3, 1), gen
            )
    usage = torch.zeros(tok.c.codebook, dtype=torch.long)

    def sample(n: int, source: np.ndarray = frames):
        x = source[rng.integers(len(source), size=n)]
        if tok.c.ball:  # the grid never sees the ball (it has its own tokens): weights of the frame it learns
            x = tok.strip_ball(torch.from_numpy(x)).numpy().astype(np.uint8)
        return torch.from_numpy(x), torch.from_numpy(foreground_weight(x, bg, r.foreground_weight, ball))

    def restart_dead_codes(step: int, logs: dict) -> None:
        nonlocal usage
        usage += torch.bincount(logs.pop("ids").flatten(), minlength=tok.c.codebook)
        z = logs.pop("z")
        if step % r.restart_every == 0:
            if step < 0.8 * cfg.steps:
                tok.restart_codes(usage == 0, z, gen)
            usage.zero_()

    def heldout() -> dict:
        logs = tok.loss(*sample(4 * cfg.batch, held))[1]
        return {k: v for k, v in logs.items() if k not in ("ids", "z")}

    res = fit(
        tok,
        lambda b: tok.loss(*b),
        sample,
        cfg,
        out,
        name="tokenizer",
        heldout=heldout,
        on_step=restart_dead_codes,
        meta={"config": dataclasses.asdict(tok.c)},
        progress=progress,
    )
    ev = tokenizer_quality(tok, held)
    ev["wall_s"] = res["wall_s"]
    ev["updates"] = cfg.steps
    (out / "tokenizer.json").write_text(json.dumps(ev, indent=2) + "\n")
    return ev


@torch.no_grad()
def tokenizer_quality(tok: ImageTokenizer, frames: np.ndarray) -> dict:
    """Reconstruction PSNR of held-out frames through the tokens, and how many codes they use."""
    tok.eval()
    ps, used = [], set()
    for a in range(0, len(frames), 256):
        x = torch.from_numpy(frames[a : a + 256])
        ids = tok.encode(x)
        rec = tok.decode_uint8(ids).numpy().astype(np.float64)
        mse = ((rec - x.numpy()) ** 2).reshape(len(x), -1).mean(1) / 255.0**2
        ps.append(-10 * np.log10(np.maximum(mse, 1e-10)))
        used.update(ids.unique().tolist())
    return {"heldout_psnr_db": float(np.concatenate(ps).mean()), "codes_used": len(used), "frames": int(len(frames))}


@torch.no_grad()
def tokenize(tok: ImageTokenizer, eps: list[dict]) -> list[np.ndarray]:
    tok.eval()
    out = []
    for e in eps:
        ids = [tok.encode(torch.from_numpy(e["obs"][a : a + 512])) for a in range(0, len(e["obs"]), 512)]
        out.append(torch.cat(ids).numpy().astype(np.int16))
    return out


def contact_steps(tokens: np.ndarray, c: ImageTokenizerConfig, near: int = 50) -> np.ndarray:
    """tokens (N, K) of one episode's frames -> the steps t < N - 1 whose frame has the ball at or beyond column
    `near` (of the frame) and further right than in the frame before: on its way into the player's paddle, the
    next frame decides a bounce or a miss."""
    (_, _), (col0, n) = c.slots[:2]
    col = tokens[:, c.grid_tokens + 1].astype(np.int64) - col0  # n - 1 = S: no ball
    seen = col < n - 1
    t = np.arange(1, len(tokens) - 1)
    ok = seen[t] & seen[t - 1] & (col[t] >= near) & (col[t] > col[t - 1])
    return t[ok]


class TokenSequences:
    """Random windows of T steps: tokens of frames t..t+T, actions, rewards and terminations after t..t+T-1,
    and the reward received before frame t. With `contact` (the tokenizer's config) and `contact_share`, that share
    of the windows is drawn around a uniformly chosen `contact_steps` step instead (it, the frame before and the
    frame after inside the window, at a uniform place)."""

    def __init__(
        self,
        tokens: list[np.ndarray],
        eps: list[dict],
        T: int,
        seed: int,
        contact: ImageTokenizerConfig | None = None,
        contact_share: float = 0.0,
    ):
        self.tokens, self.eps, self.T = tokens, eps, T
        self.rng = np.random.default_rng(seed)
        lens = np.array([len(e["actions"]) - T + 1 for e in eps])
        if (lens <= 0).any():
            raise ValueError(f"every episode needs more than {T} steps")
        self.p = lens / lens.sum()
        self.contact_share = contact_share
        self.contacts = np.zeros((0, 2), np.int64)
        if contact_share > 0:
            if contact is None or not contact.ball:
                raise ValueError("contact_share needs the ball's tokens (model.ball_tokens)")
            self.contacts = np.array(
                [(i, t) for i, tk in enumerate(tokens) for t in contact_steps(tk, contact)], np.int64
            ).reshape(-1, 2)
            if not len(self.contacts):
                raise ValueError("contact_share: no step of the data has the ball on its way into the paddle")

    def _start(self, i: int, t: int) -> int:
        """a window start that holds frames t - 1, t and t + 1 (the ball's motion into the contact and its
        outcome; windows are read from a zero state), uniformly among those that fit the episode"""
        last = len(self.eps[i]["actions"]) - self.T
        return int(self.rng.integers(max(0, t + 1 - self.T), min(t - 1, last) + 1))

    def sample(self, n: int) -> dict[str, torch.Tensor]:
        tok, act, rew, term, first = [], [], [], [], []
        k = int(self.rng.binomial(n, self.contact_share)) if self.contact_share > 0 else 0
        picks = [(int(i), None) for i in self.rng.choice(len(self.eps), size=n - k, p=self.p)]
        picks += [(int(i), int(t)) for i, t in self.contacts[self.rng.integers(len(self.contacts), size=k)]]
        for i, t in picks:
            e = self.eps[i]
            s = int(self.rng.integers(len(e["actions"]) - self.T + 1)) if t is None else self._start(i, t)
            tok.append(self.tokens[i][s : s + self.T + 1]), act.append(e["actions"][s : s + self.T])
            rew.append(e["rewards"][s : s + self.T]), term.append(e["terminations"][s : s + self.T])
            first.append(e["rewards"][s - 1] if s > 0 else 0.0)
        f = lambda x, dt: torch.from_numpy(np.asarray(x, dt))  # noqa: E731
        return {
            "tokens": f(tok, np.int64),
            "actions": f(act, np.int64),
            "rewards": f(rew, np.float32),
            "terms": f(term, np.float32),
            "first_reward": f(first, np.float32),
        }


def train_world(
    model: REM, train: TokenSequences, held: TokenSequences, r: Recipe, out: Path, progress: bool = True
) -> dict:
    """Train the world model (everything but the tokenizer; only the slot mixer with `r.world_part`) through
    `fit`; checkpoint and log in `out`. What is not trained is frozen (no gradient), so its backward is skipped."""
    if r.world_part == "slot_mixer":
        trained = {id(p) for p in model.mixer.parameters()}
    else:
        trained = {id(p) for p in model.parameters()} - {id(p) for p in model.tokenizer.parameters()}
    for p in model.parameters():
        p.requires_grad_(id(p) in trained)
    args = lambda b: (b["tokens"], b["actions"], b["rewards"], b["terms"], b["first_reward"])  # noqa: E731
    res = fit(
        model,
        lambda b: model.loss(*args(b)),
        train.sample,
        r.world,
        out,
        name="world",
        params=[p for p in model.parameters() if id(p) in trained],
        heldout=lambda: model.loss(*args(held.sample(4 * r.world.batch)))[1],
        meta={"config": dataclasses.asdict(model.cfg)},
        progress=progress,
    )
    last = res["last_eval"]
    if not last and (out / "world_log.jsonl").exists():  # a run trained before `fit` logged here
        last = json.loads((out / "world_log.jsonl").read_text().splitlines()[-1])
    return {"updates": res["step"], "wall_s": res["wall_s"], "last_eval": last}

"""Tokenizers for the Simulus/REM family (`export/families/rem.py`).

Observations become discrete tokens per modality, as in Simulus:
- images: a VQ-VAE — a convolutional encoder to a grid of vectors, each snapped to the nearest of
  `codebook` learned codes (straight-through gradients, commitment loss, dead codes restarted), and a
  decoder back. The encoder is patch-local: every convolution has kernel = stride (or 1x1) and there is
  no normalisation across the image, so a token depends on its own patch of pixels only (the decoder may
  look at neighbouring tokens). A first version with overlapping 4x4 kernels and image-wide group norm gave the same
  patch of Pong floor different codes depending on where the ball and the score were (39 distinct codes in
  a frame that is mostly floor; only 74 % of tokens unchanged from one frame to the next), noise the world
  model would have had to predict;
- Pong's ball (`ImageTokenizerConfig.ball`): two more tokens per frame, its row and its column, found by colour
  and taken out of the frame the grid encodes; and the player's paddle (`paddle`): one more, its row, found
  by colour and left in the frame (the grid draws it);
- vectors: symlog, then uniform quantisation into `bins` levels per dimension (no learning needed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from dreamgym.export.families.layers import symexp, symlog


@dataclass(frozen=True)
class ImageTokenizerConfig:
    size: int = 64
    """input side in pixels"""
    grid: int = 8
    """tokens per side (size / grid must be a power of two)"""
    codebook: int = 512
    """number of codes"""
    code_dim: int = 32
    """width of a code"""
    channels: int = 32
    """channels of the first conv layer (x2 per downsampling)"""
    beta: float = 0.25
    """commitment weight"""
    encoder_kernel: int = 2
    """2: kernel = stride, a token sees its own patch only; 4: overlapping (padding 1), it also sees 1-3 px around"""
    decoder_kernel: int = 4
    """the same for the decoder's transposed convolutions (4: a patch is drawn with its neighbours in view,
    which removes seams and, measured on Pong, halves the error on the ball and paddles)"""
    ball: bool = False
    """Pong's ball gets two tokens of its own after the grid's, its row and its column (or "no ball"): it is
    found by colour (the rule of `measure.pong.ball_weight`), painted over with the floor before the grid is
    encoded, and drawn back as one pixel on the decoded grid. A one- or two-pixel ball inside an 8x8 patch is
    what a patch code rounds away (v0 and v1 kept 83 % and 46 % of real balls); as a position it is exact"""
    paddle: bool = False
    """with `ball`: the player's paddle gets one token of its own after the ball's, its row (or "no paddle"),
    found by colour (the rule of `measure.pong.detect`). The grid still draws the paddle; the token is for the
    world model, which then reads the paddle's place as exactly as the ball's: whether a point is lost is a
    function of three tokens, not of patch codes (v3 to v5 lost as many balls with the paddle under them as
    with it at the far wall, benchmarks/README.md)"""

    def __post_init__(self):
        if self.paddle and not self.ball:
            raise ValueError("paddle needs ball: the paddle's token follows the ball's two")

    @property
    def grid_tokens(self) -> int:
        return self.grid * self.grid

    @property
    def tokens(self) -> int:
        """tokens per frame: the grid's, then the ball's row and column when `ball`, then the paddle's row"""
        return self.grid_tokens + len(self.slots)

    @property
    def slots(self) -> tuple[tuple[int, int], ...]:
        """(first id, ids) of each token after the grid's, in order: the ball's row and column (`ball`), the
        paddle's row (`paddle`); each has S + 1 ids, S meaning none"""
        n = (2 if self.ball else 0) + (1 if self.paddle else 0)
        return tuple((self.codebook + i * (self.size + 1), self.size + 1) for i in range(n))

    @property
    def vocab(self) -> int:
        """token ids per frame: the codes, then each slot's ids"""
        return self.codebook + sum(n for _, n in self.slots)


# Pong's ball at 64x64 (the detector's rule, `measure.pong.ball_weight`): the floor's and the ball's colours
PONG_FIELD = (11, 59)  # rows of ALE Pong's play field in a 64-pixel frame (the walls are above and below)
PONG_PLAYER_COLS = (53, 61)  # columns of the player's paddle in a 64-pixel Pong frame, with room around it
FLOOR_RGB = (144.0, 72.0, 17.0)
BALL_RGB = (236.0, 236.0, 236.0)


class ImageTokenizer(nn.Module):
    def __init__(self, c: ImageTokenizerConfig):
        super().__init__()
        self.c = c
        steps = (c.size // c.grid).bit_length() - 1
        if 2**steps * c.grid != c.size:
            raise ValueError(f"size / grid must be a power of two, got {c.size} / {c.grid}")
        enc, ch = [], 3
        for i in range(steps):  # kernel = stride: each output sees its own 2x2 cell only
            out = c.channels * 2**i
            enc += [nn.Conv2d(ch, out, c.encoder_kernel, 2, (c.encoder_kernel - 2) // 2), nn.SiLU()]
            ch = out
        enc += [nn.Conv2d(ch, ch, 1), nn.SiLU(), nn.Conv2d(ch, c.code_dim, 1)]
        self.encoder = nn.Sequential(*enc)
        dec = [nn.Conv2d(c.code_dim, ch, 1), nn.SiLU(), nn.Conv2d(ch, ch, 1), nn.SiLU()]
        for i in reversed(range(steps)):
            out = c.channels * 2 ** max(i - 1, 0)
            dec += [nn.ConvTranspose2d(ch, out, c.decoder_kernel, 2, (c.decoder_kernel - 2) // 2), nn.SiLU()]
            ch = out
        dec.append(nn.Conv2d(ch, 3, 1 if c.decoder_kernel == 2 else 3, 1, 0 if c.decoder_kernel == 2 else 1))
        self.decoder = nn.Sequential(*dec)
        self.codes = nn.Embedding(c.codebook, c.code_dim)
        nn.init.uniform_(self.codes.weight, -1.0 / c.codebook, 1.0 / c.codebook)
        if c.ball:
            s = c.size / 64.0
            field = torch.zeros(c.size)
            field[int(PONG_FIELD[0] * s) : int(PONG_FIELD[1] * s)] = 1.0
            self.register_buffer("field", field.view(1, -1, 1), persistent=False)
            self.register_buffer("pixel", torch.arange(c.size, dtype=torch.float32), persistent=False)
        if c.paddle:
            s = c.size / 64.0
            cols = torch.zeros(c.size)
            cols[int(PONG_PLAYER_COLS[0] * s) : int(PONG_PLAYER_COLS[1] * s)] = 1.0
            self.register_buffer("player_cols", cols.view(1, 1, -1), persistent=False)

    # -- the ball's own tokens (`ball`) ----------------------------------------------------------------
    def _ball_like(self, x: torch.Tensor, lift_min: float) -> tuple[torch.Tensor, torch.Tensor]:
        """float frames (B, S, S, 3) 0..255 -> (how much each pixel lifts blue over the floor's, and whether
        it looks like the ball's blend with the floor, lifting blue by more than `lift_min`), (B, S, S)."""
        r, b = x[..., 0], x[..., 2]
        lift = b - FLOOR_RGB[2]
        like = (lift > lift_min) & (r >= FLOOR_RGB[0] - 4.0) & (lift > 1.6 * (r - FLOOR_RGB[0]))
        return lift, like & (self.field > 0)

    def strip_ball(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 or float frames (B, S, S, 3) 0..255 -> float frames with the ball's pixels, faint edges
        included, painted with the floor: what the grid's codes see and are trained to draw."""
        x = frames.float()
        _, like = self._ball_like(x, 12.0)
        return torch.where(like.unsqueeze(-1), x.new_tensor(FLOOR_RGB), x)

    def ball_tokens(self, frames: torch.Tensor) -> torch.Tensor:
        """frames (B, S, S, 3) 0..255 -> (B, 2) ids: codebook + row, codebook + S + 1 + column of the ball's
        weighted centre (rounded), the row and column S when no pixel looks like the ball."""
        c = self.c
        lift, like = self._ball_like(frames.float(), 40.0)
        w = torch.where(like, lift, torch.zeros_like(lift))
        total = w.sum((1, 2))
        present = total > 0
        y = (w.sum(2) * self.pixel).sum(1) / total.clamp(min=1e-6)
        x = (w.sum(1) * self.pixel).sum(1) / total.clamp(min=1e-6)
        none = torch.full_like(y, float(c.size))
        y = torch.where(present, torch.floor(y + 0.5).clamp(0, c.size - 1), none)
        x = torch.where(present, torch.floor(x + 0.5).clamp(0, c.size - 1), none)
        (row0, _), (col0, _) = c.slots[:2]
        return torch.stack([y + row0, x + col0], 1).long()

    def paddle_tokens(self, frames: torch.Tensor) -> torch.Tensor:
        """frames (B, S, S, 3) 0..255 -> (B, 1) ids: the paddle slot's first id + the row of the green centre of the
        player's paddle in its columns of the field (rounded), the row S when too little green is seen; the
        rule of `measure.pong.detect`."""
        c = self.c
        x = frames.float()
        green = torch.clamp(x[..., 1] - x[..., 0] - 10.0, min=0.0) * self.field * self.player_cols  # (B, S, S)
        per_row = green.sum(2)
        total = per_row.sum(1)
        y = (per_row * self.pixel).sum(1) / total.clamp(min=1e-6)
        y = torch.where(total > 20.0, torch.floor(y + 0.5).clamp(0, c.size - 1), torch.full_like(y, float(c.size)))
        return (y + c.slots[2][0]).long().unsqueeze(1)

    def draw_ball(self, frames: torch.Tensor, ball: torch.Tensor) -> torch.Tensor:
        """frames (B, 3, S, S) in [0, 1] and the ball's ids (B, 2) -> the frames with the ball drawn as one
        pixel of its colour (no ball for the 'none' ids, or ids of another slot)."""
        c = self.c
        (row0, _), (col0, _) = c.slots[:2]
        y = (ball[:, 0] - row0).float()
        x = (ball[:, 1] - col0).float()
        m = (self.pixel == y[:, None]).float()[:, :, None] * (self.pixel == x[:, None]).float()[:, None, :]
        m = m.unsqueeze(1)  # (B, 1, S, S)
        return frames * (1.0 - m) + m * (frames.new_tensor(BALL_RGB) / 255.0).view(1, 3, 1, 1)

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 (B, S, S, 3) -> token ids (B, tokens): the grid's codes (of the frame without its ball when
        `ball`), then the ball's row and column, then the paddle's row (`paddle`)."""
        x = self.strip_ball(frames) if self.c.ball else frames.float()
        z = self.encoder(x.permute(0, 3, 1, 2) / 127.5 - 1.0)  # (B, D, g, g)
        ids = self._nearest(z.permute(0, 2, 3, 1).reshape(frames.shape[0], -1, self.c.code_dim))
        if not self.c.ball:
            return ids
        extra = [self.ball_tokens(frames)] + ([self.paddle_tokens(frames)] if self.c.paddle else [])
        return torch.cat([ids, *extra], 1)

    def _nearest(self, z: torch.Tensor) -> torch.Tensor:
        d = z.pow(2).sum(-1, keepdim=True) - 2 * z @ self.codes.weight.T + self.codes.weight.pow(2).sum(-1)
        return d.argmin(-1)

    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        """token ids (B, tokens) -> frames in [0, 1], (B, 3, S, S)."""
        B, g = tokens.shape[0], self.c.grid
        q = self.codes(tokens[:, : g * g]).view(B, g, g, -1).permute(0, 3, 1, 2)
        frames = torch.sigmoid(self.decoder(q))
        return self.draw_ball(frames, tokens[:, g * g :]) if self.c.ball else frames

    def decode_uint8(self, tokens: torch.Tensor) -> torch.Tensor:
        """token ids (B, tokens) -> uint8 frames (B, S, S, 3), what the bundle's graphs return."""
        return (self.decode(tokens).permute(0, 2, 3, 1) * 255.0 + 0.5).clamp(0, 255).to(torch.uint8)

    def loss(self, frames: torch.Tensor, weight: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
        """VQ-VAE loss on uint8 frames (B, S, S, 3). `weight` (B, S, S), optional, weights the pixels of
        the reconstruction error (Pong's ball is one pixel of 4096: unweighted, a tokenizer learns to drop it).
        The returned logs include `ids`, the codes used, for dead-code restarts. With `ball` the grid learns
        the frames without their ball (the ball has its own tokens)."""
        x = (self.strip_ball(frames) if self.c.ball else frames.float()).permute(0, 3, 1, 2) / 255.0
        z = self.encoder(x * 2 - 1).permute(0, 2, 3, 1)  # (B, g, g, D)
        ids = self._nearest(z.reshape(len(x), -1, self.c.code_dim)).view(z.shape[:-1])
        q = self.codes(ids)
        vq = F.mse_loss(q, z.detach()) + self.c.beta * F.mse_loss(z, q.detach())
        q_st = z + (q - z).detach()  # straight-through
        recon = torch.sigmoid(self.decoder(q_st.permute(0, 3, 1, 2)))
        err = (recon - x).pow(2).mean(1)  # (B, S, S)
        mse = err.mean()
        rec = mse if weight is None else (err * weight).sum() / weight.sum()
        return rec + vq, {
            "mse": mse.item(),
            "vq": vq.item(),
            "psnr": float(-10 * torch.log10(mse.detach())),
            "codes_used": ids.unique().numel(),
            "ids": ids.detach(),
            "z": z.detach(),
        }

    @torch.no_grad()
    def restart_codes(self, dead: torch.Tensor, z: torch.Tensor, generator: torch.Generator | None = None) -> None:
        """Move unused codes (`dead`, a bool mask over the codebook) onto encoder outputs `z` (..., D)
        picked at random, so every code gets a chance to be used."""
        n = int(dead.sum())
        if n == 0:
            return
        z = z.reshape(-1, self.c.code_dim)
        pick = torch.randint(len(z), (n,), generator=generator)
        self.codes.weight[dead] = z[pick] + 1e-3 * torch.randn(n, self.c.code_dim, generator=generator)


@dataclass(frozen=True)
class VectorTokenizerConfig:
    dim: int
    """size of the vector"""
    bins: int = 255
    """quantisation levels per dimension"""
    limit: float = 5.0
    """symlog values are clipped to [-limit, limit] (|x| up to e^limit - 1, about 147)"""


class VectorTokenizer(nn.Module):
    """symlog + uniform quantisation: one token per dimension, ids in [0, bins)."""

    def __init__(self, c: VectorTokenizerConfig):
        super().__init__()
        self.c = c

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        y = symlog(x).clamp(-self.c.limit, self.c.limit)
        return torch.round((y + self.c.limit) / (2 * self.c.limit) * (self.c.bins - 1)).long()

    def decode(self, ids: torch.Tensor) -> torch.Tensor:
        y = ids.float() / (self.c.bins - 1) * 2 * self.c.limit - self.c.limit
        return symexp(y)


# -- example inputs of the token families' graphs (rem.py, genie.py) -------------------------------------
def gumbel_noise(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    """Standard Gumbel noise as float32, what the runtime feeds a `gumbel` noise input."""
    return -np.log(-np.log(rng.uniform(1e-6, 1 - 1e-6, shape))).astype(np.float32)


def frame_reset_example(
    rng: np.random.Generator, batch: int, C: int, size: int, actions: int, contexts: dict | None = None
) -> dict:
    """The reset graph's example inputs for frames in, discrete actions: random frames, or windows picked
    from `contexts` (real ones: on uniform noise two codes can tie, and torch and onnxruntime may break the tie
    differently, which says nothing about the export)."""
    if contexts is not None:
        pick = rng.integers(len(contexts["obs"]), size=batch)
        return {
            "context_obs": contexts["obs"][pick].astype(np.float32),
            "context_actions": contexts["actions"][pick].astype(np.int64),
        }
    return {
        "context_obs": rng.integers(0, 256, (batch, C, size, size, 3)).astype(np.float32),
        "context_actions": rng.integers(actions, size=(batch, C)).astype(np.int64),
    }

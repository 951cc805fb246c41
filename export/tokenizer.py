"""Tokenizers for the Simulus/REM family (groundwork for issue 7; not yet a shipped bundle).

Observations become discrete tokens per modality, as in Simulus:
- images: a VQ-VAE — a convolutional encoder to a grid of vectors, each snapped to the nearest of
  `codebook` learned codes (straight-through gradients, commitment loss, EMA-free), and a decoder back;
- vectors: symlog, then uniform quantisation into `bins` levels per dimension (no learning needed).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .rssm import symexp, symlog


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


class ImageTokenizer(nn.Module):
    def __init__(self, c: ImageTokenizerConfig):
        super().__init__()
        self.c = c
        steps = (c.size // c.grid).bit_length() - 1
        if 2**steps * c.grid != c.size:
            raise ValueError(f"size / grid must be a power of two, got {c.size} / {c.grid}")
        enc, ch = [], 3
        for i in range(steps):
            out = c.channels * 2**i
            enc += [nn.Conv2d(ch, out, 4, 2, 1), nn.GroupNorm(1, out), nn.SiLU()]
            ch = out
        enc.append(nn.Conv2d(ch, c.code_dim, 1))
        self.encoder = nn.Sequential(*enc)
        dec = [nn.Conv2d(c.code_dim, ch, 1), nn.SiLU()]
        for i in reversed(range(steps)):
            out = c.channels * 2 ** max(i - 1, 0)
            dec += [nn.ConvTranspose2d(ch, out, 4, 2, 1), nn.GroupNorm(1, out), nn.SiLU()]
            ch = out
        dec.append(nn.Conv2d(ch, 3, 3, 1, 1))
        self.decoder = nn.Sequential(*dec)
        self.codes = nn.Embedding(c.codebook, c.code_dim)
        nn.init.uniform_(self.codes.weight, -1.0 / c.codebook, 1.0 / c.codebook)

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 (B, S, S, 3) -> token ids (B, grid*grid)."""
        z = self.encoder(frames.permute(0, 3, 1, 2).float() / 127.5 - 1.0)  # (B, D, g, g)
        return self._nearest(z.permute(0, 2, 3, 1).reshape(len(frames), -1, self.c.code_dim))

    def _nearest(self, z: torch.Tensor) -> torch.Tensor:
        d = (z.pow(2).sum(-1, keepdim=True) - 2 * z @ self.codes.weight.T + self.codes.weight.pow(2).sum(-1))
        return d.argmin(-1)

    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        """token ids (B, grid*grid) -> frames in [0, 1], (B, 3, S, S)."""
        B, g = len(tokens), self.c.grid
        q = self.codes(tokens).view(B, g, g, -1).permute(0, 3, 1, 2)
        return torch.sigmoid(self.decoder(q))

    def loss(self, frames: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        x = frames.permute(0, 3, 1, 2).float() / 255.0
        z = self.encoder(x * 2 - 1).permute(0, 2, 3, 1)  # (B, g, g, D)
        ids = self._nearest(z.reshape(len(x), -1, self.c.code_dim)).view(z.shape[:-1])
        q = self.codes(ids)
        vq = F.mse_loss(q, z.detach()) + self.c.beta * F.mse_loss(z, q.detach())
        q_st = z + (q - z).detach()  # straight-through
        recon = torch.sigmoid(self.decoder(q_st.permute(0, 3, 1, 2)))
        mse = F.mse_loss(recon, x)
        used = ids.unique().numel()
        return mse + vq, {"mse": mse.item(), "vq": vq.item(), "psnr": float(-10 * torch.log10(mse.detach())),
                          "codes_used": used}


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

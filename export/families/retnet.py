"""RetNet backbone for the Simulus/REM family (`rem.py`).

Multi-scale retention (Sun et al. 2023) written once, in its chunkwise form: a chunk of C tokens is
processed in parallel against a recurrent state S (B, H, dk, dv) and returns the next state. With S = 0
and one chunk it is the parallel form used in training; with C = 1 it is the recurrent form an exported
step runs with a fixed-size state (no growing cache). Simulus's parallel observation prediction (K
next-frame tokens from learned prediction embeddings in one pass) is a chunk processed against S whose
new state is simply not kept.

Per head h with decay g_h, token n in a chunk, state S_prev:
    out_n = Q_n (g^(n+1) S_prev) + sum_{m<=n} g^(n-m) (Q_n . K_m) V_m
    S_new = g^C S_prev + sum_m g^(C-1-m) K_m^T V_m
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass(frozen=True)
class RetNetConfig:
    d_model: int = 128
    """token width"""
    heads: int = 4
    """retention heads, each with its own decay"""
    layers: int = 2
    """retention blocks"""
    ffn_mult: int = 4
    """feed-forward width as a multiple of d_model"""


def head_decays(heads: int) -> torch.Tensor:
    """g_h = 1 - 2^(-5-h): short to long memories across heads (the RetNet paper's choice)."""
    return 1.0 - 2.0 ** (-5.0 - torch.arange(heads, dtype=torch.float32))


class MultiScaleRetention(nn.Module):
    def __init__(self, c: RetNetConfig):
        super().__init__()
        self.c = c
        self.qkv = nn.Linear(c.d_model, 3 * c.d_model, bias=False)
        self.gate = nn.Linear(c.d_model, c.d_model, bias=False)
        self.out = nn.Linear(c.d_model, c.d_model, bias=False)
        self.norm = nn.GroupNorm(c.heads, c.d_model)
        self.register_buffer("log_g", torch.log(head_decays(c.heads)))

    # The three parts of a retention layer, apart, so that a caller can run many chunks at once against
    # different states (the REM world model runs every time step's chunk in one batch).
    def project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (N, C, d) -> q, k, v, each (N, H, C, dh); k already scaled by 1/sqrt(dh)."""
        N, C, d = x.shape
        H, dh = self.c.heads, d // self.c.heads
        q, k, v = self.qkv(x).view(N, C, 3, H, dh).permute(2, 0, 3, 1, 4)
        return q, k / math.sqrt(dh), v

    def chunk_update(self, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """What a chunk adds to the state: sum_m g^(C-1-m) K_m^T V_m, (N, H, dh, dh)."""
        C = k.shape[-2]
        n = torch.arange(C, device=k.device, dtype=k.dtype)
        w = torch.exp(self.log_g.view(-1, 1) * (C - 1 - n)).unsqueeze(-1)  # (H, C, 1)
        return (k * w).transpose(-1, -2) @ v

    def chunk_decay(self, C: int) -> torch.Tensor:
        """g^C per head, shaped to scale a state (H, 1, 1)."""
        return torch.exp(self.log_g * C).view(-1, 1, 1)

    def retain(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """Retention outputs of one chunk against the state before it: (N, H, C, dh)."""
        C = q.shape[-2]
        n = torch.arange(C, device=q.device, dtype=q.dtype)
        lg = self.log_g.view(-1, 1, 1)
        dist = n[:, None] - n[None, :]
        decay = torch.where(dist >= 0, torch.exp(lg * dist.clamp(min=0)), torch.zeros((), dtype=q.dtype))  # (H, C, C)
        inner = ((q @ k.transpose(-1, -2)) * decay) @ v  # within the chunk
        cross = (q * torch.exp(lg * (n + 1).view(1, C, 1))) @ state  # from before the chunk
        return inner + cross

    def finish(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Group norm per head, swish gate from the input, output projection: (N, C, d)."""
        N, H, C, dh = y.shape
        y = self.norm(y.transpose(1, 2).reshape(N * C, H * dh)).view(N, C, H * dh)
        return self.out(F.silu(self.gate(x)) * y)

    def forward(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, C, d), state (B, H, dk, dv) -> y (B, C, d), next state."""
        q, k, v = self.project(x)
        y = self.retain(q, k, v, state)
        new_state = self.chunk_decay(x.shape[1]) * state + self.chunk_update(k, v)
        return self.finish(x, y), new_state


class RetNetBlock(nn.Module):
    def __init__(self, c: RetNetConfig):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(c.d_model), nn.LayerNorm(c.d_model)
        self.msr = MultiScaleRetention(c)
        self.ffn = nn.Sequential(
            nn.Linear(c.d_model, c.ffn_mult * c.d_model),
            nn.GELU(approximate="tanh"),
            nn.Linear(c.ffn_mult * c.d_model, c.d_model),
        )

    def forward(self, x, state):
        y, state = self.msr(self.ln1(x), state)
        x = x + y
        return x + self.ffn(self.ln2(x)), state


class RetNet(nn.Module):
    """A stack of retention blocks; the state is one (B, H, dk, dv) tensor per layer, stacked."""

    def __init__(self, c: RetNetConfig):
        super().__init__()
        self.c = c
        self.blocks = nn.ModuleList(RetNetBlock(c) for _ in range(c.layers))
        self.ln_f = nn.LayerNorm(c.d_model)

    def initial_state(self, B: int, device=None) -> torch.Tensor:
        dh = self.c.d_model // self.c.heads
        return torch.zeros(B, self.c.layers, self.c.heads, dh, dh, device=device)

    def forward(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, C, d), state (B, L, H, dh, dh) -> (B, C, d), next state (fixed size, whatever C)."""
        new = []
        for i, blk in enumerate(self.blocks):
            x, s = blk(x, state[:, i])
            new.append(s)
        return self.ln_f(x), torch.stack(new, 1)

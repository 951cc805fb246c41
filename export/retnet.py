"""RetNet backbone for the Simulus/REM family (groundwork for issue 7; not yet a shipped bundle).

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

    def forward(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, C, d), state (B, H, dk, dv) -> y (B, C, d), next state."""
        B, C, d = x.shape
        H, dh = self.c.heads, d // self.c.heads
        q, k, v = self.qkv(x).view(B, C, 3, H, dh).permute(2, 0, 3, 1, 4)  # each (B, H, C, dh)
        k = k / math.sqrt(dh)
        n = torch.arange(C, device=x.device, dtype=x.dtype)
        lg = self.log_g.view(H, 1, 1)
        dist = n[:, None] - n[None, :]
        decay = torch.where(dist >= 0, torch.exp(lg * dist.clamp(min=0)), torch.zeros((), dtype=x.dtype))  # (H, C, C)
        inner = ((q @ k.transpose(-1, -2)) * decay) @ v  # within the chunk
        cross = (q * torch.exp(lg * (n + 1)).view(1, H, C, 1)) @ state  # from before the chunk
        w = torch.exp(lg * (C - 1 - n)).view(1, H, C, 1)
        new_state = torch.exp(lg * C).view(1, H, 1, 1) * state + (k * w).transpose(-1, -2) @ v
        y = (inner + cross).transpose(1, 2).reshape(B * C, d)
        y = self.norm(y).view(B, C, d)
        return self.out(F.silu(self.gate(x)) * y), new_state


class RetNetBlock(nn.Module):
    def __init__(self, c: RetNetConfig):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(c.d_model), nn.LayerNorm(c.d_model)
        self.msr = MultiScaleRetention(c)
        self.ffn = nn.Sequential(nn.Linear(c.d_model, c.ffn_mult * c.d_model), nn.GELU(approximate="tanh"),
                                 nn.Linear(c.ffn_mult * c.d_model, c.d_model))

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

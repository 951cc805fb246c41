"""The layers and losses the model families share.

Moving a layer here keeps its attribute names: a bundle's torch model is rebuilt from the weights in its
graphs by parameter name (`families.model_from_bundle`), so `FrameDecoder.fc` stays `fc`, and so on.
"""

from __future__ import annotations

import torch
import torch.nn as nn


def symlog(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.log1p(torch.abs(x))


def symexp(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * (torch.exp(torch.abs(x)) - 1)


class RMSNorm(nn.Module):
    """x / sqrt(mean(x^2) + eps) * weight, written so that it exports as the plain ONNX pattern
    onnxruntime fuses into its SimplifiedLayerNormalization kernel (faster than its LayerNormalization:
    benchmarks/README.md)."""

    def __init__(self, n: int, eps: float = 1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


NORMS = ("layer", "rms", "none")
ACTIVATIONS = {"silu": nn.SiLU, "relu": nn.ReLU}


def make_norm(n: int, kind: str = "layer") -> nn.Module:
    """LayerNorm, RMSNorm or none (an Identity, so a Sequential's indices do not depend on the choice)."""
    if kind not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {kind!r}")
    return nn.LayerNorm(n) if kind == "layer" else RMSNorm(n) if kind == "rms" else nn.Identity()


def make_act(kind: str = "silu") -> nn.Module:
    if kind not in ACTIVATIONS:
        raise ValueError(f"act must be one of {tuple(ACTIVATIONS)}, got {kind!r}")
    return ACTIVATIONS[kind]()


def mlp(inp: int, hidden: int, out: int, layers: int = 1, norm: str = "layer", act: str = "silu") -> nn.Sequential:
    """`layers` x (Linear, norm, activation), then a Linear to `out`."""
    mods: list[nn.Module] = []
    for i in range(layers):
        mods += [nn.Linear(inp if i == 0 else hidden, hidden), make_norm(hidden, norm), make_act(act)]
    mods.append(nn.Linear(hidden if layers else inp, out))
    return nn.Sequential(*mods)


class FrameDecoder(nn.Module):
    """Observation vector -> RGB frame in [0, 1], (B, 3, S, S); transposed convolutions from 4x4. The
    outboard renderer of the vector families: trained apart on (obs, frame) pairs, then frozen."""

    def __init__(self, obs_dim: int, size: int = 64, channels: int = 32):
        super().__init__()
        self.c = channels * 4
        self.fc = mlp(obs_dim, 256, self.c * 16, layers=1)
        ups, c = [], self.c
        for _ in range(int(torch.log2(torch.tensor(size / 4)).item()) - 1):
            ups += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1), nn.GroupNorm(1, c // 2), nn.SiLU()]
            c //= 2
        ups.append(nn.ConvTranspose2d(c, 3, 4, 2, 1))
        self.up = nn.Sequential(*ups)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = self.fc(symlog(obs)).view(-1, self.c, 4, 4)
        return torch.sigmoid(self.up(x))


class ObservationBars(nn.Module):
    """The frame of a dream whose data has no frames: the standardised observation drawn as a bar chart, one
    bar per dimension (clipped at ±3 stds), up from a middle line for positive values and down for negative
    ones; (B, 3, S, S) in [0, 1] like `FrameDecoder`, with no weights to train."""

    def __init__(self, obs_dim: int, size: int = 64):
        super().__init__()
        cols = (torch.arange(size) * obs_dim // size).clamp(max=obs_dim - 1)
        self.register_buffer("pick", (cols.unsqueeze(1) == torch.arange(obs_dim)).float())  # (S, O)
        self.register_buffer("row", 1.0 - 2.0 * (torch.arange(size).float() + 0.5) / size)  # +1 top .. -1 bottom
        self.register_buffer("mean", torch.zeros(obs_dim))
        self.register_buffer("std", torch.ones(obs_dim))
        self.register_buffer("colour", torch.tensor([0.95, 0.65, 0.2]))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        v = (((obs - self.mean) / self.std).clamp(-3, 3) / 3) @ self.pick.T  # (B, S): each column's value
        y = self.row.view(1, -1, 1)  # (1, S, 1)
        v = v.unsqueeze(1)  # (B, 1, S)
        lit = ((y >= 0) & (y <= v)) | ((y < 0) & (y >= v))
        on = lit.to(obs.dtype).unsqueeze(1)  # (B, 1, S, S)
        return 0.08 + on * (self.colour.view(1, 3, 1, 1) - 0.08)


def to_uint8(img: torch.Tensor) -> torch.Tensor:
    """Frames in [0, 1], (B, 3, S, S) -> uint8 (B, S, S, 3), what the bundle's render graphs return."""
    return (img.permute(0, 2, 3, 1) * 255.0 + 0.5).clamp(0, 255).to(torch.uint8)


# -- losses -------------------------------------------------------------------------------------------
def gaussian_kl(p: dict, q: dict) -> torch.Tensor:
    """KL(p || q) of diagonal Gaussians given as {"mean", "std"}, summed over the last axis."""
    return (
        torch.log(q["std"] / p["std"]) + (p["std"] ** 2 + (p["mean"] - q["mean"]) ** 2) / (2 * q["std"] ** 2) - 0.5
    ).sum(-1)


def categorical_kl(p: dict, q: dict) -> torch.Tensor:
    """KL(p || q) of categoricals given as {"logits"} (..., stoch, classes), summed over both last axes."""
    lp, lq = p["logits"].log_softmax(-1), q["logits"].log_softmax(-1)
    return (lp.exp() * (lp - lq)).sum((-1, -2))


def balanced_kl(post: dict, prior: dict, kl, balance: float, free_nats: float) -> torch.Tensor:
    """DreamerV2's KL balancing with free bits: `balance` of the gradient trains the prior toward the
    posterior, the rest regularises the posterior; KL below `free_nats` is not penalised."""
    sg = lambda d: {k: v.detach() for k, v in d.items()}  # noqa: E731
    return balance * kl(sg(post), prior).clamp(min=free_nats) + (1 - balance) * kl(post, sg(prior)).clamp(min=free_nats)


def frame_loss(decoder: nn.Module, obs: torch.Tensor, frames: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """obs (N, O), frames (N, S, S, 3) uint8 -> MSE of the frame decoder, and its PSNR."""
    target = frames.permute(0, 3, 1, 2).float() / 255.0
    mse = ((decoder(obs) - target) ** 2).mean()
    return mse, {"frame_mse": mse.item(), "frame_psnr": float(-10 * torch.log10(mse.detach()))}

"""TSSM (TransDreamer): a transformer state-space model for vector observations.

The posterior depends on the current observation only, q(z_t | o_t). A causal transformer over the
tokens x_t = f(z_t, a_t) gives h_t, and the prior of the next latent is p(z_{t+1} | h_t). Training runs
the transformer's parallel form over whole sequences; the exported step runs one token against a
fixed-size KV cache of the last W tokens, so an env-step costs O(W) whatever the episode's length.

Attention sees at most W tokens (itself and W-1 before it), in training as in the step, with an ALiBi
bias that depends only on the distance between tokens; so the parallel form and the cached step give
the same priors, and the window slides past W without a seam.

State: z (B, stoch) and h (B, d_model), the latent and transformer output the current observation is
decoded from; the KV cache k, v (B, layers, W, d_model); and `filled` (B, W), 1 where a cache slot holds
a real token (early in an episode the window is not full yet).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from dreamgym.export.families import LATENT_TEXT, Family, vector_batch, vector_spaces
from dreamgym.export.families.layers import (
    FrameDecoder,
    balanced_kl,
    frame_loss,
    gaussian_kl,
    mlp,
    symexp,
    symlog,
    to_uint8,
)
from dreamgym.manifest import NoiseSpec, TensorSpec


@dataclass(frozen=True)
class TSSMConfig:
    obs_dim: int = 17
    """size of the observation vector"""
    act_dim: int = 6
    """size of the action vector"""
    stoch: int = 32
    """Gaussian latent size"""
    d_model: int = 128
    """transformer width"""
    layers: int = 2
    """transformer blocks"""
    heads: int = 4
    """attention heads"""
    window: int = 32
    """W: tokens a step attends to (the KV cache length)"""
    hidden: int = 200
    """width of the encoder, prior, decoder and heads"""
    min_std: float = 0.1
    """lower bound of the latent's standard deviation"""
    kl_balance: float = 0.8
    """weight of the prior-side term of the balanced KL"""
    free_nats: float = 1.0
    """free bits per step"""
    kl_scale: float = 1.0
    """weight of the KL term"""
    prior_recon: float = 1.0
    """weight of decoding the next observation from the prior's sample"""
    reward_scale: float = 1.0
    """weight of the reward loss"""
    frame_size: int = 64
    """side of the rendered frame"""
    frame_channels: int = 32
    """channels of the frame decoder's last layer"""

    @property
    def z_dim(self) -> int:
        return self.stoch

    @property
    def feat_dim(self) -> int:
        return self.d_model + self.stoch

    @property
    def noise_shape(self) -> tuple[int, ...]:
        return (self.stoch,)


def alibi_slopes(heads: int) -> torch.Tensor:
    return torch.tensor([2.0 ** (-8.0 * (i + 1) / heads) for i in range(heads)])


class Block(nn.Module):
    """Pre-norm transformer block; attention is written out so that both forms share its weights."""

    def __init__(self, c: TSSMConfig):
        super().__init__()
        self.c = c
        self.ln1, self.ln2 = nn.LayerNorm(c.d_model), nn.LayerNorm(c.d_model)
        self.q = nn.Linear(c.d_model, c.d_model)
        self.kv = nn.Linear(c.d_model, 2 * c.d_model)
        self.proj = nn.Linear(c.d_model, c.d_model)
        self.mlp = nn.Sequential(
            nn.Linear(c.d_model, 4 * c.d_model), nn.GELU(approximate="tanh"), nn.Linear(4 * c.d_model, c.d_model)
        )

    def _heads(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, d) -> (B, H, T, dh)
        B, T, _ = x.shape
        return x.view(B, T, self.c.heads, -1).transpose(1, 2)

    def attend(self, q, k, v, bias) -> torch.Tensor:
        """q (B, Tq, d), k/v (B, Tk, d), bias (B or 1, H, Tq, Tk) -> (B, Tq, d)."""
        qh, kh, vh = self._heads(q), self._heads(k), self._heads(v)
        att = (qh @ kh.transpose(-1, -2)) / math.sqrt(qh.shape[-1]) + bias
        out = att.softmax(-1) @ vh  # (B, H, Tq, dh)
        B, H, T, dh = out.shape
        return self.proj(out.transpose(1, 2).reshape(B, T, H * dh))

    def forward_seq(self, x, bias) -> torch.Tensor:
        y = self.ln1(x)
        k, v = self.kv(y).chunk(2, -1)
        x = x + self.attend(self.q(y), k, v, bias)
        return x + self.mlp(self.ln2(x))

    def forward_step(self, x, k_cache, v_cache, bias):
        """x (B, 1, d); caches (B, W, d) holding the W most recent tokens before x, oldest first.
        Returns the output and the caches with x appended and the oldest dropped."""
        y = self.ln1(x)
        k, v = self.kv(y).chunk(2, -1)
        k_all = torch.cat([k_cache[:, 1:], k], 1)  # (B, W, d): the window including x
        v_all = torch.cat([v_cache[:, 1:], v], 1)
        x = x + self.attend_one(self.q(y)[:, 0], k_all, v_all, bias)[:, None]
        return x + self.mlp(self.ln2(x)), k_all, v_all

    def attend_one(self, q, k, v, bias) -> torch.Tensor:
        """One query per env, q (B, d), k/v (B, W, d), bias (B, H, 1, W) -> (B, d). Written as
        broadcast multiply-and-sum rather than B*H tiny matrix products, which runtimes batch badly."""
        B, W, d = k.shape
        H = self.c.heads
        kh, vh = k.view(B, W, H, d // H), v.view(B, W, H, d // H)
        att = (q.view(B, 1, H, d // H) * kh).sum(-1) / math.sqrt(d // H)  # (B, W, H)
        att = (att + bias[:, :, 0].transpose(1, 2)).softmax(1)  # over the window
        out = (att[..., None] * vh).sum(1)  # (B, H, dh)
        return self.proj(out.reshape(B, d))


class TSSM(nn.Module):
    def __init__(self, cfg: TSSMConfig):
        super().__init__()
        self.cfg = c = cfg
        self.encoder = mlp(c.obs_dim, c.hidden, c.hidden, layers=1)
        self.post_net = mlp(c.hidden, c.hidden, 2 * c.stoch)
        self.token = nn.Sequential(nn.Linear(c.stoch + c.act_dim, c.d_model), nn.LayerNorm(c.d_model))
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.layers))
        self.ln_f = nn.LayerNorm(c.d_model)
        self.prior_net = mlp(c.d_model, c.hidden, 2 * c.stoch)
        self.decoder = mlp(c.feat_dim, c.hidden, c.obs_dim, layers=2)
        self.reward_head = mlp(c.feat_dim, c.hidden, 1)
        self.cont_head = mlp(c.feat_dim, c.hidden, 1)
        self.frame_decoder = FrameDecoder(c.obs_dim, c.frame_size, c.frame_channels)
        self.register_buffer("slopes", alibi_slopes(c.heads).view(1, c.heads, 1, 1))

    # -- pieces ------------------------------------------------------------------------------------------
    def _dist(self, stats):
        mean, std = stats.chunk(2, -1)
        return {"mean": mean, "std": F.softplus(std) + self.cfg.min_std}

    @staticmethod
    def _sample(d, noise):
        return d["mean"] + d["std"] * (torch.randn_like(d["mean"]) if noise is None else noise)

    def posterior(self, obs):
        return self._dist(self.post_net(self.encoder(symlog(obs))))

    def band_bias(self, T: int, device=None) -> torch.Tensor:
        """(1, H, T, T): -slope * distance inside the causal window of W tokens, -inf outside."""
        i = torch.arange(T, device=device)
        dist = (i[:, None] - i[None, :]).float()
        inside = (dist >= 0) & (dist < self.cfg.window)
        return torch.where(inside, -self.slopes * dist, torch.full_like(dist, float("-inf")))

    def step_bias(self, filled: torch.Tensor) -> torch.Tensor:
        """(B, H, 1, W) for a step: distance W-1-j to slot j, -inf where the slot is empty."""
        W = self.cfg.window
        dist = torch.arange(W - 1, -1, -1, device=filled.device, dtype=filled.dtype)
        bias = -self.slopes * dist  # (1, H, 1, W)
        return bias + torch.where(filled > 0.5, 0.0, float("-inf"))[:, None, None, :]

    def transformer_seq(self, z, a):
        """Parallel form: tokens of (z_t, a_t) for t < T -> h_t (B, T, d)."""
        x = self.token(torch.cat([z, a], -1))
        bias = self.band_bias(x.shape[1], x.device)
        for blk in self.blocks:
            x = blk.forward_seq(x, bias)
        return self.ln_f(x)

    def decode(self, feat):
        return symexp(self.decoder(feat))

    def _kl(self, post, prior):
        return balanced_kl(post, prior, gaussian_kl, self.cfg.kl_balance, self.cfg.free_nats)

    # -- training: the loss -------------------------------------------------------------------------------
    def loss(self, obs, prev_act, reward, cont, mask):
        """Same batch layout as the RSSM: obs (B, L, O); prev_act[:, t] is the action before obs[:, t]."""
        c = self.cfg
        post = self.posterior(obs)  # over all L observations at once
        z = self._sample(post, None)  # (B, L, stoch)
        h = self.transformer_seq(z[:, :-1], prev_act[:, 1:])  # h_t predicts z_{t+1}: (B, L-1, d)
        prior = self._dist(self.prior_net(h))
        nxt = {k: v[:, 1:] for k, v in post.items()}
        kl = self._kl(nxt, prior).mean()
        feat = torch.cat([h, z[:, 1:]], -1)
        feat_prior = torch.cat([h, self._sample(prior, None)], -1)
        target = symlog(obs[:, 1:])
        recon = ((self.decoder(feat) - target) ** 2).sum(-1).mean()
        prior_recon = ((self.decoder(feat_prior) - target) ** 2).sum(-1).mean()
        m = mask[:, 1:]
        rew = (((self.reward_head(feat).squeeze(-1) - reward[:, 1:]) ** 2) * m).sum() / m.sum().clamp(min=1)
        rew_p = (((self.reward_head(feat_prior).squeeze(-1) - reward[:, 1:]) ** 2) * m).sum() / m.sum().clamp(min=1)
        cont_loss = F.binary_cross_entropy_with_logits(self.cont_head(feat).squeeze(-1), cont[:, 1:])
        total = (
            recon
            + c.prior_recon * (prior_recon + c.reward_scale * rew_p)
            + c.reward_scale * rew
            + cont_loss
            + c.kl_scale * kl
        )
        return total, {
            "recon": recon.item(),
            "prior_recon": prior_recon.item(),
            "reward": rew.item(),
            "cont": cont_loss.item(),
            "kl": kl.item(),
            "loss": total.item(),
        }

    def frame_loss(self, obs, frames):
        return frame_loss(self.frame_decoder, obs, frames)

    # -- inference: the exported functions -----------------------------------------------------------------
    def empty_cache(self, B: int, device=None):
        c = self.cfg
        k = torch.zeros(B, c.layers, c.window, c.d_model, device=device)
        return k, torch.zeros_like(k), torch.zeros(B, c.window, device=device)

    def _advance(self, z, a, k, v, filled):
        """One token through the cached transformer; returns h (B, d) and the updated caches."""
        x = self.token(torch.cat([z, a], -1))[:, None]  # (B, 1, d)
        filled = torch.cat([filled[:, 1:], torch.ones_like(filled[:, :1])], 1)
        bias = self.step_bias(filled)
        ks, vs = [], []
        for i, blk in enumerate(self.blocks):
            x, kc, vc = blk.forward_step(x, k[:, i], v[:, i], bias)
            ks.append(kc), vs.append(vc)
        return self.ln_f(x[:, 0]), torch.stack(ks, 1), torch.stack(vs, 1), filled

    def filter_context(self, context_obs, context_actions, noise):
        """reset.onnx: posterior latents of the C real observations; the first C-1 (with the actions taken
        after them) fill the cache, the last one is the current z. noise (B, C, stoch)."""
        B, C, _ = context_obs.shape
        z = self._sample(self.posterior(context_obs), noise)  # (B, C, stoch)
        k, v, filled = self.empty_cache(B, context_obs.device)
        h = torch.zeros(B, self.cfg.d_model, device=context_obs.device)
        for t in range(C - 1):
            h, k, v, filled = self._advance(z[:, t], context_actions[:, t + 1], k, v, filled)
        return z[:, -1], h, k, v, filled, context_obs[:, -1], torch.cat([h, z[:, -1]], -1)

    def imagine_step(self, z, h, k, v, filled, action, noise):
        """step.onnx: token (z, action) -> h' -> prior sample z' -> obs, reward, terminated."""
        h, k, v, filled = self._advance(z, action, k, v, filled)
        z = self._sample(self._dist(self.prior_net(h)), noise)
        feat = torch.cat([h, z], -1)
        return (
            z,
            h,
            k,
            v,
            filled,
            self.decode(feat),
            self.reward_head(feat).squeeze(-1),
            self.cont_head(feat).squeeze(-1) < 0,
            feat,
        )

    def render_frame(self, z, h, k, v, filled):
        """render.onnx: the frame of the observation decoded from (h, z)."""
        feat = torch.cat([h, z], -1)
        return to_uint8(self.frame_decoder(self.decode(feat)))

    # -- the export surface (see families.WorldModel) -----------------------------------------------------
    family = "tssm"

    def graph_functions(self) -> dict:
        return {"reset": self.filter_context, "step": self.imagine_step, "render": self.render_frame}

    def state_spec(self) -> tuple[TensorSpec, ...]:
        c = self.cfg
        kv = (c.layers, c.window, c.d_model)
        return (
            TensorSpec("z", (c.stoch,)),
            TensorSpec("h", (c.d_model,)),
            TensorSpec("k", kv),
            TensorSpec("v", kv),
            TensorSpec("filled", (c.window,)),
        )

    def noise_spec(self, context_length: int) -> tuple[NoiseSpec, ...]:
        return (
            NoiseSpec("noise_context", (context_length, self.cfg.stoch), graph="reset", distribution="normal"),
            NoiseSpec("noise_z", (self.cfg.stoch,), graph="step", distribution="normal"),
        )

    @property
    def latent_dim(self) -> int:
        return self.cfg.feat_dim

    def example_inputs(self, batch: int, context_length: int, rng: np.random.Generator) -> dict:
        c = self.cfg
        f = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
        filled = (np.arange(c.window)[None] >= rng.integers(0, c.window, (batch, 1))).astype(np.float32)
        filled[:, -1] = 1.0
        state = {
            "z": f(batch, c.stoch),
            "h": f(batch, c.d_model),
            "k": f(batch, c.layers, c.window, c.d_model),
            "v": f(batch, c.layers, c.window, c.d_model),
            "filled": filled,
        }
        return {
            "reset": {
                "context_obs": f(batch, context_length, c.obs_dim),
                "context_actions": rng.uniform(-1, 1, (batch, context_length, c.act_dim)).astype(np.float32),
                "noise_context": f(batch, context_length, c.stoch),
            },
            "step": {
                **state,
                "action": rng.uniform(-1, 1, (batch, c.act_dim)).astype(np.float32),
                "noise_z": f(batch, c.stoch),
            },
            "render": state,
        }

    def step_macs(self) -> int:
        """Multiply-adds of one env-step: the Linear layers of the step plus attention over W tokens."""
        c = self.cfg
        mods = [self.token, *self.blocks, self.ln_f, self.prior_net, self.decoder, self.reward_head, self.cont_head]
        lin = sum(m.in_features * m.out_features for mod in mods for m in mod.modules() if isinstance(m, nn.Linear))
        return lin + c.layers * 2 * c.window * c.d_model


FAMILY = Family(
    name="tssm",
    description="TSSM (TransDreamer): causal transformer over (z, a) tokens, KV-cache step",
    config=TSSMConfig,
    model=TSSM,
    evaluator="dreamgym.export.measure.vector:VectorEvaluator",
    card_text=LATENT_TEXT,
    spaces=vector_spaces,
    example_batch=vector_batch,
)

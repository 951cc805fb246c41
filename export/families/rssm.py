"""RSSM (PlaNet / DreamerV2) for vector observations, with a frame decoder for `render()`.

Read top to bottom: the config dataclass, the GRU block, the model: its training loss (`loss`), then the
inference functions that get exported (`filter_context`, `imagine_step`, `render_frame`), then its export
surface and the family's entry in the registry (`FAMILY`). All sampling noise is an argument, so the
exported graphs are pure functions and a seed fixes a dream.

State: deterministic GRU path h (B, deter) and stochastic z (B, stoch) or (B, stoch * classes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from dreamgym.export.families import LATENT_TEXT, Family, vector_batch, vector_spaces
from dreamgym.export.families.layers import (
    FrameDecoder,
    balanced_kl,
    categorical_kl,
    frame_loss,
    gaussian_kl,
    make_act,
    make_norm,
    mlp,
    symexp,
    symlog,
    to_uint8,
)
from dreamgym.manifest import NoiseSpec, OutputSpec, TensorSpec


@dataclass(frozen=True)
class RSSMConfig:
    obs_dim: int = 17
    """size of the observation vector"""
    act_dim: int = 6
    """size of the (continuous) action vector"""
    deter: int = 200
    """size of the deterministic GRU state h"""
    stoch: int = 30
    """Gaussian latent size, or number of categorical variables when classes > 0"""
    classes: int = 0
    """0: Gaussian z; > 0: DreamerV2 categorical z of stoch x classes, straight-through"""
    hidden: int = 200
    """width of every MLP"""
    min_std: float = 0.1
    """lower bound of the Gaussian latent's standard deviation"""
    kl_balance: float = 0.8
    """weight of the prior-side term of the balanced KL (DreamerV2)"""
    free_nats: float = 1.0
    """KL below this many nats per step is not penalised (free bits)"""
    kl_scale: float = 1.0
    """weight of the KL term"""
    prior_recon: float = 1.0
    """weight of decoding the observation from the prior (trains the imagination path directly)"""
    overshoot: int = 10
    """open-loop steps imagined from every posterior state in training (0: off)"""
    overshoot_scale: float = 1.0
    """weight of the open-loop observation loss"""
    reward_scale: float = 1.0
    """weight of the reward loss"""
    symlog_inputs: bool = True
    """encode and predict symlog(obs); False: standardised obs (the fidelity metric's own scale)"""
    norm: str = "layer"
    """"layer" (LayerNorm, DreamerV2), "rms" (RMSNorm: no centring, no bias; faster in onnxruntime) or
    "none" (PlaNet/DreamerV1: no norm anywhere; the fewest nodes)"""
    act: str = "silu"
    """activation of every MLP: "silu" or "relu" (onnxruntime fuses relu into the Gemm before it)"""
    shared_heads: bool = False
    """one MLP from the features to [observation, reward, continue logit] in place of three"""
    std_act: str = "softplus"
    """Gaussian latent std: min_std + softplus(s) ("softplus", unbounded) or min_std + sigmoid(s)
    ("sigmoid", at most 1 + min_std; one fused Gemm in onnxruntime)"""
    frame_size: int = 64
    """side of the rendered frame"""
    frame_channels: int = 32
    """channels of the frame decoder's last layer (x2 per layer upward)"""
    ensemble: int = 0
    """members of the uncertainty ensemble (0: none; else the step graph gives an `uncertainty` output)"""
    ensemble_hidden: int = 64
    """hidden width of each ensemble member"""
    rewards: int = 1
    """rewards per step (one per agent in a joint multi-agent model); 1 gives reward tensors without the axis"""

    @property
    def z_dim(self) -> int:
        return self.stoch * self.classes if self.classes else self.stoch

    @property
    def feat_dim(self) -> int:
        return self.deter + self.z_dim

    @property
    def noise_shape(self) -> tuple[int, ...]:
        return (self.stoch, self.classes) if self.classes else (self.stoch,)


class NormGRUCell(nn.Module):
    """GRU cell with one fused input/hidden projection and layer norm (DreamerV2), ONNX-friendly.
    norm="none": no norm, and the projection has a bias instead."""

    def __init__(self, inp: int, hidden: int, norm: str = "layer"):
        super().__init__()
        self.lin = nn.Linear(inp + hidden, 3 * hidden, bias=norm == "none")
        self.norm = make_norm(3 * hidden, norm)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        reset, cand, update = self.norm(self.lin(torch.cat([x, h], -1))).chunk(3, -1)
        reset = torch.sigmoid(reset)
        cand = torch.tanh(reset * cand)
        update = torch.sigmoid(update - 1)  # bias toward keeping the old state
        return update * cand + (1 - update) * h  # (B, deter)


class Ensemble(nn.Module):
    """K small MLPs, each predicting the next standardised observation and the reward from a state's
    features and the action: (B, inp) -> (B, K, out). The first layers of all members are one Linear, the
    second one Linear with a block-diagonal weight (member k's rows and columns only), so the ensemble adds
    two Gemms to a step and every row is computed by the same 2-D kernels as the rest of the step: results
    do not depend on how a batch is split into calls (a batched 3-D MatMul's rounding did).
    Their disagreement (`uncertainty`) is what the step graph reports: the members agree where the data
    was and part ways where it was not."""

    def __init__(self, inp: int, hidden: int, out: int, members: int):
        super().__init__()
        self.k, self.hidden, self.out = members, hidden, out
        self.inp = nn.Linear(inp, members * hidden)
        self.out_w = nn.Parameter(torch.randn(members, hidden, out) / hidden**0.5)
        self.out_b = nn.Parameter(torch.zeros(members, 1, out))
        self.register_buffer("_eye", torch.eye(members)[:, None, :, None], persistent=False)
        # centring across members (y - the members' mean, for every output) and the mean over (K, out): as
        # matrices, so the disagreement is Gemms too (onnxruntime's reductions round differently by batch size)
        tile = torch.eye(out).repeat(members, members)  # (K*O, K*O): 1 where two columns are the same output
        self.register_buffer("_centre", torch.eye(members * out) - tile / members, persistent=False)
        self.register_buffer("_mean", torch.full((members * out, 1), 1.0 / (members * out)), persistent=False)

    def flat(self, x: torch.Tensor) -> torch.Tensor:
        """(B, inp) -> (B, K * out), member k's predictions in columns k*out ... (k+1)*out - 1."""
        k, h, o = self.k, self.hidden, self.out
        w = (self.out_w[:, :, None, :] * self._eye).reshape(k * h, k * o)  # block-diagonal (K*H, K*O)
        return torch.relu(self.inp(x)) @ w + self.out_b.reshape(k * o)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.flat(x).reshape(-1, self.k, self.out)  # (B, K, out)

    def disagreement(self, flat: torch.Tensor) -> torch.Tensor:
        """Root mean (over outputs) of the members' variance, from `flat` predictions (B, K*out) -> (B,)."""
        d = flat @ self._centre
        return ((d * d) @ self._mean).squeeze(-1).sqrt()


class RSSM(nn.Module):
    def __init__(self, cfg: RSSMConfig):
        super().__init__()
        self.cfg = c = cfg
        stats = 2 * c.stoch if not c.classes else c.stoch * c.classes
        if c.std_act not in ("softplus", "sigmoid"):
            raise ValueError(f"std_act must be 'softplus' or 'sigmoid', got {c.std_act!r}")
        if c.rewards > 1 and c.shared_heads:
            raise ValueError("shared_heads holds one reward; use separate heads (shared_heads=False) for rewards > 1")
        kw = {"norm": c.norm, "act": c.act}
        self.encoder = mlp(c.obs_dim, c.hidden, c.hidden, layers=1, **kw)
        self.img_in = nn.Sequential(
            nn.Linear(c.z_dim + c.act_dim, c.hidden), make_norm(c.hidden, c.norm), make_act(c.act)
        )
        self.gru = NormGRUCell(c.hidden, c.deter, c.norm)
        self.prior_net = mlp(c.deter, c.hidden, stats, **kw)
        self.post_net = mlp(c.deter + c.hidden, c.hidden, stats, **kw)
        if c.shared_heads:  # features -> [obs (obs_dim), reward, continue logit]
            self.heads = mlp(c.feat_dim, c.hidden, c.obs_dim + 2, layers=2, **kw)
        else:
            self.decoder = mlp(c.feat_dim, c.hidden, c.obs_dim, layers=2, **kw)
            self.reward_head = mlp(c.feat_dim, c.hidden, c.rewards, **kw)
            self.cont_head = mlp(c.feat_dim, c.hidden, 1, **kw)
        self.frame_decoder = FrameDecoder(c.obs_dim, c.frame_size, c.frame_channels)
        if c.ensemble:  # (features, action) -> K x [next standardised obs, reward / reward std]
            self.ensemble = Ensemble(c.feat_dim + c.act_dim, c.ensemble_hidden, c.obs_dim + c.rewards, c.ensemble)
            self.register_buffer("reward_std", torch.ones(()))
        # statistics of the observations, set from the data before training (`set_obs_stats`); used
        # when the model works on standardised observations instead of symlog ones
        self.register_buffer("obs_scale", torch.ones(c.obs_dim))
        if not c.symlog_inputs:
            self.register_buffer("obs_mean", torch.zeros(c.obs_dim))

    def set_obs_stats(self, mean, std, reward_std: float | None = None) -> None:
        """Standardise with the training data's per-dimension mean and std (symlog_inputs=False); the
        ensemble predicts the reward in units of `reward_std`."""
        self.obs_scale.copy_(torch.as_tensor(np.maximum(std, 1e-3), dtype=torch.float32))
        if hasattr(self, "obs_mean"):
            self.obs_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        if reward_std is not None and self.cfg.ensemble:
            self.reward_std.fill_(max(float(reward_std), 1e-3))

    # -- latent distributions ------------------------------------------------------------------------
    def _dist(self, stats: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.cfg.classes:
            return {"logits": stats.view(*stats.shape[:-1], self.cfg.stoch, self.cfg.classes)}
        mean, std = stats.chunk(2, -1)
        std = torch.sigmoid(std) if self.cfg.std_act == "sigmoid" else F.softplus(std)
        return {"mean": mean, "std": std + self.cfg.min_std}

    def _sample(self, d: dict[str, torch.Tensor], noise: torch.Tensor | None) -> torch.Tensor:
        """noise: standard normal (Gaussian) or Gumbel (categorical); None draws it from torch."""
        if self.cfg.classes:
            logits = d["logits"]
            if noise is None:
                noise = -torch.log(-torch.log(torch.rand_like(logits).clamp(1e-6, 1 - 1e-6)))
            onehot = F.one_hot((logits + noise).argmax(-1), self.cfg.classes).to(logits.dtype)
            probs = logits.softmax(-1)
            z = onehot + probs - probs.detach()  # straight-through
            return z.flatten(-2)
        if noise is None:
            noise = torch.randn_like(d["mean"])
        return d["mean"] + d["std"] * noise

    def _kl(self, post: dict, prior: dict) -> torch.Tensor:
        """Balanced KL(post || prior), summed over latent dims; (...)."""
        kl = categorical_kl if self.cfg.classes else gaussian_kl
        return balanced_kl(post, prior, kl, self.cfg.kl_balance, self.cfg.free_nats)

    # -- the pieces every path shares ----------------------------------------------------------------
    def embed(self, obs: torch.Tensor) -> torch.Tensor:
        return self.encoder(self._target(obs))

    def transition(self, h: torch.Tensor, z: torch.Tensor, a: torch.Tensor) -> tuple[torch.Tensor, dict]:
        h = self.gru(self.img_in(torch.cat([z, a], -1)), h)
        return h, self._dist(self.prior_net(h))

    def posterior(self, h: torch.Tensor, e: torch.Tensor) -> dict:
        return self._dist(self.post_net(torch.cat([h, e], -1)))

    def decode(self, feat: torch.Tensor) -> torch.Tensor:
        y = self._decode_raw(feat)
        return symexp(y) if self.cfg.symlog_inputs else y * self.obs_scale + self.obs_mean

    def _decode_raw(self, feat: torch.Tensor) -> torch.Tensor:
        return self.heads(feat)[..., : self.cfg.obs_dim] if self.cfg.shared_heads else self.decoder(feat)

    def _heads(self, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(observation in the model's scale, reward, continue logit) of features (..., feat_dim)."""
        if self.cfg.shared_heads:
            y = self.heads(feat)
            o = self.cfg.obs_dim
            return y[..., :o], y[..., o], y[..., o + 1]
        return self.decoder(feat), self._reward(feat), self.cont_head(feat).squeeze(-1)

    def _reward(self, feat: torch.Tensor) -> torch.Tensor:
        """(...,) for one reward, (..., rewards) for several."""
        r = self.reward_head(feat)
        return r.squeeze(-1) if self.cfg.rewards == 1 else r

    def _reward_se(self, err: torch.Tensor) -> torch.Tensor:
        """Squared reward error per step, summed over the rewards when there are several."""
        se = err**2
        return se.sum(-1) if self.cfg.rewards > 1 else se

    def _target(self, obs: torch.Tensor) -> torch.Tensor:
        return symlog(obs) if self.cfg.symlog_inputs else (obs - self.obs_mean) / self.obs_scale

    def initial(self, batch: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
        return (torch.zeros(batch, self.cfg.deter, device=device), torch.zeros(batch, self.cfg.z_dim, device=device))

    # -- training ------------------------------------------------------------------------------------
    def loss(self, obs, prev_act, reward, cont, mask) -> tuple[torch.Tensor, dict[str, float]]:
        """obs (B, L, O), prev_act (B, L, A): the action before each obs; reward (B, L) received on
        entering obs ((B, L, rewards) with several rewards); cont (B, L) 0 where obs is terminal; mask (B, L)
        0 where reward is undefined."""
        B, L, _ = obs.shape
        c = self.cfg
        e = self.embed(obs)  # (B, L, hidden)
        h, z = self.initial(B, obs.device)
        hs, zs, zps, kls = [], [], [], []
        for t in range(L):
            h, prior = self.transition(h, z, prev_act[:, t])
            post = self.posterior(h, e[:, t])
            z = self._sample(post, None)
            hs.append(h), zs.append(z), kls.append(self._kl(post, prior))
            zps.append(self._sample(prior, None))
        H, Z, ZP = torch.stack(hs, 1), torch.stack(zs, 1), torch.stack(zps, 1)  # (B, L, .)
        feat = torch.cat([H, Z], -1)
        target = self._target(obs)
        dec, rew_pred, cont_logit = self._heads(feat)
        recon = ((dec - target) ** 2).sum(-1).mean()
        prior_recon = ((self._decode_raw(torch.cat([H, ZP], -1)) - target) ** 2).sum(-1).mean()
        rew = (self._reward_se(rew_pred - reward) * mask).sum() / mask.sum().clamp(min=1)
        cont_loss = F.binary_cross_entropy_with_logits(cont_logit, cont)
        kl = torch.stack(kls, 1).mean()
        total = recon + c.prior_recon * prior_recon + c.reward_scale * rew + cont_loss + c.kl_scale * kl
        logs = {
            "recon": recon.item(),
            "prior_recon": prior_recon.item(),
            "reward": rew.item(),
            "cont": cont_loss.item(),
            "kl": kl.item(),
        }

        K = min(c.overshoot, L - 1)
        if K > 0:  # open-loop imagination from every posterior state, under the recorded actions
            S = L - K
            h, z = H[:, :S].reshape(B * S, -1), Z[:, :S].reshape(B * S, -1)
            over = 0.0
            for k in range(1, K + 1):
                h, prior = self.transition(h, z, prev_act[:, k : k + S].reshape(B * S, -1))
                z = self._sample(prior, None)
                f = torch.cat([h, z], -1)
                dec, rew_pred, _ = self._heads(f)
                over = over + ((dec - target[:, k : k + S].reshape(B * S, -1)) ** 2).sum(-1).mean()
                r_true = reward[:, k : k + S].reshape(B * S, *reward.shape[2:])
                over = over + c.reward_scale * self._reward_se(rew_pred - r_true).mean()
            over = over / K
            total = total + c.overshoot_scale * over
            logs["overshoot"] = float(over.detach())
        logs["loss"] = total.item()
        return total, logs

    def ensemble_loss(self, obs, prev_act, reward, cont, mask, keep) -> tuple[torch.Tensor, dict[str, float]]:
        """Train the ensemble on the frozen model's own states: the posterior filter over the first half of
        each sequence, then open-loop imagination under the recorded actions (the states a dream visits).
        Each member learns the real next observation and reward from (features, action) on its own
        bootstrap share of the sequences (`keep`: (K, B) of 0/1)."""
        B, L, _ = obs.shape
        with torch.no_grad():
            e = self.embed(obs)
            h, z = self.initial(B, obs.device)
            feats = []
            for t in range(L - 1):
                h, prior = self.transition(h, z, prev_act[:, t])
                z = self._sample(self.posterior(h, e[:, t]) if t < L // 2 else prior, None)
                feats.append(torch.cat([h, z], -1))
            x = torch.cat([torch.stack(feats, 1), prev_act[:, 1:]], -1)  # state t and the action taken in it
            r = reward[:, 1:] / self.reward_std
            target = torch.cat([self._target(obs[:, 1:]), r[..., None] if r.dim() == 2 else r], -1)
        flat = self.ensemble.flat(x.reshape(B * (L - 1), -1))  # (B * (L-1), K * out)
        with torch.no_grad():
            u = self.ensemble.disagreement(flat).mean()
        pred = flat.reshape(B, L - 1, self.cfg.ensemble, -1).permute(2, 0, 1, 3)  # (K, B, L-1, out)
        err = ((pred - target) ** 2).mean(-1) * mask[None, :, 1:]  # (K, B, L-1)
        w = keep[:, :, None] * mask[None, :, 1:]
        loss = (err * keep[:, :, None]).sum() / w.sum().clamp(min=1)
        return loss, {"loss": loss.item(), "uncertainty": u.item()}

    def uncertainty(self, feat: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """The ensemble's disagreement about the step from state features `feat` under `action`: (B,)."""
        return self.ensemble.disagreement(self.ensemble.flat(torch.cat([feat, action], -1)))

    def frame_loss(self, obs: torch.Tensor, frames: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        return frame_loss(self.frame_decoder, obs, frames)

    # -- inference: the exported functions -----------------------------------------------------------
    def filter_context(self, context_obs, context_actions, noise):
        """reset.onnx: posterior filter over C real steps. noise (B, C, *noise_shape)."""
        B, C, _ = context_obs.shape
        e = self.embed(context_obs)
        h, z = self.initial(B, context_obs.device)
        for t in range(C):
            h, _ = self.transition(h, z, context_actions[:, t])
            z = self._sample(self.posterior(h, e[:, t]), noise[:, t])
        return h, z, context_obs[:, -1], torch.cat([h, z], -1)

    def imagine_step(self, h, z, action, noise):
        """step.onnx: one prior step. Returns next h, next z, obs, reward, terminated, latent[, uncertainty]."""
        extra = (self.uncertainty(torch.cat([h, z], -1), action),) if self.cfg.ensemble else ()
        h, prior = self.transition(h, z, action)
        z = self._sample(prior, noise)
        feat = torch.cat([h, z], -1)
        y, reward, cont = self._heads(feat)
        obs = symexp(y) if self.cfg.symlog_inputs else y * self.obs_scale + self.obs_mean
        terminated = cont < 0  # continue probability below one half
        return h, z, obs, reward, terminated, feat, *extra

    def export_step(self, h, z, action, noise):
        """`imagine_step` rewritten for onnxruntime: the same outputs (parity within float rounding, tested),
        fewer and cheaper nodes. Every change is exact algebra on the weights, written as operations on
        the parameters themselves, which onnxruntime folds into constants when it loads the graph (so the
        file keeps every weight under its parameter name):
        - the GRU's update bias (-1) is folded into its layer norm's bias, its gates are cut with one
          static Split (not chunk's Shape/Gather/Div/Slice chain) and h' = h + u (c - h);
        - softplus as relu(x) + log(1 + exp(-|x|)) — exact for every x, and much faster than
          onnxruntime's Softplus kernel (benchmarks/README.md);
        - the decoder's output scale and mean are folded into its last layer, and the continue head's
          bias into the threshold it is compared with;
        - without a norm, each GRU gate and a sigmoid std (std_act="sigmoid") as its own Gemm (rows of
          the layer's weight), which onnxruntime fuses with its sigmoid; shared heads as one Gemm read
          out by Slice/Gather.
        The categorical latent keeps `_sample`. The ensemble's uncertainty, when there is one, comes last."""
        extra = (self.uncertainty(torch.cat([h, z], -1), action),) if self.cfg.ensemble else ()
        return (*self._export_step(h, z, action, noise), *extra)

    def _export_step(self, h, z, action, noise):
        c, g = self.cfg, self.gru
        d = c.deter
        x = self.img_in(torch.cat([z, action], -1))
        shift = torch.cat([torch.zeros(2 * d), torch.ones(d)])  # sigmoid(u - 1): into a bias
        xh = torch.cat([x, h], -1)
        if c.norm == "none":  # a Gemm per gate: onnxruntime fuses each sigmoid into its Gemm, and no Split
            w, b = g.lin.weight, g.lin.bias - shift
            reset = torch.sigmoid(F.linear(xh, w[:d], b[:d]))
            update = torch.sigmoid(F.linear(xh, w[2 * d :], b[2 * d :]))
            cand = torch.tanh(reset * F.linear(xh, w[d : 2 * d], b[d : 2 * d]))
        else:
            pre = xh @ g.lin.weight.T
            if isinstance(g.norm, nn.LayerNorm):
                y = F.layer_norm(pre, g.norm.normalized_shape, g.norm.weight, g.norm.bias - shift, g.norm.eps)
                reset, cand, update = torch.split(y, [d, d, d], -1)
            else:  # RMSNorm: no bias to fold into
                reset, cand, update = torch.split(g.norm(pre), [d, d, d], -1)
                update = update - 1
            reset, update = torch.sigmoid(reset), torch.sigmoid(update)
            cand = torch.tanh(reset * cand)
        h = h + update * (cand - h)
        if c.classes:
            z = self._sample(self._dist(self.prior_net(h)), noise)
        elif c.std_act == "sigmoid":
            p, last, k = self.prior_net[:-1](h), self.prior_net[-1], c.stoch
            mean = F.linear(p, last.weight[:k], last.bias[:k])
            z = mean + (torch.sigmoid(F.linear(p, last.weight[k:], last.bias[k:])) + c.min_std) * noise
        else:
            mean, s = torch.split(self.prior_net(h), [c.stoch, c.stoch], -1)
            softplus = torch.relu(s) + torch.log(1 + torch.exp(-torch.abs(s)))
            z = mean + (softplus + c.min_std) * noise
        feat = torch.cat([h, z], -1)
        if c.shared_heads:
            return (h, z, *self._export_shared_heads(feat), feat)
        y = F.linear(self.decoder[:-1](feat), *self._obs_rows(self.decoder[-1].weight, self.decoder[-1].bias))
        obs = symexp(y) if c.symlog_inputs else y
        reward = self._reward(feat)
        last = self.cont_head[-1]
        terminated = F.linear(self.cont_head[:-1](feat), last.weight).squeeze(-1) < -last.bias
        return h, z, obs, reward, terminated, feat

    def _obs_rows(self, w, b):
        """A last layer's observation rows with the standardisation's scale and mean folded in (symlog
        observations: unchanged, symexp follows)."""
        if self.cfg.symlog_inputs:
            return w, b
        return w * self.obs_scale[:, None], b * self.obs_scale + self.obs_mean

    def _export_shared_heads(self, feat):
        """obs, reward, terminated from shared heads: one Gemm whose observation rows carry the output
        scale and mean, and whose continue row leaves its bias to the threshold."""
        o, last = self.cfg.obs_dim, self.heads[-1]
        w, b = last.weight, last.bias
        w_obs, b_obs = self._obs_rows(w[:o], b[:o])
        out = F.linear(
            self.heads[:-1](feat), torch.cat([w_obs, w[o:]]), torch.cat([b_obs, b[o : o + 1], torch.zeros(1)])
        )
        obs = symexp(out[:, :o]) if self.cfg.symlog_inputs else out[:, :o]
        return obs, out[:, o], out[:, o + 1] < -b[o + 1]

    def render_frame(self, h, z):
        """render.onnx: uint8 frames (B, S, S, 3) of the decoded observation."""
        obs = self.decode(torch.cat([h, z], -1))
        return to_uint8(self.frame_decoder(obs))

    # -- the export surface (see families.WorldModel) -----------------------------------------------------
    family = "rssm"

    def graph_functions(self) -> dict:
        return {"reset": self.filter_context, "step": self.imagine_step, "render": self.render_frame}

    def export_functions(self) -> dict:
        """What is traced into the graphs: `graph_functions` with the step in its onnxruntime form."""
        return {**self.graph_functions(), "step": self.export_step}

    def state_spec(self) -> tuple[TensorSpec, ...]:
        return TensorSpec("h", (self.cfg.deter,)), TensorSpec("z", (self.cfg.z_dim,))

    def noise_spec(self, context_length: int) -> tuple[NoiseSpec, ...]:
        dist = "gumbel" if self.cfg.classes else "normal"
        return (
            NoiseSpec("noise_context", (context_length, *self.cfg.noise_shape), graph="reset", distribution=dist),
            NoiseSpec("noise_z", self.cfg.noise_shape, graph="step", distribution=dist),
        )

    def output_spec(self) -> tuple[OutputSpec, ...]:
        if not self.cfg.ensemble:
            return ()
        text = (
            f"disagreement of {self.cfg.ensemble} ensemble members predicting the next observation and reward "
            "(root mean variance, in units of the training data's standard deviations)"
        )
        return (OutputSpec("uncertainty", (), "float32", text),)

    @property
    def latent_dim(self) -> int:
        return self.cfg.feat_dim

    def example_inputs(self, batch: int, context_length: int, rng: np.random.Generator) -> dict:
        """Random states, actions and noise for each graph (what export traces and parity feeds)."""
        c = self.cfg
        f = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
        if c.classes:
            noise = lambda *s: -np.log(-np.log(rng.uniform(1e-6, 1 - 1e-6, s))).astype(np.float32)  # noqa: E731
            z = np.eye(c.classes, dtype=np.float32)[rng.integers(c.classes, size=(batch, c.stoch))].reshape(batch, -1)
        else:
            noise, z = f, f(batch, c.z_dim)
        a = rng.uniform(-1, 1, (batch, c.act_dim)).astype(np.float32)
        return {
            "reset": {
                "context_obs": f(batch, context_length, c.obs_dim),
                "context_actions": rng.uniform(-1, 1, (batch, context_length, c.act_dim)).astype(np.float32),
                "noise_context": noise(batch, context_length, *c.noise_shape),
            },
            "step": {"h": np.tanh(f(batch, c.deter)), "z": z, "action": a, "noise_z": noise(batch, *c.noise_shape)},
            "render": {"h": np.tanh(f(batch, c.deter)), "z": z},
        }

    def step_macs(self) -> int:
        """Multiply-adds of one imagined env-step (Linear layers of the step graph)."""
        heads = [self.heads] if self.cfg.shared_heads else [self.decoder, self.reward_head, self.cont_head]
        mods = [self.img_in, self.gru, self.prior_net, *heads] + ([self.ensemble] if self.cfg.ensemble else [])
        macs = sum(m.in_features * m.out_features for mod in mods for m in mod.modules() if isinstance(m, nn.Linear))
        return macs + (self.ensemble.out_w.numel() * self.cfg.ensemble if self.cfg.ensemble else 0)


FAMILY = Family(
    name="rssm",
    description="RSSM (PlaNet/Dreamer): GRU path and stochastic latent, vector observations",
    config=RSSMConfig,
    model=RSSM,
    evaluator="dreamgym.export.measure.vector:VectorEvaluator",
    card_text=LATENT_TEXT,
    spaces=vector_spaces,
    example_batch=vector_batch,
)

"""The `step-ensemble` family: K memoryless dynamics models in the real env's observation space (MBPO, MOPO).

For an env whose observation is its state (HalfCheetah-v5's is its state less the x position, which no force
depends on) and whose simulator is deterministic, the next observation is a function of this one and the
action, so a world model needs no memory. Each of K members is an MLP [std(o), a] -> std([o' - o, r]); they
differ by their initial weights and by an online bootstrap (each member fits its own random half of every
batch). A dream step draws one member per env from its noise (MBPO's random member, so a learner cannot
exploit one member's error), and gives the members' disagreement as `uncertainty` (the norm of their
standard deviation on the standardised change: MOPO's penalty signal, MOReL's halt signal). The frames come
from the same outboard decoder of the observation as the RSSM's. There is no termination head: a member
ensemble is for envs that never terminate (HalfCheetah); `set_stats` refuses data that does.

Why it exists (`benchmarks/README.md`, "Short dreams from real states, and an ensemble of memoryless
steps"): SAC trained with its defaults in the RSSM dream scored near random in reality, whatever the horizon
of its episodes; in this family's dream, from states of the training data with 5-step episodes and the
disagreement penalty, it ran (4,135 and 3,267 real after 100k steps, seeds 0 and 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from dreamgym.export.families import Family, vector_batch, vector_spaces
from dreamgym.export.families.layers import FrameDecoder, frame_loss, to_uint8
from dreamgym.manifest import NoiseSpec, OutputSpec, TensorSpec


@dataclass(frozen=True)
class EnsembleConfig:
    """K memoryless step models of one env, evaluated together."""

    obs_dim: int = 17
    act_dim: int = 6
    members: int = 5
    """K: members of the ensemble (each also a possible dream step)"""
    hidden: int = 200
    """width of every member's hidden layers"""
    layers: int = 4
    """hidden layers per member (SiLU)"""
    bootstrap: float = 0.5
    """each member fits this random share of every batch (1: all of it, members differ by their init only)"""
    frame_size: int = 64
    frame_channels: int = 32

    def __post_init__(self):
        if self.members < 2:
            raise ValueError(f"members must be >= 2 (their disagreement is the uncertainty), got {self.members}")
        if not 0 < self.bootstrap <= 1:
            raise ValueError(f"bootstrap is a share of each batch, in (0, 1], got {self.bootstrap}")
        if self.hidden < 1 or self.layers < 1 or self.obs_dim < 1 or self.act_dim < 1:
            raise ValueError(f"obs_dim, act_dim, hidden and layers must be positive, got {self}")


class StepEnsemble(nn.Module):
    """K MLPs as batched matrix products: weights (K, in, out), so the step graph is one MatMul per layer."""

    family = "step-ensemble"

    def __init__(self, cfg: EnsembleConfig):
        super().__init__()
        self.cfg = c = cfg
        dims = [c.obs_dim + c.act_dim] + [c.hidden] * c.layers + [c.obs_dim + 1]
        k = c.members
        self.w = nn.ParameterList(
            nn.Parameter(torch.randn(k, i, o) * (1.0 / i) ** 0.5) for i, o in zip(dims[:-1], dims[1:], strict=True)
        )
        self.b = nn.ParameterList(nn.Parameter(torch.zeros(k, 1, o)) for o in dims[1:])
        self.frame_decoder = FrameDecoder(c.obs_dim, c.frame_size, c.frame_channels)
        for name in ("obs_mean", "delta_mean"):
            self.register_buffer(name, torch.zeros(c.obs_dim))
        for name in ("obs_std", "delta_std"):
            self.register_buffer(name, torch.ones(c.obs_dim))
        self.register_buffer("reward_mean", torch.zeros(()))
        self.register_buffer("reward_std", torch.ones(()))

    def set_stats(self, episodes: list[dict]) -> None:
        """Standardisation from the training episodes (aligned: `reward[t]` for arriving at `obs[t]`)."""
        if any(float(e["cont"].min()) < 1 for e in episodes):
            raise ValueError(
                "the step-ensemble family has no termination head, and these episodes terminate; "
                "use a family with a continue head (rssm, tssm) for this env"
            )
        o0 = np.concatenate([e["obs"][:-1] for e in episodes]).astype(np.float64)
        d = np.concatenate([np.diff(e["obs"], axis=0) for e in episodes]).astype(np.float64)
        r = np.concatenate([e["reward"][1:] for e in episodes]).astype(np.float64)
        t = lambda x: torch.as_tensor(x, dtype=torch.float32)  # noqa: E731
        self.obs_mean.copy_(t(o0.mean(0))), self.obs_std.copy_(t(np.maximum(o0.std(0), 1e-3)))
        self.delta_mean.copy_(t(d.mean(0))), self.delta_std.copy_(t(np.maximum(d.std(0), 1e-4)))
        self.reward_mean.copy_(t(r.mean())), self.reward_std.copy_(t(max(r.std(), 1e-3)))

    def inputs(self, o, a):
        """(o (B, O), a (B, A)) -> the members' standardised input [std(o), a], (B, O + A)."""
        return torch.cat([(o - self.obs_mean) / self.obs_std, a], -1)

    def members(self, o, a):
        """(o (B, O), a (B, A)) -> every member's standardised [change, reward], (K, B, O + 1)."""
        x = self.inputs(o, a)
        return self.layers(x.unsqueeze(0).expand(self.cfg.members, *x.shape))

    def outcome(self, o, y):
        """o (B, O) and one standardised [change, reward] per env (B, O + 1) -> (next observation, reward)."""
        d = self.cfg.obs_dim
        return o + y[:, :d] * self.delta_std + self.delta_mean, y[:, d] * self.reward_std + self.reward_mean

    def layers(self, x):
        """Every member's MLP on its own standardised inputs: x (K, B, O + A) -> (K, B, O + 1)."""
        for i, (w, b) in enumerate(zip(self.w, self.b, strict=True)):
            x = torch.baddbmm(b, x, w)
            if i < len(self.w) - 1:
                x = F.silu(x)
        return x

    def disagreement(self, y):
        """The norm over the observation of the members' standard deviation (standardised change units)."""
        return y[..., : self.cfg.obs_dim].std(0).norm(dim=-1)

    def loss(self, obs, prev_act, reward, cont, mask) -> tuple[torch.Tensor, dict[str, float]]:
        """Sequences in the vector families' layout; every step t -> t+1 is one transition. Each member's mean
        squared error on its own random share of the transitions, in standardised units."""
        c = self.cfg
        o0 = obs[:, :-1].reshape(-1, c.obs_dim)
        a = prev_act[:, 1:].reshape(-1, c.act_dim)
        d = ((obs[:, 1:].reshape(-1, c.obs_dim) - o0) - self.delta_mean) / self.delta_std
        r = (reward[:, 1:].reshape(-1, 1) - self.reward_mean) / self.reward_std
        target = torch.cat([d, r], -1)
        m = mask[:, 1:].reshape(1, -1)
        if c.bootstrap < 1:
            m = m * (torch.rand(c.members, m.shape[1], device=m.device) < c.bootstrap).float()
        err = (self.members(o0, a) - target) ** 2  # (K, N, O + 1)
        per = (err * m[..., None]).sum((1, 2)) / (m.sum(1).clamp(min=1) * err.shape[-1])
        total = per.sum()
        with torch.no_grad():
            one = (err[..., : c.obs_dim].mean(-1) * m).sum() / m.sum().clamp(min=1)
            rw = (err[..., -1] * m).sum() / m.sum().clamp(min=1)
        return total, {"loss": total.item(), "one_step": one.item(), "reward": rw.item()}

    def frame_loss(self, obs, frames):
        return frame_loss(self.frame_decoder, obs, frames)

    # -- the exported functions (io_names order) ---------------------------------------------------------
    def reset_graph(self, context_obs, context_actions):
        """The context's last observation is the state (a memoryless model reads the rest only to check its
        shape)."""
        o = context_obs[:, -1] + 0.0 * context_actions[:, -1, :1]
        return o, o, o

    def step_graph(self, o, action, noise_member):
        """One dream step: member floor(K u) of the ensemble (u ~ U[0, 1) per env) moves o; the reward is
        that member's; the uncertainty is every member's disagreement."""
        c = self.cfg
        y = self.members(o, action)  # (K, B, O + 1)
        k = torch.clamp(torch.floor(noise_member * c.members), 0, c.members - 1)
        pick = (k.unsqueeze(0) == torch.arange(c.members, dtype=k.dtype).unsqueeze(1)).to(y.dtype)  # (K, B)
        nxt, reward = self.outcome(o, (y * pick.unsqueeze(-1)).sum(0))
        terminated = torch.zeros_like(reward) > 1.0
        return nxt, nxt, reward, terminated, nxt, self.disagreement(y)

    def render_frame(self, o):
        return to_uint8(self.frame_decoder(o))

    def graph_functions(self) -> dict:
        return {"reset": self.reset_graph, "step": self.step_graph, "render": self.render_frame}

    def state_spec(self) -> tuple[TensorSpec, ...]:
        return (TensorSpec("o", (self.cfg.obs_dim,)),)

    def noise_spec(self, context_length: int) -> tuple[NoiseSpec, ...]:
        return (NoiseSpec("noise_member", (), graph="step", distribution="uniform"),)

    def output_spec(self) -> tuple[OutputSpec, ...]:
        text = (
            f"disagreement of the {self.cfg.members} ensemble members on the next observation (the norm of "
            "their standard deviation, in units of the training data's one-step change)"
        )
        return (OutputSpec("uncertainty", (), "float32", text),)

    @property
    def latent_dim(self) -> int:
        return self.cfg.obs_dim

    def example_inputs(self, batch: int, context_length: int, rng: np.random.Generator) -> dict:
        c = self.cfg
        o = (rng.standard_normal((batch, c.obs_dim)) * self.obs_std.numpy() + self.obs_mean.numpy()).astype(np.float32)
        return {
            "reset": {
                "context_obs": rng.standard_normal((batch, context_length, c.obs_dim)).astype(np.float32),
                "context_actions": rng.uniform(-1, 1, (batch, context_length, c.act_dim)).astype(np.float32),
            },
            "step": {
                "o": o,
                "action": rng.uniform(-1, 1, (batch, c.act_dim)).astype(np.float32),
                "noise_member": rng.uniform(0, 1, (batch,)).astype(np.float32),
            },
            "render": {"o": o},
        }

    def step_macs(self) -> int:
        return sum(int(w.numel()) for w in self.w)


ENSEMBLE_TEXT = {
    "action": "Continuous actions outside it are clipped; non-finite actions raise `dreamgym.ActionError`.",
    "obs": "stepped in the real env's own space: the last observation plus the change one member of the "
    "ensemble predicts (a member drawn at random per step)",
    "reward": "Predicted by the same member with the change (regression on the real reward).",
    "reset": "takes its last observation as the state (the model has no memory)",
    "term": "No termination (the family is for envs that never terminate)",
    "mean": "member 0 of the ensemble at every step (noise_scale=0)",
    "samples": "a random member per step, as the learner's dream",
}

FAMILY = Family(
    name="step-ensemble",
    description="ensemble of memoryless steps in observation space (MBPO/MOPO): random member, disagreement",
    config=EnsembleConfig,
    model=StepEnsemble,
    evaluator="dreamgym.export.measure.vector:VectorEvaluator",
    card_text=ENSEMBLE_TEXT,
    spaces=vector_spaces,
    example_batch=vector_batch,
)

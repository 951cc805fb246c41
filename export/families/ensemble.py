"""The `step-ensemble` family: K memoryless dynamics models in the real env's observation space (MBPO, MOPO).

For an env whose observation is its state (HalfCheetah-v5's is its state less the x position, which no force
depends on) and whose simulator is deterministic, the next observation is a function of this one and the
action, so a world model needs no memory. Each of K members is an MLP [std(o), a] -> std([o' - o, r]); they
differ by their initial weights and by an online bootstrap (each member fits its own random half of every
batch). A dream step draws one member per env from its noise (MBPO's random member, so a learner cannot
exploit one member's error), and gives the members' disagreement as `uncertainty` (the norm of their
standard deviation on the standardised change: MOPO's penalty signal, MOReL's halt signal). The frames come
from the same outboard decoder of the observation as the RSSM's.

Envs that end (Hopper falls, CartPole tips over) get a termination head (`termination=True`, which
`set_stats` turns on when the data terminates): a small classifier of the *next* observation, trained on the
real next observations of every transition, that the step applies to the member's prediction. Most envs'
own rules are a function of the state they arrive in (Hopper: height and angle in range), so this is the
env's rule learnt from data, and a dream ends where the predicted body falls. Discrete actions
(`discrete=True`, `act_dim` = the number of actions) enter the members one-hot; Box actions are scaled from
the space's bounds to [-1, 1] (`set_action_bounds`).

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
from dreamgym.export.families.layers import FrameDecoder, ObservationBars, frame_loss, to_uint8
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
    discrete: bool = False
    """the actions are Discrete(act_dim) indices (one-hot inside), not a Box of act_dim"""
    termination: bool = False
    """a termination head on the next observation (an env that ends); off: dreams never terminate"""
    term_hidden: int = 64
    """width of the termination head's two hidden layers"""
    clip_obs: bool = False
    """the observation space has bounds (`set_obs_bounds`): the step clips its prediction into them"""
    frame_bars: bool = False
    """no frames in the data: render draws the observation as bars instead of a trained decoder"""

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
        if c.frame_bars:
            self.frame_decoder = ObservationBars(c.obs_dim, c.frame_size)
        else:
            self.frame_decoder = FrameDecoder(c.obs_dim, c.frame_size, c.frame_channels)
        for name in ("obs_mean", "delta_mean"):
            self.register_buffer(name, torch.zeros(c.obs_dim))
        for name in ("obs_std", "delta_std"):
            self.register_buffer(name, torch.ones(c.obs_dim))
        self.register_buffer("reward_mean", torch.zeros(()))
        self.register_buffer("reward_std", torch.ones(()))
        self.register_buffer("act_mid", torch.zeros(c.act_dim))
        self.register_buffer("act_half", torch.ones(c.act_dim))
        self.register_buffer("term_pos_weight", torch.ones(()))
        self.register_buffer("term_rate", torch.zeros(()))
        self.register_buffer("obs_low", torch.full((c.obs_dim,), -3.0e38))
        self.register_buffer("obs_high", torch.full((c.obs_dim,), 3.0e38))
        if c.termination:
            h = c.term_hidden
            self.term = nn.Sequential(nn.Linear(c.obs_dim, h), nn.SiLU(), nn.Linear(h, h), nn.SiLU(), nn.Linear(h, 1))

    def set_action_bounds(self, low, high) -> None:
        """Box actions enter the members as 2 (a - low) / (high - low) - 1: [-1, 1] whatever the env's bounds."""
        low, high = np.asarray(low, np.float64), np.asarray(high, np.float64)
        if self.cfg.discrete or not (np.isfinite(low).all() and np.isfinite(high).all()):
            return
        self.act_mid.copy_(torch.as_tensor((high + low) / 2, dtype=torch.float32))
        self.act_half.copy_(torch.as_tensor(np.maximum((high - low) / 2, 1e-6), dtype=torch.float32))

    def set_obs_bounds(self, low, high) -> None:
        """The observation space's bounds (infinite ones stay open), which the step clips into (`clip_obs`)."""
        big = np.float32(3.0e38)
        self.obs_low.copy_(torch.as_tensor(np.clip(np.asarray(low, np.float64), -big, big), dtype=torch.float32))
        self.obs_high.copy_(torch.as_tensor(np.clip(np.asarray(high, np.float64), -big, big), dtype=torch.float32))

    def set_stats(self, episodes: list[dict]) -> None:
        """Standardisation from the training episodes (aligned: `reward[t]` for arriving at `obs[t]`), and the
        termination head's class weight (episodes that end need a model with `termination=True`)."""
        ends = sum(int((e["cont"] < 1).sum()) for e in episodes)
        if ends and not self.cfg.termination:
            raise ValueError(
                f"these episodes terminate ({ends} terminations) and the model has no termination head; "
                "build it with EnsembleConfig(termination=True)"
            )
        if self.cfg.termination:
            steps = sum(len(e["obs"]) - 1 for e in episodes)
            # the rare class counts as much as sqrt(its rarity): recall without giving up precision
            self.term_pos_weight.fill_(float(np.sqrt(max(steps - ends, 1) / max(ends, 1))))
            self.term_rate.fill_(ends / max(steps, 1))
        # the transitions the loss trains on (`mask[t + 1]`: a push that replaced an outcome is not one)
        keep = [e["mask"][1:] > 0 if "mask" in e else np.ones(len(e["obs"]) - 1, bool) for e in episodes]
        o0 = np.concatenate([e["obs"][:-1][k] for e, k in zip(episodes, keep)]).astype(np.float64)
        d = np.concatenate([np.diff(e["obs"], axis=0)[k] for e, k in zip(episodes, keep)]).astype(np.float64)
        r = np.concatenate([e["reward"][1:][k] for e, k in zip(episodes, keep)]).astype(np.float64)
        t = lambda x: torch.as_tensor(x, dtype=torch.float32)  # noqa: E731
        self.obs_mean.copy_(t(o0.mean(0))), self.obs_std.copy_(t(np.maximum(o0.std(0), 1e-3)))
        self.delta_mean.copy_(t(d.mean(0))), self.delta_std.copy_(t(np.maximum(d.std(0), 1e-4)))
        self.reward_mean.copy_(t(r.mean())), self.reward_std.copy_(t(max(r.std(), 1e-3)))
        if self.cfg.frame_bars:
            self.frame_decoder.mean.copy_(self.obs_mean), self.frame_decoder.std.copy_(self.obs_std)

    def action_input(self, a):
        """a (B, A) Box actions, or (B,) / (B, 1) Discrete indices -> the members' action input (B, A)."""
        if self.cfg.discrete:
            idx = a.reshape(a.shape[0], 1).to(torch.int64)
            return (idx == torch.arange(self.cfg.act_dim, dtype=torch.int64)).to(torch.float32)
        return (a - self.act_mid) / self.act_half

    def inputs(self, o, a):
        """(o (B, O), a (B, A) or indices) -> the members' standardised input [std(o), a], (B, O + A)."""
        return torch.cat([(o - self.obs_mean) / self.obs_std, self.action_input(a)], -1)

    def term_logit(self, o):
        """The termination head on observations o (B, O): the logit that o is terminal, (B,)."""
        return self.term(((o - self.obs_mean) / self.obs_std).clamp(-5.0, 5.0)).squeeze(-1)

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

    def loss(
        self, obs, prev_act, reward, cont, mask, with_termination: bool = True
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Sequences in the vector families' layout; every step t -> t+1 is one transition. Each member's mean
        squared error on its own random share of the transitions, in standardised units; and the termination
        head's weighted cross-entropy on the same transitions, unless `with_termination` is False (a recipe
        then trains the head apart, `termination_loss`)."""
        c = self.cfg
        o0 = obs[:, :-1].reshape(-1, c.obs_dim)
        a = prev_act[:, 1:].reshape(o0.shape[0], -1)
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
        logs = {"loss": total.item(), "one_step": one.item(), "reward": rw.item()}
        if c.termination and with_termination:  # on the real next observation of every transition
            valid = mask[:, 1:].reshape(-1)
            ended = 1.0 - cont[:, 1:].reshape(-1)
            logit = self.term_logit(obs[:, 1:].reshape(-1, c.obs_dim))
            bce = F.binary_cross_entropy_with_logits(logit, ended, pos_weight=self.term_pos_weight, reduction="none")
            term = (bce * valid).sum() / valid.sum().clamp(min=1)
            total = total + term
            with torch.no_grad():
                said, real = (logit > 0).float() * valid, ended * valid
                logs.update(
                    loss=total.item(),
                    term=term.item(),
                    term_recall=float((said * real).sum() / real.sum().clamp(min=1)),
                    term_precision=float((said * real).sum() / said.sum().clamp(min=1)),
                )
        return total, logs

    def termination_loss(self, next_obs, ended, extra) -> tuple[torch.Tensor, dict[str, float]]:
        """The termination head alone, on a batch of next observations of which the rows `extra` are terminal
        ones drawn on top of a uniform draw (the rare class would otherwise give a batch two or three).
        Weights keep the uniform part's share of each class: a uniform row counts n / n_uniform, an extra
        terminal row rate × pos_weight × n / n_extra (pos_weight: the square root of the rarity)."""
        n = float(len(ended))
        n_extra = extra.float().sum().clamp(min=1)
        w = torch.where(extra, self.term_rate * self.term_pos_weight * n / n_extra, n / (n - n_extra).clamp(min=1))
        logit = self.term_logit(next_obs)
        loss = (F.binary_cross_entropy_with_logits(logit, ended, reduction="none") * w).mean()
        with torch.no_grad():
            said, real = (logit > 0) & ~extra, (ended > 0) & ~extra  # the measures on the uniform rows
            tp = float((said & real).sum())
            logs = {
                "term": loss.item(),
                "recall": tp / max(float(real.sum()), 1.0),
                "precision": tp / max(float(said.sum()), 1.0),
            }
        return loss, logs

    def frame_loss(self, obs, frames):
        return frame_loss(self.frame_decoder, obs, frames)

    # -- the exported functions (io_names order) ---------------------------------------------------------
    def reset_graph(self, context_obs, context_actions):
        """The context's last observation is the state (a memoryless model reads the rest only to check its
        shape)."""
        last = context_actions[:, -1:] if self.cfg.discrete else context_actions[:, -1, :1]
        o = context_obs[:, -1] + 0.0 * last.to(context_obs.dtype)
        return o, o, o

    def step_graph(self, o, action, noise_member):
        """One dream step: member floor(K u) of the ensemble (u ~ U[0, 1) per env) moves o; the reward is
        that member's; the uncertainty is every member's disagreement; the episode ends where the termination
        head calls the predicted observation terminal."""
        c = self.cfg
        y = self.members(o, action)  # (K, B, O + 1)
        k = torch.clamp(torch.floor(noise_member * c.members), 0, c.members - 1)
        pick = (k.unsqueeze(0) == torch.arange(c.members, dtype=k.dtype).unsqueeze(1)).to(y.dtype)  # (K, B)
        nxt, reward = self.outcome(o, (y * pick.unsqueeze(-1)).sum(0))
        if c.clip_obs:  # a real env never leaves its observation space, so neither does its dream
            nxt = torch.maximum(torch.minimum(nxt, self.obs_high), self.obs_low)
        terminated = self.term_logit(nxt) > 0.0 if c.termination else torch.zeros_like(reward) > 1.0
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
        if c.discrete:
            ctx_a = rng.integers(0, c.act_dim, (batch, context_length)).astype(np.int64)
            act = rng.integers(0, c.act_dim, (batch,)).astype(np.int64)
        else:
            lo, hi = (self.act_mid - self.act_half).numpy(), (self.act_mid + self.act_half).numpy()
            ctx_a = rng.uniform(lo, hi, (batch, context_length, c.act_dim)).astype(np.float32)
            act = rng.uniform(lo, hi, (batch, c.act_dim)).astype(np.float32)
        return {
            "reset": {
                "context_obs": rng.standard_normal((batch, context_length, c.obs_dim)).astype(np.float32),
                "context_actions": ctx_a,
            },
            "step": {
                "o": o,
                "action": act,
                "noise_member": rng.uniform(0, 1, (batch,)).astype(np.float32),
            },
            "render": {"o": o},
        }

    def step_macs(self) -> int:
        term = sum(int(m.weight.numel()) for m in self.term if isinstance(m, nn.Linear)) if self.cfg.termination else 0
        return sum(int(w.numel()) for w in self.w) + term


def ensemble_spaces(cfg) -> tuple:
    """(observation space, action space) of a bundle of `cfg`: a Box of obs_dim, and Box(-1, 1, act_dim) or
    Discrete(act_dim) (a recipe writes the real env's own spaces into the manifest)."""
    from gymnasium import spaces

    obs, act = vector_spaces(cfg)
    return obs, spaces.Discrete(cfg.act_dim) if cfg.discrete else act


def ensemble_batch(cfg, batch: int, rng: np.random.Generator, length: int = 12) -> tuple:
    """A random batch in `loss`'s layout; discrete actions as indices (B, T, 1), some steps terminal."""
    obs, act, reward, cont, mask = vector_batch(cfg, batch, rng, length)
    if cfg.discrete:
        act = torch.from_numpy(rng.integers(0, cfg.act_dim, (batch, length, 1)).astype(np.float32))
    if cfg.termination:
        cont[:, -1] = torch.from_numpy((rng.random(batch) < 0.5).astype(np.float32))
    return obs, act, reward, cont, mask


ENSEMBLE_TEXT = {
    "action": "Continuous actions outside it are clipped; non-finite actions raise `dreamgym.ActionError`.",
    "obs": "stepped in the real env's own space: the last observation plus the change one member of the "
    "ensemble predicts (a member drawn at random per step)",
    "reward": "Predicted by the same member with the change (regression on the real reward).",
    "reset": "takes its last observation as the state (the model has no memory)",
    "term": "Where the env ends, a termination head on the predicted next observation (the env's own rule, "
    "learnt from data) ends the episode; a dream of an env that never ends (`termination` false in the config) "
    "never terminates",
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
    spaces=ensemble_spaces,
    example_batch=ensemble_batch,
)

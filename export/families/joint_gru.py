"""Joint GRU: the RSSM's deterministic GRU path alone over every agent of a multi-agent env, stepping in
observation space (the "joint-gru" family; Dream-SimpleTag-v0 v0). It speaks the multi-agent contract of
`joint.py` and draws its frame with the same `SceneDrawer`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from dreamgym.export.families import Family
from dreamgym.export.families.joint import (
    JOINT_TEXT,
    Contacts,
    JointConfig,
    SceneDrawer,
    _ObsSpaceJoint,
    joint_agents,
    joint_batch,
)
from dreamgym.manifest import TensorSpec


# -- the deterministic joint model: RSSM's GRU path, residual in observation space ------------------------
@dataclass(frozen=True)
class JointGRUConfig:
    """A joint model of every agent for a deterministic multi-agent env (MPE): the RSSM's deterministic
    GRU path alone, stepping in observation space. The state is (h, o): the GRU's memory and the last
    observation; a step reads the standardised o and every agent's action, and adds a predicted change to o.
    Trained open loop (a few teacher-forced steps, then its own predictions), which is what a dream does."""

    obs_dim: int = 8
    act_dim: int = 4
    agents: tuple = (("a", 4, 2), ("b", 4, 2))
    """(name, observation size, action size) of every agent, in the graphs' order"""
    rewards: int = 2
    """one per agent"""
    deter: int = 128
    """size of the GRU state h"""
    hidden: int = 128
    """width of every MLP"""
    warmup: int = 10
    """teacher-forced steps at the start of each training sequence (the rest are open loop)"""
    reward_scale: float = 1.0
    """weight of the reward loss (rewards in units of their std)"""
    contacts: bool = True
    """give the GRU, the change head and the reward head every pair of entities' overlap (`Contacts`)"""
    action_low: float = 0.0
    action_high: float = 1.0
    scene_positions: tuple = ((0, 1), (4, 5))
    scene_colors: tuple = ((0.85, 0.35, 0.35), (0.35, 0.85, 0.35))
    scene_radii: tuple = (0.075, 0.05)
    scene_extent: float = 1.5
    frame_size: int = 64

    def __post_init__(self):
        JointConfig.__post_init__(self)


class JointGRU(_ObsSpaceJoint):
    """(h, o) -> x = [std(o), actions, contacts(o)], h' = GRU(h, x), o' = o + Δ(h', x) · std(Δ), rewards
    from [std(o'), contacts(o')] alone, the game's continue logit from h'. No stochastic latent: mpe2's
    simple_tag is deterministic given the actions (a Gaussian latent's decoding noise was worse than
    holding the last observation at h = 1). The change reads the step's inputs beside the GRU's memory, so the sharp parts of the physics
    (contact forces, the speed limit) need not pass through the GRU's gates. MPE's rewards are functions of
    the state after the step (tags, the prey's boundary penalty), so the reward head reads the observation
    alone and is fitted on the real next observations: the dream pays for what happens in the dream."""

    family = "joint-gru"

    def __init__(self, cfg: JointGRUConfig):
        super().__init__()
        from dreamgym.export.families.layers import mlp
        from dreamgym.export.families.rssm import NormGRUCell

        self.cfg = c = cfg
        kw = {"norm": "none", "act": "relu"}
        self.contacts = Contacts(c) if c.contacts else None
        k = self.contacts.size if c.contacts else 0
        self.inp = nn.Sequential(nn.Linear(c.obs_dim + c.act_dim + k, c.hidden), nn.ReLU())
        self.gru = NormGRUCell(c.hidden, c.deter, "none")
        self.delta = mlp(c.deter + c.obs_dim + c.act_dim + k, c.hidden, c.obs_dim, layers=3, **kw)
        self.reward_head = mlp(c.obs_dim + k, c.hidden, c.rewards, layers=2, **kw)
        self.cont_head = mlp(c.deter, c.hidden, 1, **kw)
        self.scene = SceneDrawer(c)
        self.frame_decoder = nn.Module()  # frames are drawn, not decoded
        for name, size in (("obs_mean", c.obs_dim), ("obs_std", c.obs_dim), ("delta_std", c.obs_dim)):
            self.register_buffer(name, torch.zeros(size) if name == "obs_mean" else torch.ones(size))
        self.register_buffer("reward_std", torch.ones(c.rewards))
        self.names = [a[0] for a in c.agents]
        self.obs_sizes = [a[1] for a in c.agents]
        self.act_sizes = [a[2] for a in c.agents]

    def cell(self, h, o, a):
        """One step: (h, o, joint action) -> (h', o', rewards, continue logit)."""
        x = self._inputs(o, a)
        h = self.gru(self.inp(x), h)
        o = o + self.delta(torch.cat([h, x], -1)) * self.delta_std
        return h, o, self.reward(o), self.cont_head(h).squeeze(-1)

    def loss(self, obs, prev_act, reward, cont, mask) -> tuple[torch.Tensor, dict[str, float]]:
        """obs (B, L, O); prev_act (B, L, A) the action before each obs; reward (B, L, R); cont, mask (B, L).
        The first `warmup` steps are fed the real observation, the rest the model's own prediction."""
        B, L, _ = obs.shape
        c = self.cfg
        h = torch.zeros(B, c.deter)
        o = obs[:, 0]
        err_tf, err_ol, con = [], [], []
        for t in range(1, L):
            h, o, _, k = self.cell(h, o, prev_act[:, t])
            e = (((o - obs[:, t]) / self.obs_std) ** 2).sum(-1)
            (err_tf if t < c.warmup else err_ol).append(e)
            con.append(F.binary_cross_entropy_with_logits(k, cont[:, t], reduction="none"))
            if t < c.warmup:  # teacher forcing: the next step starts from the real observation
                o = obs[:, t]
        # one-step errors are small: weigh the teacher-forced ones in units of the change, not the level
        tf = torch.stack(err_tf, 1).mean() if err_tf else torch.zeros(())
        ol = torch.stack(err_ol, 1).mean() if err_ol else torch.zeros(())
        # the reward of the real next observation (a function of the state, fitted on true states)
        rerr = (((self.reward(obs[:, 1:]) - reward[:, 1:]) / self.reward_std) ** 2).sum(-1)
        rw = (rerr * mask[:, 1:]).sum() / mask[:, 1:].sum().clamp(min=1)
        cl = torch.stack(con, 1).mean()
        total = 10.0 * tf + ol + c.reward_scale * rw + cl
        logs = {
            "one_step": tf.item(),
            "open_loop": ol.item(),
            "reward": rw.item(),
            "cont": cl.item(),
            "loss": total.item(),
        }
        return total, logs

    # -- the exported functions (io_names order) -----------------------------------------------------
    def joint_reset(self, *args):
        n = len(self.names)
        obs, act = torch.cat(args[:n], -1), torch.cat(args[n : 2 * n], -1)
        h = torch.zeros(obs.shape[0], self.cfg.deter)
        for t in range(1, obs.shape[1]):  # filter the real context, each step from the real observation
            h, *_ = self.cell(h, obs[:, t - 1], act[:, t])
        o = obs[:, -1]
        return (h, o, *torch.split(o, self.obs_sizes, -1))

    def joint_step(self, h, o, *actions):
        h, o, r, k = self.cell(h, o, torch.cat(actions, -1))
        return (h, o, *torch.split(o, self.obs_sizes, -1), *r.unbind(-1), *self._terms(k < 0))

    def render_frame(self, h, o):
        return self.scene(o)

    def state_spec(self) -> tuple[TensorSpec, ...]:
        return TensorSpec("h", (self.cfg.deter,)), TensorSpec("o", (self.cfg.obs_dim,))

    @property
    def latent_dim(self) -> int:
        return self.cfg.deter

    def example_inputs(self, batch: int, context_length: int, rng: np.random.Generator) -> dict:
        f = lambda *sh: rng.standard_normal(sh).astype(np.float32)  # noqa: E731
        return self._example_inputs(
            batch, context_length, rng, {"h": np.tanh(f(batch, self.cfg.deter)), "o": f(batch, self.cfg.obs_dim)}
        )

    def step_macs(self) -> int:
        return self._macs(self.inp, self.gru, self.delta, self.reward_head, self.cont_head)


def gru_batch(cfg: JointGRUConfig, batch: int, rng: np.random.Generator, length: int = 12) -> tuple:
    return joint_batch(cfg, batch, rng, length)


JOINT_GRU_TEXT = dict(
    JOINT_TEXT,
    obs="each agent's observation, stepped by the joint model in the real env's own space for that agent "
    "(the last observation plus a predicted change)",
    reset="filters it with the GRU, each step from the real observation",
)

FAMILY = Family(
    name="joint-gru",
    description="joint GRU: RSSM's deterministic path over every agent, residual in observation space",
    config=JointGRUConfig,
    model=JointGRU,
    evaluator="dreamgym.export.measure.joint:JointEvaluator",
    card_text=JOINT_GRU_TEXT,
    spaces=lambda cfg: (None, None),
    example_batch=gru_batch,
    agents=joint_agents,
)

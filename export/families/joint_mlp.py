"""Joint MLP: a memoryless step of every agent of a multi-agent env whose joint observation is its whole state
(the "joint-mlp" family; Dream-SimpleTag-v0 since v1). It speaks the multi-agent contract of `joint.py` and
draws its frame with the same `SceneDrawer`."""

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
)
from dreamgym.export.families.joint_gru import gru_batch
from dreamgym.manifest import TensorSpec


# -- the Markov joint model: one step of observation-space physics, no memory --------------------------
@dataclass(frozen=True)
class JointMLPConfig:
    """A joint model of every agent for an env whose joint observation is its whole state (MPE: every body's
    position and velocity is in some agent's view): o' = cap(o + [L(x) + MLP(x)] · std(Δ)), x = [std(o),
    actions, contacts(o)]. No memory: the state is the last joint observation, and the model is fitted one
    step at a time on real transitions."""

    obs_dim: int = 8
    act_dim: int = 4
    agents: tuple = (("a", 4, 2), ("b", 4, 2))
    """(name, observation size, action size) of every agent, in the graphs' order"""
    rewards: int = 2
    """one per agent"""
    hidden: int = 256
    """width of the change MLP"""
    layers: int = 3
    """hidden layers of the change MLP"""
    head_hidden: int = 128
    """width of the reward and continue heads"""
    speed_slots: tuple = ()
    """where each 2-D velocity starts in the joint observation: the step caps its length at the largest
    speed seen in the training data (MPE scales a body's velocity down to its max_speed after the forces
    act, a division by a norm that ReLU layers fit poorly; the change before the cap is linear in x)"""
    contacts: bool = True
    """give the change and reward heads every pair of entities' overlap (`Contacts`)"""
    contact_margin: float = 0.0
    """k of the contacts' softened penetration (0: the plain overlap; MPE's contact_margin is 1e-3)"""
    action_low: float = 0.0
    action_high: float = 1.0
    scene_positions: tuple = ((0, 1), (4, 5))
    scene_colors: tuple = ((0.85, 0.35, 0.35), (0.35, 0.85, 0.35))
    scene_radii: tuple = (0.075, 0.05)
    scene_extent: float = 1.5
    frame_size: int = 64

    def __post_init__(self):
        JointConfig.__post_init__(self)
        bad = [i for i in self.speed_slots if not 0 <= i <= self.obs_dim - 2]
        if bad:
            raise ValueError(f"speed_slots {bad} do not start a 2-D velocity inside obs_dim {self.obs_dim}")


class JointMLP(_ObsSpaceJoint):
    """(o) -> x = [std(o), actions, contacts(o)], o' = cap(o + (L(x) + MLP(x)) · std(Δ)); rewards and the
    game's continue logit from [std(o'), contacts(o')]. The linear path L carries what is linear in the
    physics (positions move by the velocity, velocity decays, pushes and contact forces add), the MLP the
    rest; `cap` scales each velocity in `speed_slots` down to the fastest seen in training. Fitted on real
    one-step transitions (teacher forced): on mpe2's simple_tag this measured 0.005x copy-last at h = 1
    against the GRU's 0.11x (`benchmarks/README.md`)."""

    family = "joint-mlp"

    def __init__(self, cfg: JointMLPConfig):
        super().__init__()
        from dreamgym.export.families.layers import mlp

        self.cfg = c = cfg
        kw = {"norm": "none", "act": "relu"}
        self.contacts = Contacts(c) if c.contacts else None
        k = self.contacts.size if c.contacts else 0
        x = c.obs_dim + c.act_dim + k
        self.skip = nn.Linear(x, c.obs_dim)
        self.delta = mlp(x, c.hidden, c.obs_dim, layers=c.layers, **kw)
        self.reward_head = mlp(c.obs_dim + k, c.head_hidden, c.rewards, layers=2, **kw)
        self.cont_head = mlp(c.obs_dim + k, c.head_hidden, 1, layers=1, **kw)
        self.scene = SceneDrawer(c)
        self.frame_decoder = nn.Module()  # frames are drawn, not decoded
        for name, size in (("obs_mean", c.obs_dim), ("obs_std", c.obs_dim), ("delta_std", c.obs_dim)):
            self.register_buffer(name, torch.zeros(size) if name == "obs_mean" else torch.ones(size))
        self.register_buffer("reward_std", torch.ones(c.rewards))
        self.register_buffer("speed_max", torch.full((len(c.speed_slots),), 1e3))
        self.names = [a[0] for a in c.agents]
        self.obs_sizes = [a[1] for a in c.agents]
        self.act_sizes = [a[2] for a in c.agents]

    def set_stats(self, episodes: list[dict]) -> None:
        """Standardisation from the training episodes (observations, their one-step changes, rewards) and
        the fastest speed of every velocity slot."""
        super().set_stats(episodes)
        obs = np.concatenate([e["obs"] for e in episodes])
        top = [float(np.sqrt((obs[:, i : i + 2].astype(np.float64) ** 2).sum(-1)).max()) for i in self.cfg.speed_slots]
        self.speed_max.copy_(torch.as_tensor(top, dtype=torch.float32))

    def _cap(self, o):
        if not self.cfg.speed_slots:
            return o
        parts, prev = [], 0
        for j, i in enumerate(self.cfg.speed_slots):
            v = o[..., i : i + 2]
            n = torch.sqrt((v * v).sum(-1, keepdim=True) + 1e-12)
            parts += [o[..., prev:i], v * torch.clamp(self.speed_max[j] / n, max=1.0)]
            prev = i + 2
        parts.append(o[..., prev:])
        return torch.cat(parts, -1)

    def _next(self, o, a):
        """The next joint observation o' = cap(o + (L(x) + MLP(x)) · std(Δ))."""
        x = self._inputs(o, a)
        return self._cap(o + (self.skip(x) + self.delta(x)) * self.delta_std)

    def cell(self, o, a):
        """One step: (o, joint action) -> (o', rewards, continue logit)."""
        o = self._next(o, a)
        f = self._features(o)
        return o, self.reward_head(f) * self.reward_std, self.cont_head(f).squeeze(-1)

    def loss(self, obs, prev_act, reward, cont, mask) -> tuple[torch.Tensor, dict[str, float]]:
        """obs (B, L, O); prev_act (B, L, A) the action before each obs; reward (B, L, R); cont, mask (B, L).
        Every step from the real observation before it: the change in units of its std, the rewards and the
        continue flag of the real next observation."""
        o2 = obs[:, 1:]
        pred = self._next(obs[:, :-1], prev_act[:, 1:])
        m = mask[:, 1:]
        n = m.sum().clamp(min=1)
        step = ((((pred - o2) / self.delta_std) ** 2).mean(-1) * m).sum() / n
        f = self._features(o2)
        rerr = (((self.reward_head(f) * self.reward_std - reward[:, 1:]) / self.reward_std) ** 2).sum(-1)
        rw = (rerr * m).sum() / n
        bce = F.binary_cross_entropy_with_logits(self.cont_head(f).squeeze(-1), cont[:, 1:], reduction="none")
        cl = (bce * m).sum() / n
        total = step + rw + cl
        return total, {"one_step": step.item(), "reward": rw.item(), "cont": cl.item(), "loss": total.item()}

    # -- the exported functions (io_names order) -----------------------------------------------------
    def joint_reset(self, *args):
        """The real context's last joint observation is the state (the earlier steps and the actions are
        inputs of the contract that a memoryless model reads only to check their shapes)."""
        n = len(self.names)
        obs, act = torch.cat(args[:n], -1), torch.cat(args[n : 2 * n], -1)
        o = obs[:, -1] + 0.0 * act[:, -1, :1]  # keep the actions an input of the graph
        return (o, *torch.split(o, self.obs_sizes, -1))

    def joint_step(self, o, *actions):
        o, r, k = self.cell(o, torch.cat(actions, -1))
        return (o, *torch.split(o, self.obs_sizes, -1), *r.unbind(-1), *self._terms(k < 0))

    def render_frame(self, o):
        return self.scene(o)

    def state_spec(self) -> tuple[TensorSpec, ...]:
        return (TensorSpec("o", (self.cfg.obs_dim,)),)

    @property
    def latent_dim(self) -> int:
        return self.cfg.obs_dim

    def example_inputs(self, batch: int, context_length: int, rng: np.random.Generator) -> dict:
        return self._example_inputs(
            batch, context_length, rng, {"o": rng.standard_normal((batch, self.cfg.obs_dim)).astype(np.float32)}
        )

    def step_macs(self) -> int:
        return self._macs(self.skip, self.delta, self.reward_head, self.cont_head)


JOINT_MLP_TEXT = dict(
    JOINT_TEXT,
    obs="each agent's observation, stepped by the joint model in the real env's own space for that agent "
    "(the last joint observation plus a predicted change, each velocity capped at the fastest seen in training)",
    reset="takes its last joint observation as the state (the model has no memory)",
)

FAMILY = Family(
    name="joint-mlp",
    description="joint MLP: a memoryless step over every agent, residual in observation space, speeds capped",
    config=JointMLPConfig,
    model=JointMLP,
    evaluator="dreamgym.export.measure.joint:JointEvaluator",
    card_text=JOINT_MLP_TEXT,
    spaces=lambda cfg: (None, None),
    example_batch=gru_batch,
    agents=joint_agents,
)

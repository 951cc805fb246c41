"""Joint RSSM: one world model of every agent of a multi-agent env (the "joint-rssm" family).

An RSSM (`rssm.py`) over the concatenation of all agents' observations and actions, with one reward per
agent and one continue head for the game. Its graphs speak the multi-agent contract: the step takes
`action.<agent>` for every agent and gives `obs.<agent>`, `reward.<agent>` and `terminated.<agent>` (the
game's), so each agent observes in its real env's own space and policies move between dream and reality
unchanged. The frame is drawn from the decoded observations by `SceneDrawer`: discs at entity positions
that are sums of observation entries (an MPE agent's own position plus a relative one), so the render graph
needs no training and shows exactly where the dream puts everything.

Two deterministic variants in the same module speak the same contract: `JointGRU` ("joint-gru", the RSSM's
GRU path alone, stepping in observation space; Dream-SimpleTag-v0 v0) and `JointMLP` ("joint-mlp", a
memoryless step for envs whose joint observation is their whole state; Dream-SimpleTag-v0 v1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from dreamgym.manifest import AgentSpec, TensorSpec

from .evaluate_joint import JointEvaluator
from .families import LATENT_TEXT, Family
from .rssm import RSSM, RSSMConfig


@dataclass(frozen=True)
class JointConfig(RSSMConfig):
    obs_dim: int = 8
    act_dim: int = 4
    rewards: int = 2
    """one per agent"""
    agents: tuple = (("a", 4, 2), ("b", 4, 2))
    """(name, observation size, action size) of every agent, in the graphs' order; obs_dim and act_dim
    must be the sums"""
    action_low: float = 0.0
    """bounds of every agent's continuous action (MPE: [0, 1])"""
    action_high: float = 1.0
    scene_positions: tuple = ((0, 1), (4, 5))
    """per drawn entity, the indices of the joint observation whose sum is its x; y is each index + 1"""
    scene_colors: tuple = ((0.85, 0.35, 0.35), (0.35, 0.85, 0.35))
    """per drawn entity, its RGB colour in [0, 1] (drawn in order: later ones on top)"""
    scene_radii: tuple = (0.075, 0.05)
    """per drawn entity, its radius in world units"""
    scene_extent: float = 1.5
    """the frame shows [-extent, extent] on both axes"""

    def __post_init__(self):
        if sum(a[1] for a in self.agents) != self.obs_dim or sum(a[2] for a in self.agents) != self.act_dim:
            raise ValueError(
                f"obs_dim ({self.obs_dim}) and act_dim ({self.act_dim}) must be the sums of the agents' sizes "
                f"{[tuple(a) for a in self.agents]}"
            )
        if self.rewards != len(self.agents):
            raise ValueError(f"rewards must be one per agent ({len(self.agents)}), got {self.rewards}")
        if not (len(self.scene_positions) == len(self.scene_colors) == len(self.scene_radii)):
            raise ValueError("scene_positions, scene_colors and scene_radii must describe the same entities")


class SceneDrawer(nn.Module):
    """Joint observations (B, O) -> uint8 frames (B, S, S, 3): a white field with a disc per entity
    (antialiased over one pixel), drawn in order, +y up."""

    def __init__(self, cfg: JointConfig):
        super().__init__()
        E = len(cfg.scene_positions)
        self.register_buffer("P", torch.from_numpy(_entity_matrix(cfg)))
        self.register_buffer("colors", torch.tensor(cfg.scene_colors, dtype=torch.float32) * 255.0)
        self.register_buffer("r", torch.tensor(cfg.scene_radii, dtype=torch.float32))
        S, ext = cfg.frame_size, cfg.scene_extent
        centres = (torch.arange(S, dtype=torch.float32) + 0.5) / S * 2 * ext - ext
        self.register_buffer("gx", centres.view(1, 1, 1, S))
        self.register_buffer("gy", centres.flip(0).view(1, 1, S, 1))
        self.pixel = 2 * ext / S
        self.E = E

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        pos = (obs @ self.P.T).view(-1, self.E, 2)  # (B, E, 2)
        dx = self.gx - pos[:, :, 0, None, None]
        dy = self.gy - pos[:, :, 1, None, None]
        dist = torch.sqrt(dx * dx + dy * dy)  # (B, E, S, S)
        cover = torch.clamp((self.r[None, :, None, None] - dist) / self.pixel + 0.5, 0.0, 1.0)
        img = torch.full((obs.shape[0], dist.shape[2], dist.shape[3], 3), 255.0)
        for e in range(self.E):
            m = cover[:, e, :, :, None]
            img = img * (1 - m) + self.colors[e] * m
        return torch.round(img).to(torch.uint8)


def _entity_matrix(cfg) -> np.ndarray:
    """(2E, O): joint observation -> every drawn entity's (x, y), from `scene_positions`."""
    E = len(cfg.scene_positions)
    P = np.zeros((2 * E, cfg.obs_dim), np.float32)
    for e, idx in enumerate(cfg.scene_positions):
        for i in idx:
            P[2 * e, i] += 1.0
            P[2 * e + 1, i + 1] += 1.0
    return P


class Contacts(nn.Module):
    """Joint observations (..., O) -> (..., 3 · pairs): for every pair of the scene's entities (discs of
    `scene_radii` at the positions the drawer uses), the overlap p = max(r_i + r_j - |d|, 0) and the push
    q · d / |d|, times 10, where q is p, or with a config's `contact_margin` k > 0 MPE's own softened
    penetration k · log(1 + exp((r_i + r_j - |d|) / k)). MPE pushes overlapping bodies apart with a force
    along d proportional to the penetration, and scores a tag when a predator overlaps the prey: both are
    sharp functions of these features and smooth nowhere else, which an MLP on raw positions learns poorly
    (a one-step MLP on observations and actions alone measured 0.58x copy-last on held-out steps; with these
    features 0.12x). Every pair's offset is one matrix product of the observation (no gathers: cheaper in
    onnxruntime, and the graph keeps static shapes)."""

    def __init__(self, cfg):
        super().__init__()
        E = len(cfg.scene_positions)
        pairs = [(i, j) for i in range(E) for j in range(i + 1, E)]
        P = torch.from_numpy(_entity_matrix(cfg))
        Px, Py = P[0::2].T, P[1::2].T  # (O, E): x and y of every entity
        I, J = [i for i, _ in pairs], [j for _, j in pairs]
        self.register_buffer("Dx", (Px[:, I] - Px[:, J]).contiguous())  # (O, pairs): x_i - x_j
        self.register_buffer("Dy", (Py[:, I] - Py[:, J]).contiguous())
        r = torch.tensor(cfg.scene_radii, dtype=torch.float32)
        self.register_buffer("reach", r[I] + r[J])
        self.margin = float(getattr(cfg, "contact_margin", 0.0))
        self.E, self.size = E, 3 * len(pairs)

    def forward(self, o: torch.Tensor) -> torch.Tensor:
        dx, dy = o @ self.Dx, o @ self.Dy
        dist = torch.sqrt(dx * dx + dy * dy + 1e-8)
        gap = self.reach - dist
        over = torch.relu(gap)
        if self.margin > 0:  # k · softplus(gap / k), written so that no exp overflows
            k = self.margin
            pen = over + k * torch.log(1.0 + torch.exp(-torch.abs(gap) / k))
        else:
            pen = over
        push = pen / dist
        return 10.0 * torch.cat([over, push * dx, push * dy], -1)


class JointRSSM(RSSM):
    """An RSSM over all agents at once, exported under the multi-agent contract."""

    family = "joint-rssm"

    def __init__(self, cfg: JointConfig):
        super().__init__(cfg)
        self.scene = SceneDrawer(cfg)
        self.frame_decoder = nn.Module()  # frames are drawn, not decoded: nothing to train apart
        self.obs_sizes = [a[1] for a in cfg.agents]
        self.act_sizes = [a[2] for a in cfg.agents]
        self.names = [a[0] for a in cfg.agents]

    # the exported functions, arguments and results in io_names order
    def joint_reset(self, *args):
        n = len(self.names)
        obs, act, noise = torch.cat(args[:n], -1), torch.cat(args[n : 2 * n], -1), args[2 * n]
        h, z, last, _ = self.filter_context(obs, act, noise)
        return (h, z, *torch.split(last, self.obs_sizes, -1))

    def _joint_step(self, step, h, z, *rest):
        n = len(self.names)
        action, noise = torch.cat(rest[:n], -1), rest[n]
        h, z, obs, reward, terminated, _feat, *extra = step(h, z, action, noise)
        terms = [terminated] + [terminated.clone() for _ in range(n - 1)]
        return (h, z, *torch.split(obs, self.obs_sizes, -1), *reward.unbind(-1), *terms, *extra)

    def joint_step(self, h, z, *rest):
        return self._joint_step(self.imagine_step, h, z, *rest)

    def joint_export_step(self, h, z, *rest):
        return self._joint_step(self.export_step, h, z, *rest)

    def render_frame(self, h, z):
        return self.scene(self.decode(torch.cat([h, z], -1)))

    def graph_functions(self) -> dict:
        return {"reset": self.joint_reset, "step": self.joint_step, "render": self.render_frame}

    def export_functions(self) -> dict:
        return {**self.graph_functions(), "step": self.joint_export_step}

    def agent_names(self) -> tuple[str, ...]:
        return tuple(self.names)

    def example_inputs(self, batch: int, context_length: int, rng: np.random.Generator) -> dict:
        ex = super().example_inputs(batch, context_length, rng)
        c = self.cfg
        lo, hi = c.action_low, c.action_high
        reset = {
            f"context_obs.{a}": x
            for a, x in zip(self.names, np.split(ex["reset"]["context_obs"], _cuts(self.obs_sizes), -1))
        }
        acts = rng.uniform(lo, hi, (batch, context_length, c.act_dim)).astype(np.float32)
        reset |= {f"context_actions.{a}": x for a, x in zip(self.names, np.split(acts, _cuts(self.act_sizes), -1))}
        reset["noise_context"] = ex["reset"]["noise_context"]
        step = {"h": ex["step"]["h"], "z": ex["step"]["z"]}
        a = rng.uniform(lo, hi, (batch, c.act_dim)).astype(np.float32)
        step |= {f"action.{n}": x for n, x in zip(self.names, np.split(a, _cuts(self.act_sizes), -1))}
        step["noise_z"] = ex["step"]["noise_z"]
        return {"reset": reset, "step": step, "render": ex["render"]}

    def state_spec(self) -> tuple[TensorSpec, ...]:
        return super().state_spec()


def _cuts(sizes: list[int]) -> list[int]:
    return list(np.cumsum(sizes)[:-1])


def joint_agents(cfg: JointConfig, keymaps: dict | None = None) -> tuple[AgentSpec, ...]:
    """The manifest's agents of a joint model: each agent's observation (unbounded) and action spaces."""
    from gymnasium import spaces

    keymaps = keymaps or {}
    return tuple(
        AgentSpec(
            name=name,
            observation_space=spaces.Box(-np.inf, np.inf, (o,), np.float32),
            action_space=spaces.Box(cfg.action_low, cfg.action_high, (a,), np.float32),
            keymap=keymaps.get(name, {}),
        )
        for name, o, a in cfg.agents
    )


def joint_batch(cfg: JointConfig, batch: int, rng: np.random.Generator, length: int = 12) -> tuple:
    """A random batch of the joint `loss`: obs, prev_act, rewards (B, L, agents), cont, mask."""
    f = lambda *s: torch.from_numpy(rng.standard_normal(s).astype(np.float32))  # noqa: E731
    act = torch.from_numpy(
        rng.uniform(cfg.action_low, cfg.action_high, (batch, length, cfg.act_dim)).astype(np.float32)
    )
    return (
        f(batch, length, cfg.obs_dim),
        act,
        f(batch, length, cfg.rewards),
        torch.ones(batch, length),
        torch.ones(batch, length),
    )


JOINT_TEXT = dict(
    LATENT_TEXT,
    obs="each agent's observation, decoded by the joint model in the real env's own space for that agent",
    reward="Each agent's reward from the model's reward head (regression on the real rewards).",
    term="The game's termination from the continue head, the same for every agent",
)

FAMILY = Family(
    name="joint-rssm",
    description="joint RSSM: one RSSM over every agent's observations and actions (multi-agent dreams)",
    config=JointConfig,
    model=JointRSSM,
    evaluator=JointEvaluator(),
    card_text=JOINT_TEXT,
    spaces=lambda cfg: (None, None),
    example_batch=joint_batch,
    agents=joint_agents,
)


class _ObsSpaceJoint(nn.Module):
    """What the observation-space joint models (`JointGRU`, `JointMLP`) share: standardisation, the contact
    features, the reward read from the observation arrived at, and the contract's plumbing. Subclasses set
    `cfg`, `contacts`, `reward_head`, `scene`, `names`, `obs_sizes`, `act_sizes` and the stats buffers."""

    def set_stats(self, episodes: list[dict]) -> None:
        """Standardisation from the training episodes: observations, their one-step changes, rewards."""
        obs = np.concatenate([e["obs"] for e in episodes])
        d = np.concatenate([np.diff(e["obs"], axis=0) for e in episodes])
        r = np.concatenate([e["reward"][1:] for e in episodes])
        self.obs_mean.copy_(torch.as_tensor(obs.mean(0), dtype=torch.float32))
        self.obs_std.copy_(torch.as_tensor(np.maximum(obs.std(0), 1e-3), dtype=torch.float32))
        self.delta_std.copy_(torch.as_tensor(np.maximum(d.std(0), 1e-4), dtype=torch.float32))
        self.reward_std.copy_(torch.as_tensor(np.maximum(r.std(0), 1e-3), dtype=torch.float32))

    def _std(self, o):
        return (o - self.obs_mean) / self.obs_std

    def _features(self, o):
        """The standardised observation, with the entities' overlaps when the config asks for them."""
        return torch.cat([self._std(o), self.contacts(o)], -1) if self.contacts is not None else self._std(o)

    def _inputs(self, o, a):
        """A step's input x = [std(o), actions, overlaps(o)]."""
        return torch.cat([self._std(o), a] + ([self.contacts(o)] if self.contacts is not None else []), -1)

    def reward(self, o):
        """Every agent's reward for arriving at joint observation o."""
        return self.reward_head(self._features(o)) * self.reward_std

    def _terms(self, terminated):
        return [terminated] + [terminated.clone() for _ in range(len(self.names) - 1)]

    def graph_functions(self) -> dict:
        return {"reset": self.joint_reset, "step": self.joint_step, "render": self.render_frame}

    def agent_names(self) -> tuple[str, ...]:
        return tuple(self.names)

    def noise_spec(self, context_length: int) -> tuple:
        return ()  # deterministic: nothing to draw

    def _example_inputs(self, batch: int, context_length: int, rng: np.random.Generator, state: dict) -> dict:
        """Random reset and step feeds around the given example `state` tensors (also the render's)."""
        c = self.cfg
        f = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
        u = lambda *s: rng.uniform(c.action_low, c.action_high, s).astype(np.float32)  # noqa: E731
        ctx_o, ctx_a = f(batch, context_length, c.obs_dim), u(batch, context_length, c.act_dim)
        reset = {f"context_obs.{a}": x for a, x in zip(self.names, np.split(ctx_o, _cuts(self.obs_sizes), -1))}
        reset |= {f"context_actions.{a}": x for a, x in zip(self.names, np.split(ctx_a, _cuts(self.act_sizes), -1))}
        step = dict(state)
        step |= {f"action.{a}": x for a, x in zip(self.names, np.split(u(batch, c.act_dim), _cuts(self.act_sizes), -1))}
        return {"reset": reset, "step": step, "render": dict(state)}

    def _macs(self, *mods) -> int:
        return sum(m.in_features * m.out_features for mod in mods for m in mod.modules() if isinstance(m, nn.Linear))


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
        from .layers import mlp
        from .rssm import NormGRUCell

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


GRU_TEXT = dict(
    JOINT_TEXT,
    obs="each agent's observation, stepped by the joint model in the real env's own space for that agent "
    "(the last observation plus a predicted change)",
    reset="filters it with the GRU, each step from the real observation",
)

GRU_FAMILY = Family(
    name="joint-gru",
    description="joint GRU: RSSM's deterministic path over every agent, residual in observation space",
    config=JointGRUConfig,
    model=JointGRU,
    evaluator=JointEvaluator(),
    card_text=GRU_TEXT,
    spaces=lambda cfg: (None, None),
    example_batch=gru_batch,
    agents=joint_agents,
)


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
        from .layers import mlp

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


MLP_TEXT = dict(
    JOINT_TEXT,
    obs="each agent's observation, stepped by the joint model in the real env's own space for that agent "
    "(the last joint observation plus a predicted change, each velocity capped at the fastest seen in training)",
    reset="takes its last joint observation as the state (the model has no memory)",
)

MLP_FAMILY = Family(
    name="joint-mlp",
    description="joint MLP: a memoryless step over every agent, residual in observation space, speeds capped",
    config=JointMLPConfig,
    model=JointMLP,
    evaluator=JointEvaluator(),
    card_text=MLP_TEXT,
    spaces=lambda cfg: (None, None),
    example_batch=gru_batch,
    agents=joint_agents,
)

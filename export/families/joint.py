"""Joint RSSM: one world model of every agent of a multi-agent env (the "joint-rssm" family).

An RSSM (`rssm.py`) over the concatenation of all agents' observations and actions, with one reward per
agent and one continue head for the game. Its graphs speak the multi-agent contract: the step takes
`action.<agent>` for every agent and gives `obs.<agent>`, `reward.<agent>` and `terminated.<agent>` (the
game's), so each agent observes in its real env's own space and policies move between dream and reality
unchanged. The frame is drawn from the decoded observations by `SceneDrawer`: discs at entity positions
that are sums of observation entries (an MPE agent's own position plus a relative one), so the render graph
needs no training and shows exactly where the dream puts everything.

Two deterministic families speak the same contract and share this module's pieces (`SceneDrawer`,
`Contacts`, `joint_agents`, `_ObsSpaceJoint`): `joint_gru.py` ("joint-gru", the RSSM's GRU path alone,
stepping in observation space; Dream-SimpleTag-v0 v0) and `joint_mlp.py` ("joint-mlp", a memoryless step for
envs whose joint observation is their whole state; Dream-SimpleTag-v0 since v1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

from dreamgym.export.families import LATENT_TEXT, Family
from dreamgym.export.families.rssm import RSSM, RSSMConfig
from dreamgym.manifest import AgentSpec, TensorSpec


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
    evaluator="dreamgym.export.measure.joint:JointEvaluator",
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

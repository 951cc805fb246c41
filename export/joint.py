"""Joint RSSM: one world model of every agent of a multi-agent env (the "joint-rssm" family).

An RSSM (`rssm.py`) over the concatenation of all agents' observations and actions, with one reward per
agent and one continue head for the game. Its graphs speak the multi-agent contract: the step takes
`action.<agent>` for every agent and gives `obs.<agent>`, `reward.<agent>` and `terminated.<agent>` (the
game's), so each agent observes in its real env's own space and policies move between dream and reality
unchanged. The frame is drawn from the decoded observations by `SceneDrawer`: discs at entity positions
that are sums of observation entries (an MPE agent's own position plus a relative one), so the render graph
needs no training and shows exactly where the dream puts everything.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

from dreamgym.manifest import AgentSpec, TensorSpec

from .evaluate import VectorEvaluator
from .families import LATENT_TEXT, Family
from .rssm import RSSM, RSSMConfig


@dataclass(frozen=True)
class JointConfig(RSSMConfig):
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
        E, O = len(cfg.scene_positions), cfg.obs_dim
        P = np.zeros((2 * E, O), np.float32)
        for e, idx in enumerate(cfg.scene_positions):
            for i in idx:
                P[2 * e, i] += 1.0
                P[2 * e + 1, i + 1] += 1.0
        self.register_buffer("P", torch.from_numpy(P))
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
    evaluator=VectorEvaluator(),
    card_text=JOINT_TEXT,
    spaces=lambda cfg: (None, None),
    example_batch=joint_batch,
    agents=joint_agents,
)

"""The real multi-agent env behind Dream-SimpleTag-v0: mpe2's `simple_tag_v3`, its layout, scripted
policies for every agent, and episode collection (one npz per episode, per-agent arrays, no pickles).

Configuration (`TAG`): two predators (adversary_0, adversary_1) chase one prey (agent_0) among two
obstacles, continuous actions, 200 steps per game (20 s at MPE's dt = 0.1 s). Why: two predators give
two people something to do together or against each other, one prey keeps the scene readable at 64 px,
continuous actions let keys combine into diagonals, and 200 steps is a round of play that is long enough
to corner the prey (the default 25 is over before a person has found the keys).

Observations (the real env's own, per agent): an adversary sees [own vel (2), own pos (2), obstacle
offsets (2 x 2), offsets of the other two agents (2 x 2), the prey's vel (2)] = 14; the prey sees the same
without the velocity of another prey = 12. Action (Box [0, 1]^5): [no-op, -x, +x, -y, +y] pushes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

TAG = dict(num_good=1, num_adversaries=2, num_obstacles=2, max_cycles=200, continuous_actions=True)
AGENTS = (("adversary_0", 14, 5), ("adversary_1", 14, 5), ("agent_0", 12, 5))
ENV_ID = "mpe2.simple_tag_v3"
BEHAVIOURS = ("scripted", "scripted:0.2", "scripted:0.5", "random", "ou", "still", "switch")
"""the collector's mix: each agent's behaviour per game is drawn from these (see `behaviour`)"""
PREY_OFFSET = 28  # where the prey's observation starts in the joint vector
SPEED_SLOTS = (0, 12, 14, 26, 28)
"""every velocity in the joint observation: each predator's own and its view of the prey's, the prey's own
(MPE caps a predator's speed at 1.0 and the prey's at 1.3)"""
CONTACT_MARGIN = 1e-3
"""MPE's contact_margin: bodies push apart with force 100 · k · log(1 + exp((r_i + r_j - |d|) / k))"""


def make_env(render_mode: str | None = None, **overrides):
    """The real parallel env with the shipped configuration."""
    from mpe2 import simple_tag_v3

    return simple_tag_v3.parallel_env(**{**TAG, **overrides}, render_mode=render_mode)


def scene() -> dict:
    """JointConfig's scene fields: every entity's position from the prey's observation (its own position
    plus each offset), drawn obstacles first, then the predators (red) and the prey (green) on top."""
    p = PREY_OFFSET
    own = p + 2
    positions = (
        (own, p + 4),  # obstacle 0
        (own, p + 6),  # obstacle 1
        (own, p + 8),  # adversary_0
        (own, p + 10),  # adversary_1
        (own,),  # the prey
    )
    colors = ((0.25, 0.25, 0.25),) * 2 + ((0.85, 0.35, 0.35),) * 2 + ((0.35, 0.85, 0.35),)
    radii = (0.2, 0.2, 0.075, 0.075, 0.05)
    return dict(scene_positions=positions, scene_colors=colors, scene_radii=radii, scene_extent=1.5)


KEYMAPS = {  # player one on W A S D, player two on the arrows (a held key pushes at full force); the prey
    # is its policy's until a player takes it over (player 0: nobody at the start)
    "adversary_0": {"player": 1, "push": {"a": [1], "d": [2], "s": [3], "w": [4]}},
    "adversary_1": {"player": 2, "push": {"left": [1], "right": [2], "down": [3], "up": [4]}},
    "agent_0": {"player": 0, "push": {"a": [1], "d": [2], "s": [3], "w": [4]}},
}


# -- scripted policies ------------------------------------------------------------------------------
def _push(direction: torch.Tensor) -> torch.Tensor:
    """A unit direction (B, 2) as MPE's five pushes [no-op, -x, +x, -y, +y] in [0, 1]."""
    dx, dy = direction[:, 0:1], direction[:, 1:2]
    return torch.cat([torch.zeros_like(dx), torch.relu(-dx), torch.relu(dx), torch.relu(-dy), torch.relu(dy)], -1)


def _unit(v: torch.Tensor) -> torch.Tensor:
    return v / torch.sqrt((v * v).sum(-1, keepdim=True) + 1e-6)


class ScriptedTag(nn.Module):
    """The bundled policies, one per agent, each from its own observation only: a predator heads for where
    the prey will be in `lead` seconds; the prey flees the predators (weighted by closeness) and turns
    back towards the middle near the edge."""

    def __init__(self, lead: float = 0.3, edge: float = 0.8):
        super().__init__()
        self.lead, self.edge = lead, edge

    def chase(self, obs: torch.Tensor) -> torch.Tensor:
        return _push(_unit(obs[:, 10:12] + self.lead * obs[:, 12:14]))

    def flee(self, obs: torch.Tensor) -> torch.Tensor:
        pos = obs[:, 2:4]
        away = torch.zeros_like(pos)
        for i in (8, 10):
            rel = obs[:, i : i + 2]
            away = away - rel / ((rel * rel).sum(-1, keepdim=True) + 0.05)
        home = -pos * torch.relu(torch.abs(pos).max(-1, keepdim=True).values - self.edge) * 20.0
        return _push(_unit(away + home))

    def forward(self, adversary_0, adversary_1, agent_0):
        return self.chase(adversary_0), self.chase(adversary_1), self.flee(agent_0)


def scripted_actions(policy: ScriptedTag, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The scripted actions of one game's observations {agent: (d,)}."""
    with torch.no_grad():
        out = policy(*(torch.as_tensor(obs[a][None], dtype=torch.float32) for a, _, _ in AGENTS))
    return {a: o[0].numpy() for (a, _, _), o in zip(AGENTS, out)}


# -- behaviours --------------------------------------------------------------------------------------
# Per agent and episode, one of these (the recipe lists its mix as strings):
#   scripted[:std]   the bundled policy, plus Gaussian noise of that std
#   random           uniform pushes
#   ou               a smooth random walk of pushes
#   still            no push at all (it drifts only when hit)
#   switch           scripted and random in stretches of 5-40 steps
def behaviour(kind: str, rng: np.random.Generator) -> Callable[[np.ndarray | None, int], np.ndarray | None]:
    """A function (scripted action or None, t) -> action of one agent."""
    name, _, arg = kind.partition(":")
    if name == "scripted":
        std = float(arg or 0)
        return lambda a, t: np.clip(a + std * rng.standard_normal(5), 0, 1) if std else a
    if name == "random":
        return lambda a, t: rng.uniform(0, 1, 5)
    if name == "still":
        return lambda a, t: np.zeros(5)
    if name == "ou":
        x = rng.uniform(0, 1, 5)

        def ou(a, t):
            x[:] = np.clip(x + 0.15 * (0.5 - x) + 0.3 * rng.standard_normal(5), 0, 1)
            return x.copy()

        return ou
    if name == "switch":
        st = {"until": 0, "scripted": True}

        def switch(a, t):
            if t >= st["until"]:
                st["until"], st["scripted"] = t + int(rng.integers(5, 41)), bool(rng.random() < 0.5)
            return a if st["scripted"] else rng.uniform(0, 1, 5)

        return switch
    raise ValueError(f"unknown behaviour {kind!r}; expected scripted[:std], random, ou, still or switch")


def run_episode(env, policy: ScriptedTag, kinds: dict[str, str], seed: int, rng: np.random.Generator) -> dict:
    """One game: per agent `obs.<a>` (T+1, d), `act.<a>` (T, 5), `rew.<a>` (T,); `term` and `trunc` (T,)."""
    obs, _ = env.reset(seed=seed)
    acts = {a: behaviour(k, rng) for a, k in kinds.items()}
    names = [a for a, _, _ in AGENTS]
    O = {a: [obs[a]] for a in names}
    A, R = {a: [] for a in names}, {a: [] for a in names}
    term, trunc = [], []
    t = 0
    while env.agents:
        scripted = scripted_actions(policy, obs)
        action = {a: np.asarray(acts[a](scripted[a], t), np.float32) for a in names}
        obs, rew, te, tr, _ = env.step(action)
        t += 1
        for a in names:
            O[a].append(obs[a]), A[a].append(action[a]), R[a].append(rew[a])
        term.append(any(te.values())), trunc.append(any(tr.values()))
    ep = {}
    for a in names:
        ep[f"obs.{a}"] = np.asarray(O[a], np.float32)
        ep[f"act.{a}"] = np.asarray(A[a], np.float32)
        ep[f"rew.{a}"] = np.asarray(R[a], np.float32)
    ep["term"], ep["trunc"] = np.asarray(term, bool), np.asarray(trunc, bool)
    return ep


def collect(
    out_dir: str | Path,
    episodes: int,
    behaviours: tuple[str, ...],
    seed: int = 0,
    progress: bool = True,
    max_cycles: int | None = None,
) -> list[Path]:
    """`episodes` games into ``episode_XXXX.npz``, each agent's behaviour drawn from `behaviours` per game;
    resumable (a finished episode file is kept), each file written whole or not at all."""
    from importlib.metadata import version

    from tqdm.auto import tqdm

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    env = make_env(**({"max_cycles": max_cycles} if max_cycles else {}))
    policy = ScriptedTag()
    packages = {p: version(p) for p in ("mpe2", "pettingzoo", "numpy")}
    paths = []
    for i in tqdm(range(episodes), desc="collect simple_tag", disable=not progress, unit="game"):
        p = out / f"episode_{i:04d}.npz"
        paths.append(p)
        if p.exists():
            continue
        rng = np.random.default_rng([seed, i])
        kinds = {a: behaviours[int(rng.integers(len(behaviours)))] for a, _, _ in AGENTS}
        ep = run_episode(env, policy, kinds, seed * 100_003 + i, rng)
        meta = {"env_id": ENV_ID, "config": TAG, "behaviours": kinds, "seed": seed * 100_003 + i, "packages": packages}
        tmp = p.with_suffix(".tmp.npz")
        np.savez_compressed(tmp, meta=np.array(json.dumps(meta)), **ep)
        tmp.replace(p)
    env.close()
    return paths


def load(folder: str | Path) -> list[dict]:
    """Episodes of `collect` as joint arrays aligned as a bundle's contexts: `obs` (T+1, O) joint,
    `prev_act` (T+1, A) the joint action before each obs (zeros first), `reward` (T+1, agents) received on
    entering each obs (0 first), `cont` and `mask` as the trainer's sequences want them, plus the per-agent
    arrays as written."""
    eps = []
    names = [a for a, _, _ in AGENTS]
    for p in sorted(Path(folder).glob("episode_*.npz")):
        with np.load(p, allow_pickle=False) as z:
            ep = {k: z[k] for k in z.files}
        obs = np.concatenate([ep[f"obs.{a}"] for a in names], -1)
        act = np.concatenate([ep[f"act.{a}"] for a in names], -1)
        rew = np.stack([ep[f"rew.{a}"] for a in names], -1)
        ep["obs"] = obs
        ep["prev_act"] = np.concatenate([np.zeros((1, act.shape[1]), np.float32), act])
        ep["reward"] = np.concatenate([np.zeros((1, rew.shape[1]), np.float32), rew])
        ep["cont"] = np.concatenate([[1.0], 1.0 - ep["term"].astype(np.float32)]).astype(np.float32)
        ep["mask"] = np.concatenate([[0.0], np.ones(len(act), np.float32)]).astype(np.float32)
        ep["meta"] = json.loads(str(ep["meta"]))
        eps.append(ep)
    return eps


# -- the real env beside the dream (dreamgym.source's "mpe-scene" kind) ---------------------------------
class MpeSource:
    """The real simple_tag behind a multi-agent bundle, in the dream's terms: observations and actions by
    agent, and `frame()` drawn from the real positions by the bundle's own scene layout (the picture the
    dream's render is compared with). The multi-agent form of `dreamgym.source.SourceEnv`: `step` takes and
    gives dicts by agent; `terminated`/`truncated` are the game's."""

    def __init__(self, manifest, seed: int | None = None):
        from dreamgym.export.families import get_family
        from dreamgym.export.families.joint import SceneDrawer

        self.manifest, self.seed = manifest, seed
        self.agents = [a.name for a in manifest.agents]
        cfg = get_family(manifest.family).config_from_dict(manifest.model.config)
        self.drawer = SceneDrawer(cfg)
        self.env = self.make_env()
        self.obs: dict[str, np.ndarray] | None = None

    def make_env(self):
        return make_env(max_cycles=self.manifest.max_episode_steps or TAG["max_cycles"])

    def reset(self, seed: int | None = None) -> dict[str, np.ndarray]:
        seed = self.seed if seed is None else seed
        self.obs, _ = self.env.reset(seed=seed)
        self.seed = None
        return dict(self.obs)

    def step(self, actions: dict) -> tuple[dict, dict, bool, bool]:
        obs, rew, term, trunc, _ = self.env.step({a: np.asarray(actions[a], np.float32) for a in self.agents})
        if obs:
            self.obs = obs
        return dict(self.obs), {a: float(rew.get(a, 0.0)) for a in self.agents}, any(term.values()), any(trunc.values())

    def frame(self) -> np.ndarray:
        joint = np.concatenate([self.obs[a] for a in self.agents]).astype(np.float32)
        with torch.no_grad():
            return self.drawer(torch.from_numpy(joint)[None])[0].numpy()

    def snapshot(self) -> object:
        import copy

        return copy.deepcopy((self.env.unwrapped.world, self.env.unwrapped.steps, self.obs))

    def restore(self, snap: object) -> None:
        import copy

        world, steps, obs = copy.deepcopy(snap)
        self.env.unwrapped.world, self.env.unwrapped.steps, self.obs = world, steps, obs

    def close(self) -> None:
        self.env.close()

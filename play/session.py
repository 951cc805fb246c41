"""A multi-agent play session without a window: the dream, who drives each agent, history, multiverse,
the real env beside the dream, and recording. `play/multi.py` is the thin pygame view over it; tests
drive a session directly (no SDL).

Controllers: each agent is driven by a person (player 1, 2, ...) or by the bundle's policy (policy.onnx);
`hand_over(player)` gives a player's agent to its policy and back. People's actions come in as
`{agent: action}` from whatever reads the keys.
"""

from __future__ import annotations

import collections
import json
from pathlib import Path
from typing import Any

import numpy as np

from dreamgym.bundle import Bundle
from dreamgym.multi_agent import BatchedParallelDreamEnv
from dreamgym.parallel_env import ParallelDreamEnv
from dreamgym.source import open_source_env
from dreamgym.video import tile, tile_origins

FORK_NOISE = 0.3
"""std of the noise on the policy-driven agents' actions in the forks of a deterministic dream"""


class GameSession:
    """One game of a multi-agent dream under people's and policies' control.

    Args:
        bundle: a multi-agent `Bundle` (or folder).
        seed: the first reset's seed.
        players: {player number: agent} for the people at the keyboard (default: the manifest's agents'
            `keymap["player"]`, 1 and up); every other agent is driven by the bundle's policy.
        history: steps kept for rewind.
        multiverse: games shown side by side in the multiverse view (the main one and forks of it).
        env_options: more keyword arguments of the dream (uncertainty options, device, ...).
    """

    def __init__(
        self,
        bundle: str | Path | Bundle,
        seed: int = 0,
        players: dict[int, str] | None = None,
        history: int = 300,
        multiverse: int = 4,
        env_options: dict | None = None,
    ):
        self.bundle = bundle if isinstance(bundle, Bundle) else Bundle.load(bundle)
        b = self.bundle
        if not b.is_multi_agent:
            raise ValueError(f"{b.id} is a single-agent dream; `dreamgym play` opens it in the single-agent app")
        self.env_options = dict(env_options or {})
        self.env = ParallelDreamEnv(b, render_mode="rgb_array", **self.env_options)
        self.agents = list(self.env.possible_agents)
        if players is None:
            players = {
                int(a.keymap["player"]): a.name for a in b.manifest.agents if int(a.keymap.get("player", 0) or 0) > 0
            }
        unknown = [a for a in players.values() if a not in self.agents]
        if unknown:
            raise ValueError(f"players drive unknown agents {unknown}; the agents are {self.agents}")
        self.players = dict(sorted(players.items()))
        self.controller = {a: "policy" for a in self.agents}
        for p, a in self.players.items():
            self.controller[a] = f"player {p}"
        if not b.has_graph("policy") and any(c == "policy" for c in self.controller.values()):
            raise ValueError(f"{b.id} ships no policy.onnx, so every agent needs a player")
        self.seed = seed
        self.history: collections.deque = collections.deque(maxlen=int(history))
        self.n_multiverse = max(2, int(multiverse))
        self.multiverse: BatchedParallelDreamEnv | None = None
        self.real = None
        self.real_frame: np.ndarray | None = None
        self.log: list[dict[str, list[float]]] = []  # every step's actions, for save/replay
        self._first = True
        self.reset()

    # -- control ----------------------------------------------------------------------------------
    def hand_over(self, player: int) -> str:
        """Give player `player`'s agent to its policy, or take it back; returns who drives it now."""
        agent = self.players[player]
        if not self.bundle.has_graph("policy"):
            return self.controller[agent]
        self.controller[agent] = "policy" if self.controller[agent] != "policy" else f"player {player}"
        return self.controller[agent]

    def actions(self, people: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Every agent's action: people's for the agents players drive, the policy's for the rest."""
        policy = self.env.policy_actions() if "policy" in self.controller.values() else {}
        out = {}
        for a in self.agents:
            if self.controller[a] == "policy":
                out[a] = policy[a]
            else:
                out[a] = np.asarray(people.get(a, np.zeros(self.env.action_space(a).shape)), np.float32)
        return out

    # -- the game ---------------------------------------------------------------------------------
    def reset(self) -> None:
        """A fresh game from a real context (the real env's own first C steps when it runs beside)."""
        ctx = self._real_context() if self.real is not None else None
        seed = self.seed if self._first else None
        self._first = False
        self.obs, _ = self.env.reset(seed=seed, options={"context": ctx} if ctx else None)
        self.t = 0
        self.rewards = {a: 0.0 for a in self.agents}
        self.returns = {a: 0.0 for a in self.agents}
        self.real_returns = {a: 0.0 for a in self.agents}
        self.extra: dict[str, float] = {}
        self.history.clear()
        self.ended = ""
        if self.multiverse is not None:
            self._fork()

    def step(self, people: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """One step of the game (and of the multiverse and the real env, under the same actions); a game
        that ends starts again. Returns the actions taken."""
        acts = self.actions(people or {})
        self.history.append(self.snapshot())
        self.log.append({a: np.asarray(v, np.float64).tolist() for a, v in acts.items()})
        self.obs, r, term, trunc, info = self.env.step(acts)
        self.rewards = {a: float(r.get(a, 0.0)) for a in self.agents}
        for a in self.agents:
            self.returns[a] += self.rewards[a]
        first = next(iter(info.values()), {})
        self.extra = {k: float(v) for k, v in first.items() if np.ndim(v) == 0}
        self.t += 1
        if self.multiverse is not None:
            self._step_forks(acts)
        if self.real is not None:
            _, rr, *_ = self.real.step(acts)
            for a in self.agents:
                self.real_returns[a] += rr[a]
            self.real_frame = self.real.frame()
        if not self.env.agents:
            ended = "terminated" if any(term.values()) else "truncated"
            self.reset()
            self.ended = ended  # what the view says once; the next step clears it
        else:
            self.ended = ""
        return acts

    def snapshot(self) -> dict[str, Any]:
        snap = {
            "env": self.env.get_state(),
            "rng": self.env.games.np_random.bit_generator.state,
            "t": self.t,
            "returns": dict(self.returns),
            "rewards": dict(self.rewards),
            "log": len(self.log),
        }
        if self.multiverse is not None:
            snap["mv"] = self.multiverse.get_state()
            snap["mv_rng"] = self.multiverse.np_random.bit_generator.state
        if self.real is not None:
            snap["real"] = self.real.snapshot()
            snap["real_returns"] = dict(self.real_returns)
        return snap

    def restore(self, snap: dict[str, Any]) -> None:
        self.env.set_state(snap["env"])
        self.env.games.np_random.bit_generator.state = snap["rng"]
        self.obs = dict(self.env._obs)
        self.t, self.returns, self.rewards = snap["t"], dict(snap["returns"]), dict(snap["rewards"])
        del self.log[snap["log"] :]
        if self.multiverse is not None and "mv" in snap:
            self.multiverse.set_state(snap["mv"])
            self.multiverse.np_random.bit_generator.state = snap["mv_rng"]
        if self.real is not None and snap.get("real") is not None:
            self.real.restore(snap["real"])
            self.real_returns = dict(snap["real_returns"])
            self.real_frame = self.real.frame()

    def rewind(self) -> bool:
        """Back one step (exactly: model state, generator, counters); False when there is no history."""
        if not self.history:
            return False
        self.restore(self.history.pop())
        return True

    # -- views ------------------------------------------------------------------------------------
    def toggle_multiverse(self) -> bool:
        """Show forks of this game under the people's actions (differing by the dream's noise, or in a
        deterministic dream by what the policy-driven agents do; `_step_forks`); returns whether it is on."""
        if self.multiverse is None:
            self._fork()
            return True
        self.multiverse.close()
        self.multiverse = None
        return False

    def _fork(self) -> None:
        k = self.n_multiverse - 1
        if self.multiverse is None:
            self.multiverse = BatchedParallelDreamEnv(
                self.bundle, k, autoreset="next_step", render_mode="rgb_array", **self.env_options
            )
            self.multiverse.reset(seed=self.seed + 1)
        st = self.env.games.get_state()  # model state, observations and counters of the one game
        self.multiverse.set_state({n: np.repeat(v, k, 0) for n, v in st.items()})

    def _step_forks(self, acts: dict[str, np.ndarray]) -> None:
        """The forks take the people's actions. A dream with noise inputs makes them differ by its noise; a
        deterministic one would keep them identical, so there the agents no person drives play their policy
        on their own fork's observations with Gaussian noise of std `FORK_NOISE` (what if the prey had
        dodged the other way?)."""
        mv, k = self.multiverse, self.n_multiverse - 1
        out = {a: np.repeat(np.asarray(v, np.float32)[None], k, 0) for a, v in acts.items()}
        if not self.bundle.noise and self.bundle.has_graph("policy"):
            policy = mv.policy_actions()  # on each fork's own observations
            for a in self.agents:
                if self.controller[a] == "policy":
                    out[a] = (policy[a] + mv.np_random.normal(0.0, FORK_NOISE, policy[a].shape)).astype(np.float32)
        mv.step(out)

    def toggle_real(self) -> bool:
        """Run the real env beside the dream from the same real start under the same actions."""
        if self.real is None:
            self.real = open_source_env(self.bundle.manifest)
            if self.multiverse is not None:
                self.toggle_multiverse()
            self.reset()
            return True
        self.real.close()
        self.real, self.real_frame = None, None
        return False

    def _real_context(self) -> dict:
        C = self.bundle.context_length
        o = self.real.reset(seed=int(self.env.games.np_random.integers(2**31)))
        obs = {a: [o[a]] for a in self.agents}
        acts = {a: [np.zeros(self.env.action_space(a).shape, np.float32)] for a in self.agents}
        for _ in range(C - 1):
            a_t = {a: np.zeros(self.env.action_space(a).shape, np.float32) for a in self.agents}
            o, *_ = self.real.step(a_t)
            for a in self.agents:
                obs[a].append(o[a]), acts[a].append(a_t[a])
        self.real_frame = self.real.frame()
        return {
            "obs": {a: np.asarray(v) for a, v in obs.items()},
            "actions": {a: np.asarray(v) for a, v in acts.items()},
        }

    def view(self) -> np.ndarray:
        """The main panel's image: the dream, the multiverse tiles, or real | dream."""
        frame = self.env.render()
        if self.multiverse is not None:
            return tile(np.stack([frame, *self.multiverse.render()]))
        if self.real is not None and self.real_frame is not None:
            return tile(np.stack([self.real_frame, frame]), cols=2)
        return frame

    def view_panels(self) -> list[tuple[int, int, dict[str, np.ndarray] | None]]:
        """Each game in `view()`, in its order: the top-left pixel of its frame there and its observations by
        agent (None: not known), so a view can mark what a frame does not show."""
        H, W, _ = self.bundle.frame_shape
        cols = None  # as `view` tiles them
        if self.multiverse is not None:
            st = self.multiverse.get_state()
            k = self.n_multiverse - 1
            games = [dict(self.obs)] + [{a: st[f"obs/{a}"][i] for a in self.agents} for i in range(k)]
        elif self.real is not None and self.real_frame is not None:
            real = getattr(self.real, "obs", None)  # the real env's last observations by agent, if it keeps them
            games, cols = [dict(real) if isinstance(real, dict) else None, dict(self.obs)], 2
        else:
            games = [dict(self.obs)]
        return [(y, x, g) for (y, x), g in zip(tile_origins(len(games), H, W, cols), games)]

    # -- save and replay --------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """The session as JSON: the bundle's step-graph hash, the seed and every action taken."""
        path = Path(path)
        data = {
            "bundle": self.bundle.id,
            "step_sha256": self.bundle.manifest.graphs["step"].sha256,
            "seed": self.seed,
            "actions": self.log,
        }
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(path)
        return path

    @classmethod
    def replay(cls, bundle: str | Path | Bundle, path: str | Path, **kwargs) -> GameSession:
        """A new session that plays a saved one's actions again, bit for bit (the same bundle required)."""
        data = json.loads(Path(path).read_text())
        s = cls(bundle, seed=int(data["seed"]), **kwargs)
        if data["step_sha256"] != s.bundle.manifest.graphs["step"].sha256:
            raise ValueError(f"{path} was played on another version of {data['bundle']}; it cannot replay here")
        for acts in data["actions"]:
            for a in s.agents:
                s.controller[a] = "replay"
            s.step({a: np.asarray(v, np.float32) for a, v in acts.items()})
        return s

    def close(self) -> None:
        if self.multiverse is not None:
            self.multiverse.close()
        if self.real is not None:
            self.real.close()
        self.env.close()

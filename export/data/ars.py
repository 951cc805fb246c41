"""Augmented Random Search (Mania et al. 2018, V2-t) for a linear running policy.

The HalfCheetah data must contain running gaits as well as random flailing, so that a person or an
agent can make the dream cheetah run. A linear policy found by ARS runs after a few minutes on two
CPU cores, and it is a plain function of the observation, so it exports to a one-node `policy.onnx`
that the bundle carries for play, video and demos.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import gymnasium as gym
import numpy as np


@dataclasses.dataclass(frozen=True)
class ARSConfig:
    env_id: str = "HalfCheetah-v5"
    """the real environment to learn a policy for"""
    iterations: int = 120
    """number of ARS updates"""
    directions: int = 16
    """random directions sampled per update"""
    top: int = 8
    """best directions used in the update"""
    step_size: float = 0.02
    """learning rate alpha"""
    noise: float = 0.03
    """exploration noise nu"""
    horizon: int = 400
    """episode length during search (shorter than the real 1000 for speed)"""
    seed: int = 0
    """seed for the directions and the env resets"""


class LinearPolicy:
    """y = M (o - mean) / std; the statistics are updated during search (ARS V2). Box actions: a = clip(y, -1, 1)
    mapped onto the space's bounds (`low`, `high`; the identity for [-1, 1]); Discrete actions (`discrete`:
    M has one row per action): a = argmax y."""

    def __init__(self, obs_dim: int, act_dim: int, discrete: bool = False, low=None, high=None):
        self.M = np.zeros((act_dim, obs_dim))
        self.mean = np.zeros(obs_dim)
        self.var = np.ones(obs_dim)
        self.count = 1e-4
        self.discrete = bool(discrete)
        self.low = None if low is None else np.asarray(low, np.float64)
        self.high = None if high is None else np.asarray(high, np.float64)

    def act(self, obs: np.ndarray, M: np.ndarray | None = None) -> np.ndarray:
        M = self.M if M is None else M
        z = (obs - self.mean) / np.sqrt(self.var + 1e-8)
        y = M @ z
        if self.discrete:
            return np.argmax(y, -1)
        y = np.clip(y, -1.0, 1.0)
        if self.low is not None:
            y = self.low + (y + 1.0) * (self.high - self.low) / 2
        return y

    def update_stats(self, batch: np.ndarray) -> None:
        # parallel variance merge (Chan et al.)
        n = len(batch)
        bmean, bvar = batch.mean(0), batch.var(0)
        delta = bmean - self.mean
        tot = self.count + n
        self.mean = self.mean + delta * n / tot
        self.var = (self.var * self.count + bvar * n + delta**2 * self.count * n / tot) / tot
        self.count = tot

    def to_dict(self) -> dict:
        d = {"M": self.M.tolist(), "mean": self.mean.tolist(), "var": self.var.tolist()}
        if self.discrete:
            d["discrete"] = True
        if self.low is not None:
            d["low"], d["high"] = self.low.tolist(), self.high.tolist()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> LinearPolicy:
        M = np.asarray(d["M"])
        p = cls(M.shape[1], M.shape[0], d.get("discrete", False), d.get("low"), d.get("high"))
        p.M, p.mean, p.var = M, np.asarray(d["mean"]), np.asarray(d["var"])
        return p

    @classmethod
    def for_env(cls, env: gym.Env) -> LinearPolicy:
        """A zero policy for `env`'s spaces: a Box observation, and a Box (bounds other than [-1, 1] mapped) or
        Discrete action space."""
        obs, act = env.observation_space, env.action_space
        if not isinstance(obs, gym.spaces.Box) or len(obs.shape) != 1:
            raise ValueError(f"a linear policy needs a flat Box observation space, got {obs}")
        if isinstance(act, gym.spaces.Discrete):
            return cls(obs.shape[0], int(act.n), discrete=True)
        if not isinstance(act, gym.spaces.Box) or len(act.shape) != 1:
            raise ValueError(f"a linear policy needs a flat Box or a Discrete action space, got {act}")
        unit = np.all(act.low == -1) and np.all(act.high == 1)
        finite = np.isfinite(act.low).all() and np.isfinite(act.high).all()
        return cls(
            obs.shape[0],
            act.shape[0],
            low=None if unit or not finite else act.low,
            high=None if unit or not finite else act.high,
        )


def rollout(env: gym.Env, policy: LinearPolicy, M: np.ndarray, horizon: int, seed: int):
    obs, _ = env.reset(seed=seed)
    total, seen = 0.0, []
    for _ in range(horizon):
        seen.append(obs)
        a = policy.act(obs, M)
        obs, r, term, trunc, _ = env.step(int(a) if policy.discrete else a)
        total += r
        if term or trunc:
            break
    return total, np.asarray(seen)


def train_ars(
    cfg: ARSConfig,
    log=print,
    snapshots: dict | None = None,
    every: int = 0,
    env_kwargs: dict | None = None,
    stats: dict | None = None,
    progress: bool = False,
) -> LinearPolicy:
    """ARS V2-t. `snapshots`: a dict that receives the policy as it was before every `every`-th update
    ({iteration: LinearPolicy.to_dict()}): policies of rising skill for a data mix. `stats` receives the real
    env steps the search took ("env_steps"). `progress`: a tqdm bar over the iterations instead of the log."""
    from tqdm.auto import tqdm

    env = gym.make(cfg.env_id, **(env_kwargs or {}))
    rng = np.random.default_rng(cfg.seed)
    pol = LinearPolicy.for_env(env)
    t0, steps = time.time(), 0
    bar = tqdm(range(cfg.iterations), desc=f"ARS {cfg.env_id}", unit="it", disable=not progress)
    for it in bar:
        if snapshots is not None and every and it % every == 0:
            snapshots[it] = pol.to_dict()
        deltas = rng.standard_normal((cfg.directions, *pol.M.shape))
        plus, minus, obs_seen = [], [], []
        for _k, d in enumerate(deltas):
            s = int(rng.integers(1 << 30))
            rp, op = rollout(env, pol, pol.M + cfg.noise * d, cfg.horizon, s)
            rm, om = rollout(env, pol, pol.M - cfg.noise * d, cfg.horizon, s)
            plus.append(rp)
            minus.append(rm)
            obs_seen += [op, om]
            steps += len(op) + len(om)
        plus, minus = np.asarray(plus), np.asarray(minus)
        order = np.argsort(-np.maximum(plus, minus))[: cfg.top]
        sigma = np.concatenate([plus[order], minus[order]]).std() + 1e-8
        step = ((plus[order] - minus[order])[:, None, None] * deltas[order]).sum(0)
        pol.M += cfg.step_size / (cfg.top * sigma) * step
        pol.update_stats(np.concatenate(obs_seen))
        if stats is not None:
            stats["env_steps"] = steps
        if progress:
            bar.set_postfix(ret=f"{np.mean(np.r_[plus, minus]):.0f}", steps=steps)
        elif it % 10 == 0 or it == cfg.iterations - 1:
            log(
                f"ars iter {it:4d}  mean return {np.mean(np.r_[plus, minus]):9.1f}  "
                f"best {max(plus.max(), minus.max()):9.1f}  {time.time() - t0:6.0f}s"
            )
    return pol


def evaluate(
    env_id: str, pol: LinearPolicy, episodes: int = 3, seed: int = 100, env_kwargs: dict | None = None
) -> float:
    env = gym.make(env_id, **(env_kwargs or {}))
    return float(np.mean([rollout(env, pol, pol.M, 1000, seed + i)[0] for i in range(episodes)]))


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/ars_policy.json")
    ap.add_argument("--iterations", type=int, default=ARSConfig.iterations)
    a = ap.parse_args()
    policy = train_ars(ARSConfig(iterations=a.iterations))
    ret = evaluate(ARSConfig.env_id, policy)
    print(f"1000-step return of the linear policy: {ret:.1f}")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps({"return": ret, **policy.to_dict()}))

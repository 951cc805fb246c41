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
    """a = clip(M (o - mean) / std, -1, 1); the statistics are updated during search (ARS V2)."""

    def __init__(self, obs_dim: int, act_dim: int):
        self.M = np.zeros((act_dim, obs_dim))
        self.mean = np.zeros(obs_dim)
        self.var = np.ones(obs_dim)
        self.count = 1e-4

    def act(self, obs: np.ndarray, M: np.ndarray | None = None) -> np.ndarray:
        M = self.M if M is None else M
        z = (obs - self.mean) / np.sqrt(self.var + 1e-8)
        return np.clip(M @ z, -1.0, 1.0)

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
        return {"M": self.M.tolist(), "mean": self.mean.tolist(), "var": self.var.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> LinearPolicy:
        M = np.asarray(d["M"])
        p = cls(M.shape[1], M.shape[0])
        p.M, p.mean, p.var = M, np.asarray(d["mean"]), np.asarray(d["var"])
        return p


def rollout(env: gym.Env, policy: LinearPolicy, M: np.ndarray, horizon: int, seed: int):
    obs, _ = env.reset(seed=seed)
    total, seen = 0.0, []
    for _ in range(horizon):
        seen.append(obs)
        obs, r, term, trunc, _ = env.step(policy.act(obs, M))
        total += r
        if term or trunc:
            break
    return total, np.asarray(seen)


def train_ars(cfg: ARSConfig, log=print, snapshots: dict | None = None, every: int = 0) -> LinearPolicy:
    """ARS V2-t. `snapshots`: a dict that receives the policy as it was before every `every`-th update
    ({iteration: LinearPolicy.to_dict()}): policies of rising skill for a data mix."""
    env = gym.make(cfg.env_id)
    rng = np.random.default_rng(cfg.seed)
    pol = LinearPolicy(env.observation_space.shape[0], env.action_space.shape[0])
    t0 = time.time()
    for it in range(cfg.iterations):
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
        plus, minus = np.asarray(plus), np.asarray(minus)
        order = np.argsort(-np.maximum(plus, minus))[: cfg.top]
        sigma = np.concatenate([plus[order], minus[order]]).std() + 1e-8
        step = ((plus[order] - minus[order])[:, None, None] * deltas[order]).sum(0)
        pol.M += cfg.step_size / (cfg.top * sigma) * step
        pol.update_stats(np.concatenate(obs_seen))
        if it % 10 == 0 or it == cfg.iterations - 1:
            log(
                f"ars iter {it:4d}  mean return {np.mean(np.r_[plus, minus]):9.1f}  "
                f"best {max(plus.max(), minus.max()):9.1f}  {time.time() - t0:6.0f}s"
            )
    return pol


def evaluate(env_id: str, pol: LinearPolicy, episodes: int = 3, seed: int = 100) -> float:
    env = gym.make(env_id)
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

"""Where a dream-trained learner fools a HalfCheetah dream: what the real cheetah does under it, what the
dream makes of the same actions from the same first real steps, and the dream's uncertainty on both.

    python benchmarks/studies/learner_diag.py runs/sac40k/sac-seed0-dream.zip [--bundle Dream-HalfCheetah-RSSM-v0] [--episodes 4]
    python benchmarks/studies/learner_diag.py bundle    # the bundle's own policy (the ARS gait), for reference

Prints, per real episode, the real and the raw dream return (no penalty, no limit), the mean forward
speed and the mean |root angle| (observation 1: about π is on its back) in both; the uncertainty's
quantiles on the dream rollouts; and one-step predictions at the real states (a context of the last 10 real
steps, the real action, no sampling noise): the uncertainty there, the mean absolute observation error and
Spearman's ρ between the two.
"""

from __future__ import annotations

import argparse

import numpy as np

import dreamgym
from dreamgym.source import open_source_env

QS = (0.5, 0.9, 0.99, 1.0)


def _policy(spec: str, b):
    if spec == "bundle":
        from dreamgym.record import make_policy

        pol = make_policy("bundle", b, np.random.default_rng(0))
        d = b.observation_space.shape[0]
        return lambda o: np.asarray(pol(np.asarray(o, np.float32).reshape(-1, d))).reshape(np.shape(o)[:-1] + (-1,))
    from stable_baselines3 import SAC

    sac = SAC.load(spec, device="cpu")
    return lambda o: sac.predict(np.asarray(o, np.float32), deterministic=True)[0]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("policy", help="an SB3 SAC .zip, or 'bundle' for the bundle's own policy")
    ap.add_argument("--bundle", default="Dream-HalfCheetah-RSSM-v0")
    ap.add_argument("--episodes", type=int, default=4)
    a = ap.parse_args(argv)
    from scipy.stats import spearmanr

    path = dreamgym.resolve(a.bundle)
    b = dreamgym.Bundle.load(path)
    C, T, n = b.context_length, b.max_episode_steps or 1000, a.episodes
    act = _policy(a.policy, b)
    src = open_source_env(b.manifest)
    obs, acts, rews = [], [], []
    for i in range(n):
        o = src.reset(seed=20_000 + i)
        eo, ea, er = [o], [], []
        for _ in range(T):
            u = np.asarray(act(o), np.float32)
            o, r, term, trunc = src.step(u)
            eo.append(o), ea.append(u), er.append(r)
            if term or trunc:
                break
        obs.append(np.stack(eo)), acts.append(np.stack(ea)), rews.append(np.array(er))
    obs, acts, rews = np.stack(obs), np.stack(acts), np.stack(rews)

    def context(ep: int, t: int):  # the C real steps ending at observation t, the actions before them
        a_ = np.zeros((C, acts.shape[2]), np.float32)
        for k, s in enumerate(range(t - C + 1, t + 1)):
            if s >= 1:
                a_[k] = acts[ep, s - 1]
        return obs[ep, t - C + 1 : t + 1], a_

    def vec(cs, **kw):
        env = dreamgym.make_vec(
            path, len(cs), autoreset_mode="Disabled", max_episode_steps=T, device="cpu",
            uncertainty_penalty=0.0, uncertainty_limit=None, **kw,
        )  # fmt: skip
        o, _ = env.reset(
            seed=0, options={"context": {"obs": np.stack([c[0] for c in cs]), "actions": np.stack([c[1] for c in cs])}}
        )
        return env, o

    env, o = vec([context(e, C - 1) for e in range(n)])
    U, R, O = [], [], []
    for _ in range(T - C + 1):
        o, r, _, _, info = env.step(act(o))
        U.append(info["uncertainty"]), R.append(r), O.append(o)
    env.close()
    U, R, O = np.array(U).T, np.array(R).T, np.stack(O, 1)
    print(f"{a.policy} in {a.bundle}, {n} episodes from seeds 20000...")
    print(
        "  real return          ",
        rews.sum(1).round(0),
        " speed",
        obs[:, :, 8].mean(1).round(2),
        " |root angle|",
        np.abs(obs[:, :, 1]).mean(1).round(2),
    )
    print(
        "  dream return (raw)   ",
        R.sum(1).round(0),
        " speed",
        O[:, :, 8].mean(1).round(2),
        " |root angle|",
        np.abs(O[:, :, 1]).mean(1).round(2),
    )
    print(
        f"  dream rollouts: uncertainty quantiles {QS}: {np.quantile(U, QS).round(4)}; the bundle's limit {b.manifest.env_defaults.uncertainty_limit}"
    )
    pairs = [(e, t) for e in range(n) for t in range(C - 1, obs.shape[1] - 1, 7)]
    env, _ = vec([context(e, t) for e, t in pairs], noise_scale=0.0)
    o1, _, _, _, info = env.step(np.stack([acts[e, t] for e, t in pairs]))
    env.close()
    err = np.abs(o1 - np.stack([obs[e, t + 1] for e, t in pairs])).mean(1)
    u1 = info["uncertainty"]
    print(f"  one step at {len(pairs)} real states: uncertainty quantiles {np.quantile(u1, QS).round(4)}, "
          f"mean |obs error| {err.mean():.3f}, Spearman(uncertainty, error) {spearmanr(u1, err)[0]:.3f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Does a halt keep an off-the-shelf learner from fooling the HalfCheetah dream?

    python benchmarks/studies/halt_trial.py --limit 0.125 --cost 100 --steps 100000 --out runs/halt

MOReL ends a rollout in an absorbing HALT state with a large negative reward where its ensemble disagrees.
The bundle's own `uncertainty_limit` *truncates* instead, and Stable-Baselines3 bootstraps through a
truncation (the value of the state it stopped in counts), so a limit there costs the learner nothing. This
trial wraps the dream (its penalty as the bundle sets it, its limit off) so that an uncertainty above
`--limit` *terminates* the episode with reward minus `--cost`, trains SB3 SAC with its defaults only in
that dream, and measures it at `--evals` points: the real return (10 seeded episodes, as `dreamgym
transfer` runs them), the dream's return from the same first real steps (penalty on, no halt: what the dream
says the policy earns), and how often the halt fires in the dream. Results go to OUT/halt-trial.json.

`--above U0 --slope L` adds a second, softer conservatism: reward minus L * max(0, uncertainty - U0), a
penalty only on the uncertainty above the honest level U0 (the bundled ARS gait's maximum is about 0.083),
so that a gait the dream knows pays nothing. `--limit inf` turns the halt off. `--penalty λ` replaces the
bundle's own linear penalty (0: only the penalty above U0). With `--above`, the calibration pair's dream
return is the reward the learner trained on (the penalty above U0 included).

    python benchmarks/studies/halt_trial.py --bundle Dream-HalfCheetah-v0 --limit inf --penalty 0 --above 0.6 --slope 300
"""

from __future__ import annotations

import argparse
from pathlib import Path

import gymnasium as gym
import numpy as np

import dreamgym
from dreamgym.export.measure.transfer import measure_point, sac_trial
from dreamgym.source import open_source_env


class Halt(gym.Wrapper):
    """Terminate with reward minus `cost` when info["uncertainty"] exceeds `limit` (MOReL's HALT)."""

    def __init__(self, env: gym.Env, limit: float, cost: float):
        super().__init__(env)
        self.limit, self.cost = limit, cost

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        if not terminated and info["uncertainty"] > self.limit:
            terminated, truncated, reward = True, False, float(reward) - self.cost
            info["halted"] = True
        return obs, reward, terminated, truncated, info


def above_penalty(reward, uncertainty, level: float, slope: float):
    """Reward minus `slope` * max(0, uncertainty - `level`), one env's or a batch's."""
    return reward - slope * np.maximum(0.0, uncertainty - level)


class AbovePenalty(gym.Wrapper):
    """Reward minus `slope` * max(0, info["uncertainty"] - `level`): only uncertainty above `level` costs."""

    def __init__(self, env: gym.Env, level: float, slope: float):
        super().__init__(env)
        self.level, self.slope = level, slope

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        reward = float(above_penalty(float(reward), float(info["uncertainty"]), self.level, self.slope))
        return obs, reward, terminated, truncated, info


def halt_rate(path, act, limit: float, episodes: int, steps: int, seed: int, options: dict | None = None) -> dict:
    """Under `act` in the dream (bank starts, the trial's penalty, no limit): the share of episodes that would
    halt, and the mean step of the first halt (steps when none does)."""
    env = dreamgym.make_vec(
        path,
        episodes,
        autoreset_mode="Disabled",
        max_episode_steps=steps,
        device="cpu",
        **(options or {"uncertainty_limit": None}),
    )
    obs, _ = env.reset(seed=seed)
    first = np.full(episodes, steps)
    for t in range(steps):
        obs, _, term, trunc, info = env.step(act(obs))
        over = (info["uncertainty"] > limit) & (first == steps)
        first[over] = t
    env.close()
    return {"halted_share": float(np.mean(first < steps)), "first_halt_step_mean": float(first.mean())}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", default="Dream-HalfCheetah-RSSM-v0")
    ap.add_argument("--limit", type=float, default=0.125, help="halt above this uncertainty")
    ap.add_argument("--cost", type=float, default=100.0, help="reward lost at the halt")
    ap.add_argument("--above", type=float, default=0.0, help="penalise uncertainty above this level ...")
    ap.add_argument("--slope", type=float, default=0.0, help="... by this much per unit (0: no such penalty)")
    ap.add_argument("--penalty", default="bundle", help="the dream's linear λ ('bundle': the bundle's own)")
    ap.add_argument("--steps", type=int, default=100_000)
    ap.add_argument("--evals", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--episodes", type=int, default=10)
    ap.add_argument("--out", default="runs/halt")
    a = ap.parse_args(argv)
    if not a.limit > 0 or a.cost < 0 or a.above < 0 or a.slope < 0:
        ap.error(f"--limit must be > 0 (inf: no halt), --cost, --above and --slope >= 0; got {vars(a)}")
    path = dreamgym.resolve(a.bundle)
    b = dreamgym.Bundle.load(path)
    C, T = b.context_length, b.max_episode_steps or 1000
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    src = open_source_env(b.manifest)
    no_limit = {"uncertainty_limit": None}
    if a.penalty != "bundle":
        no_limit["uncertainty_penalty"] = float(a.penalty)

    def above(r, info):  # AbovePenalty on a batch, for the calibration pair
        return above_penalty(r, info["uncertainty"], a.above, a.slope)

    def make():
        env = Halt(dreamgym.make_env(path, device="cpu", **no_limit), a.limit, a.cost)
        return AbovePenalty(env, a.above, a.slope) if a.slope > 0 else env

    sac_trial(
        make,
        a.seed,
        a.steps,
        a.evals,
        lambda act: {
            **measure_point(
                src, path, act, a.episodes, T, C, a.seed, env_options=no_limit, shape=above if a.slope > 0 else None
            ),
            **halt_rate(path, act, a.limit, a.episodes, T, seed=30_000 + a.seed, options=no_limit),
        },
        out,
        "halt",
        {"bundle": b.id, "args": vars(a)},
    )
    src.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

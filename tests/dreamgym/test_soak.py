"""The soak, short: 20,000 env-steps of every shipped vector dream (4,000 of Pong, 2,000 of Breakout: their token
steps are 100-1000 times the work) with random actions and masked resets give no non-finite value; the
million-step figures are in benchmarks/README.md (benchmarks/soak.py)."""

import numpy as np
import pytest

import dreamgym
from dreamgym.soak import markdown_row, soak

SLOW = {"Dream-Pong-v0": 4_000, "Dream-Breakout-v0": 2_000}  # token dreams: 20,000 steps take minutes here


@pytest.mark.parametrize("dream", sorted(dreamgym.shipped_bundles()))
def test_twenty_thousand_steps_stay_finite(dream):
    steps = SLOW.get(dream, 20_000)
    r = soak(dream, steps=steps, num_envs=64 if dream in SLOW else 200, reset_every=10)
    assert r["steps"] >= steps * 0.99
    assert r["non_finite"] == {"obs": 0, "reward": 0, "info": 0}, r
    assert r["rss_mb_end"] > 0 and np.isfinite(r["steps_per_s"])
    assert "|" in markdown_row(r)
    if "obs_range" in r:
        assert all(x["dims"] > 0 for x in r["obs_range"].values())


def test_soak_counts_non_finite_values(tmp_path, monkeypatch):
    """A dream whose step gives NaN is caught: the count is not a constant."""
    from dreamgym import vector_env

    real_step = vector_env.DreamVectorEnv._step

    def nan_step(self, actions):
        obs, r, te, tr, info = real_step(self, actions)
        obs = obs.copy()
        obs[0, 0] = np.nan
        return obs, r, te, tr, info

    monkeypatch.setattr(vector_env.DreamVectorEnv, "_step", nan_step)
    r = soak("Dream-HalfCheetah-v0", steps=1000, num_envs=100)
    assert r["non_finite"]["obs"] == 10

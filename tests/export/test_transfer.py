"""`dreamgym transfer`: a tiny run completes, with the real env and Stable-Baselines3, end to end."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest

pytest.importorskip("stable_baselines3")

from dreamgym.export.measure.transfer import TransferArgs, real_returns, run, summarize, write  # noqa: E402
from dreamgym.manifest import MANIFEST, Manifest  # noqa: E402


def test_tiny_ppo_run_writes_curves_and_the_bundle(tmp_path, default_bundle):
    bundle = tmp_path / "bundle"
    shutil.copytree(default_bundle, bundle)
    a = TransferArgs(
        bundle=str(bundle),
        algo="ppo",
        steps=128,
        seeds=1,
        evals=2,
        episodes=2,
        episode_steps=30,
        n_envs=2,
        out=str(tmp_path / "out"),
    )
    res = run(a, progress=False)
    pts = res["runs"][0]["points"]
    assert [p["steps"] for p in pts] == [64, 128]
    for p in pts:
        for k in ("real_return", "dream_return", "real_trained_return"):
            assert np.isfinite(p[k]), k
        assert set(p["calibration"]) == {"real", "dream"}
    assert np.isfinite(res["random_real_return"])
    # the fixed policies are calibrated too: random actions and the bundle's own policy, from the same starts
    assert set(res["fixed_policies"]) == {"random policy", "bundled policy"}
    assert all(np.isfinite([c["real"], c["dream"]]).all() for c in res["fixed_policies"].values())
    s = res["summary"]
    assert s["calibrated_points"].endswith("of 4")  # two checkpoints and two fixed policies
    assert len(s["final_real_return"]) == 1 and len(s["gain_ratio"]) == 1
    assert s["largest_calibration_miss"]["miss"] >= 0
    saved = json.loads((tmp_path / "out" / "transfer-ppo.json").read_text())
    assert saved["summary"] == json.loads(json.dumps(s))
    assert (tmp_path / "out" / "transfer-ppo.png").stat().st_size > 0

    write(bundle, res, tmp_path / "out" / "transfer-ppo.png")
    m = Manifest.read(bundle / MANIFEST)
    assert m.metrics["transfer"]["ppo"]["summary"]["final_real_return"] == s["final_real_return"]
    assert "transfer-ppo.png" in m.files
    card = (bundle / "README.md").read_text()
    assert "## Transfer: trained in the dream" in card and "![transfer, ppo](transfer-ppo.png)" in card
    assert "- bundled policy: real" in card

    # a finished seed is kept and reused by a later run with the same settings and model (the card that
    # --write just changed is not the model); a marked figure shows that nothing trained again
    kept = tmp_path / "out" / "transfer-ppo-seed0.json"
    k = json.loads(kept.read_text())
    k["run"]["points"][-1]["real_return"] = 12345.0
    kept.write_text(json.dumps(k))
    again = run(a, progress=False)
    assert again["runs"][0]["points"][-1]["real_return"] == 12345.0
    assert again["summary"]["final_real_return"] == [12345.0]
    # a new id for the same model keeps it too: the id is a name
    m = Manifest.read(bundle / MANIFEST)
    m.replace(id="Dream-Renamed-v0").write(bundle / MANIFEST)
    assert run(a, progress=False)["runs"][0]["points"][-1]["real_return"] == 12345.0
    # other settings: the seed runs again, and its new curve replaces the kept one
    fewer = run(dataclasses.replace(a, evals=1), progress=False)
    assert [p["steps"] for p in fewer["runs"][0]["points"]] == [128]
    assert len(json.loads(kept.read_text())["run"]["points"]) == 1


class _Scripted:
    """A source env whose episodes are 5 steps of reward 1 each, for the return bookkeeping."""

    def __init__(self):
        self.t = 0

    def reset(self, seed=None):
        self.t = 0
        return np.zeros(2, np.float32)

    def step(self, action):
        self.t += 1
        return np.full(2, self.t, np.float32), 1.0, False, self.t >= 5


def test_real_returns_keeps_the_context_and_the_return_after_it():
    res = real_returns(_Scripted(), lambda o: np.ones(3, np.float32), episodes=2, steps=100, seed=0, context=3)
    assert res["returns"] == [5.0, 5.0] and res["lengths"] == [5, 5]
    assert res["returns_after_context"] == [3.0, 3.0]  # steps 3, 4, 5: the dream from o_2 runs these
    assert res["context"]["obs"].shape == (2, 3, 2) and res["context"]["actions"].shape == (2, 3, 3)
    np.testing.assert_array_equal(res["context"]["obs"][0, :, 0], [0, 1, 2])
    np.testing.assert_array_equal(res["context"]["actions"][0, 0], 0)  # nothing came before the first obs


def test_real_returns_with_a_one_step_context():
    """A memoryless dream (C = 1) starts from the first real observation alone, with no action before it."""
    res = real_returns(_Scripted(), lambda o: np.ones(3, np.float32), episodes=2, steps=100, seed=0, context=1)
    assert res["returns_after_context"] == [5.0, 5.0]
    assert res["context"]["obs"].shape == (2, 1, 2) and res["context"]["actions"].shape == (2, 1, 3)
    np.testing.assert_array_equal(res["context"]["actions"], 0)


def test_summary_reads_gains_over_random():
    res = {
        "random_real_return": -100.0,
        "runs": [
            {
                "seed": 0,
                "points": [
                    {
                        "steps": 10,
                        "real_return": 100.0,
                        "dream_return": 150.0,
                        "real_trained_return": 300.0,
                        "calibration": {"real": 1000.0, "dream": 1500.0},
                    }
                ],
            }
        ],
    }
    s = summarize(res)
    assert s["gain_ratio"] == [0.5]
    assert s["largest_calibration_miss"]["miss"] == 500.0 and not s["largest_calibration_miss"]["within"]
    assert s["calibrated_points"] == "0 of 1"


@pytest.fixture
def halt_trial(monkeypatch):
    """benchmarks/studies/halt_trial.py, imported as a module (benchmarks/ is not a package)."""
    import importlib
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).parents[2] / "benchmarks" / "studies"))
    return importlib.import_module("halt_trial")


def test_the_halt_trial_terminates_with_its_cost_above_the_limit(default_bundle, halt_trial):
    """benchmarks/studies/halt_trial.py's wrapper: above the limit the episode *terminates* (no bootstrap) and the
    reward drops by the cost; below it the dream's own step is untouched."""
    import dreamgym

    steps = {}
    for limit in (0.0, np.inf):
        env = halt_trial.Halt(dreamgym.make_env(default_bundle, device="cpu", uncertainty_limit=None), limit, 100.0)
        env.reset(seed=3)
        steps[limit] = env.step(np.zeros(env.action_space.shape, np.float32))
        env.close()
    (_, r0, te0, tr0, info0), (_, r1, te1, tr1, info1) = steps[0.0], steps[np.inf]
    assert info0["uncertainty"] > 0 and te0 and not tr0 and info0["halted"]
    assert not te1 and not tr1 and "halted" not in info1
    assert r0 == pytest.approx(r1 - 100.0)  # the same seed, the same step: only the cost differs


def test_the_halt_trials_above_level_penalty_costs_only_the_excess(default_bundle, halt_trial):
    """benchmarks/studies/halt_trial.py's softer option: reward minus slope * (uncertainty - level), only above
    level."""
    import dreamgym

    steps = {}
    for level in (0.0, np.inf):
        env = halt_trial.AbovePenalty(dreamgym.make_env(default_bundle, device="cpu"), level, 10.0)
        env.reset(seed=3)
        steps[level] = env.step(np.zeros(env.action_space.shape, np.float32))
        env.close()
    (_, r0, *_, info0), (_, r1, *_, info1) = steps[0.0], steps[np.inf]
    assert info0["uncertainty"] == info1["uncertainty"] > 0
    assert r0 == pytest.approx(r1 - 10.0 * info0["uncertainty"])  # above level 0 all of it costs; above inf none

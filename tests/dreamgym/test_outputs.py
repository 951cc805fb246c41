"""Optional per-step outputs of the step graph, and the uncertainty options that act on one.

The bundle under test is the shipped HalfCheetah RSSM with an `uncertainty` output grafted onto its step
graph with onnx (the mean |next_z|, a stand-in whose value the test can recompute from the state): the
runtime must surface it and act on it without knowing what it means.
"""

from __future__ import annotations

import json
import shutil

import gymnasium as gym
import numpy as np
import onnx
import pytest
from gymnasium.utils.env_checker import check_env
from onnx import TensorProto, helper

import dreamgym
from dreamgym.bundle import sha256_file
from dreamgym.manifest import MANIFEST, EnvDefaults, Manifest, OutputSpec
from dreamgym.testing import check_bundle


def graft_uncertainty(src, dst, penalty: float = 0.0, limit: float | None = None):
    shutil.copytree(src, dst)
    model = onnx.load(str(dst / "step.onnx"))
    g = model.graph
    # a bundle that gives an uncertainty of its own (the shipped RSSM's ensemble of heads) loses it: this test's
    # output is one whose value it can compute
    for node in g.node:
        node.output[:] = ["_own_uncertainty" if o == "uncertainty" else o for o in node.output]
    kept = [o for o in g.output if o.name != "uncertainty"]
    del g.output[:]
    g.output.extend(kept)
    g.node.extend(
        [
            helper.make_node("Abs", ["next_z"], ["_abs_next_z"]),
            helper.make_node("ReduceMean", ["_abs_next_z"], ["uncertainty"], axes=[1], keepdims=0),
        ]
    )
    g.output.append(helper.make_tensor_value_info("uncertainty", TensorProto.FLOAT, ["batch"]))
    onnx.save(model, str(dst / "step.onnx"))
    m = Manifest.read(dst / MANIFEST)
    step = m.graphs["step"]
    outs = tuple(o for o in step.outputs if o != "uncertainty")
    step = type(step)(step.file, sha256_file(dst / "step.onnx"), step.inputs, (*outs, "uncertainty"), step.clips_action)
    m = m.replace(
        graphs={**m.graphs, "step": step},
        outputs=(OutputSpec("uncertainty", description="mean |z|"),),
        env_defaults=EnvDefaults(penalty, limit),
    )
    m.write(dst / MANIFEST)
    return dst


@pytest.fixture
def rssm_bundle():
    return dreamgym.shipped_bundles()["Dream-HalfCheetah-RSSM-v0"]  # a stochastic latent z to read the stand-in from


@pytest.fixture
def uncertain(tmp_path, rssm_bundle):
    return graft_uncertainty(rssm_bundle, tmp_path / "uncertain")


def test_written_as_format_3_and_checked(uncertain):
    raw = json.loads((uncertain / MANIFEST).read_text())
    assert raw["format_version"] == 3 and raw["outputs"][0]["name"] == "uncertainty"
    check_bundle(uncertain)


def test_info_carries_the_output_and_the_model_reward(uncertain):
    env = dreamgym.make_vec(uncertain, num_envs=4, device="cpu")
    env.reset(seed=0)
    env.action_space.seed(0)
    for _ in range(5):
        obs, r, term, trunc, info = env.step(env.action_space.sample())
        z = env.engine.get_state()["z"]
        np.testing.assert_allclose(info["uncertainty"], np.abs(z).mean(1), rtol=1e-6)
        assert info["_uncertainty"].all()
        np.testing.assert_array_equal(r, info["model_reward"])  # no penalty by this bundle's default


def test_penalty_and_limit(uncertain):
    raw = dreamgym.make_vec(uncertain, num_envs=8, device="cpu", uncertainty_penalty=0, uncertainty_limit=None)
    pen = dreamgym.make_vec(
        uncertain, num_envs=8, device="cpu", uncertainty_penalty=2.5, uncertainty_limit=0.7, max_episode_steps=10**6
    )
    raw.reset(seed=1), pen.reset(seed=1)
    act = np.zeros((8, 6), np.float32)
    cut = 0
    for _ in range(20):
        _, r0, _, _, i0 = raw.step(act)
        _, r1, term, trunc, i1 = pen.step(act)
        np.testing.assert_array_equal(i0["uncertainty"], i1["uncertainty"])  # the same dream underneath
        stepped = i1["_uncertainty"]
        np.testing.assert_allclose(r1[stepped], (i1["model_reward"] - 2.5 * i1["uncertainty"])[stepped], rtol=1e-6)
        np.testing.assert_array_equal(trunc[stepped], ((i1["uncertainty"] > 0.7) & ~term)[stepped])
        cut += int(trunc.sum())
        if trunc.any():
            break
    assert cut > 0, "the limit never truncated: pick a lower limit for this test"


def test_bundle_defaults_apply_unless_overridden(tmp_path, rssm_bundle):
    path = graft_uncertainty(rssm_bundle, tmp_path / "b", penalty=1.5, limit=None)
    env = gym.make(dreamgym.register_bundle(path, "Dream-UncertainTest-v0"))
    assert env.unwrapped.venv.uncertainty_penalty == 1.5
    env.reset(seed=0)
    _, r, _, _, info = env.step(np.zeros(6, np.float32))
    assert isinstance(info["uncertainty"], float)
    assert r == pytest.approx(info["model_reward"] - 1.5 * info["uncertainty"])
    raw = gym.make("Dream-UncertainTest-v0", uncertainty_penalty=0)
    raw.reset(seed=0)
    _, r0, *_ = raw.step(np.zeros(6, np.float32))
    assert r0 == info["model_reward"]
    check_env(gym.make("Dream-UncertainTest-v0").unwrapped)


def test_single_env_limit_truncates(uncertain):
    env = dreamgym.make_env(uncertain, device="cpu", uncertainty_limit=0.0)
    env.reset(seed=0)
    *_, trunc, info = env.step(np.zeros(6, np.float32))
    assert trunc == (info["uncertainty"] > 0.0)


def test_options_need_an_uncertainty():
    plain = dreamgym.shipped_bundles()["Dream-HalfCheetah-TSSM-v0"]  # declares no outputs
    with pytest.raises(ValueError, match="gives no uncertainty"):
        dreamgym.make_vec(plain, num_envs=2, uncertainty_penalty=1.0)
    with pytest.raises(ValueError, match="gives no uncertainty"):
        dreamgym.make_env(plain, uncertainty_limit=3.0)
    env = dreamgym.make_vec(plain, num_envs=2, uncertainty_penalty=0, uncertainty_limit=None)
    env.reset(seed=0)
    assert env.step(np.zeros((2, 6), np.float32))[4] == {}  # nothing declared, nothing added


@pytest.mark.parametrize("penalty, limit", [(-1.0, None), (float("nan"), None), ("lots", None), (0.0, float("nan"))])
def test_bad_option_values(uncertain, penalty, limit):
    with pytest.raises(ValueError, match="uncertainty"):
        dreamgym.make_vec(uncertain, num_envs=2, uncertainty_penalty=penalty, uncertainty_limit=limit)


def test_record_and_play_take_the_options(tmp_path, uncertain):
    pytest.importorskip("imageio")
    from dreamgym.record import record

    out = record(
        uncertain,
        tmp_path / "u.gif",
        steps=4,
        num_envs=2,
        scale=1,
        progress=False,
        env_options={"uncertainty_penalty": 1.0, "uncertainty_limit": None},
    )
    assert out.stat().st_size > 0
    pytest.importorskip("pygame")
    from dreamgym.play.app import PlayApp

    app = PlayApp(uncertain, env_options={"uncertainty_penalty": 0.5, "uncertainty_limit": 10.0})
    app.reset()
    app.advance()
    assert app.env.uncertainty_penalty == 0.5 and "uncertainty" in app.extra and "model_reward" in app.extra
    app.frame()  # the HUD draws the uncertainty


def _with_horizon(src, dst, horizon):
    shutil.copytree(src, dst)
    m = Manifest.read(dst / MANIFEST)
    d = m.env_defaults
    m.replace(env_defaults=EnvDefaults(d.uncertainty_penalty, d.uncertainty_limit, horizon)).write(dst / MANIFEST)
    return dst


def test_training_horizon_is_the_default_and_whole_episodes_stay_at_hand(tmp_path, default_bundle):
    path = _with_horizon(default_bundle, tmp_path / "short", 3)
    b = dreamgym.Bundle.load(path)
    assert b.manifest.env_defaults.max_episode_steps == 3 and b.max_episode_steps == 1000
    env = dreamgym.make_vec(path, num_envs=2, device="cpu")
    env.reset(seed=0)
    truncs = [env.step(np.zeros((2, 6), np.float32))[3] for _ in range(3)]
    assert not truncs[0].any() and not truncs[1].any() and truncs[2].all()
    single = gym.make(dreamgym.register_bundle(path, "Dream-HorizonTest-v0"))
    single.reset(seed=0)
    assert [single.step(np.zeros(6, np.float32))[3] for _ in range(3)] == [False, False, True]
    whole = dreamgym.make_vec(path, num_envs=2, device="cpu", max_episode_steps=b.max_episode_steps)
    assert whole.max_episode_steps == 1000


def test_record_dreams_whole_episodes(tmp_path, default_bundle, monkeypatch):
    pytest.importorskip("imageio")
    from dreamgym import record as rec

    path = _with_horizon(default_bundle, tmp_path / "short", 2)
    seen = []
    real_init = rec.DreamVectorEnv.__init__

    def spy(self, *a, **k):
        real_init(self, *a, **k)
        seen.append(self.max_episode_steps)

    monkeypatch.setattr(rec.DreamVectorEnv, "__init__", spy)
    rec.record(path, tmp_path / "r.gif", steps=3, num_envs=1, scale=1, progress=False)
    assert seen == [1000]


def test_bad_training_horizon_is_refused(tmp_path, default_bundle):
    path = tmp_path / "bad"
    shutil.copytree(default_bundle, path)
    raw = json.loads((path / MANIFEST).read_text())
    raw["env_defaults"]["max_episode_steps"] = 0
    (path / MANIFEST).write_text(json.dumps(raw))
    with pytest.raises(dreamgym.BundleError, match="max_episode_steps must be positive"):
        dreamgym.Bundle.load(path, verify_hashes=False)

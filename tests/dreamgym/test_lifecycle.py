"""Every env says what is wrong when it is used out of order: before reset, after close, a first reset that
leaves envs without a state, a misspelt option. close() twice is a no-op (documented). A bundle that fails
to load raises its `BundleError` and nothing else: the half-built env is collected without a word."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import dreamgym

ID = "Dream-HalfCheetah-v0"
TAG = "Dream-SimpleTag-v0"


def single():
    return dreamgym.make_env(ID, render_mode="rgb_array")


def vector():
    return dreamgym.make_vec(ID, 3, render_mode="rgb_array")


def act(env):
    return env.action_space.sample()


@pytest.mark.parametrize("make", [single, vector], ids=["DreamEnv", "DreamVectorEnv"])
def test_step_and_render_before_reset_are_refused(make):
    env = make()
    with pytest.raises(gym.error.ResetNeeded, match=r"reset\(\) before step\(\)"):
        env.step(act(env))
    with pytest.raises(gym.error.ResetNeeded, match=r"reset\(\) before render\(\)"):
        env.render()
    env.reset(seed=0)
    env.step(act(env))
    assert env.render() is not None
    env.close()


@pytest.mark.parametrize("make", [single, vector], ids=["DreamEnv", "DreamVectorEnv"])
def test_use_after_close_is_refused_and_close_twice_is_a_no_op(make):
    env = make()
    env.reset(seed=0)
    env.close()
    env.close()
    for call, name in [(lambda: env.step(act(env)), "step"), (env.reset, "reset"), (env.render, "render")]:
        with pytest.raises(gym.error.ClosedEnvironmentError, match=rf"{name}\(\) after close\(\)"):
            call()


def test_set_state_counts_as_a_reset():
    a, b = (dreamgym.make_vec(ID, 3, noise_scale=0.0) for _ in range(2))  # no noise: the state decides
    a.reset(seed=1)
    b.set_state(a.get_state())
    acts = act(a)
    np.testing.assert_array_equal(a.step(acts)[0], b.step(acts)[0])


def test_first_reset_must_give_every_env_a_state_and_options_are_spelt_right():
    env = vector()
    with pytest.raises(ValueError, match="first reset must reset every env"):
        env.reset(options={"reset_mask": np.array([True, False, True])})
    env.reset(seed=0, options={"reset_mask": np.ones(3, bool)})
    env.reset(options={"reset_mask": np.array([True, False, False])})  # later: any rows
    with pytest.raises(ValueError, match=r"unknown reset options \['contxt'\]"):
        env.reset(options={"contxt": None})
    with pytest.raises(ValueError, match="unknown reset options"):
        single().reset(options={"reset_mask_": None})


def test_multi_agent_envs_in_order():
    games = dreamgym.make_batched(TAG, 2, render_mode="rgb_array")
    acts = {a: np.stack([s.sample() for _ in range(2)]) for a, s in games.action_spaces.items()}
    with pytest.raises(gym.error.ResetNeeded, match="before step"):
        games.step(acts)
    with pytest.raises(gym.error.ResetNeeded, match="before render"):
        games.render()
    with pytest.raises(ValueError, match="first reset must reset every game"):
        games.reset(options={"reset_mask": np.array([True, False])})
    games.reset(seed=0)
    games.step(acts)
    games.close()
    games.close()
    with pytest.raises(gym.error.ClosedEnvironmentError):
        games.step(acts)
    with pytest.raises(gym.error.ClosedEnvironmentError):
        games.reset()

    par = dreamgym.make_parallel(TAG)
    with pytest.raises(gym.error.ResetNeeded):
        par.step({a: par.action_space(a).sample() for a in par.possible_agents})
    par.reset(seed=0)
    par.close()
    par.close()
    with pytest.raises(gym.error.ClosedEnvironmentError):
        par.reset()


# -- an env whose bundle fails to load ------------------------------------------------------------------
def _damage(src: Path, dst: Path, how: str) -> Path:
    """A copy of bundle `src` at `dst`, damaged `how`."""
    shutil.copytree(src, dst)
    if how == "graph changed":  # refused by its hash, before any engine is made
        with open(dst / "step.onnx", "ab") as f:
            f.write(b"x")
    elif how == "manifest not JSON":
        (dst / "dreamgym.json").write_text("{")
    elif how == "graph not ONNX":  # its hash matches: the bundle loads, onnxruntime then refuses the graph
        from dreamgym.bundle import sha256_file

        (dst / "step.onnx").write_bytes(b"not an onnx model")
        m = json.loads((dst / "dreamgym.json").read_text())
        m["graphs"]["step"]["sha256"] = sha256_file(dst / "step.onnx")
        (dst / "dreamgym.json").write_text(json.dumps(m))
    return dst


HALF_BUILT = """
import gc, json, sys
import dreamgym
single, multi = json.loads(sys.argv[1])
makers = [(p, "make_vec", lambda p: dreamgym.make_vec(p, 2)) for p in single]
makers += [(p, "make_env", dreamgym.make_env) for p in single]
makers += [(p, "make_batched", lambda p: dreamgym.make_batched(p, 2)) for p in multi]
makers += [(p, "make_agent_env", lambda p: dreamgym.make_agent_env(p, "agent_0")) for p in multi]
makers += [(p, "make_parallel", dreamgym.make_parallel) for p in multi]
for path, name, make in makers:
    try:
        make(path)
    except dreamgym.BundleError:
        print("refused", name, path)
    else:
        print("opened", name, path)
    gc.collect()
print("done")
"""

DAMAGES = ("graph changed", "manifest not JSON", "graph not ONNX")


def test_a_bundle_that_fails_to_load_leaves_nothing_to_complain_at_collection(tmp_path, default_bundle):
    """Each way of opening a dream, on bundles damaged three ways: a clean `BundleError`, and neither the
    garbage collector nor the interpreter's exit prints "Exception ignored" (Gymnasium's `VectorEnv.__del__`
    closes the half-built env, which has no engine)."""
    single = [_damage(default_bundle, tmp_path / f"single {i}", how) for i, how in enumerate(DAMAGES)]
    multi = [_damage(dreamgym.shipped_bundles()[TAG], tmp_path / f"multi {i}", how) for i, how in enumerate(DAMAGES)]
    r = subprocess.run(
        [sys.executable, "-c", HALF_BUILT, json.dumps([list(map(str, single)), list(map(str, multi))])],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[-1] == "done" and len(lines) == 1 + 5 * len(DAMAGES), r.stdout
    assert all(line.startswith("refused") for line in lines[:-1]), r.stdout
    assert "Exception ignored" not in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_close_on_a_half_built_env_is_a_no_op():
    """close() on an env whose __init__ raised before its engine (or inner env) existed releases nothing and
    raises nothing."""
    from dreamgym.multi_agent import AgentDreamEnv, BatchedParallelDreamEnv
    from dreamgym.parallel_env import ParallelDreamEnv

    for cls in (dreamgym.DreamVectorEnv, dreamgym.DreamEnv, BatchedParallelDreamEnv, AgentDreamEnv, ParallelDreamEnv):
        env = cls.__new__(cls)
        env.close()
        env.close()

"""The runtime: Gymnasium semantics of the single and the vector dream env."""

import subprocess
import sys
import tempfile

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode

import dreamgym
from dreamgym import ActionError, DreamVectorEnv

# subprocesses run outside the source tree, whose dreamgym/ folder would shadow the installed package
OUTSIDE = tempfile.gettempdir()

ID = "Dream-HalfCheetah-v0"


def _actions(space, n: int, rng: np.random.Generator) -> np.ndarray:
    """n actions of a bundle's single action space, the same for every seed of the env."""
    if isinstance(space, gym.spaces.Discrete):
        return rng.integers(space.n, size=n)
    return rng.uniform(-1, 1, (n, *space.shape))


def test_episode_runs_its_full_length(bundle_id):
    """A whole episode: for the TSSM the KV-cache window slides far past W, and a RetNet's state stays
    finite, without breaking. An env the model never terminated is truncated at the last step."""
    env = DreamVectorEnv(dreamgym.resolve(bundle_id), 2, autoreset_mode="Disabled")
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    ended = np.zeros(2, bool)
    for t in range(env.max_episode_steps):  # noqa: B007 - t is read after the loop
        obs, r, term, trunc, _ = env.step(_actions(env.single_action_space, 2, rng))
        assert np.isfinite(obs).all() and np.isfinite(r).all()
        ended |= term
        if ended.all():
            break
    assert t == env.max_episode_steps - 1 or ended.all()
    assert trunc[~ended].all()


def test_check_env_on_every_registered_id():
    """Every registered dream passes check_env, except the multi-agent ones: they are registered so that
    `gym.make` on them says to open them with `dreamgym.make_parallel` (tests/dreamgym/test_multi_agent.py)."""
    multi = set(dreamgym.shipped_bundles(multi_agent=True))
    ids = sorted(i for i in gym.registry if i.startswith("Dream-"))
    assert ID in ids
    for i in ids:
        if i in multi:
            with pytest.raises(ValueError, match="make_parallel"):
                gym.make(i)
            continue
        env = gym.make(i, render_mode="rgb_array")
        check_env(env.unwrapped, skip_render_check=False)
        env.close()


@pytest.mark.parametrize("mode", ["state", "pixels", "latent"])
def test_obs_modes(mode):
    env = gym.make(ID, obs_mode=mode)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    obs, r, term, trunc, _ = env.step(env.action_space.sample())
    assert env.observation_space.contains(obs) and isinstance(r, float)


def test_spaces_match_halfcheetah():
    real = gym.make("HalfCheetah-v5")
    env = gym.make(ID)
    assert env.observation_space == real.observation_space
    assert env.action_space == real.action_space


def test_render_returns_frame():
    env = gym.make(ID, render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.shape == (64, 64, 3)
    assert frame.std() > 5  # a picture, not a flat colour


def test_make_vec_native_and_render():
    venv = gym.make_vec(ID, num_envs=8, render_mode="rgb_array")
    assert isinstance(venv.unwrapped, DreamVectorEnv)
    obs, _ = venv.reset(seed=1)
    assert obs.shape == (8, 17)
    obs, r, term, trunc, _ = venv.step(venv.action_space.sample())
    assert r.shape == term.shape == trunc.shape == (8,)
    frames = venv.render()
    assert isinstance(frames, tuple) and len(frames) == 8 and frames[0].shape == (64, 64, 3)


def test_make_env_from_folder(default_bundle):
    env = dreamgym.make_env(default_bundle)
    env.reset(seed=0)
    assert env.bundle.id == ID


def test_truncation_at_horizon_and_next_step_autoreset():
    env = DreamVectorEnv(dreamgym.resolve(ID), 3, max_episode_steps=5)
    env.reset(seed=0)
    a = np.zeros((3, 6), np.float32)
    for _ in range(4):
        _, _, term, trunc, _ = env.step(a)
        assert not trunc.any()
    obs5, _, _, trunc, _ = env.step(a)
    assert trunc.all()
    obs6, r, term, trunc, _ = env.step(a)  # NEXT_STEP: this step is the reset
    assert (r == 0).all() and not term.any() and not trunc.any()
    assert (env.elapsed_steps == 0).all()
    # the obs after reset is a real context's last observation
    ctx_last = env.bundle.contexts["obs"][:, -1]
    assert all(np.any(np.all(np.isclose(ctx_last, o), axis=1)) for o in obs6)


def test_same_step_autoreset_gives_final_obs():
    env = DreamVectorEnv(dreamgym.resolve(ID), 2, max_episode_steps=3, autoreset_mode=AutoresetMode.SAME_STEP)
    env.reset(seed=0)
    for _ in range(2):
        _, _, _, _, info = env.step(np.zeros((2, 6)))
        assert "final_obs" not in info
    obs, r, term, trunc, info = env.step(np.zeros((2, 6)))
    assert trunc.all() and info["_final_obs"].all()
    assert info["final_obs"][0].shape == (17,)
    assert not np.allclose(info["final_obs"][0], obs[0])  # obs is already the new episode's
    assert (env.elapsed_steps == 0).all()


def test_disabled_autoreset_with_reset_mask():
    env = DreamVectorEnv(dreamgym.resolve(ID), 4, max_episode_steps=2, autoreset_mode=AutoresetMode.DISABLED)
    env.reset(seed=0)
    env.step(np.zeros((4, 6)))
    before = env.get_state()
    mask = np.array([True, False, True, False])
    obs, _ = env.reset(options={"reset_mask": mask})
    after = env.get_state()
    assert (env.elapsed_steps == np.array([0, 1, 0, 1])).all()
    for k in [k for k in before if k.startswith("state/")]:
        np.testing.assert_array_equal(before[k][~mask], after[k][~mask])  # untouched rows
        assert not np.allclose(before[k][mask], after[k][mask])
    with pytest.raises(ValueError, match="reset_mask must be a bool array"):
        env.reset(options={"reset_mask": [1, 0, 1, 0]})


@pytest.mark.parametrize("mode", list(AutoresetMode))
def test_autoreset_mode_is_declared(mode):
    env = DreamVectorEnv(dreamgym.resolve(ID), 2, autoreset_mode=mode)
    assert env.metadata["autoreset_mode"] == mode


def _rollout(seed, n=4, steps=30, id=ID):
    env = DreamVectorEnv(dreamgym.resolve(id), n)
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(123)  # same actions for every seed
    out = [obs]
    for _ in range(steps):
        obs, r, *_ = env.step(_actions(env.single_action_space, n, rng))
        out.append(obs)
    return np.stack(out)


def test_determinism(bundle_id):
    a, b, c = _rollout(7, id=bundle_id), _rollout(7, id=bundle_id), _rollout(8, id=bundle_id)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_single_env_determinism():
    def run(seed):
        env = gym.make(ID)
        obs, _ = env.reset(seed=seed)
        traj = [obs]
        for t in range(20):
            traj.append(env.step(np.full(6, np.sin(t), np.float32))[0])
        return np.stack(traj)

    np.testing.assert_array_equal(run(3), run(3))
    assert not np.allclose(run(3), run(4))


def test_single_env_path_equals_a_vector_of_one():
    """gym.make's env takes the one-call path (the compiled run method, scalar outputs); a vector env of one
    in DISABLED autoreset mode takes the general one: the same seed gives the same numbers."""
    single = gym.make(ID)
    vec = DreamVectorEnv(dreamgym.resolve(ID), 1, autoreset_mode=AutoresetMode.DISABLED)
    o1, _ = single.reset(seed=5)
    o2, _ = vec.reset(seed=5)
    np.testing.assert_array_equal(o1, o2[0])
    for t in range(30):
        a = np.full(6, np.cos(t), np.float32)
        s_obs, s_r, s_term, s_trunc, _ = single.step(a)
        v_obs, v_r, v_term, v_trunc, _ = vec.step(a[None])
        np.testing.assert_array_equal(s_obs, v_obs[0])
        assert s_r == v_r[0] and s_term == v_term[0] and s_trunc == v_trunc[0]
        assert type(s_r) is float and type(s_term) is bool


def test_noise_scale_zero_is_deterministic_given_context():
    env = DreamVectorEnv(dreamgym.resolve(ID), 2, noise_scale=0.0, max_episode_steps=20)  # no autoreset in 10 steps
    b = env.bundle
    ctx = {"obs": np.repeat(b.contexts["obs"][:1], 2, 0), "actions": np.repeat(b.contexts["actions"][:1], 2, 0)}
    env.reset(seed=0, options={"context": ctx})
    for _ in range(10):
        obs, *_ = env.step(np.ones((2, 6)) * 0.3)
    np.testing.assert_array_equal(obs[0], obs[1])


def test_reset_from_own_history():
    env = gym.make("Dream-HalfCheetah-RSSM-v0")  # a context of C=10 steps (the default dream starts from one)
    real = gym.make("HalfCheetah-v5")
    o, _ = real.reset(seed=0)
    obs, acts = [o], [np.zeros(6, np.float32)]
    for _ in range(9):
        a = real.action_space.sample()
        o, *_ = real.step(a)
        obs.append(o), acts.append(a)
    got, _ = env.reset(seed=0, options={"context": {"obs": np.stack(obs), "actions": np.stack(acts)}})
    np.testing.assert_allclose(got, obs[-1], rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="C=10"):
        env.reset(options={"context": {"obs": np.stack(obs)[:5], "actions": np.stack(acts)[:5]}})


def test_bad_actions_name_the_env_and_change_nothing():
    env = DreamVectorEnv(dreamgym.resolve(ID), 4)
    env.reset(seed=0)
    snap = env.get_state()
    bad = np.zeros((4, 6))
    bad[2, 3] = np.nan
    with pytest.raises(ActionError, match=r"env\(s\) \[2\]"):
        env.step(bad)
    with pytest.raises(ActionError, match=r"expected actions of shape \(4, 6\)"):
        env.step(np.zeros((3, 6)))
    with pytest.raises(ActionError, match="numeric"):
        env.step(np.full((4, 6), "a"))
    after = env.get_state()
    for k in snap:
        np.testing.assert_array_equal(snap[k], after[k])
    env.step(np.zeros((4, 6)))  # and the env still works


def test_out_of_bounds_actions_are_clipped():
    def first_obs(a):
        env = DreamVectorEnv(dreamgym.resolve(ID), 1, noise_scale=0.0)
        env.reset(seed=0)
        return env.step(a)[0]

    np.testing.assert_array_equal(first_obs(np.full((1, 6), 5.0)), first_obs(np.ones((1, 6))))
    # finite values so large that the check's dot product overflows are still actions, clipped
    np.testing.assert_array_equal(first_obs(np.full((1, 6), 3e38, np.float32)), first_obs(np.ones((1, 6))))


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_single_env_rejects_non_finite_actions(value):
    env = gym.make(ID)
    env.reset(seed=0)
    a = np.zeros(6, np.float32)
    a[4] = value
    with pytest.raises(ActionError, match="not finite"):
        env.step(a)
    env.step(np.zeros(6, np.float32))  # and the env still works


def test_single_env_rejects_wrong_shape():
    env = gym.make(ID)
    env.reset(seed=0)
    with pytest.raises(ActionError, match=r"shape \(6,\)"):
        env.step(np.zeros(5))


def test_rewind_is_exact():
    env = DreamVectorEnv(dreamgym.resolve(ID), 2)
    env.reset(seed=0)
    snap = env.get_state()
    rng_state = env.np_random.bit_generator.state
    a = [np.random.default_rng(i).uniform(-1, 1, (2, 6)) for i in range(5)]
    first = [env.step(x)[0] for x in a]
    env.set_state(snap)
    env.np_random.bit_generator.state = rng_state
    second = [env.step(x)[0] for x in a]
    np.testing.assert_array_equal(np.stack(first), np.stack(second))


def test_unknown_id_and_bad_options():
    with pytest.raises(gym.error.Error, match="neither a registered dream id"):
        dreamgym.make_env("Dream-Nope-v0")
    env = gym.make(ID)
    with pytest.raises(ValueError, match="unknown reset options"):
        env.reset(options={"colour": "red"})
    with pytest.raises(ValueError, match="obs_mode"):
        gym.make(ID, obs_mode="smell")


def test_import_boundary_and_namespace_make():
    code = (
        "import sys, gymnasium as gym\n"
        "env = gym.make('dreamgym:Dream-HalfCheetah-v0')\n"
        "env.reset(seed=0); env.step(env.action_space.sample())\n"
        "bad = [m for m in ('torch', 'pygame') if m in sys.modules]\n"
        "assert not bad, bad\n"
        "print('ok')\n"
    )
    out = subprocess.run(cwd=OUTSIDE, args=[sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("ok")


@pytest.mark.parametrize("n", [100, 64 * 24 + 1, 4096 * 24], ids=["ziggurat", "box-muller-odd", "box-muller"])
def test_normal_noise_is_standard_normal(n):
    """The runtime's normal draws (numpy's ziggurat for few values, Box-Muller for many) have the standard
    normal's moments and quantiles, and two generators with one seed draw the same values."""
    from dreamgym.vector_env import draw_noise, noise_scratch

    out = np.empty(n, np.float32)
    scratch = noise_scratch("normal", out)
    rng = np.random.default_rng(0)
    z = np.concatenate([draw_noise(rng, "normal", out, 1.0, scratch).copy() for _ in range(max(1, 400_000 // n))])
    assert np.isfinite(z).all() and z.dtype == np.float32
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01
    assert abs(np.mean(np.abs(z) < 1) - 0.6827) < 0.005 and abs(np.mean(np.abs(z) < 2) - 0.9545) < 0.003
    assert abs(np.mean(z**4) - 3) < 0.1  # kurtosis: the tails are a normal's
    again = draw_noise(np.random.default_rng(0), "normal", np.empty(n, np.float32))
    np.testing.assert_array_equal(again, z[:n])


def test_every_cpu_schedule_steps_the_same_dream():
    """One thread, onnxruntime's threads, blocks of rows side by side and tiles of rows: the same numbers."""
    n = 37

    def run(threads=None, **engine_options):
        env = DreamVectorEnv(dreamgym.resolve(ID), n, device="cpu", threads=threads, engine_options=engine_options)
        env.reset(seed=5)
        rng = np.random.default_rng(0)
        out = [env.step(rng.uniform(-1, 1, (n, 6)))[:2] for _ in range(6)]
        env.close()
        return out, env.get_state()

    want, want_state = run(threads=1, tile_rows=None)
    for kw in (
        {"threads": 2, "tile_rows": None},
        {"shards": 2, "tile_rows": None},
        {"shards": 2, "tile_rows": 5},
        {"shards": 1, "tile_rows": 8},
    ):
        got, state = run(**kw)
        for (wo, wr), (go, gr) in zip(want, got):
            np.testing.assert_array_equal(go, wo, err_msg=str(kw))
            np.testing.assert_array_equal(gr, wr, err_msg=str(kw))
        for k in want_state:
            np.testing.assert_array_equal(state[k], want_state[k], err_msg=str(kw))

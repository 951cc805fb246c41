"""Every env says what is wrong when it is used out of order: before reset, after close, a first reset that
leaves envs without a state, a misspelt option. close() twice is a no-op (documented)."""

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

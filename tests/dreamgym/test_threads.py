"""Threads: envs are independent (two envs stepped from two threads give exactly what each gives alone), and
one env is not shared (a second thread stepping it while it steps gets a RuntimeError, documented)."""

import threading

import numpy as np
import pytest

import dreamgym

ID = "Dream-HalfCheetah-v0"


def rollout(env, seed: int, steps: int = 60) -> np.ndarray:
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    out = [obs]
    for _ in range(steps):
        obs, *_ = env.step(env.action_space.sample())
        out.append(obs)
    return np.stack(out)


@pytest.mark.parametrize("num_envs", [1, 64])
def test_two_envs_in_two_threads_equal_each_alone(num_envs):
    alone = [rollout(dreamgym.make_vec(ID, num_envs, threads=1), seed) for seed in (1, 2)]
    envs = [dreamgym.make_vec(ID, num_envs, threads=1) for _ in range(2)]
    got: dict[int, np.ndarray] = {}
    start = threading.Barrier(2)

    def run(i: int) -> None:
        start.wait()
        got[i] = rollout(envs[i], i + 1)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(2):
        np.testing.assert_array_equal(got[i], alone[i])


def test_one_env_is_not_stepped_by_two_threads():
    env = dreamgym.make_vec(ID, 4)
    env.reset(seed=0)
    acts = env.action_space.sample()
    held, release = threading.Event(), threading.Event()

    def occupy():  # another thread in the middle of a step (its lock held)
        with env._busy:
            held.set()
            release.wait(10)

    t = threading.Thread(target=occupy)
    t.start()
    held.wait(10)
    with pytest.raises(RuntimeError, match="another thread"):
        env.step(acts)
    with pytest.raises(RuntimeError, match="another thread"):
        env.reset()
    release.set()
    t.join()
    env.step(acts)  # free again: nothing was changed by the refused calls


def test_one_multi_agent_env_is_not_stepped_by_two_threads():
    games = dreamgym.make_batched("Dream-SimpleTag-v0", 2)
    games.reset(seed=0)
    with games._busy:
        with pytest.raises(RuntimeError, match="another thread"):
            games.step({a: np.stack([s.sample()] * 2) for a, s in games.action_spaces.items()})

"""A real RL library on a real (local) Ray: RLlib PPO with 2 env runners, each stepping a batched dream."""

import numpy as np
import pytest

pytest.importorskip("ray.rllib")
pytest.importorskip("torch")


@pytest.fixture(scope="module")
def ray_local():
    import ray

    # logical CPUs: each env runner reserves one; the machine's real cores are what they are
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


def _first_obs(algo, steps: int) -> list[np.ndarray]:
    """Per remote runner (in runner order): the first observation of each of its envs' episodes."""

    def first(runner):
        eps = runner.sample(num_timesteps=steps, random_actions=True)
        return runner.worker_index, np.stack([e.get_observations(0) for e in eps[: runner.num_envs]])

    out = sorted(algo.env_runner_group.foreach_env_runner(first, local_env_runner=False), key=lambda t: t[0])
    return [o for _, o in out]


@pytest.fixture(scope="module")
def dream_run(ray_local):
    """One PPO build on the dream (seed 7, 2 runners × 8 envs): what the runners step, the first
    observations each runner's seeded reset gave, then one training iteration."""
    from dreamgym.export.rllib import ppo_config, summarize

    algo = ppo_config("Dream-HalfCheetah-v0", runners=2, envs_per_runner=8, epochs=1, seed=7).build_algo()
    try:
        kinds = algo.env_runner_group.foreach_env_runner(
            lambda r: (type(r.env.unwrapped).__name__, r.env.unwrapped.num_envs), local_env_runner=False
        )
        first = _first_obs(algo, steps=16)
        row = summarize(algo.train())
    finally:
        algo.stop()
    return {"kinds": kinds, "first": first, "row": row}


def test_ppo_iteration_with_two_runners_each_stepping_one_batched_dream(dream_run):
    # one DreamVectorEnv of 8 per runner: one onnxruntime call per step, not 8 single envs
    assert dream_run["kinds"] == [("DreamVectorEnv", 8), ("DreamVectorEnv", 8)]
    row = dream_run["row"]
    assert row["env_steps_sampled"] >= 2 * 8 * 32
    # one epoch of 512-sample minibatches over what was sampled (the last one filled cyclically), counted
    # once: not per module and again for all modules
    assert row["env_steps_sampled"] <= row["learner_samples"] < row["env_steps_sampled"] + 512, row
    assert row["losses"] and all(np.isfinite(v) for v in row["losses"].values()), row


def test_each_runner_gets_a_distinct_reproducible_seed(dream_run):
    """RLlib gives runner i the seed S + i for its first reset: each runner's starts are those of a batched
    dream of 8 reset with that seed, here and on any machine (no second Ray build needed to check it)."""
    import gymnasium as gym

    a1, a2 = dream_run["first"]
    assert a1.shape == (8, 17)
    assert not np.allclose(a1, a2), "runners 1 and 2 started from the same dream states"
    for i, got in ((1, a1), (2, a2)):
        env = gym.make_vec("dreamgym:Dream-HalfCheetah-v0", num_envs=8, vectorization_mode="vector_entry_point")
        want, _ = env.reset(seed=7 + i)
        env.close()
        np.testing.assert_array_equal(got, want)  # the same seed, the same starts, runner by runner


def test_multi_agent_dream_one_policy_per_agent_group(ray_local, tiny_tag):
    import dreamgym
    from dreamgym.export.rllib import agent_group, ppo_config, summarize

    groups = sorted({agent_group(a) for a in dreamgym.Bundle.load(tiny_tag).agents})
    assert groups == ["adversary", "agent"]
    # the local runner samples (two remote runners are the single-agent test's): no Ray actor to start
    algo = ppo_config(str(tiny_tag), runners=0, epochs=1, seed=0).build_algo()
    try:
        row = summarize(algo.train())
    finally:
        algo.stop()
    assert sorted(row["losses"]) == groups, row["losses"]
    assert all(np.isfinite(v) for v in row["losses"].values())
    assert row["env_steps_sampled"] > 0


def test_a_bundle_folder_runs_as_the_batched_env_a_runner_makes(default_bundle):
    """What a runner calls for a bundle folder that is not shipped (no Ray needed to check it)."""
    import gymnasium as gym

    from dreamgym.export.rllib import _register_folder

    env = gym.make_vec(
        _register_folder(), num_envs=3, vectorization_mode="vector_entry_point", bundle=str(default_bundle), threads=1
    )
    obs, _ = env.reset(seed=0)
    assert type(env).__name__ == "DreamVectorEnv" and obs.shape == (3, 17)
    env.close()

"""A real RL library on the dream: Stable-Baselines3 PPO learns a few thousand steps with finite values."""

import numpy as np
import pytest

sb3 = pytest.importorskip("stable_baselines3")


def test_ppo_on_dream_halfcheetah():
    import gymnasium as gym
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback

    import dreamgym  # noqa: F401

    class Finite(BaseCallback):
        def _on_step(self) -> bool:
            for k in ("rewards", "new_obs"):
                assert np.isfinite(self.locals[k]).all(), k
            return True

    torch.manual_seed(0)
    env = gym.make("Dream-HalfCheetah-v0")
    model = PPO("MlpPolicy", env, n_steps=512, batch_size=128, n_epochs=2, seed=0, device="cpu", verbose=0)
    model.learn(total_timesteps=3072, callback=Finite())
    assert all(torch.isfinite(p).all() for p in model.policy.parameters())
    logs = model.logger.name_to_value
    assert np.isfinite(logs["train/value_loss"]) and np.isfinite(logs["train/loss"])
    obs, _ = env.reset(seed=1)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(action)


def test_ppo_trains_one_agent_of_a_multi_agent_dream_against_the_bundled_policies(tiny_tag):
    import torch
    from stable_baselines3 import PPO

    import dreamgym

    torch.manual_seed(0)
    env = dreamgym.make_agent_env(tiny_tag, "agent_0")  # the prey, against the scripted predators
    model = PPO("MlpPolicy", env, n_steps=128, batch_size=64, n_epochs=1, seed=0, device="cpu", verbose=0)
    model.learn(total_timesteps=256)
    assert all(torch.isfinite(p).all() for p in model.policy.parameters())
    obs, _ = env.reset(seed=1)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(action) and obs.shape == (12,)

"""Pong data for the Simulus family (groundwork): real ALE frames, scripted rallies, points scored."""

import numpy as np
import pytest

pytest.importorskip("ale_py")

from dreamgym.export.collect import load_episodes  # noqa: E402
from dreamgym.export.collect_atari import PongCollectConfig, collect_pong, resize, tracker_action  # noqa: E402


def test_resize_keeps_a_flat_colour():
    f = np.full((210, 160, 3), 144, np.uint8)
    assert (resize(f, 64) == 144).all() and resize(f, 64).shape == (64, 64, 3)


def test_tracker_moves_toward_the_ball():
    ram = np.zeros(128, np.uint8)
    ram[54], ram[51] = 100, 40  # ball below the paddle
    assert tracker_action(ram, np.random.default_rng(0), 0.0) == 3
    ram[54] = 20
    assert tracker_action(ram, np.random.default_rng(0), 0.0) == 2


def test_collect_pong_episode(tmp_path):
    collect_pong(PongCollectConfig(episodes=1, max_steps=600, seed=1), tmp_path, progress=False)
    (ep,) = list(load_episodes(tmp_path))
    T = len(ep["actions"])
    assert ep["obs"].shape == (T + 1, 64, 64, 3) and ep["obs"].dtype == np.uint8
    assert ep["actions"].min() >= 0 and ep["actions"].max() < 6
    assert np.count_nonzero(ep["rewards"]) >= 1  # points are won or lost within 600 steps
    assert ep["obs"].std() > 10 and ep["meta"]["action_meanings"][2] == "RIGHT"

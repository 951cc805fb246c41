"""Pong data for the Simulus family: real ALE frames, scripted rallies, points scored, the pixel policy."""

import numpy as np
import pytest

pytest.importorskip("ale_py")

from dreamgym.export.data.atari import PongCollectConfig, collect_pong, pong_pixel_policy, tracker_action  # noqa: E402
from dreamgym.export.data.collect import load_episodes  # noqa: E402
from dreamgym.export.data.sources import area_resize as resize  # noqa: E402  (the collector's frames, and the real env's in play)


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


def test_pixel_policy_follows_the_ball_in_real_frames(tmp_path):
    """On real collected frames the frame-only policy moves toward the ball as the RAM tracker would."""
    torch = pytest.importorskip("torch")
    collect_pong(
        PongCollectConfig(episodes=1, max_steps=300, seed=2, random_share=0.0, noise=0.0), tmp_path, progress=False
    )
    (ep,) = list(load_episodes(tmp_path))
    pol = pong_pixel_policy(64)
    with torch.no_grad():
        acts = pol(torch.from_numpy(ep["obs"].astype(np.float32))).numpy()
    assert acts.dtype == np.int64 and set(np.unique(acts)) <= {0, 2, 3}
    # the RAM tracker moved up and down in this episode; the pixel policy sees the same ball
    moving = ep["actions"] != 0
    agree = (acts[:-1][moving] == ep["actions"][moving]).mean()
    assert agree > 0.6, agree


def test_pixel_policy_on_a_drawn_frame():
    torch = pytest.importorskip("torch")
    f = np.zeros((1, 64, 64, 3), np.float32)
    f[...] = (144, 72, 17)  # the floor
    f[0, 20:25, 56] = (92, 186, 92)  # our paddle, high up
    f[0, 40, 30] = (236, 236, 236)  # the ball, lower down
    pol = pong_pixel_policy(64)
    assert int(pol(torch.from_numpy(f))[0]) == 3  # LEFT moves the paddle down
    f[0, 40, 30] = (144, 72, 17)
    f[0, 15, 30] = (236, 236, 236)
    assert int(pol(torch.from_numpy(f))[0]) == 2
    f[0, 15, 30] = (144, 72, 17)
    assert int(pol(torch.from_numpy(f))[0]) == 0  # no ball: wait

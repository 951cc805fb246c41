"""Videos: `dreamgym record`, the shared dreamgym.video API, and Gymnasium's RecordVideo on dream envs."""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("imageio_ffmpeg")

import dreamgym  # noqa: E402
from dreamgym.record import record  # noqa: E402
from dreamgym.video import VideoWriter, read_video, tile, write_video  # noqa: E402

# subprocesses run outside the source tree, whose dreamgym/ folder would shadow the installed package
OUTSIDE = tempfile.gettempdir()

ID = "Dream-HalfCheetah-v0"
H = W = 64


def test_record_grid_mp4(tmp_path):
    out = record(ID, tmp_path / "d.mp4", steps=12, num_envs=4, seed=0, scale=2, progress=False)
    v = read_video(out)
    # 4 dreams in a 2x2 grid of 128-px tiles with 2-px gaps
    assert v.shape == (12, 2 * 2 * H + 2, 2 * 2 * W + 2, 3)


def test_record_gif_single(tmp_path):
    out = record(ID, tmp_path / "d.gif", steps=7, num_envs=1, scale=1, progress=False)
    v = read_video(out)
    assert v.shape == (7, H, W, 3)


def test_record_uses_an_onnx_policy(tmp_path):
    """A constant policy exported to ONNX drives the dream: the video equals one made with those actions."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    const = np.full((1, 6), 0.7, np.float32)
    g = helper.make_graph(
        [
            helper.make_node("Shape", ["obs"], ["s"]),
            helper.make_node("Slice", ["s", "z", "o"], ["b"]),
            helper.make_node("Concat", ["b", "six"], ["shape"], axis=0),
            helper.make_node("Expand", ["c", "shape"], ["action"]),
        ],
        "const",
        [helper.make_tensor_value_info("obs", TensorProto.FLOAT, ["B", 17])],
        [helper.make_tensor_value_info("action", TensorProto.FLOAT, ["B", 6])],
        [
            helper.make_tensor("z", TensorProto.INT64, [1], [0]),
            helper.make_tensor("o", TensorProto.INT64, [1], [1]),
            helper.make_tensor("six", TensorProto.INT64, [1], [6]),
            helper.make_tensor("c", TensorProto.FLOAT, [1, 6], const.ravel().tolist()),
        ],
    )
    path = tmp_path / "p.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path)
    a = read_video(record(ID, tmp_path / "a.mp4", steps=10, num_envs=2, policy=str(path), progress=False))
    z = read_video(record(ID, tmp_path / "z.mp4", steps=10, num_envs=2, policy="zero", progress=False))
    env = dreamgym.make_vec(  # record dreams whole episodes, not the bundle's short training horizon
        ID, 2, render_mode="rgb_array", autoreset_mode=gym.vector.AutoresetMode.SAME_STEP, max_episode_steps=1000
    )
    env.reset(seed=0)
    for _ in range(10):
        env.step(np.repeat(const, 2, 0))
    assert not np.array_equal(a, z)
    # the last frame's first tile (under the overlay's rows) matches a dream driven by the constant action
    frame = np.kron(env.render()[0], np.ones((2, 2, 1), np.uint8))
    assert np.abs(a[-1, 20:128, :128].astype(int) - frame[20:128]).mean() < 3  # mp4 is lossy


def test_record_bundle_policy_and_compare(tmp_path):
    pytest.importorskip("mujoco")
    out = record(ID, tmp_path / "c.mp4", steps=8, num_envs=2, policy="bundle", compare=True, scale=1, progress=False)
    v = read_video(out)
    # two rows of real | dream | error
    assert v.shape == (8, 2 * H + 2, 3 * W + 4, 3)


def test_cli_errors():
    def run(*a):
        return subprocess.run(
            cwd=OUTSIDE,
            args=[sys.executable, "-m", "dreamgym", "record", *a],
            capture_output=True,
            text=True,
            timeout=120,
        )

    r = run("Dream-Nope-v0", "-o", "/tmp/x.mp4")
    assert r.returncode == 2 and "neither a registered dream id" in r.stderr
    r = run(ID, "-o", "/nonexistent-dir/x.mp4")
    assert r.returncode == 2 and "does not exist" in r.stderr
    r = run(ID, "-o", "/tmp/x.avi")
    assert r.returncode == 2 and ".mp4 or .gif" in r.stderr
    r = run(ID, "-o", "/tmp/x.mp4", "--policy", "/tmp/missing.onnx")
    assert r.returncode == 2 and "does not exist" in r.stderr


def test_cli_writes_file(tmp_path):
    out = tmp_path / "v.gif"
    r = subprocess.run(
        cwd=OUTSIDE,
        args=[sys.executable, "-m", "dreamgym", "record", ID, "-o", str(out), "--steps", "5", "--num-envs", "2"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert read_video(out).shape[0] == 5


def test_gymnasium_record_video_on_dream_envs(tmp_path):
    from gymnasium.wrappers import RecordVideo
    from gymnasium.wrappers.vector import RecordVideo as VecRecordVideo

    env = RecordVideo(
        gym.make(ID, render_mode="rgb_array", max_episode_steps=None),
        str(tmp_path / "single"),
        episode_trigger=lambda e: True,
        disable_logger=True,
    )
    env.reset(seed=0)
    for _ in range(5):
        env.step(env.action_space.sample())
    env.close()
    (f,) = (tmp_path / "single").glob("*.mp4")
    assert read_video(f).shape[1:] == (H, W, 3)

    venv = VecRecordVideo(
        gym.make_vec(ID, num_envs=3, render_mode="rgb_array", max_episode_steps=1000),  # one episode, one video
        str(tmp_path / "vec"),
        episode_trigger=lambda e: True,
        video_length=6,
    )
    venv.reset(seed=0)
    for _ in range(6):
        venv.step(venv.action_space.sample())
    venv.close()
    (f,) = (tmp_path / "vec").glob("*.mp4")
    assert read_video(f).shape[0] >= 6


def test_tile_and_write_helpers(tmp_path):
    frames = np.random.default_rng(0).integers(0, 255, (5, 8, 10, 3), dtype=np.uint8)
    grid = tile(frames, pad=1)
    assert grid.shape == (2 * 8 + 1, 3 * 10 + 2, 3)
    np.testing.assert_array_equal(grid[:8, :10], frames[0])
    p = write_video(tmp_path / "t.gif", [grid, 255 - grid, grid // 2], fps=5)  # distinct: gif merges repeats
    assert read_video(p).shape == (3, *grid.shape)
    with pytest.raises(ValueError, match=".mp4 or .gif"):
        write_video(tmp_path / "t.webm", [grid])


def test_record_pong_compare_with_the_real_atari(tmp_path):
    """The Pong dream beside the real ALE screen, reduced the way its data was, under the bundled policy."""
    pytest.importorskip("ale_py")
    out = record(
        "Dream-Pong-v0",
        tmp_path / "pong.mp4",
        steps=6,
        num_envs=2,
        policy="bundle",
        compare=True,
        scale=1,
        progress=False,
    )
    assert read_video(out).shape == (6, 2 * 64 + 2, 3 * 64 + 4, 3)  # two rows of real | dream | error


def test_cycle_policy_holds_each_discrete_action_for_eight_steps(default_bundle):
    from dreamgym.record import make_policy

    pong = dreamgym.Bundle.load(dreamgym.resolve("Dream-Pong-v0"))
    act = make_policy("cycle", pong, np.random.default_rng(0))
    seq = [act(np.zeros((3, 1))) for _ in range(17)]
    assert seq[0].tolist() == [0, 1, 2] and seq[7].tolist() == [0, 1, 2]
    assert seq[8].tolist() == [1, 2, 3] and seq[16].tolist() == [2, 3, 4]
    with pytest.raises(ValueError, match="Discrete"):
        make_policy("cycle", dreamgym.Bundle.load(default_bundle), np.random.default_rng(0))


# -- nothing lost when a recording is interrupted -----------------------------------------------------------
def test_writer_names_the_file_only_when_it_is_whole(tmp_path):
    out = tmp_path / "a.mp4"
    with pytest.raises(RuntimeError, match="boom"):
        with VideoWriter(out, 15) as w:
            for _ in range(5):
                w.write(np.zeros((32, 32, 3), np.uint8))
            assert not out.exists()  # still being written (to .a.part.mp4)
            raise RuntimeError("boom")
    assert read_video(out).shape[0] == 5 and not (tmp_path / ".a.part.mp4").exists()
    empty = VideoWriter(tmp_path / "b.gif", 15)
    assert empty.close() is None and not any(tmp_path.glob("*b*"))  # no frame, no file
    assert empty.close() is None  # twice: nothing happens


# A child inherits its parent's SIGINT disposition, and a test run may have set it to ignore; a terminal's
# Ctrl-C reaches a program with Python's default handler, so the children put it back first.
CTRL_C = "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "


def _wait_for_frames(part: Path, proc, seconds: float = 300) -> None:
    """Until the encoder has written into the .part file, then a little longer (a loaded machine is slow)."""
    import time

    t0 = time.time()
    while not (part.exists() and part.stat().st_size > 0):
        assert proc.poll() is None, proc.communicate()
        assert time.time() - t0 < seconds, "the recording never started"
        time.sleep(0.2)
    time.sleep(2.0)


def test_ctrl_c_during_record_leaves_a_playable_video(tmp_path):
    import signal

    out = tmp_path / "dream.mp4"
    cmd = [sys.executable, "-c", CTRL_C + "from dreamgym.cli import main; raise SystemExit(main(sys.argv[1:]))"]
    cmd += ["record", "Dream-Pong-v0", "-o", str(out), "--steps", "100000"]
    proc = subprocess.Popen(cmd + ["--num-envs", "1"], cwd=OUTSIDE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_for_frames(tmp_path / ".dream.part.mp4", proc)
    proc.send_signal(signal.SIGINT)
    proc.wait(60)
    frames = read_video(out)
    assert len(frames) >= 1 and frames.shape[-1] == 3
    assert not (tmp_path / ".dream.part.mp4").exists()


PLAY_SCRIPT = """
import signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)
import dreamgym
from dreamgym.play.app import PlayApp
app = PlayApp(dreamgym.resolve("Dream-Pong-v0"), record_dir=sys.argv[1])
app.toggle_recording()
app.run(benchmark=True)
"""


def test_ctrl_c_during_play_recording_leaves_a_playable_video(tmp_path):
    import signal

    pytest.importorskip("pygame")
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy"}
    proc = subprocess.Popen(
        [sys.executable, "-c", PLAY_SCRIPT, str(tmp_path)],
        cwd=OUTSIDE,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    import time

    t0 = time.time()
    while not list(tmp_path.glob(".*.part.mp4")):
        assert proc.poll() is None, proc.communicate()
        assert time.time() - t0 < 300, "the recording never started"
        time.sleep(0.2)
    _wait_for_frames(list(tmp_path.glob(".*.part.mp4"))[0], proc)
    proc.send_signal(signal.SIGINT)
    proc.wait(60)
    (video,) = tmp_path.glob("Dream-Pong-v0-*.mp4")
    assert len(read_video(video)) >= 1 and not list(tmp_path.glob(".*.part.mp4"))


def test_play_recording_survives_an_error_and_a_closed_window(tmp_path):
    pygame = pytest.importorskip("pygame")
    from dreamgym.play.app import PlayApp

    app = PlayApp(dreamgym.resolve("Dream-Pong-v0"), record_dir=tmp_path / "err")
    (tmp_path / "err").mkdir()
    app.toggle_recording()
    calls = [0]
    advance = app.advance

    def failing():
        calls[0] += 1
        if calls[0] > 6:
            raise RuntimeError("the model broke")
        advance()

    app.advance = failing
    with pytest.raises(RuntimeError, match="the model broke"):
        app.run(benchmark=True)
    (video,) = (tmp_path / "err").glob("*.mp4")
    assert len(read_video(video)) >= 6

    (tmp_path / "quit").mkdir()
    app = PlayApp(dreamgym.resolve("Dream-Pong-v0"), record_dir=tmp_path / "quit")
    app.toggle_recording()
    script = lambda n: [pygame.event.Event(pygame.QUIT)] if n == 8 else []  # noqa: E731
    app.run(benchmark=True, script=script)
    (video,) = (tmp_path / "quit").glob("*.mp4")
    assert len(read_video(video)) >= 8

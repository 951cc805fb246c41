"""The `dreamgym` command, run as a user would."""

import subprocess
import sys
import tempfile

# subprocesses run outside the source tree, whose dreamgym/ folder would shadow the installed package
OUTSIDE = tempfile.gettempdir()


def run(*args):
    return subprocess.run(cwd=OUTSIDE, args=[sys.executable, "-m", "dreamgym", *args], capture_output=True, text=True, timeout=300)


def test_list_shows_the_zoo():
    out = run("list")
    assert out.returncode == 0, out.stderr
    assert "Dream-HalfCheetah-v0" in out.stdout and "rssm" in out.stdout and "HalfCheetah-v5" in out.stdout


def test_info():
    out = run("info", "Dream-HalfCheetah-v0")
    assert out.returncode == 0, out.stderr
    assert "Box(-1.0, 1.0, (6,), float32)" in out.stdout and "context length:    10" in out.stdout


def test_rollout_prints_return_and_speed():
    out = run("rollout", "Dream-HalfCheetah-v0", "--num-envs", "16", "--steps", "50", "--seed", "3")
    assert out.returncode == 0, out.stderr
    assert "mean return" in out.stdout and "env-steps/s" in out.stdout


def test_unknown_id_is_a_clear_error():
    out = run("info", "Dream-Nope-v0")
    assert out.returncode == 2 and "neither a registered dream id" in out.stderr

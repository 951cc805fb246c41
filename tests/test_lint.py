"""The tree is clean: ruff's lint and its formatter, configured in pyproject.toml, find nothing to change."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _ruff(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("ruff")
    cmd = [exe] if exe else [sys.executable, "-m", "ruff"]
    return subprocess.run([*cmd, *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args", [("check", "."), ("format", "--check", ".")], ids=["lint", "format"])
def test_ruff_finds_nothing(args):
    res = _ruff(*args)
    assert res.returncode == 0, (
        f"`ruff {' '.join(args)}` found something; run `ruff check --fix . && ruff format .`:\n{res.stdout}{res.stderr}"
    )

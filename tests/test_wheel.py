"""Packaging: the wheel holds the runtime, both mapped packages and every bundle, and works installed."""

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    r = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    (whl,) = out.glob("dreamgym-*.whl")
    return whl


def test_wheel_contents(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    # every module of the source tree, sub-packages included (pyproject.toml lists the packages one by one)
    for folder, pkg in (("dreamgym", "dreamgym"), ("play", "dreamgym/play"), ("export", "dreamgym/export")):
        for f in (ROOT / folder).rglob("*.py"):
            must = f"{pkg}/{f.relative_to(ROOT / folder).as_posix()}"
            assert must in names, f"{must} is not in the wheel: add its package to pyproject.toml's packages"
    for bundle in (ROOT / "assets").glob("*/dreamgym.json"):
        for f in bundle.parent.iterdir():
            if f.is_file():
                assert f"dreamgym/assets/{bundle.parent.name}/{f.name}" in names, f.name
    assert not any(n.startswith(("play/", "export/", "tests/")) for n in names)  # no top-level pollution
    (eps,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    text = zipfile.ZipFile(wheel).read(eps).decode()
    for group in ("[dreamgym.commands]", "[dreamgym.sources]", "[dreamgym.torch_step]", "[console_scripts]"):
        assert group in text, group


def test_installed_wheel_makes_the_env(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    site = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # install the wheel alone into the fresh venv; its dependencies (numpy, gymnasium, onnxruntime) come from
    # this interpreter's site-packages, appended *after* the fresh venv's own, so the wheel's dreamgym wins
    r = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--target", site, str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    Path(site, "zz_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    code = (
        "import gymnasium as gym, dreamgym; assert 'site-packages' in dreamgym.__file__ and "
        f"dreamgym.__file__.startswith({str(venv)!r}), dreamgym.__file__\n"
        "env = gym.make('Dream-HalfCheetah-v0'); o, _ = env.reset(seed=0)\n"
        "o, r, *_ = env.step(env.action_space.sample()); print('ok', o.shape)"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run([str(py), "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok (17,)"
    # the installed entry points: `dreamgym --help` lists every command, play's and export's included
    r = subprocess.run(
        [str(py), "-m", "dreamgym", "--help"], capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env
    )
    assert r.returncode == 0, r.stderr
    for cmd in ("list", "info", "rollout", "play", "record", "bench", "evaluate", "train"):
        assert f"\n  {cmd} " in r.stdout, cmd
    # from the repository root the checkout's dreamgym/ shadows the installed one; its siblings still resolve
    code = (
        "import dreamgym, dreamgym.assets, dreamgym.play, dreamgym.export.data.sources; "
        "print(dreamgym.__file__, len(dreamgym.shipped_bundles()))"
    )
    r = subprocess.run([str(py), "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[0] == str(ROOT / "dreamgym" / "__init__.py") and int(r.stdout.split()[1]) >= 3

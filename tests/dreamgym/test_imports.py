"""The runtime imports only downward: making and stepping a dream loads no front end, no export code, no
torch and no simulator; dreamgym/ names no simulator and no module of play/ or export/; and the package
imports from the repository root as well as from anywhere else."""

import ast
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ROOT / "dreamgym"
OUTSIDE = tempfile.gettempdir()
FORBIDDEN = ("torch", "pygame", "mujoco", "ale_py", "mpe2", "dreamgym.export", "dreamgym.play")

LOADED = f"""
import json, sys
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {FORBIDDEN!r} or m.startswith({FORBIDDEN!r}))))
"""


def python(code: str, cwd=OUTSIDE) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=300)


def loaded_after(code: str) -> list[str]:
    r = python(code + LOADED)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_making_and_stepping_dreams_loads_no_front_end_export_torch_or_simulator():
    code = """
import gymnasium as gym, numpy as np, dreamgym
for id in dreamgym.shipped_bundles(multi_agent=False):
    venv = dreamgym.make_vec(id, num_envs=4, render_mode="rgb_array")
    venv.reset(seed=0)
    venv.step(venv.action_space.sample())
    venv.render()
    env = gym.make(id, render_mode="rgb_array")
    env.reset(seed=0)
    env.step(env.action_space.sample())
    env.render()
for id in dreamgym.shipped_bundles(multi_agent=True):
    env = dreamgym.make_parallel(id, render_mode="rgb_array")
    obs, _ = env.reset(seed=0)
    env.step({a: env.action_space(a).sample() for a in env.agents})
    env.render()
    games = dreamgym.make_batched(id, 4, render_mode="rgb_array")
    games.reset(seed=0)
    games.step(games.policy_actions())
    games.render()
"""
    assert loaded_after(code) == []


def test_pettingzoo_is_imported_only_for_the_multi_agent_env():
    r = python("import sys, dreamgym\nprint('pettingzoo' in sys.modules)")
    assert r.returncode == 0 and r.stdout.strip() == "False", r.stderr


def test_the_command_lists_every_command_without_loading_them():
    code = "from dreamgym.cli import main\nassert main(['--help']) == 0\n"
    assert loaded_after(code) == []


def _runtime_files():
    return sorted(p for p in RUNTIME.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def test_the_runtime_names_no_simulator():
    """`grep -ril "mujoco\\|ale_py\\|mpe2" dreamgym/` finds nothing (code, comments and docstrings)."""
    hits = [
        str(p.relative_to(ROOT))
        for p in _runtime_files()
        if re.search(rb"mujoco|ale_py|mpe2", p.read_bytes(), re.IGNORECASE)
    ]
    assert hits == []


# Docstrings in files of the bundle and manifest owners that still name the export and play packages
# (descriptions, not imports); remove an entry once its docstring is reworded.
NAMES_KNOWN: set[str] = set()  # files allowed to name them (none)


def test_the_runtime_names_no_module_of_play_or_export():
    """`grep -rn "dreamgym\\.export\\|dreamgym\\.play\\|from \\.\\+export\\|import play" dreamgym/` finds
    nothing (dots literal: the pip hints `pip install "dreamgym[export]"` are not module names)."""
    pattern = re.compile(r"dreamgym\.(export|play)\b|from \.+(export|play)\b|import play\b")
    hits = [
        f"{p.relative_to(ROOT)}:{i}: {line.strip()}"
        for p in _runtime_files()
        if p.suffix == ".py"
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert [h for h in hits if h.split(":")[0] not in NAMES_KNOWN] == []


def test_the_runtime_imports_only_downward():
    """No import statement anywhere in dreamgym/ (lazy ones included) reaches play, export, torch or a
    simulator; pygame only in the human render mode, as Gymnasium's own envs do."""
    bad = []
    for p in RUNTIME.rglob("*.py"):
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [("." * node.level) + (node.module or "")] + [
                    ("." * node.level) + a.name for a in node.names if not node.module
                ]
            else:
                continue
            for n in names:
                top = n.lstrip(".").split(".")[0]
                if (
                    top in ("torch", "mujoco", "ale_py")
                    or n.startswith(("dreamgym.export", "dreamgym.play"))
                    or (n.startswith(".") and top in ("export", "play"))
                    or (top == "pygame" and p.name != "_human.py")
                ):
                    bad.append(f"{p.relative_to(ROOT)}:{node.lineno}: {n}")
    assert bad == []


IMPORT_ALL = """
import gymnasium as gym, dreamgym, dreamgym.assets, dreamgym.play, dreamgym.export, dreamgym.export.data.sources
from dreamgym.play import keys
env = gym.make("Dream-HalfCheetah-v0")
env.reset(seed=0)
env.step(env.action_space.sample())
print("ok", dreamgym.__file__)
"""

# the shadowing a regular (non-editable) install meets in a checkout: ./dreamgym found first on sys.path,
# with no editable-install finder to map assets/, play/ and export/ in
WITHOUT_EDITABLE_FINDER = """
import sys
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in getattr(f, "__name__", type(f).__name__).lower()]
"""


@pytest.mark.parametrize("where", ["repo root", "repo root, checkout shadowing the install", "elsewhere"])
def test_import_from_the_repository_root_and_elsewhere(where):
    code = (WITHOUT_EDITABLE_FINDER if "shadowing" in where else "") + IMPORT_ALL
    r = python(code, cwd=ROOT if "root" in where else OUTSIDE)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("ok")
    if "shadowing" in where:
        assert r.stdout.split()[1] == str(RUNTIME / "__init__.py")


def test_python_m_dreamgym_from_the_repository_root():
    r = subprocess.run(
        [sys.executable, "-m", "dreamgym", "list"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr
    assert "Dream-HalfCheetah-v0" in r.stdout

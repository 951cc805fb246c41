"""The import contracts and the size of modules: no import cycles among the modules of `dreamgym/`, `play/` and `export/` (imports inside
functions count: grimp reads every import statement), the runtime imports neither front end nor export code,
no family imports measuring code, and `export/`'s rooms import one way down (`EXPORT_LAYERS`).

The graph is built by grimp from the source tree laid out as it installs (`play/` as `dreamgym.play`, `export/`
as `dreamgym.export`, by pyproject.toml's package-dir), so an editable install is checked as a wheel is.
`python tests/test_layers.py` prints the graph between rooms and every broken contract, for anyone to read.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import grimp
import tomllib

ROOT = Path(__file__).resolve().parents[1]

EXPORT_LAYERS = (
    "commands",  # `dreamgym train` / `dreamgym evaluate`
    "testing | rllib",  # check_family; the RLlib driver
    "train",  # fit and the recipes: everything below, in order
    "measure",  # one evaluator per kind of dream, transfer, the report into a bundle
    "card",  # the model card, from the manifest's metrics (an evaluator writes its sections, named by its family)
    "exporter | data",  # ONNX graphs and bundles; collectors, real-env sources, episode files, policy search
    "families | flops",  # one module per family with the shared layers; FLOP counting of graphs
)
"""`dreamgym.export`'s sub-packages and modules, top to bottom: a room imports only rooms below it, and the rooms
of one line (`a | b`) import neither each other"""
RUNTIME_EXCLUDES = ("dreamgym.play", "dreamgym.export", "dreamgym.assets")

_EDGES = """
import json, grimp
g = grimp.build_graph("dreamgym", cache_dir=None)
print(json.dumps({m: sorted(g.find_modules_directly_imported_by(m)) for m in sorted(g.modules)}))
"""


def installed_layout(dst: Path) -> Path:
    """The Python files of the repository copied to `dst` as they install (by pyproject.toml's package-dir)."""
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    dirs = cfg["package-dir"]
    for pkg in cfg["packages"]:
        if pkg in dirs:
            src = ROOT / dirs[pkg]
        else:  # a sub-package lies under its nearest mapped parent's folder
            parent = max((p for p in dirs if pkg.startswith(p + ".")), key=len)
            src = ROOT / dirs[parent] / Path(*pkg[len(parent) + 1 :].split("."))
        out = dst / Path(*pkg.split("."))
        out.mkdir(parents=True, exist_ok=True)
        for f in src.glob("*.py"):
            shutil.copy2(f, out / f.name)
    return dst


def import_edges() -> dict[str, list[str]]:
    """module -> the modules of dreamgym it imports (at the top or inside functions)."""
    with tempfile.TemporaryDirectory() as tmp:
        installed_layout(Path(tmp))
        r = subprocess.run([sys.executable, "-c", _EDGES], cwd=tmp, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def graph(edges: dict[str, list[str]]) -> grimp.ImportGraph:
    g = grimp.ImportGraph()
    for m, targets in edges.items():
        g.add_module(m)
        for t in targets:
            g.add_import(importer=m, imported=t)
    return g


def cycles(edges: dict[str, list[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iteratively), and self-imports."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(edges.get(root, ())))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(edges.get(w, ()))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1 or v in edges.get(v, ()):
                        out.append(sorted(comp))
    return out


def export_layers() -> list[grimp.Layer]:
    return [grimp.Layer(*(name.strip() for name in line.split("|"))) for line in EXPORT_LAYERS]


def layer_violations(g: grimp.ImportGraph) -> list[str]:
    deps = g.find_illegal_dependencies_for_layers(layers=export_layers(), containers={"dreamgym.export"})
    return sorted(f"{d.importer} -> {d.imported} (e.g. {_route(min(d.routes, key=_route))})" for d in deps)


def _route(r) -> str:
    return " -> ".join([sorted(r.heads)[0], *r.middle, sorted(r.tails)[0]])


def runtime_reaching_out(edges: dict[str, list[str]]) -> list[str]:
    runtime = [m for m in edges if not m.startswith(RUNTIME_EXCLUDES)]
    return sorted(
        f"{m} -> {t}" for m in runtime for t in edges[m] if t.startswith(("dreamgym.play", "dreamgym.export"))
    )


def room(module: str) -> str:
    """The room a module lives in: `dreamgym.export.families`, `dreamgym.play.app`, `dreamgym (runtime)`."""
    parts = module.split(".")
    if parts[:2] == ["dreamgym", "export"] and len(parts) > 2:
        return ".".join(parts[:3])
    if parts[:2] == ["dreamgym", "play"]:
        return "dreamgym.play"
    return module if module.startswith("dreamgym.export") else "dreamgym (runtime)"


# -- the contracts ------------------------------------------------------------------------------------------
@functools.cache
def _edges() -> dict[str, list[str]]:
    return import_edges()


def test_the_graph_covers_runtime_front_end_and_export():
    mods = set(_edges())
    for m in ("dreamgym.vector_env", "dreamgym.play.session", "dreamgym.export.families.rssm", "dreamgym.export.card"):
        assert m in mods, f"{m} missing from the import graph: the installed layout is not what pyproject installs"


def test_no_import_cycles():
    found = cycles(_edges())
    assert not found, "import cycles (a cycle of modules importing each other, inside functions too):\n" + "\n".join(
        " <-> ".join(c) for c in found
    )


def test_the_runtime_imports_neither_play_nor_export():
    assert runtime_reaching_out(_edges()) == []


def test_no_family_imports_measuring_code():
    g = graph(_edges())
    assert not g.chain_exists("dreamgym.export.families", "dreamgym.export.measure", as_packages=True), (
        g.find_shortest_chains("dreamgym.export.families", "dreamgym.export.measure")
    )


def test_export_rooms_import_one_way_down():
    assert layer_violations(graph(_edges())) == []


MAX_LINES = 600


def test_no_module_is_over_600_lines():
    """A module longer than this is split by role (a newcomer reads one room, not all of them)."""
    long = {
        str(p.relative_to(ROOT)): n
        for folder in ("dreamgym", "play", "export", "tests", "benchmarks")
        for p in (ROOT / folder).rglob("*.py")
        if (n := len(p.read_bytes().splitlines())) > MAX_LINES
    }
    assert long == {}, f"split these modules by role (at most {MAX_LINES} lines each): {long}"


def test_no_flat_room_has_more_than_twelve_modules():
    """`export/` grew to 36 modules side by side once; a folder of more than about 12 is split into rooms."""
    crowded = {
        str(d.relative_to(ROOT)): n
        for folder in ("play", "export")
        for d in [ROOT / folder, *(ROOT / folder).rglob("*/")]
        if "__pycache__" not in d.parts and (n := len([*d.glob("*.py")]) - (d / "__init__.py").exists()) > 12
    }
    assert crowded == {}, crowded


def test_cycles_are_found():
    # the checker itself: a cycle through a function-level import and a self-import are both reported
    assert cycles({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == [["a", "b", "c"]]
    assert cycles({"a": ["a"]}) == [["a"]]
    assert cycles({"a": ["b"], "b": []}) == []


def main() -> int:
    edges = _edges()
    pairs = Counter((room(m), room(t)) for m, ts in edges.items() for t in ts if room(m) != room(t))
    print("imports between rooms (importer -> imported: number of module imports)")
    for (a, b), n in sorted(pairs.items()):
        print(f"  {a} -> {b}: {n}")
    broken = {
        "cycles": [" <-> ".join(c) for c in cycles(edges)],
        "runtime importing play/export": runtime_reaching_out(edges),
        "export layers broken": layer_violations(graph(edges)),
    }
    for name, items in broken.items():
        print(f"{name}: {len(items)}")
        for i in items:
            print(f"  {i}")
    return int(any(broken.values()))


if __name__ == "__main__":
    raise SystemExit(main())

"""The `dreamgym` command (also `python -m dreamgym`): one command line for everything a user runs.

    dreamgym list | info | rollout | play | replay | record | bench | soak | evaluate | train | transfer | rllib

Each command's options are a frozen dataclass with a one-line docstring under every field, turned into a
command line by tyro, so `dreamgym CMD --help` says what every option does. The runtime's own commands
(list, info, rollout, record, bench, soak) are here. Commands from other packages come through the entry-point
group ``dreamgym.commands`` (``name = "module:function"``; the function takes the arguments after the
command's name, ``argv: list[str]``, parses them itself and returns an exit code): dreamgym's extras declare
play, replay, evaluate, train, transfer and rllib in pyproject.toml. `dreamgym --help` describes those from the first line of the
function's docstring, read from its source without importing it (nor torch, nor pygame).
"""

from __future__ import annotations

import ast
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import tyro

ID = Annotated[str, tyro.conf.arg(metavar="ID")]
"""a registered dream id or a bundle folder"""
Device = Literal["auto", "cpu", "cuda"]

GROUP = "dreamgym.commands"
ORDER = (
    "list",
    "info",
    "rollout",
    "play",
    "replay",
    "record",
    "bench",
    "soak",
    "evaluate",
    "train",
    "transfer",
    "rllib",
)
"""the order of `dreamgym --help`; commands of other packages follow, sorted"""


@dataclass(frozen=True)
class ListArgs:
    """the zoo of shipped dreams: id, family, source env, size, fidelity"""

    markdown: bool = False
    """print the zoo as a markdown table (the README's)"""


@dataclass(frozen=True)
class InfoArgs:
    """everything about one dream: spaces, state, noise, graphs, size, fidelity"""

    id: tyro.conf.Positional[ID]
    """a registered id or a bundle folder"""
    json: bool = False
    """also print the metrics as JSON"""


@dataclass(frozen=True)
class RolloutArgs:
    """step a batch of dreams with random actions; prints mean return and env-steps/s"""

    id: tyro.conf.Positional[ID]
    """a registered id or a bundle folder"""
    num_envs: int = 16
    """dreams stepped together in one batch"""
    steps: int = 1000
    """steps of the whole batch"""
    seed: int = 0
    """seed of the resets and of the random actions"""
    device: Device = "auto"
    """where onnxruntime runs (auto: CUDA when onnxruntime offers it)"""


@dataclass(frozen=True)
class RecordArgs:
    """write a video of imagined rollouts, tiled, or real | dream | error (extra: video)"""

    id: tyro.conf.Positional[ID]
    """a registered id or a bundle folder"""
    output: Annotated[str, tyro.conf.arg(aliases=("-o",), metavar="OUT")]
    """OUT.mp4 or OUT.gif"""
    steps: int = 200
    """imagined steps (frames)"""
    num_envs: int = 4
    """dreams tiled in a grid (rows with --compare)"""
    policy: str = "random"
    """random, zero, cycle (discrete actions in turn, 8 steps each), bundle (its policy.onnx) or PATH.onnx"""
    seed: int = 0
    """seed of the dreams and the random policy"""
    fps: int | None = None
    """frames per second of the video (None: the manifest's render_fps)"""
    scale: int = 2
    """pixels per frame pixel"""
    compare: bool = False
    """real | dream | error from the same real start under the same actions (needs the real env)"""
    uncertainty_penalty: str = "bundle"
    """λ for bundles that give an uncertainty: reward minus λ·uncertainty ('bundle': its default; 0: raw)"""
    uncertainty_limit: str = "bundle"
    """τ for bundles that give an uncertainty: truncate above it ('bundle': its default; 'none': never)"""


@dataclass(frozen=True)
class BenchArgs:
    """throughput as ratios measured in one run (dream vs real env, ONNX vs torch, vs a matmul roofline)"""

    id: tyro.conf.Positional[ID]
    """a registered id or a bundle folder"""
    num_envs: str = "1,16,64,256,1024,4096"
    """comma-separated batch sizes"""
    device: Device = "auto"
    """where onnxruntime runs (auto: CUDA when onnxruntime offers it)"""
    threads: int | None = None
    """onnxruntime intra-op threads (None: the engine's schedule from the work per step)"""
    seconds: float = 1.0
    """measuring time per figure and round"""
    rounds: int = 3
    """measure every figure this many times in turn; report each best"""
    json: bool = False
    """print one JSON object as the last line"""
    real: bool = True
    """measure the real env, single and sync-vectorised (--no-real skips it)"""
    torch: bool = True
    """measure the same model in torch eager (--no-torch skips it)"""
    memory: bool = True
    """measure the process's memory with 65,536 envs (--no-memory skips it)"""


def _size_mb(path) -> float:
    return sum(p.stat().st_size for p in path.iterdir() if p.is_file()) / 1e6


def cmd_list(args: ListArgs) -> int:
    from .manifest import MANIFEST, Manifest
    from .registration import shipped_bundles

    rows = [(Manifest.read(path / MANIFEST), path) for path in shipped_bundles().values()]
    if not rows:
        print("no bundles are shipped with this install")
        return 0
    if args.markdown:  # the README's zoo table
        print(
            "| id | family | source env | size | held-out fidelity at h = 1 / 10 / 50 / 100 | frame PSNR h = 1 / 50 |"
        )
        print("|---|---|---|---|---|---|")
        for m, path in rows:
            s = m.summary
            psnr = " / ".join(f"{s.frame_psnr_db[k]:.1f}" for k in ("1", "50") if k in s.frame_psnr_db) if s else ""
            print(
                f"| `{m.id}` | {m.family} | `{m.source.env_id or '?'}` | {_size_mb(path):.1f} MB | "
                f"{s.cell() if s else '—'} | {psnr + ' dB' if psnr else '—'} |"
            )
        return 0
    head = ("id", "family", "source env", "size", "fidelity")
    table = [(m.id, m.family, m.source.env_id or "?", f"{_size_mb(path):.1f} MB", _headline(m)) for m, path in rows]
    widths = [max(len(str(r[i])) for r in table + [head]) for i in range(len(head))]
    for r in [head] + table:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
    return 0


def _headline(m) -> str:
    return m.summary.headline() if m.summary else "not evaluated"


def cmd_info(args: InfoArgs) -> int:
    from .bundle import Bundle
    from .registration import resolve

    b = Bundle.load(resolve(args.id))
    m = b.manifest
    model = m.model
    print(f"{b.id}  ({b.family})  {b.path}")
    print(f"  {m.description}")
    print(f"  source env:        {m.source.env_id}")
    if b.is_multi_agent:
        for a in m.agents:
            print(f"  agent {a.name}: observation {a.observation_space}, action {a.action_space}")
        print(f"  open it with:      dreamgym.make_parallel({b.id!r}) (PettingZoo) or dreamgym.make_batched(...)")
    else:
        print(f"  observation space: {b.observation_space}")
        print(f"  action space:      {b.action_space}")
    print(f"  obs modes:         {', '.join(b.obs_modes)}   frame {tuple(m.frame_shape)}")
    print(f"  context length:    {b.context_length}   max episode steps: {b.max_episode_steps}   fps: {b.render_fps}")
    if b.manifest.env_defaults.max_episode_steps:
        print(
            f"  training horizon:  {b.manifest.env_defaults.max_episode_steps} steps (the env's default; whole episodes: max_episode_steps={b.max_episode_steps})"
        )
    if any(o.name == "uncertainty" for o in m.outputs):
        d = m.env_defaults
        limit = "none" if d.uncertainty_limit is None else f"{d.uncertainty_limit:g}"
        print(
            f"  uncertainty:       info['uncertainty'] each step; defaults: penalty λ={d.uncertainty_penalty:g}, "
            f"limit τ={limit} (uncertainty_penalty=0, uncertainty_limit=None: the raw dream)"
        )
    print("  state:             " + ", ".join(f"{s.name}{list(s.shape)}" for s in b.state))
    print(
        "  noise:             "
        + (
            ", ".join(f"{n.name}{list(n.shape)} {n.distribution} ({n.graph})" for n in b.noise)
            or "none (deterministic)"
        )
    )
    print(f"  graphs:            {', '.join(m.graphs)}")
    print(f"  contexts:          {len(next(iter(b.contexts.values())))} real windows")
    if model.parameters:
        print(f"  parameters:        {model.parameters}   multiply-adds per step: {model.step_macs}")
    print(f"  fidelity:          {_headline(m)}")
    if args.json:
        print(json.dumps(m.metrics))
    return 0


def cmd_rollout(args: RolloutArgs) -> int:
    from .registration import resolve
    from .vector_env import DreamVectorEnv

    env = DreamVectorEnv(resolve(args.id), num_envs=args.num_envs, device=args.device)
    obs, _ = env.reset(seed=args.seed)
    env.action_space.seed(args.seed)
    ret = np.zeros(args.num_envs)
    done_returns: list[float] = []
    t0 = time.perf_counter()
    for _ in range(args.steps):
        obs, r, term, trunc, _ = env.step(env.action_space.sample())
        ret += r
        done = term | trunc
        if done.any():
            done_returns += ret[done].tolist()
            ret[done] = 0.0
    dt = time.perf_counter() - t0
    n = args.num_envs * args.steps
    returns = done_returns or ret.tolist()
    what = "finished episodes" if done_returns else f"{args.steps}-step partial episodes"
    print(
        f"{env.bundle.id}: {args.num_envs} envs x {args.steps} steps, random actions, episodes of at most "
        f"{env.max_episode_steps} steps, device {env.device}"
    )
    print(f"mean return {np.mean(returns):.2f} over {len(returns)} {what}")
    print(f"{n / dt:,.0f} env-steps/s ({dt:.2f} s)")
    return 0


def cmd_record(args: RecordArgs) -> int:
    from .record import record
    from .vector_env import uncertainty_options

    options = uncertainty_options(args.uncertainty_penalty, args.uncertainty_limit)
    path = record(
        args.id,
        args.output,
        steps=args.steps,
        num_envs=args.num_envs,
        policy=args.policy,
        seed=args.seed,
        fps=args.fps,
        scale=args.scale,
        compare=args.compare,
        env_options=options,
    )
    print(f"wrote {path}")
    return 0


def cmd_bench(args: BenchArgs) -> int:
    from .bench import bench, print_table

    try:
        sizes = tuple(int(x) for x in args.num_envs.split(","))
    except ValueError:
        raise ValueError(
            f"--num-envs must be comma-separated integers such as 1,16,64, got {args.num_envs!r}"
        ) from None
    res = bench(
        args.id,
        sizes,
        device=args.device,
        threads=args.threads,
        seconds=args.seconds,
        real=args.real,
        torch=args.torch,
        memory=args.memory,
        rounds=args.rounds,
    )
    print_table(res)
    if args.json:
        print(json.dumps(res))
    return 0


@dataclass(frozen=True)
class SoakArgs:
    """soak a dream: a million random steps with masked resets; non-finite outputs, ranges, memory, speed"""

    id: tyro.conf.Positional[ID]
    """a registered id or a bundle folder"""
    steps: int = 1_000_000
    """env-steps in total"""
    num_envs: int = 256
    """envs (games) stepped together"""
    seed: int = 0
    """seed of the resets and the random actions"""
    json: bool = False
    """print the figures as JSON"""


def cmd_soak(a: SoakArgs) -> int:
    from .soak import HEADER, markdown_row, soak

    r = soak(a.id, steps=a.steps, num_envs=a.num_envs, seed=a.seed, progress=not a.json)
    print(json.dumps(r, indent=2) if a.json else f"{HEADER}\n{markdown_row(r)}")
    bad = sum(r["non_finite"].values()) > 0 or r["memory_growth"] > 0.05
    return 1 if bad else 0


BUILTIN: dict[str, tuple[type, Callable[..., int]]] = {
    "list": (ListArgs, cmd_list),
    "info": (InfoArgs, cmd_info),
    "rollout": (RolloutArgs, cmd_rollout),
    "record": (RecordArgs, cmd_record),
    "bench": (BenchArgs, cmd_bench),
    "soak": (SoakArgs, cmd_soak),
}


# -- commands of other packages ---------------------------------------------------------------------
def plugin_commands() -> dict[str, EntryPoint]:
    """{name: entry point} of the commands other packages declare (nothing is imported)."""
    return {ep.name: ep for ep in entry_points(group=GROUP) if ep.name not in BUILTIN}


def _install_hint(ep: EntryPoint) -> str:
    parts = ep.module.split(".")
    if parts[0] == "dreamgym" and len(parts) > 1:  # one of dreamgym's extras, named after its package
        return f'run `pip install "dreamgym[{parts[1]}]"`'
    return f"install the package that provides it{f' ({ep.dist.name})' if ep.dist else ''}"


def _module_file(module: str) -> str | None:
    """The source file of `module`, found without running it or any package above it not imported yet (an
    __init__ may import torch): each level is looked up by the import system's finders in its parent's path."""
    parts, path, origin = module.split("."), None, None
    for i in range(1, len(parts) + 1):
        name = ".".join(parts[:i])
        mod = sys.modules.get(name)
        if mod is not None:
            origin, path = getattr(mod, "__file__", None), getattr(mod, "__path__", None)
        else:
            spec = next((s for f in sys.meta_path if hasattr(f, "find_spec") and (s := f.find_spec(name, path))), None)
            if spec is None:
                return None
            origin, path = spec.origin, spec.submodule_search_locations
        path = list(path) if path is not None else None
        if i < len(parts) and path is None:
            return None
    return origin


def describe(ep: EntryPoint) -> str:
    """One line about a plugin command: its function's docstring's first line, read from the source."""
    try:
        origin = _module_file(ep.module)
        if origin is None or not origin.endswith(".py"):
            return f"(not installed: {_install_hint(ep)})"
        tree = ast.parse(Path(origin).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ImportError, ValueError) as e:
        return f"(unavailable: {e})"
    fn = next(
        (n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == ep.attr), None
    )
    doc = ast.get_docstring(fn) if fn is not None else None
    if fn is None:
        return f"(unavailable: {ep.module} defines no {ep.attr}; {_install_hint(ep)})"
    return (doc or ast.get_docstring(tree) or ep.value).strip().splitlines()[0]


def _first_line(cls: type) -> str:
    return (cls.__doc__ or "").strip().splitlines()[0]


def print_help(file=sys.stdout) -> None:
    plugins = plugin_commands()
    lines = {name: _first_line(cls) for name, (cls, _) in BUILTIN.items()}
    lines.update({name: describe(ep) for name, ep in plugins.items()})
    names = [n for n in ORDER if n in lines] + sorted(set(lines) - set(ORDER))
    w = max(map(len, names))
    print(
        "usage: dreamgym COMMAND [OPTIONS]     (python -m dreamgym works the same)\n\n"
        "Trained world models as batched Gymnasium environments.\n\ncommands:",
        file=file,
    )
    for n in names:
        print(f"  {n.ljust(w)}  {lines[n]}", file=file)
    print("\n`dreamgym COMMAND --help` lists a command's options.", file=file)


def _load(name: str, ep: EntryPoint) -> Callable[[list[str]], int]:
    try:
        return ep.load()
    except ImportError as e:
        raise _Unavailable(
            f"`dreamgym {name}` comes from {ep.module}, which cannot be imported here ({e}); {_install_hint(ep)}"
        ) from e
    except AttributeError as e:
        raise _Unavailable(f"`dreamgym {name}` is unavailable: {ep.module} has no {ep.attr} ({e})") from e


class _Unavailable(Exception):
    pass


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print_help(sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    if argv[0] == "--version":
        from . import __version__

        print(f"dreamgym {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    plugins = {} if name in BUILTIN else plugin_commands()
    if name not in BUILTIN and name not in plugins:
        known = [n for n in ORDER if n in BUILTIN or n in plugins] + sorted(set(plugins) - set(ORDER))
        print(
            f"dreamgym: error: unknown command {name!r}; choose from {', '.join(known)} (dreamgym --help)",
            file=sys.stderr,
        )
        return 2
    from gymnasium.error import Error

    try:
        if name in BUILTIN:
            cls, fn = BUILTIN[name]
            args = tyro.cli(cls, args=rest, prog=f"dreamgym {name}", description=_first_line(cls))
            return fn(args)
        try:
            return _load(name, plugins[name])(rest)
        except ImportError as e:  # an optional dependency the command imports when it runs
            raise _Unavailable(f"{e}; {_install_hint(plugins[name])}") from e
    except (Error, ValueError, FileNotFoundError, _Unavailable) as e:
        print(f"dreamgym {name}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

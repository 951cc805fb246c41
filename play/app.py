"""`dreamgym play`: the command line. It opens a single-agent dream in `play.single.PlayApp` and a
multi-agent one in `play.multi.MultiPlayApp` (two people on one keyboard).

The front end's modules, each importing only those below it:

    app, replay          the command lines (`dreamgym play`, `dreamgym replay`)
    single, multi        the two windows (single- and multi-agent dreams)
    view                 the single-agent window's picture: main view, palette, HUD, help
    session, sessionlog  the multi-agent game without a window; the saved-session file
    scene                where a multi-agent scene's entities are, and the markers of those out of view
    ui, keys             pygame, colours, fonts and text; keymaps

`PlayApp` and `scripted_keys` stay importable from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import tyro

from dreamgym.bundle import Bundle
from dreamgym.vector_env import uncertainty_options

from .multi import MultiPlayApp, scripted_players
from .single import PlayApp, scripted_keys
from .ui import require_pygame

__all__ = ["PlayApp", "PlayArgs", "cli", "main", "scripted_keys"]


@dataclass(frozen=True)
class PlayArgs:
    """drive a dream from the keyboard in a pygame window (extra: play)"""

    id: tyro.conf.Positional[Annotated[str, tyro.conf.arg(metavar="ID")]] = "Dream-HalfCheetah-v0"
    """a registered id or a bundle folder"""
    bundle: str | None = None
    """a bundle folder instead of an id"""
    scale: int | None = None
    """pixels per frame pixel (None: the window fills about 512 px)"""
    fps: int | None = None
    """frame rate (None: the manifest's render_fps)"""
    seed: int = 0
    """seed of the first reset"""
    keys: str | None = None
    """a JSON file with your own key binding (the manifest keymap's form)"""
    multiverse: int = 4
    """dreams shown in the multiverse view (F6)"""
    record_dir: str = "."
    """where F5 recordings go"""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """where onnxruntime runs (auto: CUDA when onnxruntime offers it)"""
    benchmark: Annotated[int, tyro.conf.arg(metavar="N")] = 0
    """run N frames as fast as possible with scripted keys and print fps=<frames/s> last"""
    uncertainty_penalty: str = "bundle"
    """λ for bundles that give an uncertainty: reward minus λ·uncertainty ('bundle': its default; 0: raw)"""
    uncertainty_limit: str = "bundle"
    """τ for bundles that give an uncertainty: truncate above it ('bundle': its default; 'none': never)"""
    save_session: str | None = None
    """write the session (bundle hash, seed, every reset, step and rewind) to this JSON file when the window
    closes; `dreamgym replay FILE -o out.mp4` plays it back bit for bit"""


def cli(argv: list[str]) -> int:
    """drive a dream from the keyboard in a pygame window (extra: play)"""
    return main(tyro.cli(PlayArgs, args=list(argv), prog="dreamgym play", description=PlayArgs.__doc__))


def main(args: PlayArgs) -> int:
    """`dreamgym play` with its options parsed (`cli` parses them from the command line)."""
    require_pygame()
    from dreamgym.registration import resolve

    path = Path(args.bundle) if args.bundle else resolve(args.id)
    if Bundle.load(path, verify_hashes=False).is_multi_agent:  # two people on one keyboard
        mapp = MultiPlayApp(
            path,
            scale=args.scale,
            fps=args.fps,
            seed=args.seed,
            multiverse=args.multiverse,
            record_dir=args.record_dir,
            env_options={
                "device": args.device,
                **uncertainty_options(args.uncertainty_penalty, args.uncertainty_limit),
            },
        )
        if args.benchmark:
            print(f"fps={mapp.run(max_frames=args.benchmark, benchmark=True, script=scripted_players(mapp)):.1f}")
        else:
            mapp.run()
        return 0
    app = PlayApp(
        path,
        scale=args.scale,
        fps=args.fps,
        seed=args.seed,
        keymap_file=args.keys,
        multiverse=args.multiverse,
        record_dir=args.record_dir,
        device=getattr(args, "device", "auto"),
        env_options=uncertainty_options(args.uncertainty_penalty, args.uncertainty_limit),
        save_session=args.save_session,
    )
    if args.benchmark:
        fps = app.run(max_frames=args.benchmark, benchmark=True, script=scripted_keys(app.keys))
        print(f"fps={fps:.1f}")
    else:
        app.run()
    return 0

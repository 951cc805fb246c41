"""Saved play sessions, replayed bit for bit.

    dreamgym play ID --save-session session.json    # when the window closes (or on Ctrl-C)
    dreamgym replay session.json -o session.mp4     # the same dream, frame for frame

A session file is JSON: the bundle's id and folder, the sha256 of its manifest (which holds the hash of every
file of the bundle), the seed, the env options, and the events in order: every reset (with the real context
when the real env gave one), every step with the action taken, every rewind. A replay drives the same front
end, headless, through the same events on the CPU, so every frame is the one the person saw (a session played
on a GPU replays on the CPU to within the float differences between them). A session of another bundle, or of
this bundle changed, is refused with both hashes. The file itself (writing, reading, checking) is
play/sessionlog.py; its names stay importable from here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import tyro

from .sessionlog import EVENTS, FORMAT, bundle_hash, load_session, save_session
from .single import PlayApp

__all__ = ["EVENTS", "FORMAT", "ReplayArgs", "bundle_hash", "cli", "load_session", "replay_frames", "save_session"]


def replay_frames(path: str | Path, bundle: str | Path | None = None):
    """Yield the dream's frame after every event of the session (the first: after its first reset)."""
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    from dreamgym.bundle import Bundle
    from dreamgym.registration import resolve

    data = load_session(path)
    folder = Path(bundle) if bundle else None
    if folder is None:
        saved = Path(data.get("bundle_path", ""))
        folder = saved if (saved / "dreamgym.json").is_file() else resolve(data["bundle_id"])
    b = Bundle.load(folder)
    got = bundle_hash(b)
    if got != data["bundle_sha256"]:
        raise ValueError(
            f"session {str(path)!r} was played on {data['bundle_id']} with manifest sha256 "
            f"{data['bundle_sha256'][:16]}…, but {folder} has {got[:16]}… (another bundle, or this one changed): "
            "it would not replay the same dream; pass the bundle it was played on with --bundle"
        )
    app = PlayApp(folder, seed=data["seed"], device="cpu", env_options=data.get("env_options") or {})
    try:  # the app's first reset (with the seed) is the session's first event
        yield app.env.render()[0]
        for kind, value in data["events"][1:]:
            if kind == "step":
                app.advance(np.asarray(value, dtype=app.bundle.action_space.dtype), auto_reset=False)
            elif kind == "rewind":
                app.rewind()
            else:
                ctx = (value or {}).get("context")
                app.reset(context={k: np.asarray(v) for k, v in ctx.items()} if ctx else None)
            yield app.env.render()[0]
    finally:
        app.close()


@dataclass(frozen=True)
class ReplayArgs:
    """replay a session saved by `dreamgym play --save-session` into a video, bit for bit (extra: play)"""

    session: Annotated[str, tyro.conf.Positional, tyro.conf.arg(metavar="FILE")]
    """the session file"""
    output: Annotated[str, tyro.conf.arg(aliases=["-o"])] = "session.mp4"
    """the video written (.mp4 or .gif)"""
    bundle: str | None = None
    """the bundle folder it was played on (default: the folder or id the session names)"""
    fps: int | None = None
    """frames per second (default: the bundle's)"""
    scale: int = 4
    """pixels per frame pixel"""


def cli(argv: list[str]) -> int:
    """replay a session saved by `dreamgym play --save-session` into a video, bit for bit (extra: play)"""
    from dreamgym.video import VideoWriter, upscale

    a = tyro.cli(ReplayArgs, args=list(argv), prog="dreamgym replay", description=ReplayArgs.__doc__)
    frames = replay_frames(a.session, a.bundle)
    first = next(frames)
    data = load_session(a.session)
    from dreamgym.bundle import Bundle
    from dreamgym.registration import resolve

    fps = a.fps or Bundle.load(a.bundle or resolve(data["bundle_id"]), verify_hashes=False).render_fps
    n = 0
    with VideoWriter(a.output, fps, background=True) as w:
        for f in (first, *frames):
            w.write(upscale(f, a.scale))
            n += 1
    print(f"replayed {len(data['events'])} events of {data['bundle_id']} into {a.output} ({n} frames)")
    return 0

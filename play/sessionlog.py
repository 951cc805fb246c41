"""The session file of `dreamgym play --save-session`: written when the window closes, read (and checked)
by `dreamgym replay` (play/replay.py), which plays it back bit for bit.

A session file is JSON: the bundle's id and folder, the sha256 of its manifest (which holds the hash of every
file of the bundle), the seed, the env options, and the events in order: every reset (with the real context
when the real env gave one), every step with the action taken, every rewind.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

FORMAT = 1
EVENTS = ("reset", "step", "rewind")


def bundle_hash(bundle) -> str:
    from dreamgym.bundle import MANIFEST, sha256_file

    return sha256_file(Path(bundle.path) / MANIFEST)


def save_session(path: str | Path, app) -> Path:
    """Write `app`'s session (a `PlayApp`) atomically: the old file or the new one."""
    path = Path(path)
    data = {
        "format": FORMAT,
        "bundle_id": app.bundle.id,
        "bundle_path": str(app.bundle.path),
        "bundle_sha256": bundle_hash(app.bundle),
        "seed": app.seed,
        "env_options": app.env_options,
        "events": list(app.events),
    }
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data) + "\n")
    os.replace(tmp, path)
    return path


def load_session(path: str | Path) -> dict:
    """Read and check a session file; ValueError saying what is wrong otherwise."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as e:
        raise ValueError(f"session file {str(path)!r} does not exist") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"session file {str(path)!r} is not JSON: {e}") from e
    need = {"format": int, "bundle_id": str, "bundle_sha256": str, "seed": int, "events": list}
    for key, kind in need.items():
        if not isinstance(data, dict) or not isinstance(data.get(key), kind):
            raise ValueError(f"session file {str(path)!r}: {key!r} must be a {kind.__name__}")
    if data["format"] != FORMAT:
        raise ValueError(f"session file {str(path)!r} has format {data['format']}; this dreamgym reads {FORMAT}")
    for i, ev in enumerate(data["events"]):
        if not (isinstance(ev, list) and len(ev) == 2 and ev[0] in EVENTS):
            raise ValueError(
                f"session file {str(path)!r}: event {i} is {ev!r}, expected [kind, value], kind in {EVENTS}"
            )
    if not data["events"] or data["events"][0][0] != "reset":
        raise ValueError(f"session file {str(path)!r}: a session starts with its first reset")
    return data

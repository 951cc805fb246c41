"""dreamgym.play: the pygame front end (``pip install "dreamgym[play]"``).

    dreamgym play Dream-HalfCheetah-v0

The runtime never imports this package; it imports the runtime. `dreamgym play` reaches `app.cli` through
the entry-point group ``dreamgym.commands`` (pyproject.toml).
"""

from .keys import CONTROL_KEYS, KeyMap, KeymapError

__all__ = ["CONTROL_KEYS", "KeyMap", "KeymapError", "PlayApp", "cli", "main"]


def __getattr__(name):
    if name in ("PlayApp", "cli", "main"):
        from . import app

        return getattr(app, name)
    raise AttributeError(name)

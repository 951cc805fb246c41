"""dreamgym.play: the pygame front end (``pip install "dreamgym[play]"``).

    dreamgym play Dream-HalfCheetah-v0

The runtime never imports this package; it imports the runtime.
"""

from .keys import CONTROL_KEYS, KeyMap, KeymapError

__all__ = ["CONTROL_KEYS", "KeyMap", "KeymapError", "PlayApp", "main"]


def __getattr__(name):
    if name in ("PlayApp", "main"):
        from . import app

        return getattr(app, name)
    raise AttributeError(name)

"""What both play windows share: pygame (an optional extra), the colours, the HUD's width, its fonts, text
and the message line.

The HUD's font is pygame's own default (freesansbold.ttf, shipped inside pygame, so every install draws the
same pixels). It has no glyph for some characters a manifest may name an action with (Dream-Breakout-v0's
latent actions are "≈ LEFT", "≈ RIGHT"), and pygame draws a missing glyph as an empty box ("▯ LEFT"), so
`Font` draws such a character as an ASCII stand-in ("~ LEFT").
"""

from __future__ import annotations

import time

try:
    import pygame
except ImportError:  # pragma: no cover - depends on the install
    pygame = None

HUD_W = 230
BG = (18, 18, 22)
FG = (230, 230, 230)
DIM = (140, 140, 150)
ACCENT = (90, 170, 255)
WARN = (255, 120, 90)

STAND_INS = {
    "≈": "~",
    "∼": "~",
    "←": "<-",
    "→": "->",
    "↑": "^",
    "↓": "v",
    "↔": "<->",
    "…": "...",
    "−": "-",
    "–": "-",
    "—": "-",
    "≤": "<=",
    "≥": ">=",
    "≠": "!=",
    "×": "x",
    "·": ".",
}
"""what a character the font has no glyph for is drawn as (any other missing character: '?')"""


def require_pygame():
    if pygame is None:
        from dreamgym.errors import DependencyNotInstalled

        raise DependencyNotInstalled(
            'dreamgym play needs pygame; run `pip install "dreamgym[play]"` (it installs pygame-ce)'
        )
    return pygame


class Font:
    """A HUD font (`file`: None is pygame's default) that draws only glyphs it has: a character it lacks is
    drawn as its `STAND_INS` stand-in (or '?'). `render` is pygame's `Font.render` after `printable`."""

    def __init__(self, size: int, file=None):
        self.file, self.size = file, size
        self.font = pygame.font.Font(file, size)
        self._has: dict[str, bool] = {}
        self._glyphs = None

    def has_glyph(self, ch: str) -> bool:
        """Whether the font file has a glyph for `ch` (pygame.font's `metrics` gives the empty box's metrics
        for a missing one in pygame-ce; pygame.freetype's `get_metrics` gives None)."""
        if ch.isascii():
            return True  # freesansbold (and any text font) has printable ASCII
        if ch not in self._has:
            try:
                if self._glyphs is None:
                    import pygame.freetype

                    pygame.freetype.init()
                    self._glyphs = pygame.freetype.Font(self.file, self.size)
                self._has[ch] = self._glyphs.get_metrics(ch)[0] is not None
            except (ImportError, pygame.error):  # a pygame without freetype: pygame.font's own answer
                self._has[ch] = self.font.metrics(ch)[0] is not None
        return self._has[ch]

    def printable(self, text: str) -> str:
        """`text` with every character the font cannot draw replaced by its stand-in."""
        if text.isascii():
            return text
        out = []
        for ch in text:
            if self.has_glyph(ch):
                out.append(ch)
            else:
                sub = STAND_INS.get(ch, "?")
                out.append(sub if all(self.has_glyph(c) for c in sub) else "?")
        return "".join(out)

    def render(self, text: str, antialias: bool, color, background=None):
        return self.font.render(self.printable(text), antialias, color, background)


class Window:
    """A play window's text pieces (mixed into both front ends, which make `font` and `small`, two `Font`s):
    text at a place, and a message shown for a few seconds."""

    screen: pygame.Surface
    font: Font

    def say(self, text: str, seconds: float = 2.0) -> None:
        self.message, self.message_until = text, time.perf_counter() + seconds

    def _text(self, text, x, y, color=FG, font=None):
        self.screen.blit((font or self.font).render(text, True, color), (x, y))

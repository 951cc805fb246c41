"""The single-agent play window's picture (mixed into `play.single.PlayApp`): the layout, the main view
(the dream, the multiverse tiles or real | dream), the latent-action palette under it, the HUD beside it
and the help panel over it. What it draws is the app's state; it changes none of it."""

from __future__ import annotations

import time

import numpy as np

from dreamgym.video import tile

from .keys import CONTROL_KEYS
from .ui import ACCENT, BG, DIM, FG, HUD_W, WARN, pygame


class PlayView:
    """Drawing for `PlayApp`: reads its bundle, dreams, keys, counters and flags."""

    # -- layout ---------------------------------------------------------------------------------------
    def _view_frames(self) -> int:
        return self.n_multiverse if self.multiverse is not None else (2 if self.real is not None else 1)

    def _resize(self) -> None:
        H, W, _ = self.bundle.frame_shape
        n = self._view_frames()
        if self.multiverse is not None:
            img = tile(np.zeros((n, H, W, 3), np.uint8))
            vh, vw = img.shape[:2]
            k = max(1, self.scale // int(np.ceil(np.sqrt(n))))
        else:
            vh, vw, k = H, W * n + 2 * (n - 1), self.scale
        self.view_scale = k
        self.view_size = (vw * k, vh * k)
        self.palette_rect = (0, 0, 0, 0)
        ph = 0
        if self.palette is not None:  # thumbnails under the main view, 4 per row, each with its label
            n, cols = self.keys.n, min(self.keys.n, 4)
            rows = -(-n // cols)
            thumb = max(H, self.view_size[0] // cols - 6)
            self.palette_rect = (cols, rows, thumb, self.view_size[1] + 4)
            ph = rows * (thumb + 22) + 8
        size = (self.view_size[0] + HUD_W, max(self.view_size[1] + ph, 420))
        self.screen = pygame.display.set_mode(size)
        pygame.display.set_caption(f"dreamgym play — {self.bundle.id}")

    # -- drawing --------------------------------------------------------------------------------------
    def view(self) -> np.ndarray:
        """The image in the main panel (before scaling): the dream, the multiverse tiles, or real | dream."""
        frame = self.env.render()[0]
        if self.multiverse is not None:
            return tile(np.stack([frame, *self.multiverse.render()]))
        if self.real is not None and self.real_frame is not None:
            return tile(np.stack([self.real_frame, frame]), cols=2)
        return frame

    def draw(self) -> None:
        scr = self.screen
        scr.fill(BG)
        img = self.view()
        surf = pygame.surfarray.make_surface(np.ascontiguousarray(img.swapaxes(0, 1)))
        scr.blit(pygame.transform.scale(surf, self.view_size), (0, 0))  # nearest: crisp pixels
        if self.palette is not None:
            self._draw_palette()
        self._hud(self.view_size[0] + 10)
        if self.show_help:
            self._help()
        pygame.display.flip()
        if self.writer is not None:
            self.writer.write(pygame.surfarray.array3d(scr).swapaxes(0, 1))

    def _draw_palette(self) -> None:
        frames = self.update_palette()
        cols, _, thumb, y0 = self.palette_rect
        meanings = self.bundle.manifest.action_meanings or []
        chosen = int(np.asarray(self.action).reshape(-1)[0])
        for i, f in enumerate(frames):
            x, y = (i % cols) * (thumb + 6) + 3, y0 + (i // cols) * (thumb + 22)
            label = f"{i + 1}: {meanings[i]}" if i < len(meanings) else f"{i + 1}: code {i}"
            self._text(label, x, y, ACCENT if i == chosen else DIM, self.small)
            surf = pygame.surfarray.make_surface(np.ascontiguousarray(f.swapaxes(0, 1)))
            self.screen.blit(pygame.transform.scale(surf, (thumb, thumb)), (x, y + 16))
            if i == chosen:
                pygame.draw.rect(self.screen, ACCENT, (x - 2, y + 14, thumb + 4, thumb + 4), 2)

    def _hud(self, x: int) -> None:
        b = self.bundle
        now = time.perf_counter()
        self._fps_clock.append(now)
        fps = (
            (len(self._fps_clock) - 1) / (self._fps_clock[-1] - self._fps_clock[0]) if len(self._fps_clock) > 1 else 0.0
        )
        y = 8
        for text, color in [
            (b.id, ACCENT),
            (f"family {b.family}", DIM),
            (f"step {self.t}", FG),
            (f"reward {self.reward:+.3f}", FG),
            (f"return {self.ret:+.2f}", FG),
            (f"fps {fps:.0f} / {self.fps}", DIM),
            (
                "PAUSED" if self.paused else ("policy drives" if self.policy_drives else "you drive"),
                WARN if self.paused else FG,
            ),
        ]:
            self._text(text, x, y, color)
            y += 20
        for k, v in self.extra.items():
            limit = self.env.uncertainty_limit if k == "uncertainty" else None
            self._text(f"{k.replace('_', ' ')} {v:.3f}", x, y, WARN if (limit is not None and v > limit) else DIM)
            y += 20
        if self.real is not None:
            self._text(f"real return {self.real_ret:+.2f}", x, y, DIM)
            y += 20
        if self.writer is not None:
            self._text(f"REC {self.writer.frames}", x, y, WARN)
            y += 20
        if self.rebind is not None:
            self._text("REBIND (F8)", x, y, WARN)
            y += 20
        y += 6
        a = np.atleast_1d(np.asarray(self.action, np.float32))
        if self.keys.kind == "continuous":
            names = [p[3] for p in sorted(self.keys.pairs)]
            for i, v in enumerate(a):
                self._text(names[i] if i < len(names) else f"a{i}", x, y, DIM, self.small)
                cx, w = x + 150, 30
                pygame.draw.rect(self.screen, (60, 60, 70), (cx - w, y + 2, 2 * w, 10))
                half = float(self.keys.half[i]) or 1.0
                v = float(np.clip((v - self.keys.mid[i]) / half, -1, 1))
                pygame.draw.rect(self.screen, ACCENT, (cx + min(0, int(v * w)), y + 2, abs(int(v * w)), 10))
                y += 16
        else:
            meanings = b.manifest.action_meanings or []
            k = int(a[0])
            self._text(f"action {k}" + (f" {meanings[k]}" if k < len(meanings) else ""), x, y, FG)
            y += 20
        if self.message and time.perf_counter() < self.message_until:
            self._text(self.message, 8, self.screen.get_height() - 22, WARN, self.small)
        self._text("F1: help", x, self.screen.get_height() - 22, DIM, self.small)

    def _help(self) -> None:
        lines = (
            ["controls"]
            + [f"{k}  {v}" for k, v in CONTROL_KEYS.items()]
            + ["", "action keys"]
            + self.keys.help_lines(pygame.key.name)
        )
        h = 20 * len(lines) + 16
        panel = pygame.Surface((self.screen.get_width() - 40, min(h, self.screen.get_height() - 40)), pygame.SRCALPHA)
        panel.fill((0, 0, 0, 215))
        self.screen.blit(panel, (20, 20))
        for i, line in enumerate(lines):
            self._text(line, 32, 28 + 20 * i, ACCENT if line in ("controls", "action keys") else FG)

"""`dreamgym play` for multi-agent dreams: a thin pygame view over `play.session.GameSession`.

Two people on one keyboard: each player's keys come from their agent's keymap in the manifest (player
one W A S D, player two the arrows for Dream-SimpleTag-v0); the other agents are driven by the bundle's
policies. Tab hands player one's agent to its policy and back (right shift: player two's).

A scene-drawn dream's frame shows a fixed window of the world (play/scene.py): an agent that leaves it is
marked at the edge of its game's frame by a triangle in its colour pointing towards it.
"""

from __future__ import annotations

import collections
import time
from pathlib import Path

import numpy as np

from dreamgym.bundle import Bundle
from dreamgym.video import VideoWriter

from .keys import KeyMap
from .scene import Marker, Scene
from .session import GameSession
from .ui import ACCENT, BG, DIM, FG, HUD_W, WARN, Font, Window, require_pygame

# the multi-agent view's own keys: the arrows belong to player two, so rewind and single step move
CONTROLS = {
    "escape": "quit",
    "space": "pause / resume",
    "return": "new game from a fresh real context",
    "backspace": "rewind one step (hold to keep rewinding)",
    ".": "single step (paused)",
    "tab": "player 1's agent <-> its policy",
    "right shift": "player 2's agent <-> its policy",
    "f1": "help",
    "f5": "start / stop recording mp4",
    "f6": "multiverse view",
    "f7": "real env side by side",
}


class MultiPlayApp(Window):
    """The window. `frame(events)` does one loop iteration (for tests and the benchmark)."""

    def __init__(
        self,
        bundle: str | Path | Bundle,
        scale: int | None = None,
        fps: int | None = None,
        seed: int = 0,
        multiverse: int = 4,
        record_dir: str | Path = ".",
        env_options: dict | None = None,
    ):
        self.pg = pg = require_pygame()
        self.session = GameSession(bundle, seed=seed, multiverse=multiverse, env_options=env_options)
        b = self.bundle = self.session.bundle
        self.fps = int(fps or b.render_fps)
        H, W, _ = b.frame_shape
        self.scale = int(scale or max(1, 512 // max(H, W)))
        pg.display.init()
        pg.font.init()
        self.font, self.small = Font(20), Font(17)
        self.keys = {}  # agent -> its player's KeyMap
        for agent in self.session.players.values():
            spec = b.manifest.agent(agent)
            self.keys[agent] = KeyMap(dict(spec.keymap), spec.action_space, pg.key.key_code, reserved=CONTROLS)
        self.held: set[int] = set()
        self.record_dir = Path(record_dir)
        self.paused = self.step_once = self.show_help = False
        self.writer: VideoWriter | None = None
        self.message, self.message_until = "", 0.0
        self.running, self.frames_drawn = True, 0
        self._fps_clock: collections.deque = collections.deque(maxlen=30)
        self._back = 0
        self.scene = Scene.of(b.manifest)  # None: not a scene-drawn dream, nothing to mark
        self.markers: list[tuple[int, Marker]] = []  # (game's panel, marker) drawn in the last frame
        self._resize()

    def _resize(self) -> None:
        img = self.session.view()
        n = 1 if self.session.multiverse is None else int(np.ceil(np.sqrt(self.session.n_multiverse)))
        k = max(1, self.scale // n)
        self.view_scale, self.view_size = k, (img.shape[1] * k, img.shape[0] * k)
        self.screen = self.pg.display.set_mode((self.view_size[0] + HUD_W, max(self.view_size[1], 460)))
        self.pg.display.set_caption(f"dreamgym play — {self.bundle.id}")

    # -- input --------------------------------------------------------------------------------------
    def handle(self, event) -> None:
        pg = self.pg
        if event.type == pg.QUIT:
            self.running = False
        elif event.type == pg.KEYDOWN:
            self.held.add(event.key)
            name = pg.key.name(event.key)
            if name in CONTROLS:
                self.control(name)
        elif event.type == pg.KEYUP:
            self.held.discard(event.key)

    def control(self, name: str) -> None:
        s = self.session
        if name == "escape":
            self.running = False
        elif name == "space":
            self.paused = not self.paused
        elif name == "return":
            s.reset()
            self.say("a new game from a fresh real context")
        elif name == "." and self.paused:
            self.step_once = True
        elif name == "backspace":
            if not s.rewind():
                self.say("nothing left to rewind")
        elif name in ("tab", "right shift"):
            p = 1 if name == "tab" else 2
            if p in s.players:
                self.say(f"{s.players[p]}: {s.hand_over(p)} drives")
        elif name == "f1":
            self.show_help = not self.show_help
        elif name == "f5":
            self.toggle_recording()
        elif name == "f6":
            self.say("multiverse on" if s.toggle_multiverse() else "multiverse off")
            self._resize()
        elif name == "f7":
            try:
                self.say("real env | dream from the same start" if s.toggle_real() else "real env off")
            except Exception as e:  # a missing simulator must not end the game
                self.say(f"no real env: {e}", 5)
            self._resize()

    def toggle_recording(self) -> None:
        if self.writer is None:
            path = self.record_dir / f"{self.bundle.id}-{time.strftime('%Y%m%d-%H%M%S')}.mp4"
            try:
                self.writer = VideoWriter(path, self.fps, background=True)
                self.say(f"recording to {path.name}")
            except Exception as e:
                self.say(f"cannot record: {e}", 4)
        else:
            self.last_recording = self.writer.close()
            self.writer = None
            self.say(f"saved {self.last_recording}")

    # -- drawing ------------------------------------------------------------------------------------
    def draw(self) -> None:
        pg, scr = self.pg, self.screen
        scr.fill(BG)
        img = self.session.view()
        surf = pg.surfarray.make_surface(np.ascontiguousarray(img.swapaxes(0, 1)))
        scr.blit(pg.transform.scale(surf, self.view_size), (0, 0))
        self._draw_markers()
        self._hud(self.view_size[0] + 10)
        if self.show_help:
            self._help()
        pg.display.flip()
        if self.writer is not None:
            self.writer.write(pg.surfarray.array3d(scr).swapaxes(0, 1))

    def _draw_markers(self) -> None:
        """Every agent a game's frame has lost: a triangle in its colour (outlined) at the frame's edge nearest
        to it, its tip pointing towards it."""
        self.markers = []
        if self.scene is None:
            return
        pg, k = self.pg, self.view_scale
        H, W, _ = self.bundle.frame_shape
        size = max(10.0, 2.0 * k)  # the triangle's length in screen pixels
        for n, (y0, x0, obs) in enumerate(self.session.view_panels()):
            for m in self.scene.markers(obs) if obs else ():
                self.markers.append((n, m))
                tx = x0 * k + min(max(m.at[0] * W * k, 1.0), W * k - 2.0)  # the tip, just inside the frame
                ty = y0 * k + min(max(m.at[1] * H * k, 1.0), H * k - 2.0)
                ux, uy = m.towards
                bx, by = tx - ux * size, ty - uy * size  # the base's middle, inside the frame
                px, py = -uy * size * 0.55, ux * size * 0.55
                tri = [(tx, ty), (bx + px, by + py), (bx - px, by - py)]
                pg.draw.polygon(self.screen, m.color, tri)
                pg.draw.polygon(self.screen, (0, 0, 0), tri, 1)

    def _hud(self, x: int) -> None:
        s = self.session
        now = time.perf_counter()
        self._fps_clock.append(now)
        c = self._fps_clock
        fps = (len(c) - 1) / (c[-1] - c[0]) if len(c) > 1 and c[-1] > c[0] else 0.0
        y = 8
        for text, color in [
            (self.bundle.id, ACCENT),
            (f"step {s.t}", FG),
            (f"fps {fps:.0f} / {self.fps}", DIM),
            ("PAUSED" if self.paused else "", WARN),
        ]:
            if text:
                self._text(text, x, y, color)
                y += 20
        for a in s.agents:
            y += 4
            who = s.controller[a]
            self._text(a, x, y, ACCENT if who != "policy" else FG)
            y += 18
            self._text(f"  {who}", x, y, DIM, self.small)
            y += 16
            self._text(f"  reward {s.rewards[a]:+.2f}  return {s.returns[a]:+.1f}", x, y, FG, self.small)
            y += 16
            if s.real is not None:
                self._text(f"  real return {s.real_returns[a]:+.1f}", x, y, DIM, self.small)
                y += 16
        for k, v in s.extra.items():
            self._text(f"{k.replace('_', ' ')} {v:.3f}", x, y, DIM, self.small)
            y += 16
        if self.writer is not None:
            self._text(f"REC {self.writer.frames}", x, y, WARN)
        if self.message and time.perf_counter() < self.message_until:
            self._text(self.message, 8, self.screen.get_height() - 22, WARN, self.small)
        self._text("F1: help", x, self.screen.get_height() - 22, DIM, self.small)

    def _help(self) -> None:
        pg = self.pg
        lines = ["controls"] + [f"{k}  {v}" for k, v in CONTROLS.items()]
        for p, a in self.session.players.items():
            lines += ["", f"player {p}: {a}"] + self.keys[a].help_lines(pg.key.name)
        panel = pg.Surface((self.screen.get_width() - 40, self.screen.get_height() - 40), pg.SRCALPHA)
        panel.fill((0, 0, 0, 215))
        self.screen.blit(panel, (20, 20))
        for i, line in enumerate(lines):
            self._text(
                line, 32, 28 + 18 * i, ACCENT if line == "controls" or line.startswith("player") else FG, self.small
            )

    # -- the loop -----------------------------------------------------------------------------------
    def people(self) -> dict[str, np.ndarray]:
        return {a: k.update(self.held) for a, k in self.keys.items()}

    def frame(self, events=()) -> None:
        """One iteration: events, at most one game step (or a rewind), drawing."""
        for e in list(events) + self.pg.event.get():
            self.handle(e)
        back = self.pg.K_BACKSPACE in self.held
        self._back = self._back + 1 if back else 0
        if back and self._back > 8:
            self.session.rewind()
        elif not self.paused or self.step_once:
            self.session.step(self.people())
            if self.session.ended:
                self.say(f"game over ({self.session.ended}): a new one")
            self.step_once = False
        self.draw()
        self.frames_drawn += 1

    def run(self, max_frames: int | None = None, benchmark: bool = False, script=None) -> float:
        clock = self.pg.time.Clock()
        t0, n = time.perf_counter(), 0
        while self.running and (max_frames is None or n < max_frames):
            self.frame(script(n) if script else ())
            n += 1
            if not benchmark:
                clock.tick(self.fps)
        dt = time.perf_counter() - t0
        self.close()
        return n / dt if dt > 0 else float("inf")

    def close(self) -> None:
        if self.writer is not None:
            self.toggle_recording()
        self.session.close()
        self.pg.display.quit()


def scripted_players(app: MultiPlayApp):
    """The benchmark's two scripted players: each presses its keys in turn, a different one every 10 frames."""
    pg = app.pg
    codes = [[k for k, _, _ in km.pushes] for km in app.keys.values()]

    def script(n: int):
        ev = []
        for j, keys in enumerate(codes):
            if keys and (n + 5 * j) % 10 == 0:
                ev.append(pg.event.Event(pg.KEYDOWN, key=keys[((n + 5 * j) // 10) % len(keys)]))
            if keys and (n + 5 * j) % 10 == 7:
                ev.append(pg.event.Event(pg.KEYUP, key=keys[((n + 5 * j) // 10) % len(keys)]))
        return ev

    return script

"""`dreamgym play`: drive a dream from the keyboard in a pygame window.

Works for every bundle from its manifest alone: the keymap, the frame shape, the fps, the optional
policy and the source env. The model state is just tensors, so rewinding is exact: every frame's
snapshot (state, counters, generator) goes into a ring buffer.

Latent-action dreams (a `latent` keymap, e.g. a Genie bundle) get a palette under the main view: the next
frame under each of the K latent actions, computed as one batched step of K forks of the current state
(most likely tokens, so the thumbnails differ by the action alone). Number keys and the learned keys
choose; F8 rebinds a key to a code and saves the binding to RECORD_DIR/ID.keys.json, which `--keys` reads.
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import tyro
from gymnasium.vector import AutoresetMode

from dreamgym.bundle import Bundle
from dreamgym.source import SourceEnv, open_source_env
from dreamgym.vector_env import DreamVectorEnv, uncertainty_options
from dreamgym.video import VideoWriter, tile

from .keys import CONTROL_KEYS, KeyMap

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


def require_pygame():
    if pygame is None:
        from dreamgym.errors import DependencyNotInstalled

        raise DependencyNotInstalled(
            'dreamgym play needs pygame; run `pip install "dreamgym[play]"` (it installs pygame-ce)'
        )
    return pygame


class PlayApp:
    """The front end. `run()` is the interactive loop; `frame()` does one loop iteration (for tests)."""

    def __init__(
        self,
        bundle: str | Path,
        scale: int | None = None,
        fps: int | None = None,
        seed: int = 0,
        keymap_file: str | None = None,
        multiverse: int = 4,
        history_seconds: float = 30.0,
        record_dir: str | Path = ".",
        device: str = "auto",
        env_options: dict | None = None,
        save_session: str | Path | None = None,
    ):
        require_pygame()
        # the session log (`--save-session`): every reset, step and rewind, replayed bit for bit by
        # `dreamgym replay` (play/replay.py)
        self.session_file = Path(save_session) if save_session else None
        self.events: list[list] = []
        self.bundle = Bundle.load(bundle)
        b = self.bundle
        self.env_options = dict(env_options or {})  # more keyword arguments of the dreams (uncertainty options)
        # a person plays whole episodes, as the real env runs them, not a bundle's short training horizon
        self.env_options.setdefault("max_episode_steps", b.max_episode_steps)
        self.env = DreamVectorEnv(
            b, 1, render_mode="rgb_array", autoreset_mode=AutoresetMode.DISABLED, device=device, **self.env_options
        )
        self.fps = int(fps or b.render_fps)
        H, W, _ = b.frame_shape
        self.scale = int(scale or max(1, 512 // max(H, W)))
        pygame.display.init()  # not pygame.init(): no audio device is needed
        pygame.font.init()
        self.font = pygame.font.Font(None, 20)
        self.small = pygame.font.Font(None, 17)
        self.keys = (
            KeyMap.load(keymap_file, b.action_space, pygame.key.key_code)
            if keymap_file
            else KeyMap(b.manifest.keymap, b.action_space, pygame.key.key_code)
        )
        self.policy = None
        if b.has_graph("policy"):
            self.policy = self.env.engine.session("policy")
        self.seed = seed
        self.held: set[int] = set()  # our own key state: pygame does not report posted events in get_pressed
        self.history: collections.deque = collections.deque(maxlen=int(history_seconds * self.fps))
        self.n_multiverse = max(2, int(multiverse))
        self.record_dir = Path(record_dir)
        self.paused = False
        self.step_once = False
        self.show_help = False
        self.policy_drives = False
        self.multiverse: DreamVectorEnv | None = None
        self.real: SourceEnv | None = None
        self.real_frame = None
        self.writer: VideoWriter | None = None
        self.message, self.message_until = "", 0.0
        self.running = True
        self.frames_drawn = 0
        self._fps_clock = collections.deque(maxlen=30)
        self.palette: DreamVectorEnv | None = None  # K forks of the current state, one per latent action
        self.palette_frames: np.ndarray | None = None
        self.rebind: int | None = None  # F8: None, -1 (waiting for the code's number key) or the code
        if self.keys.kind == "latent":
            self.palette = DreamVectorEnv(
                b,
                self.keys.n,
                render_mode="rgb_array",
                autoreset_mode=AutoresetMode.DISABLED,
                device=self.env.device,
                noise_scale=0.0,
                **{**self.env_options, "max_episode_steps": 2**62},
            )
            self.palette.reset(seed=seed)
        self._resize()
        self.reset()

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

    # -- the dream ------------------------------------------------------------------------------------
    def reset(self, context: dict | None = None, auto: bool = False) -> None:
        """A fresh real context (the real env's own first C steps in side-by-side mode, or `context`, as a
        replay gives it); `auto`: the episode ended (logged as such)."""
        ctx = context
        if ctx is None and self.real is not None:
            ctx = self._real_context()
        self.obs, _ = self.env.reset(
            seed=self.seed if not hasattr(self, "_reset_once") else None, options={"context": ctx} if ctx else None
        )
        self._reset_once = True
        logged = {k: np.asarray(v).tolist() for k, v in ctx.items()} if ctx else None
        self.events.append(["reset", {"context": logged, "auto": auto}])
        self.keys.reset()
        self.t, self.ret, self.reward, self.extra = 0, 0.0, 0.0, {}
        self.real_ret = 0.0
        self.action = self._person_action(set())
        self.history.clear()
        self.palette_frames = None
        if self.multiverse is not None:
            self._fork_multiverse()

    def _real_context(self) -> dict:
        b = self.bundle
        C = b.context_length
        o = self.real.reset(seed=int(self.env.np_random.integers(2**31)))
        obs, acts = [o], [np.zeros(b.action_space.shape, np.float32)]
        for _ in range(C - 1):
            a = np.zeros(b.action_space.shape, np.float32)
            o, *_ = self.real.step(a)
            obs.append(o), acts.append(a)
        self.real_frame = self.real.frame()
        return {"obs": np.asarray(obs, np.float32)[None], "actions": np.asarray(acts, np.float32)[None]}

    def _fork_multiverse(self) -> None:
        """The other dreams start from exactly the main dream's state and differ by their noise."""
        k = self.n_multiverse - 1
        if self.multiverse is None:
            self.multiverse = DreamVectorEnv(
                self.bundle,
                k,
                render_mode="rgb_array",
                autoreset_mode=AutoresetMode.DISABLED,
                device=self.env.device,
                **self.env_options,
            )
            self.multiverse.reset(seed=self.seed + 1)
        st = self.env.engine.get_state()
        self.multiverse.engine.set_state({n: np.repeat(v, k, 0) for n, v in st.items()})

    def _person_action(self, held):
        return self.keys.update(held)

    def _policy_action(self, obs) -> np.ndarray:
        return self.policy.run(None, {"obs": np.asarray(obs, np.float32)})[0][0]

    def snapshot(self) -> dict:
        snap = {
            "env": self.env.get_state(),
            "rng": self.env.np_random.bit_generator.state,
            "t": self.t,
            "ret": self.ret,
            "reward": self.reward,
            "obs": self.obs.copy(),
        }
        if self.multiverse is not None:
            snap["mv"] = self.multiverse.engine.get_state()
            snap["mv_rng"] = self.multiverse.np_random.bit_generator.state
        if self.real is not None:
            snap["real"] = self.real.snapshot()  # None: this real env cannot go back
            snap["real_ret"] = self.real_ret
        return snap

    def restore(self, snap: dict) -> None:
        self.env.set_state(snap["env"])
        self.env.np_random.bit_generator.state = snap["rng"]
        self.t, self.ret, self.reward, self.obs = snap["t"], snap["ret"], snap["reward"], snap["obs"]
        if self.multiverse is not None and "mv" in snap:
            self.multiverse.engine.set_state(snap["mv"])
            self.multiverse.np_random.bit_generator.state = snap["mv_rng"]
        self.palette_frames = None
        if self.real is not None and snap.get("real") is not None:
            self.real.restore(snap["real"])
            self.real_ret = snap.get("real_ret", 0.0)
            self.real_frame = self.real.frame()

    def advance(self, action=None, auto_reset: bool = True) -> None:
        """One env-step of the dream(s) under the current action (or `action`, as a replay gives it); an
        episode that ends is reset unless `auto_reset` is False (a replay applies the logged reset itself)."""
        if action is not None:
            self.action = action
        elif self.policy is not None and self.policy_drives:
            self.action = self.keys.override(self._policy_action(self.obs), self.held)
        else:
            self.action = self._person_action(self.held)
        self.history.append(self.snapshot())
        a = np.asarray(self.action)[None]
        self.obs, r, term, trunc, info = self.env.step(a)
        self.events.append(["step", np.asarray(self.action).tolist()])
        self.reward = float(r[0])
        # a bundle's optional per-step outputs (an uncertainty, say), shown in the HUD
        self.extra = {k: float(v[0]) for k, v in info.items() if not k.startswith("_") and np.ndim(v) == 1}
        self.ret += self.reward
        self.t += 1
        self.palette_frames = None
        if self.multiverse is not None:
            self.multiverse.step(np.repeat(a, self.n_multiverse - 1, 0))
        if self.real is not None:
            _, rr, *_ = self.real.step(np.asarray(self.action))
            self.real_ret += rr
            self.real_frame = self.real.frame()
        if (term[0] or trunc[0]) and auto_reset:
            self.say("episode ended: " + ("terminated" if term[0] else "truncated") + ", reset")
            self.reset(auto=True)

    def update_palette(self) -> np.ndarray:
        """The next frame under every latent action: the current state forked K times, one batched step."""
        if self.palette_frames is None:
            st = self.env.engine.get_state()
            k = self.keys.n
            self.palette.engine.set_state({n: np.repeat(v, k, 0) for n, v in st.items()})
            self.palette.step(np.arange(k))
            self.palette_frames = np.stack(self.palette.render())
        return self.palette_frames

    def keys_file(self) -> Path:
        return self.record_dir / f"{self.bundle.id}.keys.json"

    def rebind_key(self, name: str) -> None:
        """F8's two presses: the code's number key, then the key that will choose it."""
        import json

        if self.rebind == -1:
            if name.isdigit() and 0 <= (int(name) - 1) % 10 < self.keys.n:
                self.rebind = (int(name) - 1) % 10
                self.say(f"now press the key for latent action {self.rebind}", 5)
            else:
                self.say(f"press a number key 1..{min(self.keys.n, 10)} first (F8 again: cancel)", 5)
            return
        code, self.rebind = self.rebind, None
        try:
            self.keys.bind(name, code)
        except ValueError as e:  # KeymapError: a control key, an unknown name
            self.say(str(e), 5)
            return
        path = self.keys_file()
        path.write_text(json.dumps(self.keys.to_json(pygame.key.name), indent=2, ensure_ascii=False) + "\n")
        self.say(f"'{name}' -> latent action {code}; saved {path} (read it back with --keys)", 5)

    def rewind(self) -> bool:
        if not self.history:
            self.say("nothing left to rewind")
            return False
        self.restore(self.history.pop())
        self.events.append(["rewind", None])
        return True

    # -- input ----------------------------------------------------------------------------------------
    def say(self, text: str, seconds: float = 2.0) -> None:
        self.message, self.message_until = text, time.perf_counter() + seconds

    def handle(self, event) -> None:
        if event.type == pygame.QUIT:
            self.running = False
        elif event.type == pygame.KEYDOWN:
            name = pygame.key.name(event.key)
            if self.rebind is not None and name not in CONTROL_KEYS:
                self.rebind_key(name)
                return
            self.held.add(event.key)
            if name in CONTROL_KEYS:
                self.control(name)
        elif event.type == pygame.KEYUP:
            self.held.discard(event.key)

    def control(self, name: str) -> None:
        if name == "escape":
            self.running = False
        elif name == "space":
            self.paused = not self.paused
        elif name == "return":
            self.reset()
            self.say("reset to a fresh real context")
        elif name == "right" and self.paused:
            self.step_once = True
        elif name == "left":
            self.rewind()
        elif name == "tab":
            if self.policy is None:
                self.say("this bundle carries no policy.onnx")
            else:
                self.policy_drives = not self.policy_drives
                self.say("the policy drives (held keys override)" if self.policy_drives else "you drive")
        elif name == "f1":
            self.show_help = not self.show_help
        elif name == "f5":
            self.toggle_recording()
        elif name == "f6":
            self.toggle_multiverse()
        elif name == "f7":
            self.toggle_real()
        elif name == "f8":
            if self.palette is None:
                self.say("F8 rebinds latent actions; this dream's actions have their own keys")
            elif self.rebind is None:
                self.rebind = -1
                self.say(f"rebind: press the number key (1..{min(self.keys.n, 10)}) of a latent action", 5)
            else:
                self.rebind = None
                self.say("rebinding cancelled")

    def toggle_recording(self) -> None:
        if self.writer is None:
            path = self.record_dir / f"{self.bundle.id}-{time.strftime('%Y%m%d-%H%M%S')}.mp4"
            try:
                self.writer = VideoWriter(path, self.fps, background=True)
                self.say(f"recording to {path.name}")
            except Exception as e:  # a missing extra must not end the game
                self.say(f"cannot record: {e}", 4)
        else:
            path = self.writer.close()
            self.writer = None
            self.say(f"saved {path}")
            self.last_recording = path

    def toggle_multiverse(self) -> None:
        if self.multiverse is None:
            self._fork_multiverse()
            self.say(f"multiverse: {self.n_multiverse} dreams from the same state, same keys")
        else:
            self.multiverse.close()
            self.multiverse = None
        self._resize()

    def toggle_real(self) -> None:
        if self.real is None and self.palette is not None:
            self.say("no real env beside a latent-action dream: its actions are codes, not the game's", 5)
            return
        if self.real is None:
            try:
                self.real = open_source_env(self.bundle.manifest)
            except Exception as e:  # a missing simulator must not end the game
                self.say(f"no real env: {e}", 5)
                return
            self.multiverse = None
            self._resize()
            self.reset()
            self.say("real env | dream, same actions from the same real start")
        else:
            self.real.close()
            self.real, self.real_frame = None, None
            self._resize()

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

    def _text(self, text, x, y, color=FG, font=None):
        self.screen.blit((font or self.font).render(text, True, color), (x, y))

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

    # -- the loop -------------------------------------------------------------------------------------
    def frame(self, events=()) -> None:
        """One iteration: events, at most one env-step, drawing."""
        for e in list(events) + pygame.event.get():
            self.handle(e)
        if pygame.K_LEFT in self.held and self.history and self._left_held_frames() > 8:
            self.rewind()  # holding left keeps rewinding, one step per frame
        elif not self.paused or self.step_once:
            self.advance()
            self.step_once = False
        self.draw()
        self.frames_drawn += 1

    def _left_held_frames(self) -> int:
        self._left = getattr(self, "_left", 0) + 1 if pygame.K_LEFT in self.held else 0
        return self._left

    def run(self, max_frames: int | None = None, benchmark: bool = False, script=None) -> float:
        """Loop until quit (or `max_frames`); `benchmark` runs as fast as it can. Returns frames/s."""
        clock = pygame.time.Clock()
        t0 = time.perf_counter()
        n = 0
        try:  # Ctrl-C or an error in the loop still finishes an F5 recording (close() writes it)
            while self.running and (max_frames is None or n < max_frames):
                self.frame(script(n) if script else ())
                n += 1
                if not benchmark:
                    clock.tick(self.fps)
        finally:
            dt = time.perf_counter() - t0
            self.close()
        return n / dt if dt > 0 else float("inf")

    def close(self) -> None:
        if self.session_file is not None:
            from .replay import save_session

            save_session(self.session_file, self)
            self.session_file = None
        if self.writer is not None:
            self.toggle_recording()
        if self.real is not None:
            self.real.close()
        if self.palette is not None:
            self.palette.close()
        pygame.display.quit()


def scripted_keys(keymap: KeyMap):
    """A benchmark's key sequence: press and release each action key in turn, toggle pause twice."""
    codes = []
    if keymap.kind == "continuous":
        for _, neg, pos, _ in keymap.pairs:
            codes += [pos, neg]
    elif keymap.kind == "discrete":
        codes = [k for keys, _ in keymap.bindings for k in keys]
    else:
        codes = [k for k, _ in keymap.latent_keys]

    def script(n: int):
        ev = []
        if codes and n % 10 == 0:
            k = codes[(n // 10) % len(codes)]
            ev.append(pygame.event.Event(pygame.KEYDOWN, key=k))
        if codes and n % 10 == 7:
            k = codes[(n // 10) % len(codes)]
            ev.append(pygame.event.Event(pygame.KEYUP, key=k))
        return ev

    return script


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
        from .multi import MultiPlayApp, scripted_players

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

"""`dreamgym play` for single-agent dreams: drive a dream from the keyboard in a pygame window.

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
import json
import time
from pathlib import Path

import numpy as np
from gymnasium.vector import AutoresetMode

from dreamgym.bundle import Bundle
from dreamgym.source import SourceEnv, open_source_env
from dreamgym.vector_env import DreamVectorEnv
from dreamgym.video import VideoWriter

from .keys import CONTROL_KEYS, KeyMap
from .sessionlog import save_session
from .ui import Font, Window, pygame, require_pygame
from .view import PlayView


class PlayApp(Window, PlayView):
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
        self.font, self.small = Font(20), Font(17)
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

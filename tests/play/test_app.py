"""The pygame front end, headless (SDL_VIDEODRIVER=dummy): keys, controls, rewind, recording, views."""

import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
pygame = pytest.importorskip("pygame")

import dreamgym  # noqa: E402
from dreamgym.play.app import PlayApp  # noqa: E402
from dreamgym.play.keys import KeyMap, KeymapError  # noqa: E402

# subprocesses run outside the source tree, whose dreamgym/ folder would shadow the installed package
OUTSIDE = tempfile.gettempdir()

ID = "Dream-HalfCheetah-v0"


def down(key):
    return pygame.event.Event(pygame.KEYDOWN, key=pygame.key.key_code(key))


def up(key):
    return pygame.event.Event(pygame.KEYUP, key=pygame.key.key_code(key))


@pytest.fixture
def app(tmp_path):
    a = PlayApp(dreamgym.resolve(ID), record_dir=tmp_path, seed=0)
    yield a
    a.close()


def test_held_key_pushes_and_release_relaxes(app):
    app.frame([down("a")])  # 'a' is the back thigh's positive key
    assert app.action[0] == pytest.approx(app.keys.rate)
    for _ in range(10):
        app.frame()
    assert app.action[0] == pytest.approx(1.0)  # saturates at +1
    assert np.allclose(app.action[1:], 0)
    app.frame([up("a")])
    assert app.action[0] == pytest.approx(1.0 - app.keys.relax)
    for _ in range(5):
        app.frame()
    assert app.action[0] == 0.0
    app.frame([down("q")])  # the negative key of the same pair
    assert app.action[0] == pytest.approx(-app.keys.rate)


def test_every_action_dimension_has_a_key_pair(app):
    dims = sorted(p[0] for p in app.keys.pairs)
    assert dims == list(range(6))


def test_pause_single_step_and_rewind(app):
    for _ in range(5):
        app.frame()
    assert app.t == 5
    app.frame([down("space")])  # pause
    t = app.t
    app.frame([up("space")])
    app.frame()
    assert app.t == t
    app.frame([down("right")])  # one step while paused
    assert app.t == t + 1
    obs_before = app.obs.copy()
    app.frame([up("right"), down("left")])  # rewind one step
    assert app.t == t
    app.frame([up("left"), down("right")])  # replaying the step gives the same dream (exact rewind)
    np.testing.assert_array_equal(app.obs, obs_before)


def test_a_person_plays_whole_episodes(app):
    """The default dream trains learners in 5-step episodes (its env_defaults); play keeps the real env's 1000."""
    assert app.bundle.manifest.env_defaults.max_episode_steps == 5
    assert app.env.max_episode_steps == app.bundle.max_episode_steps == 1000
    for _ in range(12):
        app.advance()
    assert app.t == 12


def test_rewind_holds_at_least_ten_seconds(app):
    assert app.history.maxlen >= 10 * app.fps
    for _ in range(12 * app.fps):
        app.advance()
    assert len(app.history) >= 10 * app.fps


def test_reset_gives_a_fresh_context(app):
    for _ in range(5):
        app.frame()
    app.frame([down("return")])
    assert app.t == 1 and app.ret == pytest.approx(app.reward)  # reset then one step in this frame
    assert len(app.history) == 1


def test_recording_writes_a_readable_mp4(app, tmp_path):
    pytest.importorskip("imageio_ffmpeg")
    from dreamgym.video import read_video

    app.frame([down("f5")])
    for _ in range(12):
        app.frame()
    app.frame([up("f5"), down("f5")])  # stop
    path = app.last_recording
    assert path.exists() and path.suffix == ".mp4"
    frames = read_video(path)
    assert len(frames) == 13
    assert frames[0].shape[:2] == (app.screen.get_height(), app.screen.get_width())


def test_multiverse_tiles_the_right_number_of_frames(app):
    app.frame([down("f6")])
    assert app.multiverse is not None and app.multiverse.num_envs == app.n_multiverse - 1
    view = app.view()
    H, W, _ = app.bundle.frame_shape
    # 4 dreams -> a 2x2 grid with 2-pixel gaps
    assert view.shape == (2 * H + 2, 2 * W + 2, 3)
    app.frame()
    app.frame([down("f6")])
    assert app.multiverse is None and app.view().shape == (H, W, 3)


def test_policy_drives_and_keys_override_one_dimension(app):
    app.frame([down("tab")])
    assert app.policy_drives
    app.frame()
    pol = app._policy_action(app.history[-1]["obs"])
    np.testing.assert_allclose(app.action, pol, atol=1e-6)
    app.frame([down("j")])  # push front thigh (dim 3) while the policy drives
    pol = app._policy_action(app.history[-1]["obs"])
    assert app.action[3] == pytest.approx(app.keys.rate)
    np.testing.assert_allclose(np.delete(app.action, 3), np.delete(pol, 3), atol=1e-6)


def test_side_by_side_real_env(app):
    pytest.importorskip("mujoco")
    app.frame([down("f7")])
    assert app.real is not None
    for _ in range(3):
        app.frame()
    H, W, _ = app.bundle.frame_shape
    assert app.view().shape == (H, 2 * W + 2, 3)
    assert app.real_frame.shape == (H, W, 3)


def test_user_keymap_file(tmp_path):
    space = dreamgym.Bundle.load(dreamgym.resolve(ID)).action_space
    f = tmp_path / "keys.json"
    f.write_text(json.dumps({"continuous": [{"dim": d, "keys": [f"[{d}]", str(d)]} for d in range(6)]}))
    km = KeyMap.load(f, space, pygame.key.key_code)
    a = km.update({pygame.key.key_code("3")})
    assert a[3] > 0 and np.count_nonzero(a) == 1
    f.write_text(json.dumps({"continuous": [{"dim": 0, "keys": ["space", "a"]}]}))
    with pytest.raises(KeymapError, match="control keys"):
        KeyMap.load(f, space, pygame.key.key_code)
    with pytest.raises(KeymapError, match="does not exist"):
        KeyMap.load(tmp_path / "nope.json", space, pygame.key.key_code)


def test_discrete_and_latent_keymaps():
    from gymnasium import spaces

    kc = pygame.key.key_code
    km = KeyMap(
        {"discrete": {"default": 0, "bindings": [{"keys": ["up"], "action": 2}, {"keys": ["up", "z"], "action": 4}]}},
        spaces.Discrete(6),
        kc,
    )
    assert km.update(set()) == 0
    assert km.update({kc("up")}) == 2
    assert km.update({kc("up"), kc("z")}) == 4
    lat = KeyMap({}, spaces.Discrete(8), kc)  # no keymap + Discrete: number keys pick latent actions
    assert lat.kind == "latent" and lat.update({kc("3")}) == 2 and lat.update(set()) == 0


def test_benchmark_prints_fps_last():
    env = dict(os.environ, SDL_VIDEODRIVER="dummy")
    out = subprocess.run(
        cwd=OUTSIDE,
        args=[sys.executable, "-m", "dreamgym", "play", ID, "--benchmark", "60"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("fps=") and float(last[4:]) > 0


PONG = "Dream-Pong-v0"


@pytest.fixture
def pong(tmp_path):
    a = PlayApp(dreamgym.resolve(PONG), record_dir=tmp_path, seed=0)
    yield a
    a.close()


def test_pong_keys_drive_the_paddle(pong):
    """Pong's keymap from the manifest: up / down move the paddle, f fires, combinations win."""
    assert pong.keys.kind == "discrete"
    assert int(pong.action) == 0  # nothing held: NOOP
    pong.frame([down("up")])
    assert int(pong.action) == 2  # RIGHT moves the paddle up
    pong.frame([down("f")])
    assert int(pong.action) == 4  # RIGHTFIRE
    pong.frame([up("up"), up("f"), down("s")])
    assert int(pong.action) == 3
    assert pong.view().shape[-1] == 3 and pong.obs.dtype == np.uint8


def test_pong_side_by_side_with_the_real_atari(pong):
    pytest.importorskip("ale_py")
    pong.frame([down("f7")])
    assert pong.real is not None
    for _ in range(3):
        pong.frame([down("up")])
    assert pong.real_frame.shape == (64, 64, 3)
    H, W, _ = pong.bundle.frame_shape
    assert pong.view().shape == (H, 2 * W + 2, 3)
    pong.frame([down("left")])  # rewind restores the emulator too
    assert pong.real_frame.shape == (64, 64, 3)


# -- latent-action dreams: the palette ------------------------------------------------------------------------
@pytest.fixture
def genie_app(tiny_genie, tmp_path):
    a = PlayApp(tiny_genie, record_dir=tmp_path, seed=0)
    yield a
    a.close()


def test_palette_shows_the_next_frame_under_every_latent_action(genie_app):
    app = genie_app
    K = app.keys.n
    app.frame()
    frames = app.update_palette()
    assert frames.shape == (K, *app.bundle.frame_shape)
    # each thumbnail is that action's step from the current state, as the env itself takes it
    st = app.env.engine.get_state()
    check = dreamgym.make_vec(app.bundle.path, 1, noise_scale=0.0, autoreset_mode="Disabled", render_mode="rgb_array")
    check.reset(seed=0)
    for k in range(K):
        check.unwrapped.engine.set_state({n: v.copy() for n, v in st.items()})
        check.step(np.array([k]))
        assert np.array_equal(check.render()[0], frames[k])
    check.close()
    before = app.palette_frames
    app.frame()  # a step: the palette is computed again for the new state
    assert app.palette_frames is not before


def test_number_keys_choose_latent_actions_and_f8_rebinds(genie_app, tmp_path):
    app = genie_app
    app.frame([down("3")])
    assert app.action == 2
    app.frame([up("3")])
    app.frame([down("f8"), up("f8"), down("2"), up("2"), down("j")])  # bind 'j' to latent action 1
    assert app.rebind is None and app.action == app.keys.default  # the key that was bound drove nothing
    app.frame([up("j"), down("j")])
    assert app.action == 1
    saved = json.loads(app.keys_file().read_text())
    assert {"keys": ["j"], "action": 1} in saved["latent"]["bindings"]
    again = PlayApp(app.bundle.path, record_dir=tmp_path, keymap_file=str(app.keys_file()))
    again.frame([down("j")])
    assert again.action == 1
    again.close()


def test_f8_keeps_control_keys_and_other_dreams(genie_app, app):
    genie_app.frame([down("f8"), up("f8"), down("x")])  # not a number: the code comes first
    assert genie_app.rebind == -1 and "number key" in genie_app.message
    with pytest.raises(KeymapError, match="control keys"):
        genie_app.keys.bind("space", 0)
    genie_app.frame([down("1"), up("1"), down("escape")])  # the controls stay the controls while rebinding
    assert not genie_app.running
    app.frame([down("f8")])
    assert app.rebind is None and "own keys" in app.message


def test_palette_dream_rewinds_and_benchmarks(genie_app):
    from dreamgym.play.app import scripted_keys

    app = genie_app
    for _ in range(5):
        app.frame()
    obs = app.obs.copy()
    app.frame()
    assert app.rewind() and np.array_equal(app.obs, obs)
    assert app.run(max_frames=20, benchmark=True, script=scripted_keys(app.keys)) > 0


# -- saved sessions, replayed bit for bit -------------------------------------------------------------------
def _session(tmp_path, bundle, keys, seed=3):
    """Play a scripted session (keys held and released, rewinds, a reset) and return the frame after every
    event, as the person saw it, and the session file."""
    path = tmp_path / "session.json"
    a = PlayApp(bundle, record_dir=tmp_path, seed=seed, save_session=path)
    seen = [a.env.render()[0].copy()]  # after the first reset, the session's first event

    class Log(list):  # the frame after each event, as it is logged
        def append(self, ev):
            super().append(ev)
            seen.append(a.env.render()[0].copy())

    a.events = Log(a.events)
    for n in range(60):
        ev = []
        if n % 12 == 0:
            ev.append(down(keys[(n // 12) % len(keys)]))
        if n % 12 == 9:
            ev.append(up(keys[(n // 12) % len(keys)]))
        if n in (20, 21, 22):
            ev.append(down("left"))  # held: rewinds after a few frames
        if n == 30:
            ev += [up("left"), down("return"), up("return")]  # a fresh real context
        a.frame(ev)
    a.close()
    return seen, path


@pytest.mark.parametrize("dream", ["Dream-HalfCheetah-v0", "Dream-Pong-v0"])
def test_saved_session_replays_bit_for_bit(tmp_path, dream):
    from dreamgym.play.replay import load_session, replay_frames

    keys = ["a", "w", "i"] if dream == "Dream-HalfCheetah-v0" else ["up", "down", "f"]
    seen, path = _session(tmp_path, dreamgym.resolve(dream), keys)
    data = load_session(path)
    kinds = [e[0] for e in data["events"]]
    assert kinds.count("rewind") >= 1 and kinds.count("reset") >= 2 and kinds.count("step") > 30
    replayed = list(replay_frames(path))
    assert len(replayed) == len(seen) == len(data["events"])
    for i, (x, y) in enumerate(zip(seen, replayed)):
        np.testing.assert_array_equal(x, y, err_msg=f"frame after event {i} ({kinds[i]})")


def test_replay_writes_a_video_and_refuses_another_bundle(tmp_path):
    import shutil

    from dreamgym.play.replay import replay_frames
    from dreamgym.video import read_video

    seen, path = _session(tmp_path, dreamgym.resolve("Dream-Pong-v0"), ["up"])
    out = tmp_path / "replay.mp4"
    res = subprocess.run(
        [sys.executable, "-m", "dreamgym", "replay", str(path), "-o", str(out), "--scale", "1"],
        cwd=OUTSIDE,
        capture_output=True,
        text=True,
        env={**os.environ, "SDL_VIDEODRIVER": "dummy"},
    )
    assert res.returncode == 0, res.stderr
    assert len(read_video(out)) == len(seen)
    other = tmp_path / "changed"
    shutil.copytree(dreamgym.resolve("Dream-Pong-v0"), other)
    m = json.loads((other / "dreamgym.json").read_text())
    m["description"] += " (changed)"
    (other / "dreamgym.json").write_text(json.dumps(m))
    with pytest.raises(ValueError, match="would not replay the same dream"):
        next(replay_frames(path, bundle=other))
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": 1, "bundle_id": "x"}')
    res = subprocess.run(
        [sys.executable, "-m", "dreamgym", "replay", str(bad)], cwd=OUTSIDE, capture_output=True, text=True
    )
    assert res.returncode == 2 and "bundle_sha256" in res.stderr


# -- the HUD's text: every character drawn is a glyph of its font ------------------------------------------------
def _drawn_text(monkeypatch):
    """Record every text pygame's fonts render (and with which font file and size)."""
    drawn = []

    class Recording(pygame.font.Font):
        def __init__(self, file=None, size=12, *args):
            super().__init__(file, size, *args)
            self.file, self.size = file, size

        def render(self, text, *args, **kwargs):
            drawn.append((text, self.file, self.size))
            return super().render(text, *args, **kwargs)

    monkeypatch.setattr(pygame.font, "Font", Recording)
    return drawn


def _missing_glyphs(drawn):
    import pygame.freetype

    pygame.freetype.init()
    fonts, missing = {}, set()
    for text, file, size in drawn:
        f = fonts.setdefault((file, size), pygame.freetype.Font(file, size))
        # pygame.font's metrics() gives a missing glyph the empty box's metrics; freetype's gives None
        missing |= {(ch, text) for ch, m in zip(text, f.get_metrics(text)) if m is None}
    return missing


def test_the_hud_draws_only_glyphs_its_font_has(monkeypatch, tmp_path):
    """Dream-Breakout-v0 names its latent actions '≈ LEFT', '≈ RIGHT', ...: the palette must not draw a ≈ the
    font has no glyph for (pygame draws it as an empty box: '1: ▯ LEFT')."""
    drawn = _drawn_text(monkeypatch)
    app = PlayApp(dreamgym.resolve("Dream-Breakout-v0"), record_dir=tmp_path)
    try:
        assert any("≈" in m for m in app.bundle.manifest.action_meanings)
        app.frame()
        app.say("a message — with a dash…")
        app.frame([down("f1")])  # and the help panel over it
    finally:
        app.close()
    labels = [t for t, *_ in drawn if t.startswith("1: ")]
    assert labels and "LEFT" in labels[0]  # the palette's labels were drawn
    assert _missing_glyphs(drawn) == set()


def test_the_multi_agent_hud_draws_only_glyphs_its_font_has(monkeypatch, tmp_path):
    from dreamgym.play.multi import MultiPlayApp

    drawn = _drawn_text(monkeypatch)
    app = MultiPlayApp(dreamgym.resolve("Dream-SimpleTag-v0"), record_dir=tmp_path)
    try:
        app.frame()
        app.say("≈ ← → ↑ ↓")
        app.frame([down("f1")])
    finally:
        app.close()
    assert any(t.startswith("player 1") for t, *_ in drawn)
    assert _missing_glyphs(drawn) == set()

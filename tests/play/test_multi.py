"""Multi-agent play: the pygame-free session (no SDL needed) and the thin window over it (headless)."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

from dreamgym.play.session import GameSession  # noqa: E402

UP_RIGHT = np.array([0, 0, 1, 0, 1], np.float32)


@pytest.fixture
def session(tiny_tag):
    s = GameSession(tiny_tag, seed=0)
    yield s
    s.close()


def test_players_drive_their_agents_and_policies_the_rest(session):
    assert session.players == {1: "adversary_0", 2: "adversary_1"}
    assert session.controller == {"adversary_0": "player 1", "adversary_1": "player 2", "agent_0": "policy"}
    acts = session.step({"adversary_0": UP_RIGHT})
    assert np.array_equal(acts["adversary_0"], UP_RIGHT)
    assert not acts["adversary_1"].any()  # player two pressed nothing
    assert session.hand_over(1) == "policy" and session.controller["adversary_0"] == "policy"
    assert session.hand_over(1) == "player 1"


def test_policy_actions_come_from_the_bundled_policy(session):
    policy = session.env.policy_actions()
    acts = session.step({})
    assert np.array_equal(acts["agent_0"], policy["agent_0"])


def test_rewind_is_exact(session):
    for _ in range(3):
        session.step({"adversary_0": UP_RIGHT})
    before = {a: o.copy() for a, o in session.obs.items()}
    t, ret = session.t, dict(session.returns)
    session.step({"adversary_1": UP_RIGHT})
    assert session.rewind()
    assert session.t == t and session.returns == ret
    assert all(np.array_equal(session.obs[a], before[a]) for a in before)
    again = session.step({"adversary_1": UP_RIGHT})
    assert again  # and the same step from the same state and generator gives the same game
    redo = GameSession(session.bundle, seed=0)
    for _ in range(3):
        redo.step({"adversary_0": UP_RIGHT})
    redo.step({"adversary_1": UP_RIGHT})
    assert all(np.array_equal(session.obs[a], redo.obs[a]) for a in before)


def test_a_saved_session_replays_bit_for_bit(session, tmp_path):
    rng = np.random.default_rng(0)
    for _ in range(25):
        session.step({"adversary_0": rng.uniform(0, 1, 5).astype(np.float32)})
    path = session.save(tmp_path / "game.json")
    again = GameSession.replay(session.bundle, path)
    assert again.t == session.t and again.returns == session.returns
    assert all(np.array_equal(again.obs[a], session.obs[a]) for a in session.agents)


def test_multiverse_and_real_env_beside_the_dream(session):
    assert session.toggle_multiverse()
    session.step({"adversary_0": UP_RIGHT})
    H, W, _ = session.bundle.frame_shape
    assert session.view().shape[0] > H  # a grid of games
    assert session.toggle_real()  # (the multiverse makes way)
    assert session.multiverse is None
    session.step({"adversary_0": UP_RIGHT})
    view = session.view()
    assert view.shape[1] > 2 * W and view.shape[0] == H  # real | dream
    assert set(session.real_returns) == set(session.agents)


def test_forks_of_a_deterministic_dream_differ_by_what_the_policies_do(session):
    """The tiny bundle has no noise: the forks keep the people's actions but the prey improvises."""
    assert not session.bundle.noise and session.toggle_multiverse()
    for _ in range(4):
        session.step({"adversary_0": UP_RIGHT})
    mv = session.multiverse.get_state()
    prey = mv["obs/agent_0"]
    assert not np.allclose(prey[0], prey[1])  # the forks went different ways
    before = {a: mv[f"obs/{a}"] for a in session.agents}
    session.step({"adversary_0": UP_RIGHT})
    assert session.rewind()  # and rewinding takes the forks back too
    assert all(np.array_equal(session.multiverse.get_state()[f"obs/{a}"], before[a]) for a in before)
    assert all(np.array_equal(session.multiverse.get_state()[k], v) for k, v in mv.items())


def test_the_window_two_players_tab_and_benchmark(tiny_tag, tmp_path):
    pygame = pytest.importorskip("pygame")
    from dreamgym.play.multi import MultiPlayApp, scripted_players

    app = MultiPlayApp(tiny_tag, record_dir=tmp_path)
    down = lambda k: pygame.event.Event(pygame.KEYDOWN, key=pygame.key.key_code(k))  # noqa: E731
    app.frame([down("w"), down("left")])  # player one up, player two left
    last = app.session.log[-1]
    assert last["adversary_0"] == [0, 0, 0, 0, 1] and last["adversary_1"] == [0, 1, 0, 0, 0]
    app.frame([down("tab")])
    assert app.session.controller["adversary_0"] == "policy"
    app.frame([down("f5")])
    for _ in range(3):
        app.frame()
    app.frame([down("f5")])
    assert app.last_recording.exists() and app.last_recording.stat().st_size > 0
    fps = app.run(max_frames=20, benchmark=True, script=scripted_players(app))
    assert fps > 0


# -- agents out of the frame: marked at its edge -------------------------------------------------------------
RED = (217, 89, 89)  # the predators' colour as the scene drawer draws them (0.85, 0.35, 0.35) x 255


def test_scene_marks_what_the_frame_does_not_show():
    from dreamgym.play.scene import Scene

    s = Scene(["a", "b"], [(0,), (0, 2)], [(0.85, 0.35, 0.35), (0.35, 0.85, 0.35)], [0.1, 0.1], extent=1.0)
    assert s.markers({"a": [0.5, -0.5], "b": [0.2, 0.3]}) == []  # both inside
    (m,) = s.markers({"a": [2.5, 0.5], "b": [-3.0, 0.0]})  # a at (2.5, 0.5); b at a + (-3, 0) = (-0.5, 0.5)
    assert m.entity == 0 and m.color == RED
    assert m.at == pytest.approx((1.0, 0.25)) and m.towards == pytest.approx((1.0, 0.0)) and m.distance == 1.5
    (m,) = s.markers({"a": [0.0, 0.0], "b": [-2.0, -2.0]})  # b beyond the bottom-left corner
    assert m.entity == 1 and m.at == pytest.approx((0.0, 1.0))
    assert m.towards == pytest.approx((-(0.5**0.5), 0.5**0.5))  # left and down (the frame's y points down)
    assert s.markers({"a": [0.0, 0.0]}) == []  # an agent's observation missing: nothing known


def test_the_window_marks_a_predator_that_left_the_frame():
    """Dream-SimpleTag-v0 draws the fixed square [-1.5, 1.5]^2; player one holding D takes adversary_0 past
    its right edge within seconds. The view marks it there, in its colour, on every game's frame."""
    pygame = pytest.importorskip("pygame")
    import dreamgym
    from dreamgym.play.multi import MultiPlayApp

    app = MultiPlayApp(dreamgym.resolve("Dream-SimpleTag-v0"))
    try:
        key = lambda t, k: pygame.event.Event(t, key=pygame.key.key_code(k))  # noqa: E731
        app.frame([key(pygame.KEYDOWN, "d")])
        for _ in range(40):
            app.frame()
        cfg = app.bundle.manifest.model.config  # how the render graph places the scene's entities
        joint = app.session.env.state()  # every agent's observation, in the manifest's order
        x = sum(joint[i] for i in cfg["scene_positions"][2])  # adversary_0 is the scene's entity 2
        assert x > cfg["scene_extent"] + 0.5  # well out of the frame
        (W, H), k = app.view_size, app.view_scale
        shot = pygame.surfarray.array3d(app.screen).swapaxes(0, 1)  # (height, width, 3)
        strip = shot[:H, W - 3 * k : W]  # the frame's right edge
        assert (strip == RED).all(-1).any(), "no marker in the predator's colour at the edge it left by"
        assert [(n, m.entity) for n, m in app.markers] == [(0, 2)]
        (_, m) = app.markers[0]
        assert m.at[0] == 1.0 and m.towards == pytest.approx((1.0, 0.0), abs=0.05)
        app.frame([key(pygame.KEYUP, "d"), key(pygame.KEYDOWN, "f6")])  # the multiverse: every game is marked
        assert sorted(n for n, m in app.markers if m.entity == 2) == list(range(app.session.n_multiverse))
    finally:
        app.close()

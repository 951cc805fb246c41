"""The Pong game metrics: a pixel detector checked against the real game's RAM, and each measurement run on
the shipped Dream-Pong-v0 against real ALE Pong."""

import numpy as np
import pytest

pytest.importorskip("ale_py")

from dreamgym.export.measure import pong as ep  # noqa: E402


@pytest.fixture(scope="module")
def real_pong():
    """400 steps of real ALE Pong under the scripted tracker: 64×64 frames and the ball's RAM position."""
    import ale_py
    import gymnasium as gym

    from dreamgym.export.data.atari import BALL_X, BALL_Y, tracker_action
    from dreamgym.export.data.sources import area_resize

    gym.register_envs(ale_py)
    env = gym.make("ALE/Pong-v5", frameskip=4, repeat_action_probability=0.0)
    env.reset(seed=3)
    rng = np.random.default_rng(3)
    frames, ram = [], []
    for _ in range(400):
        o, *_ = env.step(tracker_action(env.unwrapped.ale.getRAM(), rng, 0.1))
        frames.append(area_resize(o, 64))
        r = env.unwrapped.ale.getRAM()
        ram.append((int(r[BALL_X]), int(r[BALL_Y])))
    env.close()
    return np.stack(frames), np.array(ram)


def test_detector_follows_the_ball_in_the_ram(real_pong):
    frames, ram = real_pong
    d = ep.detect(frames)
    in_play = (ram[:, 1] > 0) & (ram[:, 0] > 0)
    assert in_play.mean() > 0.5
    one = d["balls"] == 1
    assert one[in_play].mean() > 0.9, "the ball in play is not seen as exactly one ball"
    both = in_play & one
    # the detector's position is a linear function of the RAM's (its own offsets and scale): near-perfect fit
    assert np.corrcoef(d["ball_x"][both], ram[both, 0])[0, 1] > 0.98
    assert np.corrcoef(d["ball_y"][both], ram[both, 1])[0, 1] > 0.98
    assert np.isfinite(d["paddle_y"]).mean() > 0.95


def test_repeated_points_are_counted_per_env():
    r = np.array([[0, 1, 1, 0, -1], [-1, 0, 0, 1, 0]], np.float32)
    assert ep._repeats(r) == (1, 5)


def test_control_from_real_states_up_moves_the_paddle_up():
    res = ep.control("Dream-Pong-v0", states=3, hold=4)
    assert res["states"] == 3
    assert res["up"]["real_px"] < -1 and res["down"]["real_px"] > 1  # the real game: up is up
    assert res["up"]["dream_px"] is not None and res["down"]["dream_px"] is not None
    assert isinstance(res["holds"], bool)


def test_closed_loop_counts_balls_and_points_in_dream_and_reality():
    res = ep.closed_loop("Dream-Pong-v0", policy="random", steps=64, num_envs=4)
    for side in ("dream", "real"):
        r = res[side]
        assert r["steps"] == 64
        assert 0.0 <= r["one_ball_share"] <= 1.0 and r["points_per_1000"] == 1000.0 * r["points"] / 64
    assert res["real"]["one_ball_share"] > 0.3  # real Pong shows its ball most of the time
    # without the real game (benchmarks that have its rows already): the dream's rows as they were
    alone = ep.closed_loop("Dream-Pong-v0", policy="random", steps=64, num_envs=4, real=False)
    assert alone["dream"] == res["dream"] and "real" not in alone


def test_points_interval_is_the_95_percent_interval_of_the_count():
    """65 points in 12000 steps: 5.4 per 1000, ± 1.96 √65 / 12; a run without points still has an interval."""
    assert ep.points_interval({"steps": 12_000, "points": 65, "points_per_1000": 65 / 12}) == pytest.approx(
        1.3167, 1e-3
    )
    assert ep.points_interval({"steps": 3000, "points": 0, "points_per_1000": 0.0}) == pytest.approx(1.96 / 3)
    # cards written before the count was kept: it is read back from the rate
    assert ep.points_interval({"steps": 3000, "points_per_1000": 5.0}) == pytest.approx(1000 * 1.96 * 15**0.5 / 3000)
    # four times the steps halve the interval of the rate
    assert ep.points_interval({"steps": 12_000, "points": 60}) * 2 == pytest.approx(
        ep.points_interval({"steps": 3000, "points": 15})
    )


def test_heldout_game_windows(tmp_path):
    from dreamgym.export.data.atari import PongCollectConfig, collect_pong
    from dreamgym.export.measure.token import TokenEvaluator

    collect_pong(PongCollectConfig(episodes=1, max_steps=160, seed=11), tmp_path, progress=False)
    res = ep.heldout_game("Dream-Pong-v0", TokenEvaluator().load(tmp_path), horizon=10, stride=40)
    assert res["windows"] >= 2
    h1 = res["position_error_px"]["1"]
    assert h1["paddle_median"] is not None and h1["paddle_median"] >= 0
    assert set(res["points"]) >= {"precision", "recall", "dream_repeated_share"}


def test_game_metrics_go_into_the_manifest_and_the_card(tmp_path):
    import shutil

    import dreamgym
    from dreamgym.export.data.atari import PongCollectConfig, collect_pong
    from dreamgym.export.measure.token import TokenEvaluator

    src = dreamgym.resolve("Dream-Pong-v0")
    bundle = shutil.copytree(src, tmp_path / "pong")
    collect_pong(PongCollectConfig(episodes=1, max_steps=120, seed=12), tmp_path / "eps", progress=False)
    game = {
        "heldout": ep.heldout_game(bundle, TokenEvaluator().load(tmp_path / "eps"), horizon=10, stride=50),
        "closed_loop": {"random": ep.closed_loop(bundle, "random", steps=32, num_envs=4)},
        "control": ep.control(bundle, states=2),
    }
    ep.write_game(bundle, game)
    b = dreamgym.Bundle.load(bundle)  # still a valid bundle: the files' hashes were rewritten
    assert b.manifest.metrics["fidelity"]["game"]["control"]["states"] == 2
    assert b.manifest.metrics["fidelity"]["horizons"]  # the other figures kept
    card = (bundle / "README.md").read_text()
    assert "Pong as it is played" in card and "paddle move after 4 × UP" in card
    assert "(32 steps each; ± the 95 % interval of the count)" in card


def test_the_tokenizer_ceiling_keeps_most_real_balls(real_pong):
    frames, _ = real_pong
    t = ep.tokenizer_ceiling("Dream-Pong-v0", frames[:200])
    assert t["frames"] > 100
    assert t["keeps_ball_share"] > 0.5 and t["ball_error_median"] < 3.0


def test_ball_tokens_are_the_detectors_ball(real_pong):
    """`ImageTokenizerConfig.ball`: the ball's row and column tokens say where the detector sees it (rounded),
    or that there is none; the grid's frames have no ball left; the decoded frame shows one ball there."""
    import torch

    from dreamgym.export.families.tokenizer import ImageTokenizer, ImageTokenizerConfig

    frames, _ = real_pong
    tok = ImageTokenizer(ImageTokenizerConfig(ball=True)).eval()
    with torch.no_grad():
        ids = tok.encode(torch.from_numpy(frames))
        stripped = tok.strip_ball(torch.from_numpy(frames)).numpy().astype(np.uint8)
        drawn = (tok.draw_ball(torch.from_numpy(stripped).permute(0, 3, 1, 2) / 255.0, ids[:, 64:]) * 255.0).round()
    drawn = drawn.permute(0, 2, 3, 1).numpy().astype(np.uint8)
    d = ep.detect(frames)
    y, x = ids[:, 64].numpy() - 512, ids[:, 65].numpy() - 512 - 65
    one = d["balls"] == 1
    assert one.mean() > 0.5
    np.testing.assert_array_equal(y < 64, d["balls"] > 0)
    np.testing.assert_array_equal(x < 64, d["balls"] > 0)
    assert np.abs(y[one] - d["ball_y"][one]).max() <= 0.5 and np.abs(x[one] - d["ball_x"][one]).max() <= 0.5
    assert (ep.detect(stripped)["balls"] == 0).all()
    back = ep.detect(drawn)
    assert (back["balls"][one] == 1).all()
    assert np.hypot(back["ball_y"] - d["ball_y"], back["ball_x"] - d["ball_x"])[one].max() <= 0.75


def test_the_contact_benchmark_loses_every_ball_it_moves_away_from(tmp_path, monkeypatch):
    """benchmarks/pong_contact.py: its real states have the ball on its way to the player, the paddle that
    moves away from it loses each of them in reality, the tracker fewer, and the dream's rows are shares."""
    import importlib
    import json
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).parents[2] / "benchmarks"))
    contact = importlib.import_module("pong_contact")
    out = tmp_path / "contact.json"
    assert contact.main(["Dream-Pong-v0", "--states", "4", "--copies", "2", "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["states"] == 4
    assert res["real"]["away"]["lost"] == 1.0
    assert res["real"]["track"]["lost"] < 1.0
    for m in res["dream"]["Dream-Pong-v0"].values():
        assert 0.0 <= m["lost"] <= 1.0 and 0.0 <= m["won"] <= 1.0


def test_the_bounce_benchmark_finds_real_bounces_and_misses(tmp_path, monkeypatch):
    """benchmarks/pong_bounce.py: each decisive step it keeps has the ball near the player's paddle and moving
    towards it in the last real frame, both outcomes are found, and each dream's rows are shares."""
    import importlib
    import json
    from pathlib import Path

    import dreamgym
    from dreamgym.export.measure.pong import detect
    from dreamgym.record import make_policy

    monkeypatch.syspath_prepend(str(Path(__file__).parents[2] / "benchmarks"))
    bounce = importlib.import_module("pong_bounce")
    pong = dreamgym.Bundle.load(dreamgym.resolve("Dream-Pong-v0"))
    track = make_policy("bundle", pong, np.random.default_rng(0))
    found = bounce.decisive_steps(12, pong.context_length, 64, track, 0)
    assert len(found) == 12 and {f[3] for f in found} == {True, False}
    for frames, actions, action, _ in found:
        assert frames.shape == (pong.context_length, 64, 64, 3) and actions.shape == (pong.context_length,)
        x = detect(frames[-2:])["ball_x"]
        assert x[1] >= bounce.NEAR and x[1] > x[0] and 0 <= action < 6
    out = tmp_path / "bounce.json"
    assert bounce.main(["Dream-Pong-v0", "--states", "6", "--copies", "2", "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["states"] == 6 and 0 <= res["real_bounces"] <= 6
    for share in res["dream"]["Dream-Pong-v0"].values():
        assert np.isnan(share) or 0.0 <= share <= 1.0


def test_the_contact_ceiling_learns_from_the_decisive_steps_of_real_episodes(tmp_path, monkeypatch):
    """benchmarks/pong_contact_ceiling.py: on real episodes, every step it keeps is decisive (the ball near the
    paddle and moving towards it), both outcomes are found, and its scores are shares and probabilities."""
    import importlib
    import json
    from pathlib import Path

    from dreamgym.export.data.atari import PongCollectConfig, collect_pong

    monkeypatch.syspath_prepend(str(Path(__file__).parents[2] / "benchmarks"))
    ceiling = importlib.import_module("pong_contact_ceiling")
    bounce = importlib.import_module("pong_bounce")
    for name, seed in (("train", 0), ("heldout", 1)):
        collect_pong(PongCollectConfig(episodes=1, max_steps=800, seed=seed), tmp_path / name, progress=False)
    X, Y = ceiling.decisive([tmp_path / "train"], progress=False)
    assert len(Y) > 4 and 0 < Y.mean() < 1
    assert (X[:, 3] >= bounce.NEAR).all() and (X[:, 3] > X[:, 1]).all() and (X[:, 6:].sum(1) == 1).all()
    # a world model checkpoint (untrained, as the recipe saves it) is scored on the same held-out steps
    import dataclasses

    from dreamgym.export.families.rem import REM, REMConfig
    from dreamgym.export.train.fit import save_checkpoint

    cfg = REMConfig(
        vocab=64, code_dim=8, tok_channels=8, d_model=32, heads=2, layers=1, reward_input=True, ball_tokens=True,
        paddle_token=True, coord_features=True, slot_mixer=True,
    )  # fmt: skip
    ckpt = tmp_path / "world.npz"
    save_checkpoint(ckpt, REM(cfg), {}, {"config": dataclasses.asdict(cfg), "step": 7})
    out = tmp_path / "ceiling.json"
    args = ["--data", str(tmp_path), "--updates", "20", "--world", str(ckpt), "--out", str(out)]
    assert ceiling.main(args) == 0
    res = json.loads(out.read_text())
    assert res["train_steps"] == len(Y) and res["heldout_steps"] > 0
    assert f"world model {ckpt} at update 7, teacher-forced" in res["ceiling"]
    for m in res["ceiling"].values():
        assert 0.0 <= m["accuracy"] <= 1.0 and m["log_loss"] > 0
    with pytest.raises(SystemExit, match="expected train"):
        ceiling.main(["--data", str(tmp_path / "nothing")])


def test_the_balls_benchmark_tells_a_wait_after_a_point_from_a_ball_lost_in_play(tmp_path, monkeypatch):
    """benchmarks/pong_balls.py: frames without a ball are a wait when a point comes just before or inside the
    run, lost in play when none does, flicker when the run is short; the shares of a real run add up to one."""
    import importlib
    import json
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).parents[2] / "benchmarks"))
    balls = importlib.import_module("pong_balls")
    b = np.array([1, 1, 0, 0, 0, 0, 1, 0, 1, 1, 0, 0, 0, 0, 0, 2, 1, 1, 1, 1])[:, None]
    r = np.zeros_like(b, dtype=np.float32)
    r[1] = -1.0  # a point, then a wait of 4 frames; later a run of 5 with no point: the ball lost in play
    m = balls.split(b, r)
    assert m["after_point"] == 4 / 20 and m["lost_in_play"] == 5 / 20 and m["flicker"] == 1 / 20
    assert m["two_or_more"] == 1 / 20 and m["one_ball"] == 9 / 20 and m["mean_wait"] == 4
    assert m["points_per_1000"] == 50.0
    out = tmp_path / "balls.json"
    assert balls.main(["Dream-Pong-v0", "--steps", "64", "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert set(res["runs"]) == {f"{w}, {p}" for w in ("real", "Dream-Pong-v0") for p in ("bundle", "random")}
    for m in res["runs"].values():
        total = m["one_ball"] + m["after_point"] + m["lost_in_play"] + m["flicker"] + m["two_or_more"]
        assert total == pytest.approx(1.0)

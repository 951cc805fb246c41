"""Multi-agent dreams: the PettingZoo env, the batched form and one agent's Gymnasium view, on a tiny real
bundle of mpe2 simple_tag (tests/conftest.py: `tiny_tag`)."""

from __future__ import annotations

import json
import shutil

import gymnasium as gym
import numpy as np
import pytest

import dreamgym
from dreamgym import ActionError, BundleError
from dreamgym.manifest import MANIFEST, io_names
from dreamgym.testing import check_parallel_bundle

AGENTS = ["adversary_0", "adversary_1", "agent_0"]


def play(env, seed: int, steps: int, action_seed: int = 0):
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(action_seed)
    out = [np.concatenate([obs[a] for a in AGENTS])]
    rewards = []
    for _ in range(steps):
        acts = {a: rng.uniform(0, 1, 5).astype(np.float32) for a in env.agents}
        obs, r, *_ = env.step(acts)
        out.append(np.concatenate([obs[a] for a in AGENTS]))
        rewards.append([r[a] for a in AGENTS])
    return np.stack(out), np.asarray(rewards)


def test_pettingzoo_api_seed_and_aec_tests_pass(tiny_tag):
    report = check_parallel_bundle(tiny_tag)
    assert report["agents"] == AGENTS


def test_the_contract_names_every_agents_tensors(tiny_tag):
    m = dreamgym.Bundle.load(tiny_tag).manifest
    ins, outs = io_names(m, "step")
    assert [i for i in ins if i.startswith("action.")] == [f"action.{a}" for a in AGENTS]
    n = len(m.state)  # the next state first (the tiny tag model's: the joint observation)
    assert outs[:n] == [f"next_{s.name}" for s in m.state]
    assert outs[n:] == [f"{k}.{a}" for k in ("obs", "reward", "terminated") for a in AGENTS]
    assert io_names(m, "policy") == ([f"obs.{a}" for a in AGENTS], [f"action.{a}" for a in AGENTS])
    assert m.format_version == 4 and m.observation_space is None
    assert m.agent("agent_0").observation_space.shape == (12,)


def test_seeds_fix_games_bit_for_bit(tiny_tag):
    a = play(dreamgym.make_parallel(tiny_tag), seed=3, steps=12)
    b = play(dreamgym.make_parallel(tiny_tag), seed=3, steps=12)
    c = play(dreamgym.make_parallel(tiny_tag), seed=4, steps=12)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize(
    "bad, says",
    [
        (lambda acts: acts | {"ghost": np.zeros(5, np.float32)}, "unknown: ['ghost']"),
        (lambda acts: {k: v for k, v in acts.items() if k != "agent_0"}, "missing: ['agent_0']"),
        (lambda acts: acts | {"adversary_1": np.zeros(4, np.float32)}, "agent 'adversary_1' needs actions of shape"),
        (lambda acts: acts | {"agent_0": np.array([0, np.nan, 0, 0, 0], np.float32)}, "not finite"),
        (lambda acts: acts | {"agent_0": np.array(["a"] * 5)}, "numeric"),
    ],
)
def test_a_bad_action_names_the_problem_and_steps_no_one(tiny_tag, bad, says):
    env, ref = dreamgym.make_parallel(tiny_tag), dreamgym.make_parallel(tiny_tag)
    env.reset(seed=1), ref.reset(seed=1)
    good = {a: np.full(5, 0.5, np.float32) for a in AGENTS}
    env.step(good), ref.step(good)
    before = env.get_state()
    with pytest.raises(ActionError, match=says.replace("[", r"\[").replace("(", r"\(")):
        env.step(bad(dict(good)))
    after = env.get_state()
    assert all(np.array_equal(before[k], after[k]) for k in before)
    # and the game goes on exactly as one that never saw the bad action
    for x, y in zip(env.step(good)[:2], ref.step(good)[:2]):
        assert (
            x == pytest.approx(y, abs=0)
            if isinstance(x, dict) and not isinstance(next(iter(x.values())), np.ndarray)
            else all(np.array_equal(x[k], y[k]) for k in x)
        )


def test_agents_leave_when_the_game_ends_and_step_then_asks_for_reset(tiny_tag):
    env = dreamgym.make_parallel(tiny_tag, max_episode_steps=5)
    env.reset(seed=0)
    assert env.agents == AGENTS
    for _ in range(5):  # truncated at 5 (or ended sooner by the untrained continue head)
        _, _, term, trunc, _ = env.step({a: np.zeros(5, np.float32) for a in env.agents})
        if not env.agents:
            break
    assert all(a or b for a, b in zip(trunc.values(), term.values()))
    assert env.agents == []
    with pytest.raises(gym.error.ResetNeeded):
        env.step({a: np.zeros(5, np.float32) for a in AGENTS})
    env.reset(seed=0)
    assert env.agents == AGENTS


def test_state_is_every_agents_observation_as_mpe_gives_it(tiny_tag):
    env = dreamgym.make_parallel(tiny_tag)
    obs, _ = env.reset(seed=0)
    s = env.state()
    assert s.shape == env.state_space.shape == (40,)
    assert np.array_equal(s, np.concatenate([obs[a] for a in AGENTS]))


def test_a_batch_of_games_is_many_single_games_in_one_call(tiny_tag):
    """With the noise off and the same real starts, game i of a batch is exactly the game one env plays."""
    b = dreamgym.Bundle.load(tiny_tag)
    C, n = b.context_length, 4
    ctx = {
        "obs": {a: b.contexts[f"obs.{a}"][:n] for a in AGENTS},
        "actions": {a: b.contexts[f"actions.{a}"][:n] for a in AGENTS},
    }
    games = dreamgym.make_batched(b, n, noise_scale=0.0)
    games.reset(seed=0, options={"context": ctx})
    rng = np.random.default_rng(0)
    acts = [{a: rng.uniform(0, 1, (n, 5)).astype(np.float32) for a in AGENTS} for _ in range(6)]
    batch = [games.step(x)[0] for x in acts]
    for i in (0, 3):
        one = dreamgym.make_parallel(b, noise_scale=0.0)
        one.reset(seed=9, options={"context": {k: {a: v[a][i] for a in AGENTS} for k, v in ctx.items()}})
        for x, got in zip(acts, batch):
            obs = one.step({a: x[a][i] for a in AGENTS})[0]
            for a in AGENTS:
                assert np.array_equal(obs[a], got[a][i])
    assert C == b.context_length


def test_batched_games_autoreset_on_the_next_step(tiny_tag):
    games = dreamgym.make_batched(tiny_tag, 3, max_episode_steps=3)
    obs, _ = games.reset(seed=0)
    assert {a: o.shape for a, o in obs.items()} == {"adversary_0": (3, 14), "adversary_1": (3, 14), "agent_0": (3, 12)}
    acts = {a: np.zeros((3, 5), np.float32) for a in AGENTS}
    for _ in range(3):
        obs, rew, term, trunc, info = games.step(acts)
    done = term["agent_0"] | trunc["agent_0"]
    assert done.any()  # the third step truncates every game that has not ended before
    assert rew["agent_0"].dtype == np.float64 and term["agent_0"].dtype == bool
    obs, rew, term, trunc, info = games.step(acts)  # their reset step: fresh games, no reward, not done
    assert all((rew[a][done] == 0).all() and not trunc[a][done].any() and not term[a][done].any() for a in AGENTS)
    assert (games.elapsed_steps[done] == 0).all()


def test_one_agent_as_a_gymnasium_env_against_the_bundled_policies(tiny_tag):
    env = dreamgym.make_agent_env(tiny_tag, "adversary_0")
    gym.utils.env_checker.check_env(env)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (14,)
    _, r, _, _, info = env.step(env.action_space.sample())
    assert set(info["rewards"]) == set(AGENTS) and r == info["rewards"]["adversary_0"]
    with pytest.raises(ValueError, match="has no agent 'nobody'"):
        dreamgym.make_agent_env(tiny_tag, "nobody")


def test_frames_show_the_whole_scene(tiny_tag):
    env = dreamgym.make_parallel(tiny_tag, render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.shape == (32, 32, 3)
    assert (frame < 250).any() and (frame == 255).any()  # entities on a white field


def test_single_and_multi_agent_bundles_point_to_each_others_api(tiny_tag, default_bundle):
    with pytest.raises(ValueError, match="multi-agent dream.*make_parallel"):
        dreamgym.make_vec(tiny_tag, 2)
    with pytest.raises(ValueError, match="single-agent dream"):
        dreamgym.make_batched(default_bundle, 2)


def test_a_multi_agent_manifest_is_checked(tiny_tag, tmp_path):
    dst = tmp_path / "b"
    shutil.copytree(tiny_tag, dst)
    d = json.loads((dst / MANIFEST).read_text())
    d2 = dict(d, observation_space={"type": "Discrete", "n": 2}, action_space={"type": "Discrete", "n": 2})
    (dst / MANIFEST).write_text(json.dumps(d2))
    with pytest.raises(BundleError, match="leave out the top-level"):
        dreamgym.Bundle.load(dst)
    d3 = dict(d, agents=[d["agents"][0], d["agents"][0], d["agents"][2]])
    (dst / MANIFEST).write_text(json.dumps(d3))
    with pytest.raises(BundleError, match="agent names must be unique"):
        dreamgym.Bundle.load(dst)


def test_record_tiles_games_and_compares_with_reality(tiny_tag, tmp_path):
    from dreamgym.record import record
    from dreamgym.video import read_video

    out = record(tiny_tag, tmp_path / "games.gif", steps=4, num_envs=4, policy="bundle", scale=2, progress=False)
    frames = read_video(out)
    H, W, _ = dreamgym.Bundle.load(tiny_tag).frame_shape
    assert len(frames) == 4 and frames.shape[1] > 2 * H  # a 2 x 2 grid of games
    cmp = record(tiny_tag, tmp_path / "cmp.gif", steps=3, num_envs=2, policy="random", compare=True, progress=False)
    frames = read_video(cmp)
    assert len(frames) == 3 and frames.shape[2] > 3 * 2 * W  # real | dream | error, two rows
    with pytest.raises(ValueError, match="bundle, random or zero"):
        record(tiny_tag, tmp_path / "x.gif", steps=2, policy="policy.onnx", progress=False)


# -- the shipped multi-agent dreams -----------------------------------------------------------------------


def test_shipped_dream_passes_pettingzoo_tests(parallel_id):
    report = check_parallel_bundle(dreamgym.shipped_bundles()[parallel_id])
    assert tuple(report["agents"]) == dreamgym.Bundle.load(dreamgym.shipped_bundles()[parallel_id]).agents


def test_shipped_dream_opens_by_id_and_its_manifest_round_trips(parallel_id):
    path = dreamgym.shipped_bundles()[parallel_id]
    m = dreamgym.Bundle.load(path).manifest
    assert m.to_json() == json.loads((path / MANIFEST).read_text())
    env = dreamgym.make_parallel(parallel_id, render_mode="rgb_array")
    obs, _ = env.reset(seed=0)
    assert set(obs) == set(m.agent_names) and env.render().shape == tuple(m.frame_shape)
    for _ in range(5):
        obs, rew, *_ = env.step({a: env.action_space(a).sample() for a in env.agents})
    assert all(np.isfinite(obs[a]).all() and np.isfinite(rew[a]) for a in env.agents)
    env.close()


def test_shipped_dream_policies_chase_and_flee(parallel_id):
    """The bundled policies play a real game in the dream: predators close in on the prey on average."""
    games = dreamgym.make_batched(parallel_id, num_games=32)
    obs, _ = games.reset(seed=1)
    first = np.linalg.norm(obs["adversary_0"][:, 10:12], axis=-1)  # adversary_0's offset to the prey
    for _ in range(30):
        obs, *_ = games.step(games.policy_actions(obs))
    assert np.linalg.norm(obs["adversary_0"][:, 10:12], axis=-1).mean() < first.mean()

"""`dreamgym train --env ENV_ID` and `--dataset PATH`: the whole pipeline at toy sizes on real envs
(Pendulum-v1: Box actions in [-2, 2], never ends; CartPole-v1: Discrete, ends), checked by `check_bundle`."""

import json
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("torch")

from dreamgym import Bundle, make_env  # noqa: E402
from dreamgym.export.commands import train  # noqa: E402
from dreamgym.export.train.recipes.any_env import (  # noqa: E402
    Recipe,
    default_id,
    env_info,
    horizon_rule,
    penalty_rule,
    slug,
)
from dreamgym.export.train.recipes.any_env_stages import keymap_for, resolve_mix  # noqa: E402
from dreamgym.testing import check_bundle  # noqa: E402


def _build(root, *args):
    assert train([*args, "--preset", "tiny", "--run", str(root)]) == 0
    return root / "bundle"


@pytest.fixture(scope="session")
def pendulum(tmp_path_factory):
    return _build(tmp_path_factory.mktemp("pendulum"), "--env", "Pendulum-v1")


@pytest.fixture(scope="session")
def cartpole(tmp_path_factory):
    return _build(tmp_path_factory.mktemp("cartpole"), "--env", "CartPole-v1")


def test_pendulum_dream_is_a_checked_bundle_of_the_real_spaces(pendulum):
    report = check_bundle(pendulum)
    assert report["id"] == "Dream-Pendulum-v0" and "policy" in report["graphs"]
    b = Bundle.load(pendulum)
    real = gym.make("Pendulum-v1")
    assert b.action_space == real.action_space and b.observation_space.shape == real.observation_space.shape
    m = b.manifest
    assert m.model.config["termination"] is False and m.model.config["discrete"] is False
    u = m.metrics["uncertainty"]
    # the defaults are what the rules gave, and the card says so
    assert m.env_defaults.uncertainty_penalty == u["penalty"] and m.env_defaults.max_episode_steps == u["horizon"]
    card = (pendulum / "README.md").read_text()
    assert "nothing was tuned for this env" in card and "real steps of Pendulum-v1" in card
    steps = m.metrics["data"]["real_steps"]
    assert steps["train/frames"] >= 300 and steps["search"] > 0


def test_pendulum_policy_acts_in_the_env_bounds(pendulum):
    from dreamgym.record import make_policy

    b = Bundle.load(pendulum)
    act = make_policy("bundle", b, np.random.default_rng(0))(np.random.default_rng(1).normal(size=(64, 3)) * 5)
    assert act.shape == (64, 1) and np.all(np.abs(act) <= 2.0 + 1e-6)


def test_cartpole_dream_has_discrete_actions_and_ends(cartpole):
    check_bundle(cartpole)
    b = Bundle.load(cartpole)
    assert isinstance(b.action_space, gym.spaces.Discrete) and b.action_space.n == 2
    cfg = b.manifest.model.config
    assert cfg["termination"] is True and cfg["discrete"] is True
    t = b.manifest.metrics["termination"]
    assert t["real_terminations"] > 0 and 0 <= t["one_step"]["recall"] <= 1
    assert t["lengths"]["random"]["real_ended"] == 1.0  # random actions tip a real CartPole within 100 steps
    assert "## Termination" in (cartpole / "README.md").read_text()
    assert b.manifest.keymap["discrete"]["bindings"][0]["keys"] == ["a"]
    env = make_env(cartpole, max_episode_steps=500)
    env.reset(seed=0)
    with pytest.raises(Exception, match="outside"):
        env.step(2)


def test_a_dream_episode_ends_where_the_head_says(cartpole, tmp_path):
    # the same bundle with its termination head made to call every state terminal: every dream ends at once
    import torch

    from dreamgym.export import exporter
    from dreamgym.export.card import model_card
    from dreamgym.export.families import model_from_bundle

    b = Bundle.load(cartpole)
    model = model_from_bundle(b)
    with torch.no_grad():
        model.term[-1].bias.fill_(50.0)
    out = exporter.write_bundle(
        tmp_path / "falls", model=model, manifest=b.manifest, contexts=dict(b.contexts), card=model_card
    )
    env = make_env(out)
    env.reset(seed=0)
    _, _, terminated, truncated, _ = env.step(0)
    assert terminated and not truncated


def test_dataset_form_builds_without_stepping_an_env(cartpole, tmp_path, monkeypatch):
    data = cartpole.parent / "data" / "train"
    from dreamgym.spaces import space_to_json

    b = Bundle.load(cartpole)
    spaces = json.dumps(
        {"observation_space": space_to_json(b.observation_space), "action_space": space_to_json(b.action_space)}
    )

    def no_step(self, *a, **k):
        raise AssertionError("the dataset form stepped an env")

    monkeypatch.setattr(gym.Env, "step", no_step)
    monkeypatch.setattr(gym.Wrapper, "step", no_step)
    out = _build(tmp_path, "--dataset", str(data), "--spaces", spaces, "--id", "Dream-CartPoleLogged-v0")
    monkeypatch.undo()
    check_bundle(out)
    m = Bundle.load(out).manifest
    assert m.metrics["data"]["text"].startswith("Logged episodes only") and m.source.env_id is None
    assert not Bundle.load(out).has_graph("policy")


def test_the_rules_are_scale_free_and_bounded():
    lam, text = penalty_rule(reward_std=2.0, heldout_edge_uncertainty=0.1, kappa=0.78)
    assert lam == pytest.approx(15.6) and "0.78" in text
    # rewards ten times larger: a penalty ten times larger; an uncertainty in other units: the same penalty in reward
    assert penalty_rule(20.0, 0.1, 0.78)[0] == pytest.approx(10 * lam)
    assert penalty_rule(2.0, 1.0, 0.78)[0] * 1.0 == pytest.approx(lam * 0.1)
    assert horizon_rule([0.1, 0.15, 0.19, 0.25, 0.1], 0.2, 20)[0] == 3
    assert horizon_rule([0.5] * 30, 0.2, 20)[0] == 2  # never under two steps
    assert horizon_rule([0.01] * 30, 0.2, 20)[0] == 20


def test_names_and_mixes_follow_the_env():
    assert slug("HalfCheetah-v5") == "halfcheetah" and default_id("ALE/Pong-v5") == "Dream-Pong-v0"
    snaps = [f"s{k}" for k in range(0, 120, 15)]
    assert resolve_mix(("policy@2/8:0.2", "kick+random", "flip+bang"), snaps, {"kick"}) == [
        "policy@s30:0.2",
        "kick+random",
    ]
    km, names = keymap_for(gym.spaces.Box(-1, 1, (3,)))
    assert [d["keys"] for d in km["continuous"]] == [["q", "a"], ["w", "s"], ["e", "d"]] and len(names) == 3
    info = env_info(Recipe(env="HalfCheetah-v5"))  # made, not stepped: the spaces, the limit, the actuators
    assert info.mujoco and info.limit == 1000 and info.names[:3] == ("bthigh", "bshin", "bfoot")
    assert keymap_for(info.action_space, info.names)[0]["continuous"][0]["name"] == "bthigh"
    with pytest.raises(ValueError, match="flat Box observation"):
        env_info(Recipe(env="ALE/Pong-v5"))  # pixels


def test_train_help_names_the_own_env_form():
    code = "import sys; from dreamgym.export import commands; sys.exit(commands.train(['--help']))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and "dreamgym train --env ENV_ID" in out.stdout and "--dataset PATH" in out.stdout


def test_no_env_nor_dataset_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="--env ENV_ID"):
        train(["env", "--preset", "tiny", "--run", str(tmp_path)])


@pytest.mark.parametrize("space", [gym.spaces.Discrete(2), gym.spaces.Discrete(5), gym.spaces.Box(-1, 1, (12,))])
def test_the_keymap_is_one_dreamgym_play_takes(space):
    pygame = pytest.importorskip("pygame")
    from dreamgym.play.keys import KeyMap

    keymap, _ = keymap_for(space)
    km = KeyMap(keymap, space, pygame.key.key_code)  # refuses the front end's own keys
    assert km.kind == ("continuous" if isinstance(space, gym.spaces.Box) else "discrete")


def test_env_kwargs_reach_every_stage(tmp_path):
    # Sutton and Barto's CartPole reward (0 a step, -1 on the fall): the data, the bank and the source say so
    out = _build(tmp_path, "--env", "CartPole-v1", "--env-kwargs", '{"sutton_barto_reward": true}', "--frame-size", "0")
    m = Bundle.load(out).manifest
    assert m.source.render["make_kwargs"] == {"sutton_barto_reward": True}
    from dreamgym.export.data.episodes import load_folder

    rewards = np.concatenate([e["reward"][1:] for e in load_folder(tmp_path / "data" / "train" / "wide")])
    assert set(np.unique(rewards)) <= {0.0, -1.0} and rewards.min() == -1.0
    assert m.model.config["frame_bars"] is True  # no frames: the observation drawn as bars
    check_bundle(out)

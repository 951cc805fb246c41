"""The joint RSSM family and the mpe2 simple_tag recipe: real games, one model of every agent."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import dreamgym
from dreamgym.export.data import mpe
from dreamgym.export.families import family_of, get_family
from dreamgym.export.families.joint import Contacts, JointConfig, SceneDrawer
from dreamgym.export.families.joint_gru import JointGRU, JointGRUConfig
from dreamgym.export.families.joint_mlp import JointMLP, JointMLPConfig
from dreamgym.export.families.rssm import RSSMConfig
from dreamgym.export.testing import check_family

TINY = JointConfig(
    obs_dim=40, act_dim=15, rewards=3, agents=mpe.AGENTS, deter=16, stoch=4, hidden=16, frame_size=24, **mpe.scene()
)


def test_joint_family_passes_check_family():
    report = check_family(get_family("joint-rssm"), TINY)
    assert report["graphs"] == ["render", "reset", "step"]
    assert "step.reward.agent_0" in report["parity"]


def test_joint_gru_family_passes_check_family():
    cfg = JointGRUConfig(
        obs_dim=40,
        act_dim=15,
        rewards=3,
        agents=mpe.AGENTS,
        deter=16,
        hidden=16,
        frame_size=24,
        warmup=4,
        **mpe.scene(),
    )
    report = check_family(get_family("joint-gru"), cfg)
    assert "step.obs.agent_0" in report["parity"] and "step.next_o" in report["parity"]


def test_the_joint_gru_steps_in_observation_space():
    """A model whose change head gives zero holds every observation where it is, exactly."""
    cfg = JointGRUConfig(obs_dim=40, act_dim=15, rewards=3, agents=mpe.AGENTS, deter=8, hidden=8, **mpe.scene())
    m = JointGRU(cfg).eval()
    torch.nn.init.zeros_(m.delta[-1].weight), torch.nn.init.zeros_(m.delta[-1].bias)
    o = torch.randn(3, 40)
    acts = torch.rand(3, 15).split([5, 5, 5], -1)
    out = m.joint_step(torch.zeros(3, 8), o, *acts)
    assert torch.equal(out[1], o) and torch.equal(torch.cat(out[2:5], -1), o)


MLP = JointMLPConfig(
    obs_dim=40,
    act_dim=15,
    rewards=3,
    agents=mpe.AGENTS,
    hidden=16,
    head_hidden=8,
    frame_size=24,
    speed_slots=mpe.SPEED_SLOTS,
    **mpe.scene(),
)


def test_joint_mlp_family_passes_check_family():
    report = check_family(get_family("joint-mlp"), MLP)
    assert "step.obs.agent_0" in report["parity"] and "step.next_o" in report["parity"]
    assert family_of(MLP).name == "joint-mlp"


def _still_mlp(speed_max: float) -> JointMLP:
    """A joint MLP whose change is zero: only the speed cap acts."""
    m = JointMLP(MLP).eval()
    for lin in (m.skip, m.delta[-1]):
        torch.nn.init.zeros_(lin.weight), torch.nn.init.zeros_(lin.bias)
    m.speed_max.fill_(speed_max)
    return m


def test_the_joint_mlp_holds_an_observation_whose_change_is_zero():
    m = _still_mlp(10.0)
    o = torch.randn(3, 40)
    acts = torch.rand(3, 15).split([5, 5, 5], -1)
    out = m.joint_step(o, *acts)
    assert torch.equal(out[0], o) and torch.equal(torch.cat(out[1:4], -1), o)


def test_the_joint_mlp_caps_every_velocity_at_the_fastest_seen_and_nothing_else():
    m = _still_mlp(1.0)
    o = torch.zeros(2, 40)
    o[0, 0:2] = torch.tensor([3.0, 4.0])  # adversary_0 at speed 5: scaled to 1 along the same direction
    o[0, 28:30] = torch.tensor([0.3, 0.4])  # the prey at 0.5: untouched
    o[:, 2:12] = 7.0  # positions and offsets are no velocities: never capped
    out = m.joint_step(o, *torch.zeros(2, 15).split([5, 5, 5], -1))[0]
    assert torch.allclose(out[0, 0:2], torch.tensor([0.6, 0.8]), atol=1e-6)
    assert torch.equal(out[0, 28:30], o[0, 28:30]) and torch.equal(out[:, 2:12], o[:, 2:12])


def test_the_joint_mlp_learns_its_speed_caps_from_the_data():
    eps = [
        {"obs": 0.1 * np.random.default_rng(i).normal(size=(20, 40)).astype(np.float32), "reward": np.zeros((20, 3))}
        for i in range(3)
    ]
    eps[1]["obs"][5, 28:30] = [1.2, 0.5]  # the prey's fastest: 1.3
    m = JointMLP(MLP)
    m.set_stats(eps)
    prey = MLP.speed_slots.index(28)
    assert abs(float(m.speed_max[prey]) - 1.3) < 1e-5


def test_a_speed_slot_outside_the_observation_is_refused():
    with pytest.raises(ValueError, match="speed_slots"):
        dataclasses.replace(MLP, speed_slots=(39,))


def test_contacts_are_the_overlap_of_every_pair_of_discs():
    """Entities: two obstacles (r 0.2), two predators (0.075), the prey (0.05), placed through the prey's
    observation; only adversary_0 touches the prey (0.1 apart: 0.025 overlap, pushed along +x)."""
    cfg = JointGRUConfig(obs_dim=40, act_dim=15, rewards=3, agents=mpe.AGENTS, **mpe.scene())
    obs = np.zeros((1, 40), np.float32)
    obs[0, 32:36] = [5, 5, -5, 5]  # the obstacles, far apart and far away
    obs[0, 36:38] = [0.1, 0.0]  # adversary_0 relative to the prey
    obs[0, 38:40] = [0.0, 1.0]  # adversary_1, far
    f = Contacts(cfg)(torch.from_numpy(obs))[0].numpy()
    pairs = [(i, j) for i in range(5) for j in range(i + 1, 5)]
    k = pairs.index((2, 4))
    over, px, py = np.split(f, 3)
    assert np.allclose(over[k], 0.25, atol=1e-5) and np.allclose(px[k], 0.25, atol=1e-5) and py[k] == 0
    assert np.count_nonzero(f) == 2


def test_a_joint_config_is_its_own_family_not_the_plain_rssm():
    assert family_of(TINY).name == "joint-rssm" and family_of(RSSMConfig()).name == "rssm"


def test_the_drawer_puts_each_entity_where_the_prey_sees_it():
    cfg = dataclasses.replace(TINY, frame_size=96)  # the prey is 0.05 wide: a few pixels at this size
    obs = np.zeros((1, 40), np.float32)
    obs[0, 30:32] = [0.5, -0.5]  # the prey's own position
    obs[0, 36:38] = [-1.0, 1.0]  # adversary_0 relative to it: at (-0.5, 0.5)
    obs[0, 32:36] = [5, 5, 5, 5]  # obstacles far off screen
    obs[0, 38:40] = [5, 5]
    frame = SceneDrawer(cfg)(torch.from_numpy(obs))[0].numpy()
    S, ext = cfg.frame_size, cfg.scene_extent

    def pixel(x, y):
        return frame[int((ext - y) / (2 * ext) * S), int((x + ext) / (2 * ext) * S)]

    assert tuple(pixel(0.5, -0.5)) == tuple(round(c * 255) for c in cfg.scene_colors[4])  # green prey
    assert tuple(pixel(-0.5, 0.5)) == tuple(round(c * 255) for c in cfg.scene_colors[2])  # red predator
    assert tuple(pixel(0.0, 0.0)) == (255, 255, 255)


def test_collected_games_align_actions_before_observations(tmp_path):
    mpe.collect(tmp_path, 1, ("scripted",), seed=5, progress=False, max_cycles=12)
    (ep,) = mpe.load(tmp_path)
    assert ep["obs"].shape == (13, 40) and ep["prev_act"].shape == (13, 15) and ep["reward"].shape == (13, 3)
    assert not ep["prev_act"][0].any() and ep["mask"][0] == 0
    # replaying the recorded actions in the real env from the same seed gives the recorded observations
    env = mpe.make_env(max_cycles=12)
    obs, _ = env.reset(seed=ep["meta"]["seed"])
    for t in range(1, 13):
        acts = {a: ep["prev_act"][t][5 * i : 5 * i + 5] for i, (a, _, _) in enumerate(mpe.AGENTS)}
        obs, *_ = env.step(acts)
        assert np.allclose(np.concatenate([obs[a] for a, _, _ in mpe.AGENTS]), ep["obs"][t], atol=1e-6)


def test_the_scripted_predators_close_in_on_the_prey():
    env = mpe.make_env(max_cycles=60)
    obs, _ = env.reset(seed=0)
    pol = mpe.ScriptedTag()
    start = np.linalg.norm(obs["adversary_0"][10:12])
    closest = start
    for _ in range(60):
        acts = mpe.scripted_actions(pol, obs)
        acts["agent_0"] = np.zeros(5, np.float32)  # a prey that stands still
        obs, *_ = env.step(acts)
        if not env.agents:
            break
        closest = min(closest, np.linalg.norm(obs["adversary_0"][10:12]))
    assert closest < 0.2 < start or start < 0.2


def test_the_tiny_recipe_measures_every_agent(tiny_tag):
    m = dreamgym.Bundle.load(tiny_tag).manifest
    f = m.metrics["fidelity"]
    assert set(f["agents"]) == {"adversary_0", "adversary_1", "agent_0"}
    for row in f["agents"].values():
        assert {"1", "10"} <= set(row["horizons"]) and "reward_corr_50" in row
    assert set(m.metrics["policy_returns"]["agents"]) == set(f["agents"])
    card = (tiny_tag / "README.md").read_text()
    assert "## Fidelity, per agent" in card and "| agent_0 |" in card and "make_parallel" in card
    assert m.summary is not None and "worst agent" in m.summary.metric
    assert m.preview is not None and (tiny_tag / m.preview.file).stat().st_size > 0 and "## Preview" in card


def test_dreamgym_evaluate_measures_a_multi_agent_dream(tiny_tag, tmp_path):
    """`dreamgym evaluate` on a multi-agent bundle: fresh mpe2 games, the per-agent tables, the policies'
    returns with their standard errors, written into the manifest and the card."""
    import shutil

    from dreamgym.export.commands import EvaluateArgs, run_evaluation

    b = tmp_path / "bundle"
    shutil.copytree(tiny_tag, b)
    assert run_evaluation(EvaluateArgs(bundle=str(b), count=2, max_steps=40, write=True)) == 0
    m = dreamgym.Bundle.load(b).manifest
    assert m.metrics["policy_returns"]["starts"] == 64 and "policy_returns" not in m.metrics["fidelity"]
    assert set(m.metrics["fidelity"]["agents"]) == {"adversary_0", "adversary_1", "agent_0"}
    assert " ± " in (b / "README.md").read_text()


def test_real_starts_gives_contexts_the_dream_accepts_and_the_real_steps_after_them():
    """The real starts of `policy_returns` (and of benchmarks/studies/tag_closeness.py): the same seed gives the same
    starts; the context opens the shipped dream; the real observations after it are the real env's, in each
    agent's own space, and the rewards are the real env's (predators share theirs, the prey's is apart)."""
    from dreamgym.export.measure.joint import real_starts

    b = dreamgym.Bundle.load(dreamgym.resolve("Dream-SimpleTag-v0"))
    games = dreamgym.make_batched(b, 3, autoreset="disabled", noise_scale=0.0, max_episode_steps=10**9)
    make_real = lambda: mpe.make_env(max_cycles=10**6)  # noqa: E731
    ctx, obs, rew = real_starts(games, make_real, n=3, horizon=6, seed=7)
    again = real_starts(games, make_real, n=3, horizon=6, seed=7)
    for a in b.agents:
        d = b.manifest.agent(a).observation_space.shape[0]
        assert ctx["obs"][a].shape == (3, b.context_length, d) and obs[a].shape == (3, 6, d)
        assert rew[a].shape == (3, 6) and np.isfinite(obs[a]).all()
        np.testing.assert_array_equal(obs[a], again[1][a])
        np.testing.assert_array_equal(ctx["actions"][a], again[0]["actions"][a])
    np.testing.assert_array_equal(rew["adversary_0"], rew["adversary_1"])
    first, _ = games.reset(seed=0, options={"context": ctx})
    for a in b.agents:  # the dream starts where the real warm-up ended
        np.testing.assert_allclose(first[a], ctx["obs"][a][:, -1], atol=1e-5)
    games.close()

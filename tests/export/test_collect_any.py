"""The collector and the search on envs other than HalfCheetah: Discrete actions, a step budget, resuming,
the perturbations an env can take, the ARS policy on other action spaces, and the bank's refusal of short
episodes."""

import gymnasium as gym
import numpy as np
import pytest

from dreamgym.export.data.ars import ARSConfig, LinearPolicy, train_ars
from dreamgym.export.data.collect import CollectConfig, Perturb, collect, make_behaviour
from dreamgym.export.data.episodes import load_folder


@pytest.mark.parametrize("kind", ["random", "zero", "bang", "ou", "sine", "policy:0.3", "mixed"])
def test_every_behaviour_gives_valid_discrete_actions(kind):
    space = gym.spaces.Discrete(3)
    act = make_behaviour(kind, space, policy=lambda o: 2, rng=np.random.default_rng(0))
    got = [act(np.zeros(4), t) for t in range(300)]
    assert all(isinstance(a, int) and space.contains(a) for a in got)


def test_collect_fills_a_step_budget_and_resumes(tmp_path):
    cfg = CollectConfig(
        env_id="CartPole-v1", behaviours=("random", "bang"), episodes=0, steps=150, frame_size=0, seed=1
    )
    paths = collect(cfg, tmp_path, progress=False)
    eps = load_folder(tmp_path)
    assert sum(len(e["obs"]) - 1 for e in eps) >= 150 and len(paths) == len(eps)
    assert eps[0]["prev_act"].dtype == np.int64 and eps[0]["prev_act"].ndim == 1  # indices, as a bank holds them
    assert eps[0]["cont"][-1] == 0  # random CartPole falls
    stamp = [p.stat().st_mtime_ns for p in paths]
    again = collect(cfg, tmp_path, progress=False)  # everything is there: nothing is collected twice
    assert again == paths and [p.stat().st_mtime_ns for p in paths] == stamp


def test_collect_renders_frames_of_a_non_mujoco_env(tmp_path):
    collect(
        CollectConfig(env_id="CartPole-v1", behaviours=("random",), episodes=1, frame_size=16), tmp_path, progress=False
    )
    (ep,) = load_folder(tmp_path)
    assert ep["frames"].shape == (len(ep["obs"]), 16, 16, 3) and ep["frames"].std() > 0


def test_perturbations_go_only_where_the_env_can_take_them():
    hopper, pendulum = gym.make("Hopper-v5"), gym.make("InvertedPendulum-v5")
    assert Perturb.allowed("flip", hopper) and Perturb.allowed("kick", hopper)
    assert Perturb.allowed("kick", pendulum) and not Perturb.allowed("flip", pendulum)  # no pitch joint
    assert not Perturb.allowed("kick", gym.make("CartPole-v1"))
    with pytest.raises(ValueError, match="cannot take"):
        Perturb("flip", pendulum, np.random.default_rng(0))


def test_ars_searches_discrete_and_scaled_action_spaces():
    stats = {}
    pol = train_ars(
        ARSConfig(env_id="CartPole-v1", iterations=2, directions=2, top=1, horizon=30), log=lambda s: None, stats=stats
    )
    assert pol.discrete and pol.M.shape == (2, 4) and stats["env_steps"] > 0
    assert pol.act(np.ones(4)) in (0, 1)
    p = LinearPolicy.for_env(gym.make("Pendulum-v1"))
    p.M[:] = 100.0
    assert p.act(np.ones(3)) == pytest.approx([2.0]) and LinearPolicy.from_dict(p.to_dict()).act(
        -np.ones(3)
    ) == pytest.approx([-2.0])


def test_policy_graph_matches_the_policy():
    torch = pytest.importorskip("torch")
    from dreamgym.export.exporter import LinearPolicyGraph

    rng = np.random.default_rng(0)
    for env_id in ("Pendulum-v1", "CartPole-v1", "HalfCheetah-v5"):
        p = LinearPolicy.for_env(gym.make(env_id))
        p.M = rng.normal(size=p.M.shape)
        p.mean, p.var = rng.normal(size=p.mean.shape), rng.uniform(0.5, 2, p.var.shape)
        o = rng.normal(size=(8, p.M.shape[1]))
        want = np.stack([p.act(x) for x in o])
        got = LinearPolicyGraph.of(p)(torch.from_numpy(o).float()).numpy()
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_a_bank_of_episodes_shorter_than_the_context_says_so():
    pytest.importorskip("torch")
    from dreamgym.export.exporter import context_windows

    eps = [{"obs": np.zeros((4, 3)), "prev_act": np.zeros((4, 1))}] * 3
    with pytest.raises(ValueError, match="10-step context"):
        context_windows(eps, 10, 5, np.random.default_rng(0))
    assert context_windows(
        eps + [{"obs": np.zeros((12, 3)), "prev_act": np.zeros((12, 1))}], 10, 5, np.random.default_rng(0)
    )["obs"].shape == (5, 10, 3)


def test_a_kick_is_no_transition_to_learn(tmp_path):
    # the pushed state replaces the step's outcome: the model must not learn (obs, action) -> pushed state
    collect(
        CollectConfig(env_id="HalfCheetah-v5", behaviours=("kick+random",), episodes=1, max_steps=260, frame_size=0),
        tmp_path,
        progress=False,
    )
    (ep,) = load_folder(tmp_path)
    from dreamgym.export.data.collect import load_episodes

    pushed = next(load_episodes(tmp_path))["perturbed"]
    assert pushed.any() and pushed.sum() < 6
    assert np.all(ep["mask"][1:][pushed] == 0) and np.all(ep["mask"][1:][~pushed] == 1)


def test_a_step_budget_can_give_every_behaviour_its_share_of_steps(tmp_path):
    # CartPole: random actions fall in ~20 steps where a balancing policy runs 500
    from dreamgym.export.data.collect import load_episodes

    cfg = CollectConfig(
        env_id="CartPole-v1", behaviours=("random", "policy:0.0"), episodes=0, steps=2000, frame_size=0, share="steps"
    )
    collect(cfg, tmp_path, policy=lambda o: int(o[2] + o[3] > 0), progress=False)  # a policy that balances
    steps = {}
    for e in load_episodes(tmp_path):
        steps[e["meta"]["behaviour"]] = steps.get(e["meta"]["behaviour"], 0) + len(e["rewards"])
    assert min(steps.values()) >= 0.35 * sum(steps.values()), steps  # cycling episodes gives random ~5 %
    with pytest.raises(ValueError, match="share"):
        collect(CollectConfig(env_id="CartPole-v1", steps=10, share="nope"), tmp_path / "x", progress=False)

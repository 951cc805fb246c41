"""The step-ensemble family: check_family, the random member, the disagreement, standardisation and refusals."""

import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dreamgym.export.families import get_family  # noqa: E402
from dreamgym.export.families.ensemble import EnsembleConfig, StepEnsemble  # noqa: E402
from dreamgym.export.testing import check_family  # noqa: E402

TINY = EnsembleConfig(obs_dim=5, act_dim=2, members=3, hidden=16, layers=2, frame_size=16, frame_channels=4)


def _episodes(n=3, T=20, seed=0, O=5, A=2):
    """Episodes of a deterministic linear system (o' = 0.9 o + B a, r = sum(a)): learnable, like a simulator."""
    rng = np.random.default_rng(seed)
    B = rng.standard_normal((A, O)).astype(np.float32)
    eps = []
    for _ in range(n):
        act = rng.uniform(-1, 1, (T + 1, A)).astype(np.float32)
        act[0] = 0
        obs = [rng.standard_normal(O).astype(np.float32)]
        for t in range(1, T + 1):
            obs.append(0.9 * obs[-1] + act[t] @ B)
        rew = act.sum(1).astype(np.float32)
        eps.append(
            {
                "obs": np.stack(obs),
                "prev_act": act,
                "reward": rew,
                "cont": np.ones(T + 1, np.float32),
                "mask": np.ones(T + 1),
            }
        )
    return eps


def test_check_family():
    report = check_family(get_family("step-ensemble"), TINY)
    assert report["fit"]["last_loss"] < report["fit"]["first_loss"]


def test_step_uses_the_member_the_noise_picks():
    torch.manual_seed(0)
    m = StepEnsemble(TINY).eval()
    o, a = torch.randn(4, 5), torch.rand(4, 2) * 2 - 1
    y = m.members(o, a)
    for k in range(TINY.members):
        u = torch.full((4,), (k + 0.5) / TINY.members)
        nxt, obs, reward, term, latent, unc = m.step_graph(o, a, u)
        torch.testing.assert_close(nxt, o + y[k, :, :5] * m.delta_std + m.delta_mean)
        torch.testing.assert_close(reward, y[k, :, 5] * m.reward_std + m.reward_mean)
        assert not term.any()
        torch.testing.assert_close(unc, y[:, :, :5].std(0).norm(dim=-1))
    # different members give different steps, so the noise matters
    first = m.step_graph(o, a, torch.zeros(4))[0]
    last = m.step_graph(o, a, torch.full((4,), 0.999))[0]
    assert not torch.allclose(first, last)


def test_members_that_agree_have_no_uncertainty():
    m = StepEnsemble(TINY).eval()
    with torch.no_grad():
        for w, b in zip(m.w, m.b):
            w.copy_(w[:1].expand_as(w)), b.copy_(b[:1].expand_as(b))
    unc = m.step_graph(torch.randn(3, 5), torch.zeros(3, 2), torch.rand(3))[-1]
    assert torch.all(unc.abs() < 1e-6)


def test_set_stats_standardises_and_refuses_terminations():
    eps = _episodes()
    m = StepEnsemble(TINY)
    m.set_stats(eps)
    d = np.concatenate([np.diff(e["obs"], axis=0) for e in eps])
    np.testing.assert_allclose(m.delta_mean.numpy(), d.mean(0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(m.delta_std.numpy(), d.std(0), rtol=1e-4)
    eps[1]["cont"][-1] = 0.0
    with pytest.raises(ValueError, match="no termination head"):
        m.set_stats(eps)


def test_loss_falls_and_bootstrap_gives_each_member_its_own_share():
    torch.manual_seed(0)
    eps = _episodes()
    m = StepEnsemble(TINY)
    m.set_stats(eps)
    batch = tuple(
        torch.from_numpy(np.stack([e[k] for e in eps]).astype(np.float32))
        for k in ("obs", "prev_act", "reward", "cont", "mask")
    )
    opt = torch.optim.Adam(m.parameters(), 3e-3)
    first = m.loss(*batch)[0].item()
    for _ in range(150):
        loss, logs = m.loss(*batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert logs["loss"] < 0.5 * first
    assert set(logs) >= {"one_step", "reward"}


def test_bad_configs_are_refused():
    with pytest.raises(ValueError, match="members must be >= 2"):
        EnsembleConfig(members=1)
    with pytest.raises(ValueError, match="bootstrap"):
        EnsembleConfig(bootstrap=0.0)


def test_tiny_recipe_sets_up_short_dreams_from_the_training_data(tmp_path):
    """collect -> train -> export -> card through the real recipe at toy sizes: the bundle's bank holds
    single steps of the training data, gym.make's default horizon is the recipe's, whole episodes stay at hand."""
    import dataclasses
    import json

    import dreamgym
    from dreamgym.export.train.recipes import halfcheetah_ensemble as recipe
    from dreamgym.testing import check_bundle

    out = tmp_path / "bundle"
    tiny = dataclasses.replace(
        recipe.TINY, run=str(tmp_path / "w" / "run"), data=str(tmp_path / "w"), out=str(out), id="Dream-EnsTiny-v0"
    )
    res = recipe.build(tiny, progress=False)
    assert max(v for k, v in res["parity"].items() if not k.startswith("render")) <= 1e-4
    check_bundle(out)
    man = json.loads((out / "dreamgym.json").read_text())
    assert man["family"] == "step-ensemble" and man["context_length"] == 1
    assert man["env_defaults"] == {
        "uncertainty_penalty": man["metrics"]["uncertainty"]["penalty"],
        "max_episode_steps": 5,
    }
    assert man["metrics"]["data"]["bank"] == "the training data"
    assert man["metrics"]["recipe"]["command"] == "dreamgym train halfcheetah_ensemble"
    card = (out / "README.md").read_text()
    assert "truncation after **5 steps** by default" in card and "from the training data" in card
    env = dreamgym.make_vec(out, 3)
    assert env.max_episode_steps == 5 and env.uncertainty_limit is None
    env.reset(seed=0)
    for _ in range(5):
        *_, trunc, info = env.step(env.action_space.sample())
    assert trunc.all() and np.isfinite(info["uncertainty"]).all() and (info["uncertainty"] >= 0).all()


def _benchmark(name):
    """A script of benchmarks/, imported as a module (benchmarks/ is not a package)."""
    import importlib
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.pop(0)


def test_the_uncertainty_cost_twin_is_member_zero_alone(tmp_path, default_bundle):
    """benchmarks/uncertainty_cost.py measures the shipped ensemble against member 0 alone (no noise, no
    uncertainty): that twin dreams exactly what the ensemble dreams when the noise picks member 0."""
    import dreamgym

    twin = _benchmark("uncertainty_cost").write_twin(default_bundle, tmp_path / "twin")
    b = dreamgym.Bundle.load(twin)
    assert b.manifest.noise == () and b.manifest.outputs == () and b.manifest.env_defaults.uncertainty_penalty == 0
    raw = {"uncertainty_penalty": 0.0, "uncertainty_limit": None, "max_episode_steps": 50, "device": "cpu"}
    full = dreamgym.make_vec(default_bundle, 3, noise_scale=0.0, **raw)
    one = dreamgym.make_vec(twin, 3, **raw)
    oa, _ = full.reset(seed=2)
    ob, _ = one.reset(seed=2)
    np.testing.assert_array_equal(oa, ob)
    rng = np.random.default_rng(0)
    for _ in range(10):
        act = rng.uniform(-1, 1, (3, 6)).astype(np.float32)
        (oa, ra, *_), (ob, rb, *_) = full.step(act), one.step(act)
        np.testing.assert_allclose(oa, ob, atol=1e-4)
        np.testing.assert_allclose(ra, rb, atol=1e-4)
    full.close(), one.close()


def test_lambda_windows_of_the_calibration_check():
    """benchmarks/calibration_check.py: the penalties λ that put raw − λ·U within 20 % (or ±300) of the real
    return, per policy, and the window they share."""
    from dreamgym.manifest import EnvDefaults

    cc = _benchmark("calibration_check")
    rows = [
        {"policy": "flat", "real": -200.0, "raw": -180.0, "bundle": -180.0},  # no uncertainty: any λ
        {"policy": "fast", "real": 3000.0, "raw": 4000.0, "bundle": 3000.0},  # U = 250 at λ = 4
        {"policy": "slow", "real": 0.0, "raw": 100.0, "bundle": -700.0},  # U = 200
    ]
    w = cc.lambda_windows(rows, ["raw", "bundle"], EnvDefaults(uncertainty_penalty=4.0))
    assert w["policies"]["flat"] == (0.0, 0.0, float("inf"))
    u, lo, hi = w["policies"]["fast"]
    assert u == 250.0 and lo == pytest.approx(400 / 250) and hi == pytest.approx(1600 / 250)
    u, lo, hi = w["policies"]["slow"]
    assert u == 200.0 and lo == 0.0 and hi == pytest.approx(400 / 200)
    assert w["common"] == [pytest.approx(1.6), pytest.approx(2.0)]
    assert cc.lambda_windows(rows, ["bundle"], EnvDefaults(uncertainty_penalty=4.0)) is None  # no raw run


def _falling_episodes(n=40, seed=0):
    """A body that falls: o' = o + a / 4 + noise, and the episode ends when |o[0]| > 1 (a rule of the next state)."""
    rng = np.random.default_rng(seed)
    eps = []
    for _ in range(n):
        o, obs, act = rng.uniform(-0.5, 0.5, 5).astype(np.float32), [], [np.zeros(2, np.float32)]
        obs.append(o)
        for _t in range(60):
            a = rng.uniform(-1, 1, 2).astype(np.float32)
            o = (o + np.r_[a, a, a[:1]] / 4).astype(np.float32)
            obs.append(o), act.append(a)
            if abs(o[0]) > 1:
                break
        T = len(obs)
        cont = np.ones(T, np.float32)
        cont[-1] = 0.0 if abs(obs[-1][0]) > 1 else 1.0
        eps.append(
            {
                "obs": np.stack(obs),
                "prev_act": np.stack(act),
                "reward": np.ones(T, np.float32),
                "cont": cont,
                "mask": np.r_[0.0, np.ones(T - 1)],
            }
        )
    return eps


def test_termination_head_learns_the_rule_of_the_next_state():
    from dreamgym.export.data.episodes import SequenceSampler

    torch.manual_seed(0)
    eps = _falling_episodes()
    m = StepEnsemble(
        EnsembleConfig(
            obs_dim=5, act_dim=2, members=2, hidden=32, layers=2, termination=True, frame_size=16, frame_channels=4
        )
    )
    m.set_stats(eps)
    assert float(m.term_pos_weight) > 1  # the rare class is weighted up
    opt = torch.optim.Adam(m.parameters(), 3e-3)
    s = SequenceSampler(eps, 2, 0)
    for _ in range(400):
        b = s.sample(256)
        loss, logs = m.loss(*(torch.from_numpy(b[k]) for k in ("obs", "prev_act", "reward", "cont", "mask")))
        opt.zero_grad(), loss.backward(), opt.step()
    with torch.no_grad():
        inside, outside = torch.zeros(64, 5), torch.zeros(64, 5)
        inside[:, 0], outside[:, 0] = (
            torch.linspace(-0.8, 0.8, 64),
            torch.linspace(1.2, 2.0, 64) * torch.sign(torch.randn(64)),
        )
        assert (m.term_logit(inside) < 0).float().mean() > 0.9 and (m.term_logit(outside) > 0).float().mean() > 0.9
        # the step ends the episodes whose predicted next state is outside
        o = torch.zeros(4, 5)
        o[:, 0] = torch.tensor([0.0, 0.1, 0.95, -0.95])
        a = torch.tensor([[0.0, 0.0], [0.0, 0.0], [1.0, 1.0], [-1.0, -1.0]])
        term = m.eval().step_graph(o, a, torch.zeros(4))[3]
    assert term.tolist() == [False, False, True, True]


def test_discrete_actions_enter_one_hot():
    m = StepEnsemble(
        EnsembleConfig(
            obs_dim=5, act_dim=3, members=2, hidden=8, layers=1, discrete=True, frame_size=16, frame_channels=4
        )
    )
    x = m.action_input(torch.tensor([2, 0, 1]))
    assert x.tolist() == [[0, 0, 1], [1, 0, 0], [0, 1, 0]]
    # the loss's layout holds indices (B, T, 1) as floats
    assert torch.equal(m.action_input(torch.tensor([[2.0], [0.0], [1.0]])), x)


def test_box_actions_are_scaled_from_the_space_bounds():
    m = StepEnsemble(TINY)
    m.set_action_bounds(np.array([-2.0, 0.0]), np.array([2.0, 10.0]))
    x = m.action_input(torch.tensor([[-2.0, 0.0], [2.0, 10.0], [0.0, 5.0]]))
    torch.testing.assert_close(x, torch.tensor([[-1.0, -1.0], [1.0, 1.0], [0.0, 0.0]]))


def test_the_step_stays_in_a_bounded_observation_space():
    m = StepEnsemble(dataclasses.replace(TINY, clip_obs=True)).eval()
    m.set_obs_bounds(np.full(5, -1.0), np.r_[np.ones(4), np.inf])
    with torch.no_grad():
        m.b[-1].fill_(100.0)  # every member predicts a huge change
        nxt = m.step_graph(torch.zeros(3, 5), torch.zeros(3, 2), torch.rand(3))[0]
    assert torch.all(nxt[:, :4] == 1.0) and torch.all(nxt[:, 4] > 1.0)


def test_data_without_frames_draws_the_observation_as_bars():
    from dreamgym.export.families.layers import ObservationBars

    bars = ObservationBars(obs_dim=4, size=16)
    img = bars(torch.tensor([[3.0, -3.0, 0.0, 1.5]]))[0]  # (3, 16, 16) in [0, 1]
    lit = img[0] > 0.5
    assert lit[:8, :4].all() and not lit[8:, :4].any()  # the first bar fills the top half
    assert lit[8:, 4:8].all() and not lit[:8, 4:8].any()  # the second the bottom half
    assert lit[:, 8:12].sum() <= 16 and 2 <= lit[:8, 12:16].sum(0).float().mean() <= 5


def test_termination_phase_with_extra_terminal_rows_learns_the_rule():
    from dreamgym.export.data.episodes import TerminationSampler

    torch.manual_seed(0)
    eps = _falling_episodes()
    cfg = EnsembleConfig(
        obs_dim=5, act_dim=2, members=2, hidden=8, layers=1, termination=True, frame_size=16, frame_channels=4
    )
    m = StepEnsemble(cfg)
    m.set_stats(eps)
    ts = TerminationSampler(eps, 0)
    o, ended, extra = ts.sample(64)
    assert extra.sum() == 16 and ended[extra].min() == 1  # a quarter drawn from the terminal rows
    opt = torch.optim.Adam(m.term.parameters(), 3e-3)
    for _ in range(300):
        loss, logs = m.termination_loss(*(torch.from_numpy(x) for x in ts.sample(256)))
        opt.zero_grad(), loss.backward(), opt.step()
    _, logs = m.termination_loss(*(torch.from_numpy(x) for x in TerminationSampler(eps, 1).sample(4000, extra=False)))
    assert logs["recall"] > 0.9 and logs["precision"] > 0.6  # exact steps; the card counts ±2
    # the members' loss leaves the head alone when asked
    b = _falling_episodes(2)[0]
    batch = tuple(torch.from_numpy(b[k][None]) for k in ("obs", "prev_act", "reward", "cont", "mask"))
    assert "term" in m.loss(*batch)[1] and "term" not in m.loss(*batch, with_termination=False)[1]

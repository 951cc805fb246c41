"""The RSSM family: losses, check_family over its architectures, the onnxruntime step, checkpoints, data and a
tiny end-to-end run."""

import dataclasses
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dreamgym.export import exporter  # noqa: E402
from dreamgym.export.data.collect import CollectConfig, collect, load_episodes  # noqa: E402
from dreamgym.export.data.episodes import SequenceSampler, align  # noqa: E402
from dreamgym.export.families import get_family  # noqa: E402
from dreamgym.export.families.layers import symexp, symlog  # noqa: E402
from dreamgym.export.families.rssm import RSSM, RSSMConfig  # noqa: E402
from dreamgym.export.testing import check_family  # noqa: E402
from dreamgym.export.train.fit import load_checkpoint, save_checkpoint  # noqa: E402

TINY = dict(deter=24, stoch=6, hidden=24, frame_channels=4, overshoot=3)


def _batch(B=3, L=12, O=17, A=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(B, L, O, generator=g),
        torch.rand(B, L, A, generator=g) * 2 - 1,
        torch.randn(B, L, generator=g),
        torch.ones(B, L),
        torch.ones(B, L),
    )


def test_symlog_inverts():
    x = torch.linspace(-50, 50, 101)
    torch.testing.assert_close(symexp(symlog(x)), x, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("classes", [0, 4], ids=["gaussian", "categorical"])
def test_loss_is_finite_and_trains_every_part(classes):
    m = RSSM(RSSMConfig(classes=classes, **TINY))
    loss, logs = m.loss(*_batch())
    assert torch.isfinite(loss) and set(logs) >= {"recon", "kl", "reward", "cont", "overshoot"}
    loss.backward()
    dyn = [p for n, p in m.named_parameters() if not n.startswith("frame_decoder")]
    assert all(p.grad is not None for p in dyn)


def test_free_bits_floor_the_kl():
    m = RSSM(RSSMConfig(free_nats=5.0, **TINY))
    _, logs = m.loss(*_batch())
    assert logs["kl"] >= 5.0 - 1e-5


# the architectures an RSSMConfig offers: DreamerV2's (LayerNorm), RMSNorm, and the lean one (no norm,
# ReLU, shared heads, sigmoid std: the fewest onnxruntime nodes)
ARCHS = {
    "layer": {"norm": "layer"},
    "rms": {"norm": "rms"},
    "lean": {"norm": "none", "act": "relu", "shared_heads": True, "std_act": "sigmoid"},
}


@pytest.mark.parametrize("arch", list(ARCHS))
@pytest.mark.parametrize("classes", [0, 4], ids=["gaussian", "categorical"])
def test_check_family(classes, arch):
    """Export, parity, check_bundle, determinism and a short fit, for every architecture and latent kind."""
    report = check_family(get_family("rssm"), RSSMConfig(classes=classes, **ARCHS[arch], **TINY), batch=33)
    assert (
        any(k.endswith(".obs") for k in report["parity"]) and report["fit"]["last_loss"] < report["fit"]["first_loss"]
    )


@pytest.mark.parametrize("arch", list(ARCHS))
@pytest.mark.parametrize("symlog_inputs", [True, False], ids=["symlog", "standardised"])
@pytest.mark.parametrize("classes", [0, 4], ids=["gaussian", "categorical"])
def test_export_step_is_imagine_step(classes, symlog_inputs, arch):
    """The step traced into step.onnx is the model's own step rewritten: the same outputs, also where the
    prior's std logits are far out on either side (softplus in its stable form) and near the continue
    head's threshold."""
    torch.manual_seed(0)
    m = RSSM(RSSMConfig(classes=classes, symlog_inputs=symlog_inputs, **ARCHS[arch], **TINY)).eval()
    if not symlog_inputs:
        m.set_obs_stats(np.linspace(-1, 1, 17), np.linspace(0.5, 3, 17))
    with torch.no_grad():
        # std logits of several hundred: exp() would overflow float32 (no norm: smaller hidden values)
        m.prior_net[-1].weight.mul_(200.0 if arch != "lean" else 1000.0)
    ex = m.example_inputs(257, 4, np.random.default_rng(1))["step"]
    args = [torch.from_numpy(ex[k]) for k in ("h", "z", "action", "noise_z")]
    with torch.no_grad():
        want, got = m.imagine_step(*args), m.export_step(*args)
        stats = m.prior_net(want[0])
    if not classes:
        assert stats.abs().max() > 100  # the test reaches the range it is about
    for name, w, g in zip(("h", "z", "obs", "reward", "terminated", "latent"), want, got):
        assert w.shape == g.shape and w.dtype == g.dtype, name
        if w.dtype == torch.bool:
            assert (w == g).float().mean() >= 0.99, name  # a rounding step may flip a value at the threshold
        else:
            assert torch.isfinite(g).all() and torch.allclose(w, g, rtol=1e-5, atol=1e-4), name


def test_categorical_noise_gives_one_hot():
    m = RSSM(RSSMConfig(classes=4, **TINY))
    z = m._sample(m._dist(torch.randn(5, 6 * 4)), torch.zeros(5, 6, 4))
    assert torch.allclose(z.view(5, 6, 4).sum(-1), torch.ones(5, 6))


def test_checkpoint_round_trip_without_pickles(tmp_path):
    m = RSSM(RSSMConfig(**TINY))
    opt = torch.optim.Adam(m.parameters())
    loss, _ = m.loss(*_batch())
    loss.backward()
    opt.step()
    save_checkpoint(tmp_path / "c.npz", m, {"all": opt}, {"step": 1})
    with np.load(tmp_path / "c.npz", allow_pickle=False) as z:
        assert all(z[k].dtype != object for k in z.files)
    m2 = RSSM(RSSMConfig(**TINY))
    opt2 = torch.optim.Adam(m2.parameters())
    meta = load_checkpoint(tmp_path / "c.npz", m2, {"all": opt2})
    assert meta["step"] == 1
    for a, b in zip(m.state_dict().values(), m2.state_dict().values()):
        torch.testing.assert_close(a, b)
    assert len(opt2.state_dict()["state"]) == len(opt.state_dict()["state"])


def test_collector_writes_real_episodes(tmp_path):
    paths = collect(
        CollectConfig(behaviours=("random", "sine"), episodes=2, max_steps=30, frame_size=32), tmp_path, progress=False
    )
    assert len(paths) == 2
    eps = list(load_episodes(tmp_path))
    e = eps[0]
    assert e["obs"].shape == (31, 17) and e["actions"].shape == (30, 6) and e["frames"].shape == (31, 32, 32, 3)
    assert e["truncations"][-1] and not e["terminations"].any()
    assert e["meta"]["behaviour"] == "random" and "gymnasium" in e["meta"]["packages"]
    assert e["frames"].std() > 5
    a = align(e)
    np.testing.assert_array_equal(a["prev_act"][1:], e["actions"])
    assert a["mask"][0] == 0 and a["reward"][1] == e["rewards"][0]
    b = SequenceSampler([a], 10).sample(4)
    assert b["obs"].shape == (4, 10, 17)


def test_tiny_recipe_end_to_end(tmp_path):
    """collect -> train -> export -> load -> step, through the real recipe at toy sizes."""
    import dreamgym
    from dreamgym.export.train.recipes import halfcheetah_rssm as recipe
    from dreamgym.testing import check_bundle

    out = tmp_path / "bundle"
    tiny = dataclasses.replace(
        recipe.TINY,
        run=str(tmp_path / "work" / "run"),
        data=str(tmp_path / "work"),
        out=str(out),
        id="Dream-TestTiny-v0",
    )
    res = recipe.build(tiny, progress=False)
    assert all(v <= 1e-4 for k, v in res["parity"].items() if k.endswith(".obs"))
    man = json.loads((out / "dreamgym.json").read_text())
    assert set(man["metrics"]["fidelity"]["horizons"]) == {"1", "10", "50", "100"}
    assert man["metrics"]["recipe"]["wall_s"] > 0 and man["model"]["step_macs"] > 0
    assert (out / "README.md").read_text().startswith("# Dream-TestTiny-v0")
    assert (out / "fidelity.png").exists() and (out / "policy.onnx").exists()
    check_bundle(out)
    # the step graph clips the action to the Box action space itself, and says so: the runtime only copies
    assert man["graphs"]["step"]["clips_action"] is True
    import onnxruntime as ort

    sess = ort.InferenceSession(str(out / "step.onnx"), providers=["CPUExecutionProvider"])
    feeds = {
        i.name: np.random.default_rng(0).standard_normal((2, *i.shape[1:])).astype(np.float32)
        for i in sess.get_inputs()
    }
    feeds["action"] = np.array([[7.0] * 6, [-3.0] * 6], np.float32)
    over = sess.run(None, feeds)
    feeds["action"] = np.array([[1.0] * 6, [-1.0] * 6], np.float32)
    np.testing.assert_array_equal(over[2], sess.run(None, feeds)[2])
    env = dreamgym.make_vec(out, 5)
    obs, _ = env.reset(seed=0)
    for _ in range(3):
        obs, r, term, trunc, _ = env.step(env.action_space.sample())
    assert np.isfinite(obs).all() and np.isfinite(r).all()
    # `dreamgym evaluate` on a vector dream: fresh MuJoCo episodes, the vector evaluator
    from dreamgym.export.commands import evaluate

    assert evaluate([str(out), "--count", "1", "--max-steps", "150"]) == 0
    # resume: a second build skips every finished stage
    res2 = recipe.build(tiny, progress=False)
    assert res2["recipe"]["stages"]["train"] == res["recipe"]["stages"]["train"]
    assert all(
        json.loads(line)["phase"] in ("frames", "world", "ensemble")
        for line in open(tmp_path / "work" / "run" / "log.jsonl")
    )
    # the uncertainty: a declared output, its measurement, and the defaults the recipe chose from it
    assert [o["name"] for o in man["outputs"]] == ["uncertainty"] and man["format_version"] == 3
    u = man["metrics"]["uncertainty"]
    assert u["probe_steps"] > 0 and -1 <= u["spearman_obs_error"] <= 1
    assert man["env_defaults"] == {"uncertainty_penalty": u["penalty"], "uncertainty_limit": u["limit"]}
    assert u["penalty"] > 0 and "standard deviation" in u["penalty_rule"]
    assert u["limit"] == round(tiny.uncertainty_limit_scale * u["heldout_quantiles"]["0.999"], 4) > 0
    assert "## Uncertainty" in (out / "README.md").read_text()
    _, r, _, _, info = env.step(env.action_space.sample())  # the bundle's defaults are on
    assert info["uncertainty"].shape == (5,) and np.all(info["uncertainty"] >= 0)
    stepped = info["_uncertainty"]  # not the envs this step reset (a dream cut short by the limit autoresets)
    np.testing.assert_allclose(
        r[stepped], (info["model_reward"] - u["penalty"] * info["uncertainty"])[stepped], rtol=1e-5, atol=1e-6
    )


def test_trainer_reads_minari(tmp_path):
    """A Minari dataset (written through Minari's own storage, which needs no jax) feeds the trainer."""
    import gymnasium as gym

    minari = pytest.importorskip("minari")
    from minari.data_collector.episode_buffer import EpisodeBuffer
    from minari.dataset.minari_storage import MinariStorage

    from dreamgym.export.data.episodes import load_minari

    env = gym.make("HalfCheetah-v5")
    eps = list(load_episodes(_collected(tmp_path)))
    data = tmp_path / "minari" / "data"
    data.mkdir(parents=True)
    st = MinariStorage.new(
        data,
        observation_space=env.observation_space,
        action_space=env.action_space,
        env_spec=env.spec,
        data_format="hdf5",
    )
    st.update_episodes(
        [
            EpisodeBuffer(
                id=i,
                observations=e["obs"].astype(np.float64),
                actions=e["actions"],
                rewards=list(e["rewards"]),
                terminations=list(e["terminations"]),
                truncations=list(e["truncations"]),
                infos={},
            )
            for i, e in enumerate(eps)
        ]
    )
    st.update_metadata({"dataset_id": "dreamgym/test-v0", "minari_version": minari.__version__})
    got = load_minari(data)
    assert len(got) == len(eps)
    np.testing.assert_allclose(got[0]["obs"], eps[0]["obs"], rtol=1e-6)
    np.testing.assert_array_equal(got[1]["prev_act"][1:], eps[1]["actions"])
    b = SequenceSampler(got, 8).sample(2)
    m = RSSM(RSSMConfig(**TINY))
    loss, _ = m.loss(*(torch.from_numpy(b[k]) for k in ("obs", "prev_act", "reward", "cont", "mask")))
    assert torch.isfinite(loss)


def _collected(tmp_path):
    out = tmp_path / "collected"
    collect(CollectConfig(behaviours=("random", "sine"), episodes=2, max_steps=25, frame_size=0), out, progress=False)
    return out


def test_standardised_observations_round_trip_and_export(tmp_path):
    """symlog_inputs=False: the model works on (obs - mean) / std, and the statistics travel in the graphs."""
    m = RSSM(RSSMConfig(symlog_inputs=False, **TINY)).eval()
    rng = np.random.default_rng(0)
    mean, std = rng.standard_normal(17).astype(np.float32), rng.uniform(0.5, 3, 17).astype(np.float32)
    m.set_obs_stats(mean, std)
    obs = torch.from_numpy(rng.standard_normal((4, 17)).astype(np.float32))
    torch.testing.assert_close(m._target(obs), (obs - torch.from_numpy(mean)) / torch.from_numpy(std))
    graphs = exporter.export_graphs(m, tmp_path, context_length=4)
    report = exporter.parity(m, graphs, context_length=4, batch=9)
    assert all(v <= 1e-4 for k, v in report.items() if not k.endswith("frame")), report


# -- the uncertainty ensemble ---------------------------------------------------------------------------
def test_check_family_with_an_uncertainty_ensemble():
    """The step graph of an RSSM with an ensemble gives a declared `uncertainty` output that matches torch."""
    cfg = RSSMConfig(**ARCHS["lean"], **TINY, ensemble=3, ensemble_hidden=8)
    report = check_family(get_family("rssm"), cfg, batch=33)
    assert "step.uncertainty" in report["parity"] and report["parity"]["step.uncertainty"] < 1e-4
    m = RSSM(cfg)
    assert [o.name for o in m.output_spec()] == ["uncertainty"] and RSSM(RSSMConfig(**TINY)).output_spec() == ()


def test_ensemble_trains_alone_and_disagrees_off_the_data():
    """`ensemble_loss` moves only the ensemble; after training on a narrow band of actions the members agree
    there and disagree on actions they never saw."""
    torch.manual_seed(0)
    m = RSSM(RSSMConfig(**TINY, ensemble=5, ensemble_hidden=32))
    obs, act, rew, cont, mask = _batch(B=16, L=12)
    act = act * 0.1  # the data: actions within [-0.1, 0.1]
    keep = (torch.rand(5, 16) < 0.7).float()
    loss, logs = m.ensemble_loss(obs, act, rew, cont, mask, keep)
    loss.backward()
    grads = {n for n, p in m.named_parameters() if p.grad is not None}
    assert grads == {n for n, _ in m.ensemble.named_parameters(prefix="ensemble")}
    opt = torch.optim.Adam(m.ensemble.parameters(), lr=3e-3)
    for _ in range(300):
        opt.zero_grad()
        m.ensemble_loss(obs, act, rew, cont, mask, keep)[0].backward()
        opt.step()
    with torch.no_grad():
        h, z, *_ = m.filter_context(obs[:, :6], act[:, :6], torch.randn(16, 6, 6))
        feat = torch.cat([h, z], -1)
        seen = m.uncertainty(feat, act[:, 6]).mean()
        unseen = m.uncertainty(feat, torch.sign(torch.randn(16, 6)) * 5.0).mean()
    assert unseen > 3 * seen, (float(seen), float(unseen))

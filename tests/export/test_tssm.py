"""The TSSM family: parallel form == cached step, check_family, the window slides, tiny end to end."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dreamgym.export import exporter  # noqa: E402
from dreamgym.export.families import get_family  # noqa: E402
from dreamgym.export.families.tssm import TSSM, TSSMConfig  # noqa: E402
from dreamgym.export.testing import check_family  # noqa: E402

TINY = dict(d_model=32, layers=2, heads=4, window=6, hidden=32, stoch=8, frame_channels=4)


def test_parallel_form_equals_cached_step_past_the_window():
    torch.manual_seed(0)
    m = TSSM(TSSMConfig(**TINY)).eval()
    B, T = 3, 20  # T > W: the cache slides
    z, a = torch.randn(B, T, 8), torch.rand(B, T, 6) * 2 - 1
    with torch.no_grad():
        par = m.transformer_seq(z, a)
        k, v, filled = m.empty_cache(B)
        steps = []
        for t in range(T):
            h, k, v, filled = m._advance(z[:, t], a[:, t], k, v, filled)
            steps.append(h)
        priors_par = m.prior_net(par)
        priors_step = m.prior_net(torch.stack(steps, 1))
    torch.testing.assert_close(priors_step, priors_par, rtol=1e-5, atol=1e-5)
    assert k.shape == (B, 2, 6, 32) and filled.all()


def test_attention_sees_only_the_window():
    m = TSSM(TSSMConfig(**TINY)).eval()
    bias = m.band_bias(10)
    assert torch.isinf(bias[0, 0, 9, 3]) and torch.isfinite(bias[0, 0, 9, 4]) and torch.isinf(bias[0, 0, 3, 4])


def test_loss_is_finite_and_trains():
    m = TSSM(TSSMConfig(**TINY))
    g = torch.Generator().manual_seed(0)
    obs, act = torch.randn(2, 12, 17, generator=g), torch.rand(2, 12, 6, generator=g)
    loss, logs = m.loss(obs, act, torch.randn(2, 12, generator=g), torch.ones(2, 12), torch.ones(2, 12))
    assert torch.isfinite(loss) and logs["kl"] >= 1.0 - 1e-5
    loss.backward()
    assert all(p.grad is not None for n, p in m.named_parameters() if not n.startswith("frame_decoder"))


def test_check_family():
    report = check_family(get_family("tssm"), TSSMConfig(**TINY))
    assert report["fit"]["last_loss"] < report["fit"]["first_loss"]


def test_step_graph_leaves_out_h(tmp_path):
    """The step does not read h (it recomputes it from the cache), so the graph leaves that input out."""
    m = TSSM(TSSMConfig(**TINY)).eval()
    graphs = exporter.export_graphs(m, tmp_path, context_length=5)
    assert exporter.graph_inputs(graphs["step"]) == ["z", "k", "v", "filled", "action", "noise_z"]


def test_tiny_recipe_end_to_end(tmp_path):
    import dataclasses

    import dreamgym
    from dreamgym.export.train.recipes import halfcheetah_tssm as recipe
    from dreamgym.testing import check_bundle

    out = tmp_path / "bundle"
    tiny = dataclasses.replace(
        recipe.TINY,
        run=str(tmp_path / "work" / "run"),
        data=str(tmp_path / "work"),
        out=str(out),
        id="Dream-TestTinyTSSM-v0",
    )
    res = recipe.build(tiny, progress=False)
    man = json.loads((out / "dreamgym.json").read_text())
    assert man["family"] == "tssm" and [s["name"] for s in man["state"]] == ["z", "h", "k", "v", "filled"]
    assert set(res["fidelity"]["horizons"]) == {"1", "10", "50", "100"}
    check_bundle(out)
    env = dreamgym.make_vec(out, 3, max_episode_steps=40)
    env.reset(seed=0)
    for _ in range(45):  # past the window (8) and through an autoreset
        obs, r, term, trunc, _ = env.step(env.action_space.sample())
    assert np.isfinite(obs).all() and np.isfinite(r).all()

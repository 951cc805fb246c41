"""The one training loop: schedule, clipping, held-out log, resume, old checkpoints; the recipe form."""

import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dreamgym.export.train.fit import FitConfig, checkpoint_step, fit, load_checkpoint, lr_at, save_checkpoint  # noqa: E402


def _problem(seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Linear(4, 1)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 4, generator=g)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]])

    def loss(b):
        i = b
        err = ((model(x[i]) - y[i]) ** 2).mean()
        return err, {"mse": err.item()}

    rng = np.random.default_rng(seed)
    return model, loss, lambda n: torch.from_numpy(rng.integers(64, size=n))


def test_schedule_warms_up_then_decays_to_a_tenth():
    cfg = FitConfig(steps=100, lr=1.0, warmup=10)
    assert lr_at(0, cfg) == pytest.approx(0.1) and lr_at(9, cfg) == pytest.approx(1.0)
    assert lr_at(100, cfg) == pytest.approx(0.1)
    assert lr_at(50, cfg) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 2)))
    assert lr_at(0, FitConfig(steps=100, lr=1.0)) == pytest.approx(1.0)


def test_fit_trains_logs_and_resumes(tmp_path):
    model, loss, sample = _problem()
    cfg = FitConfig(steps=40, batch=16, lr=0.05, eval_every=20, ckpt_every=20, grad_clip=10.0)
    seen = []
    res = fit(
        model,
        loss,
        sample,
        FitConfig(**{**cfg.__dict__, "steps": 20}),
        tmp_path,
        name="lin",
        heldout=lambda: loss(torch.arange(64))[1],
        on_step=lambda s, logs: seen.append(s),
        progress=False,
    )
    assert res["step"] == 20 and seen == list(range(1, 21)) and checkpoint_step(tmp_path / "lin.npz") == 20
    first = res["last_eval"]["heldout"]["mse"]
    res = fit(
        model,
        loss,
        sample,
        cfg,
        tmp_path,
        name="lin",
        heldout=lambda: loss(torch.arange(64))[1],
        on_step=lambda s, logs: seen.append(s),
        progress=False,
    )
    assert seen[20] == 21 and res["step"] == 40 and res["last_eval"]["heldout"]["mse"] < first
    rows = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [20, 40] and all(r["phase"] == "lin" for r in rows)
    # a finished run resumed: nothing to do, the same weights and the trained time reported
    again = fit(model, loss, sample, cfg, tmp_path, name="lin", progress=False)
    assert again["step"] == 40 and again["wall_s"] == res["wall_s"] and again["last_eval"]["step"] == 40
    with np.load(tmp_path / "lin.npz", allow_pickle=False) as z:
        assert all(z[k].dtype != object for k in z.files)


def test_fit_resumes_an_older_checkpoint_with_another_optimizer_name(tmp_path):
    """Checkpoints written before `fit` named their one optimizer after their loop ("tok", "world")."""
    model, loss, sample = _problem()
    opt = torch.optim.Adam(model.parameters())
    loss(sample(4))[0].backward()
    opt.step()
    save_checkpoint(tmp_path / "tokenizer.npz", model, {"tok": opt}, {"step": 5, "wall_s": 1.0})
    seen = []
    fit(
        model,
        loss,
        sample,
        FitConfig(steps=8, batch=4),
        tmp_path,
        name="tokenizer",
        on_step=lambda s, logs: seen.append(s),
        progress=False,
    )
    assert seen == [6, 7, 8]


def test_legacy_rssm_checkpoint_is_split_into_phases(tmp_path):
    """A run trained by the old two-phase loop (one model.npz) resumes as frames.npz and world.npz."""
    from dreamgym.export.families.rssm import RSSM, RSSMConfig
    from dreamgym.export.train.recipes.halfcheetah_rssm import upgrade_checkpoint

    cfg = RSSMConfig(deter=16, stoch=4, hidden=16, frame_channels=4)
    m = RSSM(cfg)
    fd = {id(p) for p in m.frame_decoder.parameters()}
    opts = {
        "frames": torch.optim.Adam(m.frame_decoder.parameters()),
        "dynamics": torch.optim.Adam([p for p in m.parameters() if id(p) not in fd]),
    }
    save_checkpoint(
        tmp_path / "model.npz",
        m,
        opts,
        {"step": 30, "wall_s": 12.0, "model_config": {}, "train_config": {"frame_steps": 10, "steps": 20}},
    )
    upgrade_checkpoint(tmp_path)
    assert checkpoint_step(tmp_path / "frames.npz") == 10 and checkpoint_step(tmp_path / "world.npz") == 20
    m2 = RSSM(cfg)
    load_checkpoint(
        tmp_path / "world.npz",
        m2,
        {
            "world": torch.optim.Adam(
                [p for p in m2.parameters() if id(p) not in {id(q) for q in m2.frame_decoder.parameters()}]
            )
        },
    )
    load_checkpoint(
        tmp_path / "frames.npz", m2.frame_decoder, {"frames": torch.optim.Adam(m2.frame_decoder.parameters())}
    )
    for a, b in zip(m.state_dict().values(), m2.state_dict().values()):
        torch.testing.assert_close(a, b)


def test_stages_skip_what_is_done_and_keep_timings(tmp_path):
    from dreamgym.export.train.recipes import Stages

    st = Stages(tmp_path, log=lambda *a: None)
    assert st("a", lambda: 7) == 7 and st("b", lambda: 1 / 0, done=True) is None
    st.record("train", 12.34)
    assert json.loads((tmp_path / "timings.json").read_text()).keys() == {"a", "train"}
    assert Stages(tmp_path).timings["train"] == 12.3


@pytest.mark.parametrize("name", ["halfcheetah_rssm", "halfcheetah_tssm", "pong_rem"])
def test_every_recipe_takes_the_same_flags(name):
    from dreamgym.export.train.recipes import parse

    _, r = parse(name, ["--preset", "tiny", "--run", "R", "--out", "O", "--world.steps", "7"])
    assert (r.run, r.out, r.world.steps) == ("R", "O", 7)
    _, full = parse(name, [])
    assert full.world.steps > 1000 and full.out.startswith("assets/")


def test_commands_do_not_import_torch_and_list_recipes():
    import subprocess
    import sys

    code = (
        "import sys; from dreamgym.export import commands; assert 'torch' not in sys.modules, 'torch imported'; "
        "sys.exit(commands.train(['--help']))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert all(n in out.stdout for n in ("halfcheetah_rssm", "halfcheetah_tssm", "pong_rem"))


def test_every_recipe_description_names_the_family_of_the_bundle_it_builds():
    # `dreamgym train --help` once called simple_tag "a joint RSSM" while it built a joint-mlp
    import re
    from pathlib import Path

    from dreamgym.export.train.recipes import RECIPES, parse
    from dreamgym.manifest import Manifest

    root = Path(__file__).resolve().parents[2]
    for name, (_, desc) in RECIPES.items():
        _, full = parse(name, [])
        if full.out is None:  # `dreamgym train --env`: the family of the dreams of any env
            assert re.search(r"\(family `([\w-]+)`", desc).group(1) == "step-ensemble", desc
            continue
        shipped = Manifest.read(root / full.out / "dreamgym.json")
        assert desc.startswith(shipped.id), (name, desc)
        assert re.search(r"\(family `([\w-]+)`", desc).group(1) == shipped.family, (name, desc, shipped.family)

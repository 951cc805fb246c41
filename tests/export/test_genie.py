"""The Genie family: the family kit's checks, a dream trained from a folder of videos alone, naming latent
actions from a few labels, and the controllability metrics."""

import json

import numpy as np
import pytest

import dreamgym
from dreamgym.export.families import get_family
from dreamgym.export.families.genie import Genie, GenieConfig, unmask_schedule
from dreamgym.export.measure.genie import genie_fidelity, mapping_accuracy
from dreamgym.export.testing import check_family
from dreamgym.export.train.recipes.genie import latent_keymap, load_videos, name_codes
from dreamgym.testing import check_bundle, check_latent_actions

TINY = GenieConfig(
    frame_size=16, grid=4, vocab=32, code_dim=8, tok_channels=8, actions=4, lam_dim=4, lam_channels=8, d_model=32,
    heads=2, layers=1, iterations=3,
)  # fmt: skip


def test_check_family():
    report = check_family(get_family("genie"), TINY)
    assert report["fit"]["last_loss"] < report["fit"]["first_loss"]
    assert max(report["parity"].values()) <= 1.0


def test_unmask_schedule_ends_with_every_token():
    for n, it in [(64, 4), (16, 3), (64, 1), (5, 8)]:
        s = unmask_schedule(n, it)
        assert len(s) == it and s[-1] == n and all(a <= b for a, b in zip(s, s[1:]))


def test_step_cost_and_state_are_fixed():
    """The state is a window of W frames' tokens: its shape does not grow with the steps taken."""
    import torch

    m = Genie(TINY).eval()
    st = torch.randint(TINY.vocab, (2, TINY.window, TINY.tokens))
    noise = torch.zeros(2, TINY.iterations, TINY.tokens, TINY.vocab)
    with torch.no_grad():
        for _ in range(5):
            st, frame, r, term, lat = m.imagine_step(st, torch.tensor([0, 1]), noise)
    assert st.shape == (2, TINY.window, TINY.tokens) and frame.shape == (2, 16, 16, 3)
    assert not term.any() and (r == 0).all()


def test_video_folder_becomes_a_bundle(tiny_genie):
    check_bundle(tiny_genie)
    b = dreamgym.Bundle.load(tiny_genie)
    m = b.manifest
    assert b.family == "genie" and b.action_space.n == 4
    assert list(m.action_meanings) == [f"code {k}" for k in range(4)]  # no labels: the codes keep their numbers
    assert m.keymap["latent"]["n"] == 4 and m.keymap["latent"]["bindings"] == []
    assert "lam.onnx" in m.files  # beside the graphs, hashed
    f = m.metrics["fidelity"]
    assert set(f["horizons"]) == {"1", "4", "16"} and len(f["per_action"]) == 4
    assert "confusion" not in f  # a video has no actions to compare with
    card = (tiny_genie / "README.md").read_text()
    assert "ΔPSNR" in card and "--videos" in card


def test_damaged_lam_is_refused(tiny_genie, tmp_path):
    import shutil

    copy = tmp_path / "b"
    shutil.copytree(tiny_genie, copy)
    (copy / "lam.onnx").write_bytes(b"not a model")
    with pytest.raises(dreamgym.BundleError, match="lam.onnx"):
        dreamgym.Bundle.load(copy)


def test_latent_action_check_refuses_a_dream_whose_codes_do_nothing(tiny_genie):
    """The tiny dream is trained for 20 updates: its codes do not change the next frame yet, and the check
    that runs on every shipped latent-action bundle says so."""
    with pytest.raises(AssertionError, match="latent action"):
        check_latent_actions(tiny_genie)


def test_load_videos_resizes_and_refuses_bad_input(tmp_path, clips_writer):
    clips = load_videos(clips_writer(tmp_path / "v", n=2, frames=12), 32)
    assert clips[0]["obs"].shape == (12, 32, 32, 3)  # the mp4
    assert clips[1]["obs"].shape[1:] == (32, 32, 3) and len(clips[1]["obs"]) >= 3  # a gif may merge repeated frames
    with pytest.raises(FileNotFoundError, match="no .mp4 or .gif"):
        load_videos(tmp_path, 32)
    (tmp_path / "bad.gif").write_bytes(b"GIF89a broken")
    with pytest.raises(ValueError, match="bad.gif"):
        load_videos(tmp_path, 32)


def test_codes_are_named_by_the_labels_most_of_them_took():
    meanings = ["NOOP", "FIRE", "RIGHT", "LEFT"]
    codes = np.array([0, 0, 0, 1, 1, 1, 1, 2, 3, 3, 3])
    acts = np.array([2, 2, 0, 3, 3, 3, 2, 1, 0, 0, 0])
    n = name_codes(codes, acts, meanings, K=5)
    assert n["names"] == ["≈ RIGHT", "≈ LEFT", "code 2", "no-op", "code 4"]  # too few labels: keeps its number
    assert n["purity"][1] == pytest.approx(0.75)
    km = latent_keymap(n["names"], n["counts"], meanings)["latent"]
    assert km["default"] == 3
    assert {"keys": ["d"], "action": 0} in km["bindings"] and {"keys": ["a"], "action": 1} in km["bindings"]
    # two codes named LEFT: the key goes to the one holding most LEFT labels, not the purest of a handful
    counts = [[0, 0, 0, 2], [1, 0, 4, 30], [0, 0, 0, 0]]
    km = latent_keymap(["≈ LEFT", "≈ LEFT", "code 2"], counts, meanings)["latent"]
    assert km["bindings"] == [{"keys": ["a"], "action": 1}] and km["default"] == 0
    assert latent_keymap(["code 0", "code 1"])["latent"] == {"n": 2, "default": 0, "bindings": []}


def test_mapping_accuracy_counts_actions_that_draw_the_same_frame():
    codes = np.array([0, 0, 1, 1, 1, 2])
    acts = np.array([2, 2, 3, 3, 0, 1])
    # same_effect bits (NOOP=1, FIRE=2, RIGHT=4, LEFT=8): the last transition, FIRE, drew what NOOP would
    # have drawn; the fifth, NOOP, differs from LEFT; a transition where every action is the same is left out
    same = np.array([4, 4, 8, 8, 3, 3])
    exact = mapping_accuracy(codes, acts, None, K=3, A=4)
    assert exact["accuracy"] == pytest.approx(5 / 6) and exact["mapping"] == [2, 3, 1]
    vis = mapping_accuracy(codes, acts, same, K=3, A=4)
    assert vis["transitions"] == 6 and vis["accuracy"] == pytest.approx(5 / 6)
    all_same = mapping_accuracy(codes, acts, np.array([4, 4, 8, 8, 15, 15]), K=3, A=4)
    assert all_same["transitions"] == 4 and all_same["accuracy"] == 1.0


def test_fidelity_on_clips_with_actions(tiny_genie, tmp_path, clips_writer):
    eps = [{"obs": c["obs"]} for c in load_videos(clips_writer(tmp_path / "v", n=2, frames=30, seed=4), 32)]
    for e in eps:
        e["actions"] = np.zeros(len(e["obs"]) - 1, np.int64)
        e["meta"] = {"action_meanings": ["NOOP", "LEFT"]}
    f = genie_fidelity(tiny_genie, eps, samples=False)
    assert f["confusion"]["actions"] == ["NOOP", "LEFT"]
    assert np.sum(f["confusion"]["counts"]) == sum(len(e["actions"]) for e in eps)
    assert f["mapping_exact"]["accuracy"] == 1.0  # every real action is NOOP
    assert json.dumps(f)  # JSON for the manifest


LATENT = sorted(
    i
    for i, p in dreamgym.shipped_bundles().items()
    if "latent" in dreamgym.Bundle.load(p, verify_hashes=False).manifest.keymap
)


@pytest.mark.parametrize("dream", LATENT)
def test_shipped_latent_action_dreams_answer_their_actions(dream):
    """Every shipped latent-action bundle: from the same state, different codes give different next frames."""
    report = check_latent_actions(dreamgym.resolve(dream))
    assert min(report["distinct_next_frames"]) >= 2


def test_a_latent_action_dream_is_shipped():
    assert "Dream-Breakout-v0" in LATENT

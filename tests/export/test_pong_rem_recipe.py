"""The Pong REM recipe (`dreamgym train pong_rem`): the tiny preset builds a bundle that steps, continues and
grows; its windows around the contact; the card's rebuild command."""

import dataclasses
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dreamgym.export.families.rem import REMConfig  # noqa: E402

TINY = REMConfig(vocab=32, code_dim=8, tok_channels=8, d_model=32, heads=2, layers=2, ffn_mult=2)


def test_tiny_recipe_builds_a_bundle_that_steps(tmp_path):
    """collect real Pong -> tokenizer -> world model -> export -> evaluate, at toy sizes, then resume."""
    pytest.importorskip("ale_py")
    import dataclasses

    import gymnasium as gym
    from gymnasium.utils.env_checker import check_env

    import dreamgym
    from dreamgym.export.train.recipes.pong_rem import build
    from dreamgym.export.train.recipes.pong_rem_config import TINY as RECIPE_TINY

    out = tmp_path / "bundle"
    recipe = dataclasses.replace(RECIPE_TINY, run=str(tmp_path / "run"), out=str(out), id="Dream-PongTest-v0")
    res = build(recipe, progress=False, log=lambda *a: None)
    assert set(res["fidelity"]["horizons"]) == {"1", "10", "50", "100"}
    assert res["parity"]["step.next_tokens"] == 0
    man = json.loads((out / "dreamgym.json").read_text())
    assert man["family"] == "rem" and man["action_meanings"][3] == "LEFT"
    assert man["state"][0]["name"] == "retention" and man["noise"][0]["distribution"] == "gumbel"
    env = dreamgym.make_env(out)
    check_env(env.unwrapped)
    assert env.observation_space == gym.spaces.Box(0, 255, (64, 64, 3), np.uint8)
    venv = dreamgym.make_vec(out, 3)
    obs, _ = venv.reset(seed=0)
    for _ in range(4):
        obs, r, term, trunc, _ = venv.step(np.array([0, 2, 3]))
    assert obs.shape == (3, 64, 64, 3) and obs.dtype == np.uint8 and set(np.unique(r)) <= {-1.0, 0.0, 1.0}
    # `dreamgym evaluate` on a token dream: fresh ALE Pong episodes, the token evaluator
    from dreamgym.export.commands import evaluate
    from dreamgym.export.families import model_from_bundle

    assert evaluate([str(out), "--count", "1", "--max-steps", "150"]) == 0
    # a second build resumes from the run folder: nothing is trained again
    again = build(dataclasses.replace(recipe, out=str(tmp_path / "bundle2")), progress=False, log=lambda *a: None)
    assert again["timings"]["world model"] == res["timings"]["world model"]
    # a re-export from the bundle's own weights at another temperature: nothing trains, the graph samples
    # as the first one with its noise scaled (argmax(l/T + s·g) = argmax(l/(T·s) + g)), the card keeps the
    # build's figures and says where it came from
    hot = dataclasses.replace(
        recipe,
        run=str(tmp_path / "run-hot"),
        out=str(tmp_path / "bundle-hot"),
        from_bundle=str(out),
        model=dataclasses.replace(recipe.model, temperature=0.5),
    )
    redone = build(hot, progress=False, log=lambda *a: None)
    assert "world model" not in redone["timings"] and "tokenizer" not in redone["timings"]
    hman = json.loads((tmp_path / "bundle-hot" / "dreamgym.json").read_text())
    assert hman["model"]["config"]["temperature"] == 0.5
    assert hman["metrics"]["tokenizer"] == man["metrics"]["tokenizer"]
    assert hman["metrics"]["recipe"]["rebuilt_from"]["bundle"] == str(out)
    assert hman["metrics"]["recipe"]["stages"] == man["metrics"]["recipe"]["stages"]
    assert man["metrics"]["history"][-1]["version"] == "v4"  # trained from nothing by this recipe
    # its own figures, not the shipped v4's, and no later version
    assert [h["version"] for h in man["metrics"]["history"]] == ["v0", "v1", "v1.1", "v2", "v3", "v4"]
    assert hman["metrics"]["history"][-1]["version"] == "re-export"
    assert "temperature 0.5 instead of" in hman["metrics"]["history"][-1]["text"]

    def same_dream(a, b):
        """Two vector dreams from the same seed under the same actions give the same frames."""
        oa, ob = a.reset(seed=5)[0], b.reset(seed=5)[0]
        for t in range(6):
            oa, *_ = a.step(np.array([t % 6, 2, 3]))
            ob, *_ = b.step(np.array([t % 6, 2, 3]))
        np.testing.assert_array_equal(oa, ob)

    same_dream(
        dreamgym.make_vec(out, 3, noise_scale=0.5 / recipe.model.temperature),
        dreamgym.make_vec(tmp_path / "bundle-hot", 3),
    )
    with pytest.raises(ValueError, match="only --model.temperature and --model.grid-noise may differ"):
        build(
            dataclasses.replace(hot, model=dataclasses.replace(recipe.model, d_model=48)),
            progress=False,
            log=lambda *a: None,
        )
    # a continued build: the bundle's tokenizer kept (not trained), its world model trained further; at a
    # learning rate of 0 the world model is the bundle's, so the dream is the first one, step for step
    more = dataclasses.replace(
        recipe,
        run=str(tmp_path / "run-more"),
        out=str(tmp_path / "bundle-more"),
        continue_from=str(out),
        world=dataclasses.replace(recipe.world, steps=2, lr=0.0),
    )
    cont = build(more, progress=False, log=lambda *a: None)
    assert "tokenizer" not in cont["timings"] and "world model" in cont["timings"]
    cman = json.loads((tmp_path / "bundle-more" / "dreamgym.json").read_text())
    assert cman["metrics"]["tokenizer"] == man["metrics"]["tokenizer"]
    assert cman["metrics"]["training"]["world_updates"] == 2
    total = man["metrics"]["training"]["world_updates_total"]
    assert total == man["metrics"]["training"]["world_updates"] == recipe.world.steps  # a chain counts them all
    assert cman["metrics"]["training"]["world_updates_total"] == total + 2
    assert f"2 updates after the {total} of {out} (v4)" in cman["metrics"]["data"]["text"]
    assert cman["metrics"]["history"][-1]["version"] == "continued"
    assert f"the tokenizer and world model of {out} (v4)" in cman["metrics"]["history"][-1]["text"]
    assert "--continue-from" in cman["metrics"]["recipe"]["command"]
    same_dream(dreamgym.make_vec(out, 3), dreamgym.make_vec(tmp_path / "bundle-more", 3))
    # continued with a slot history the bundle lacks: its weights on the history start at zero, so at a learning
    # rate of 0 the dream is still the first one, with one more state tensor; the card says how to rebuild it
    grown = dataclasses.replace(
        more,
        run=str(tmp_path / "run-grown"),
        out=str(tmp_path / "bundle-grown"),
        model=dataclasses.replace(recipe.model, slot_history=2),
    )
    build(grown, progress=False, log=lambda *a: None)
    gman = json.loads((tmp_path / "bundle-grown" / "dreamgym.json").read_text())
    assert "--model.slot-history 2" in gman["metrics"]["recipe"]["command"]
    assert "the 2 frames before" in gman["metrics"]["history"][-1]["text"]
    same_dream(dreamgym.make_vec(out, 3), dreamgym.make_vec(tmp_path / "bundle-grown", 3))
    # the slot mixer alone trained further (`world_part`): every other weight is the source's, the mixer's moved,
    # and the card's command says so
    mixed = dataclasses.replace(
        grown,
        run=str(tmp_path / "run-mixer"),
        out=str(tmp_path / "bundle-mixer"),
        continue_from=str(tmp_path / "bundle-grown"),
        world_part="slot_mixer",
        world=dataclasses.replace(recipe.world, steps=3, lr=1e-2, batch=recipe.world.batch + 1),
    )
    build(mixed, progress=False, log=lambda *a: None)
    before = model_from_bundle(dreamgym.Bundle.load(tmp_path / "bundle-grown")).state_dict()
    after = model_from_bundle(dreamgym.Bundle.load(tmp_path / "bundle-mixer")).state_dict()
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert moved and all(k.startswith("mixer.") for k in moved)
    mman = json.loads((tmp_path / "bundle-mixer" / "dreamgym.json").read_text())
    assert "--world-part slot_mixer" in mman["metrics"]["recipe"]["command"]
    assert f"--world.batch {recipe.world.batch + 1}" in mman["metrics"]["recipe"]["command"]
    assert "its slot mixer alone trained 3 more updates" in mman["metrics"]["history"][-1]["text"]
    assert "Slot mixer alone (the rest of the world model kept): 3 updates after" in mman["metrics"]["data"]["text"]
    with pytest.raises(ValueError, match="needs --continue-from"):
        build(dataclasses.replace(mixed, continue_from=None), progress=False, log=lambda *a: None)
    with pytest.raises(ValueError, match="--model.slot-history"):  # a re-export does not grow a model
        build(dataclasses.replace(grown, continue_from=None, from_bundle=str(out)), progress=False, log=lambda *a: None)
    with pytest.raises(ValueError, match="pick one"):
        build(dataclasses.replace(more, from_bundle=str(out)), progress=False, log=lambda *a: None)


def test_contact_share_draws_windows_around_the_ball_on_its_way_into_the_paddle():
    """`contact_steps` finds the frames with the ball at or beyond column 50 and moving right; with
    `contact_share=1` every window holds such a step, the frame before and the one after, at every place they fit; with
    0 the windows are those drawn before the option existed."""
    from dreamgym.export.train.recipes.pong_rem_tokens import TokenSequences, contact_steps

    c = dataclasses.replace(TINY, ball_tokens=True, paddle_token=True).tokenizer_config
    G, (col0, n) = c.grid_tokens, c.slots[1]
    N = 400
    rng = np.random.default_rng(0)
    cols = np.where(np.arange(N) % 40 < 30, 20 + np.arange(N) % 40, n - 1)  # crosses 20..49, then no ball
    cols[100:130] = np.arange(30, 60)  # one crossing into the paddle: 50..59 moving right
    cols[130] = 58  # and back
    tokens = np.concatenate([rng.integers(c.codebook, size=(N, G)), np.zeros((N, 3), np.int64)], 1)
    tokens[:, G + 1] = col0 + cols
    np.testing.assert_array_equal(contact_steps(tokens, c), np.arange(120, 130))
    eps = [{"actions": np.zeros(N - 1, np.int64), "rewards": np.zeros(N - 1), "terminations": np.zeros(N - 1)}]
    seq = TokenSequences([tokens], eps, 10, 0, c, contact_share=1.0)
    places = set()
    for _ in range(20):
        cols_seen = seq.sample(16)["tokens"][:, :, G + 1] - col0
        for w in cols_seen.numpy():
            at = [j for j in range(1, 10) if 50 <= w[j] < n - 1 and w[j] > w[j - 1]]
            assert at, w  # a contact step, with its next frame in the window
            places.update(at)
    assert places == set(range(1, 10))
    plain, old = TokenSequences([tokens], eps, 10, 3), TokenSequences([tokens], eps, 10, 3, c, 0.0)
    assert torch.equal(plain.sample(8)["tokens"], old.sample(8)["tokens"])
    with pytest.raises(ValueError, match="needs the ball's tokens"):
        TokenSequences([tokens], eps, 10, 0, None, 0.5)


def test_card_command_names_the_episodes_the_run_trained_on():
    """The card's rebuild command carries the options by which a run's episodes differ from the full recipe's,
    and `dreamgym train pong_rem` parses them back into the same episodes (the cleaner player's config is a
    subcommand, given whole)."""
    from dreamgym.export.train.recipes import parse
    from dreamgym.export.train.recipes.pong_rem_config import FULL, _data_flags
    from dreamgym.export.train.recipes.pong_rem_config import TINY as TINY_RECIPE

    more = dataclasses.replace(
        FULL,
        collect_train=dataclasses.replace(FULL.collect_train, episodes=96),
        collect_clean=dataclasses.replace(FULL.collect_clean, episodes=96, noise=0.05),
    )
    assert _data_flags(FULL) == ""
    for r in (
        more,
        dataclasses.replace(FULL, collect_clean=None),
        dataclasses.replace(FULL, collect_train=TINY_RECIPE.collect_train),
    ):
        flags = _data_flags(r).split()
        assert flags
        parsed = parse("pong_rem", flags)[1]
        assert (parsed.collect_train, parsed.collect_clean) == (r.collect_train, r.collect_clean)

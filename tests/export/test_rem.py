"""The Simulus/REM family: RetNet blocks with parallel observation prediction, Gumbel-max sampling,
check_family, and the whole recipe at toy sizes (real Pong data -> tokenizer -> world model -> bundle -> steps)."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dreamgym.export.rem import REM, REMConfig  # noqa: E402

TINY = REMConfig(vocab=32, code_dim=8, tok_channels=8, d_model=32, heads=2, layers=2, ffn_mult=2)


@pytest.fixture
def model():
    torch.manual_seed(0)
    return REM(TINY).eval()


def _batch(B=2, T=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(TINY.vocab, (B, T + 1, TINY.tokens), generator=g)
    actions = torch.randint(TINY.actions, (B, T), generator=g)
    rewards = torch.zeros(B, T)
    rewards[0, 2], rewards[1, 3] = 1.0, -1.0
    return tokens, actions, rewards, torch.zeros(B, T)


def test_blocks_at_once_equal_blocks_one_by_one(model):
    """Training reads all blocks in one call; the exported step reads one block per call from the state."""
    tokens, actions, *_ = _batch()
    x = model.embed_blocks(tokens[:, :-1], actions)
    with torch.no_grad():
        out, pred, state = model.run(x, model.initial_state(2))
        s, outs, preds = model.initial_state(2), [], []
        for t in range(x.shape[1]):
            o, p, s = model.run(x[:, t : t + 1], s)
            outs.append(o), preds.append(p)
    torch.testing.assert_close(torch.cat(outs, 1), out, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(torch.cat(preds, 1), pred, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(s, state, rtol=1e-5, atol=1e-5)
    assert state.shape == (2, TINY.layers, TINY.heads, 16, 16)  # fixed size, whatever the length


def test_prediction_tokens_do_not_advance_the_state(model):
    tokens, actions, *_ = _batch()
    x = model.embed_blocks(tokens[:, :-1], actions)
    with torch.no_grad():
        _, _, with_pop = model.run(x, model.initial_state(2), pop=True)
        _, none, without = model.run(x, model.initial_state(2), pop=False)
    assert none is None
    torch.testing.assert_close(with_pop, without)


def test_gumbel_max_sampling(model):
    state = 0.1 * torch.randn(3, *model.state_spec()[0].shape)
    tok = torch.randint(TINY.vocab, (3, TINY.tokens))
    act = torch.tensor([0, 2, 5])
    zero = torch.zeros(3, TINY.tokens, TINY.vocab)
    with torch.no_grad():
        _, nxt, *_ = model.imagine_step(state, tok, act, zero)
        x = model.embed_blocks(tok.unsqueeze(1), act.view(-1, 1))
        _, pred, _ = model.run(x, state)
        assert torch.equal(nxt, model.token_head(pred[:, 0]).argmax(-1))  # no noise: the most likely tokens
        forced = zero.clone()
        forced[..., 7] = 1e4  # overwhelming noise on code 7
        _, nxt7, *_ = model.imagine_step(state, tok, act, forced)
    assert (nxt7 == 7).all()


def test_loss_trains_tokens_and_rewards():
    torch.manual_seed(0)
    m = REM(TINY)
    batch = _batch(B=4, T=6)
    opt = torch.optim.Adam(m.parameters(), 3e-3)
    first = None
    for _ in range(60):
        loss, logs = m.loss(*batch)
        first = first or logs
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert logs["tokens"] < 0.5 * first["tokens"] and logs["reward"] < 0.5 * first["reward"]
    assert logs["acc"] > first["acc"]


def test_step_macs_count_the_decoder(model):
    from dreamgym.export.rem import decoder_macs

    assert decoder_macs(model.tokenizer) > 0
    assert model.step_macs() > decoder_macs(model.tokenizer)


def test_check_family():
    """Export (sampled tokens identical in torch and onnxruntime), check_bundle, determinism, a short fit."""
    from dreamgym.export.families import get_family
    from dreamgym.export.testing import check_family

    report = check_family(get_family("rem"), TINY, batch=16)
    assert report["parity"]["step.next_tokens"] == 0 and report["parity"]["reset.tokens"] == 0


def test_tiny_recipe_builds_a_bundle_that_steps(tmp_path):
    """collect real Pong -> tokenizer -> world model -> export -> evaluate, at toy sizes, then resume."""
    pytest.importorskip("ale_py")
    import dataclasses

    import gymnasium as gym
    from gymnasium.utils.env_checker import check_env

    import dreamgym
    from dreamgym.export.recipes.pong_rem import TINY as RECIPE_TINY
    from dreamgym.export.recipes.pong_rem import build

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

    assert evaluate([str(out), "--count", "1", "--max-steps", "150"]) == 0
    # a second build resumes from the run folder: nothing is trained again
    again = build(dataclasses.replace(recipe, out=str(tmp_path / "bundle2")), progress=False, log=lambda *a: None)
    assert again["timings"]["world model"] == res["timings"]["world model"]

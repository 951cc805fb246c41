"""The Simulus/REM family: RetNet blocks with parallel observation prediction, Gumbel-max sampling,
check_family, the slot tokens, mixer and history (the recipe's own tests: test_pong_rem_recipe.py)."""

import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dreamgym.export.families.rem import REM, REMConfig, _example_batch  # noqa: E402

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


def test_changed_tokens_weigh_more_only_where_tokens_change():
    """`changed_token_weight` reweights the token loss towards tokens that differ from the frame before; on a
    batch where nothing changes it is the plain loss."""
    import dataclasses

    torch.manual_seed(0)
    plain = REM(TINY)
    weighted = REM(dataclasses.replace(TINY, changed_token_weight=5.0))
    weighted.load_state_dict(plain.state_dict())
    tokens, actions, rewards, terms = _batch()
    with torch.no_grad():
        same = tokens[:, :1].expand_as(tokens).contiguous()  # every frame the same: no token changes
        assert plain.loss(same, actions, rewards, terms)[1]["tokens"] == pytest.approx(
            weighted.loss(same, actions, rewards, terms)[1]["tokens"]
        )
        moved = same.clone()
        moved[:, 1:, :3] = (moved[:, 1:, :3] + 1) % TINY.vocab  # three tokens change after frame 0
        logits = plain.token_head(plain.run(plain.embed_blocks(moved[:, :-1], actions), plain.initial_state(2))[1])
        ce = torch.nn.functional.cross_entropy(logits.flatten(0, 2), moved[:, 1:].flatten(), reduction="none")
        ce = ce.view(2, -1, TINY.tokens)
        changed = moved[:, 1:] != moved[:, :-1]
        w = 1 + 4 * changed.float()
        expect = (ce * w).sum() / w.sum()
        assert weighted.loss(moved, actions, rewards, terms)[1]["tokens"] == pytest.approx(expect.item(), rel=1e-5)


def test_reward_input_carries_the_last_reward_in_the_state():
    """With `reward_input` the state has a `last_reward`: zero after reset, the step's reward after a step,
    and what the next step reads (a point just scored changes the next prediction)."""
    import dataclasses

    torch.manual_seed(0)
    m = REM(dataclasses.replace(TINY, reward_input=True)).eval()
    assert [s.name for s in m.state_spec()] == ["retention", "tokens", "last_reward"]
    with torch.no_grad():
        m.rew_emb.weight.normal_()  # zero at first (an untrained model ignores it); give it an effect
        ctx = torch.randint(0, 256, (3, 4, 64, 64, 3)).float()
        ret, tok, last, frame, latent = m.filter_context(ctx, torch.zeros(3, 4, dtype=torch.long))
        assert torch.equal(last, torch.zeros(3, 1)) and frame.shape == (3, 64, 64, 3)
        act, noise = torch.tensor([0, 2, 5]), torch.zeros(3, TINY.tokens, TINY.vocab)
        out0 = m.imagine_step(ret, tok, last, act, noise)
        assert torch.equal(out0[2], out0[4].view(-1, 1))  # the new last_reward is the reward given
        out1 = m.imagine_step(ret, tok, torch.ones(3, 1), act, noise)
        assert not torch.equal(out0[0], out1[0])  # the reward read changes the state
        # the loss reads the reward before the window and the window's own rewards, one step late
        batch = _batch()
        a = m.loss(*batch, first_reward=torch.tensor([1.0, -1.0]))[0]
        b = m.loss(*batch)[0]
        assert a.item() != b.item()


def test_step_macs_count_the_decoder(model):
    from dreamgym.export.families.rem import decoder_macs

    assert decoder_macs(model.tokenizer) > 0
    assert model.step_macs() > decoder_macs(model.tokenizer)


SLOT_KINDS = pytest.mark.parametrize(
    "paddle,coord,mixer",
    [(False, False, False), (True, False, False), (True, True, False), (True, True, True), (True, True, 2)],
    ids=["ball", "ball+paddle", "ball+paddle+coord", "ball+paddle+coord+mixer", "mixer+history"],
)  # mixer: an int is the mixer with that `slot_history`


def _slot_config(paddle, coord, mixer) -> REMConfig:
    return dataclasses.replace(
        TINY,
        reward_input=True,
        ball_tokens=True,
        paddle_token=paddle,
        coord_features=coord,
        slot_mixer=bool(mixer),
        slot_history=0 if isinstance(mixer, bool) else mixer,
    )


@SLOT_KINDS
def test_check_family(paddle, coord, mixer):
    """Export (sampled tokens identical in torch and onnxruntime), check_bundle, determinism, a short fit;
    with `reward_input` and `ball_tokens`, as the shipped recipe has them, so the extra state tensor and the
    ball's slots are exported and checked too (and the paddle's slot, `paddle_token`, and the slots' place
    codes, `coord_features`, and the MLP that mixes the slots, `slot_mixer`)."""

    from dreamgym.export.families import get_family
    from dreamgym.export.testing import check_family

    c = _slot_config(paddle, coord, mixer)
    report = check_family(get_family("rem"), c, batch=16)
    assert report["parity"]["step.next_tokens"] == 0 and report["parity"]["reset.tokens"] == 0
    assert report["parity"]["step.next_last_reward"] == 0
    if c.slot_history:
        assert report["parity"]["step.next_slot_history"] == 0 and report["parity"]["reset.slot_history"] == 0


@SLOT_KINDS
def test_ball_slots_sample_only_their_own_ids(paddle, coord, mixer):
    """With `ball_tokens` a frame is the grid's codes, then the ball's row and its column (and with
    `paddle_token` the paddle's row): each slot's logits are confined to its own ids, so even pure noise samples
    a valid frame, and the loss trains every slot."""

    from dreamgym.export.families.rem import _random_tokens

    c = _slot_config(paddle, coord, mixer)
    assert c.tokens == c.grid**2 + 2 + paddle and c.token_vocab == c.vocab + (2 + paddle) * 65
    torch.manual_seed(0)
    m = REM(c).eval()
    rng = np.random.default_rng(0)
    B = 64
    tok = torch.from_numpy(_random_tokens(c, rng, (B,)))
    noise = 30.0 * torch.from_numpy(rng.standard_normal((B, c.tokens, c.token_vocab)).astype(np.float32))
    hist = (m.none_history(B),) if c.slot_history else ()
    with torch.no_grad():
        nxt = m.imagine_step(m.initial_state(B), tok, torch.zeros(B, 1), *hist, torch.zeros(B, dtype=torch.long), noise)
        nxt = nxt[1]
    grid = c.grid**2
    assert (nxt[:, :grid] < c.vocab).all()
    assert ((nxt[:, grid] >= c.vocab) & (nxt[:, grid] <= c.vocab + 64)).all()
    assert ((nxt[:, grid + 1] > c.vocab + 64) & (nxt[:, grid + 1] < c.vocab + 2 * 65)).all()
    if paddle:
        assert ((nxt[:, grid + 2] >= c.vocab + 2 * 65) & (nxt[:, grid + 2] < c.token_vocab)).all()
    tokens = torch.from_numpy(_random_tokens(c, rng, (4, 6)))
    loss, logs = m.loss(tokens, torch.zeros(4, 5, dtype=torch.long), torch.zeros(4, 5), torch.zeros(4, 5))
    loss.backward()
    assert np.isfinite(loss.item()) and logs["tokens"] < 20  # no slot is pushed toward a masked id
    assert m.token_head.weight.grad[c.vocab :].abs().sum() > 0  # the ball's rows and columns learn
    if coord:  # and so do the maps of their place codes, in and out
        assert m.coord_in.weight.grad.abs().sum() > 0 and m.coord_out.weight.grad.abs().sum() > 0
    if mixer:  # the mixer's last layer starts at zero, and learns
        assert m.mixer[-1].weight.grad.abs().sum() > 0


def test_grid_noise_draws_the_grid_colder_and_the_slots_as_before():
    """`grid_noise` scales only the grid's share of the Gumbel noise: at 0 the grid's tokens are the most likely
    ones whatever the noise, the slots are drawn from the same noise as at 1; at 0.5 the grid samples as at twice
    the logits (argmax(l/T + g/2) = argmax(2l/T + g)); the weights are the same, only the sampler differs; a
    model without slot tokens refuses it."""
    from dreamgym.export.families.rem import _random_tokens

    c = dataclasses.replace(TINY, ball_tokens=True, reward_input=True, paddle_token=True, temperature=0.5)
    torch.manual_seed(0)
    base = REM(c).eval()
    cold = REM(dataclasses.replace(c, grid_noise=0.0)).eval()
    half = REM(dataclasses.replace(c, grid_noise=0.5)).eval()
    cold.load_state_dict(base.state_dict())
    half.load_state_dict(base.state_dict())
    rng = np.random.default_rng(0)
    B, G = 64, c.grid**2
    tok = torch.from_numpy(_random_tokens(c, rng, (B,)))
    args = (base.initial_state(B), tok, torch.zeros(B, 1), torch.zeros(B, dtype=torch.long))
    noise = 3.0 * torch.from_numpy(rng.gumbel(size=(B, c.tokens, c.token_vocab)).astype(np.float32))
    with torch.no_grad():
        drawn, mode = base.imagine_step(*args, noise)[1], base.imagine_step(*args, 0 * noise)[1]
        colder = cold.imagine_step(*args, noise)[1]
        halfway = half.imagine_step(*args, noise)[1]
        logits = base.token_logits(
            base.run(base.embed_blocks(tok.unsqueeze(1), args[3].view(-1, 1), args[2]), args[0])[1]
        )[:, 0]
    assert (drawn[:, :G] != mode[:, :G]).float().mean() > 0.2  # the noise moves the grid at grid_noise 1
    assert torch.equal(colder[:, :G], mode[:, :G])  # and not at 0
    assert torch.equal(colder[:, G:], drawn[:, G:])  # the slots are drawn as before
    assert torch.equal(halfway[:, :G], (logits[:, :G] / c.temperature + noise[:, :G] / 2).argmax(-1))
    with pytest.raises(ValueError, match="grid_noise needs ball_tokens"):
        REM(dataclasses.replace(TINY, grid_noise=0.0))


def test_coord_features_code_places_on_their_axis():
    """`coord_table` gives the grid's codes nothing; it gives the ball's row and the paddle's row the same code
    for the same row (one axis, so their difference is linear), the ball's column a code on the other axis,
    and near places nearer codes than far ones; "none" is a code of its own. With both maps at zero the model
    is the model without place codes."""
    import dataclasses

    from dreamgym.export.families.rem import coord_table

    c = dataclasses.replace(TINY, ball_tokens=True, paddle_token=True, coord_features=True)
    t = coord_table(c.tokenizer_config)
    (row0, n), (col0, _), (pad0, _) = c.tokenizer_config.slots
    assert t.shape[0] == c.token_vocab and not t[: c.vocab].any()
    np.testing.assert_array_equal(t[row0 : row0 + n], t[pad0 : pad0 + n])  # ball row v and paddle row v alike
    half = t.shape[1] // 2
    assert not t[row0 : row0 + n, half:].any() and not t[col0 : col0 + n, :half].any()
    np.testing.assert_array_equal(t[row0 : row0 + n, :half], t[col0 : col0 + n, half:])
    d = np.linalg.norm(t[row0 + 30] - t[row0 : row0 + 64], axis=1)
    far = np.abs(np.arange(64) - 30) >= 2
    assert d[30] == 0 and max(d[29], d[31]) < d[far].min()  # the next row is nearer than any other
    assert np.all(np.diff(t[row0 : row0 + 64, 0]) > 0)  # and the first feature is the row itself
    none = t[row0 + 64]
    assert none[half - 1] == 1 and np.abs(none).sum() == 1
    assert len({tuple(r) for r in t[row0 : row0 + n]}) == n  # every row, and none, has a code of its own

    torch.manual_seed(0)
    with_codes = REM(c)
    plain = REM(dataclasses.replace(c, coord_features=False))
    plain.load_state_dict({k: v for k, v in with_codes.state_dict().items() if not k.startswith("coord_")})
    torch.nn.init.zeros_(with_codes.coord_in.weight), torch.nn.init.zeros_(with_codes.coord_out.weight)
    tokens, actions, rewards, terms = (x for x in _example_batch(c, 3, np.random.default_rng(0)))
    with torch.no_grad():
        assert with_codes.loss(tokens, actions, rewards, terms)[0] == plain.loss(tokens, actions, rewards, terms)[0]
    with pytest.raises(ValueError, match="coord_features needs ball_tokens"):
        REM(dataclasses.replace(TINY, coord_features=True))


def test_slot_mixer_reads_the_slots_places_and_the_action():
    """The mixer starts as the model without it (its last layer at zero); once it is not zero, a slot's logits
    depend on where the other slots are now and on the action, also in the step the bundle exports; it needs the
    place codes."""
    import dataclasses

    c = dataclasses.replace(TINY, ball_tokens=True, paddle_token=True, coord_features=True, reward_input=True)
    torch.manual_seed(0)
    mixed = REM(dataclasses.replace(c, slot_mixer=True)).eval()
    plain = REM(c).eval()
    plain.load_state_dict({k: v for k, v in mixed.state_dict().items() if not k.startswith("mixer.")})
    tokens, actions, rewards, terms = _example_batch(c, 3, np.random.default_rng(0))
    with torch.no_grad():
        assert mixed.loss(tokens, actions, rewards, terms)[0] == plain.loss(tokens, actions, rewards, terms)[0]
        torch.nn.init.normal_(mixed.mixer[-1].weight, std=0.5)
        G, (pad0, _) = c.grid**2, c.tokenizer_config.slots[2]
        state, last, zero = mixed.initial_state(1), torch.zeros(1, 1), torch.zeros(1, c.tokens, c.token_vocab)
        tok = tokens[:1, 0].clone()

        def ball_row(tok, action):
            pred = mixed.run(mixed.embed_blocks(tok[:, None], action.view(1, 1), last), state)[1]
            return mixed.token_logits(mixed.mix_slots(pred, tok[:, None], action.view(1, 1)))[0, 0, G]

        base = ball_row(tok, torch.tensor([0]))
        moved = tok.clone()
        moved[0, G + 2] = pad0 + (int(tok[0, G + 2]) - pad0 + 20) % 64  # the paddle somewhere else
        assert not torch.allclose(base, ball_row(moved, torch.tensor([0])))
        assert not torch.allclose(base, ball_row(tok, torch.tensor([3])))
        # the step graph's function samples from the same mixed logits
        nxt = mixed.imagine_step(state, tok, last, torch.tensor([0]), zero)[1]
        assert nxt[0, G] == base.argmax()
    with pytest.raises(ValueError, match="slot_mixer needs coord_features"):
        REM(dataclasses.replace(c, coord_features=False, slot_mixer=True))


def test_slot_history_steps_as_it_trains_and_grows_from_a_model_without_it():
    """`slot_history`: the model loaded from one without it (`load_without_history`) computes the same loss until
    trained; the history the reset graph's function builds from a context and each step's update of it are the
    `history_of` the training sequences (the slots of the frames before and the actions after them, "none"
    before the first); the mixer's logits read it; a history without the mixer is refused."""
    c = dataclasses.replace(
        TINY, ball_tokens=True, paddle_token=True, coord_features=True, slot_mixer=True, reward_input=True
    )
    torch.manual_seed(0)
    plain = REM(c).eval()
    with torch.no_grad():
        torch.nn.init.normal_(plain.mixer[-1].weight, std=0.5)
    grown = REM(dataclasses.replace(c, slot_history=3)).eval()
    grown.load_without_history(plain.state_dict())
    tokens, actions, rewards, terms = _example_batch(c, 4, np.random.default_rng(0))
    B, T = actions.shape
    G = c.grid**2
    with torch.no_grad():
        assert grown.loss(tokens, actions, rewards, terms)[0] == plain.loss(tokens, actions, rewards, terms)[0]
        torch.nn.init.normal_(grown.mixer[0].weight, std=0.5)  # now it reads the history
        hist = grown.history_of(tokens[:, :T], actions)
        assert hist.shape == (B, T, 3, 4)
        assert torch.equal(hist[:, 0], grown.none_history(B))
        assert torch.equal(hist[:, 2, 0, :3], tokens[:, 1, G:]) and torch.equal(hist[:, 2, 0, 3], actions[:, 1])
        assert torch.equal(hist[:, 2, 1, :3], tokens[:, 0, G:]) and torch.equal(hist[:, 2, 2], hist[:, 0, 0])
        # the step's function, fed the sequence's tokens, carries the same history, and its slots read it
        state, last, h = grown.initial_state(B), torch.zeros(B, 1), grown.none_history(B)
        zero = torch.zeros(B, c.tokens, c.token_vocab)
        for t in range(T):
            assert torch.equal(h, hist[:, t])
            out = grown.imagine_step(state, tokens[:, t], last, h, actions[:, t], zero)
            other = grown.imagine_step(state, tokens[:, t], last, grown.none_history(B), actions[:, t], zero)
            if t > 0:
                assert not torch.equal(out[1][:, G:], other[1][:, G:])
            assert torch.equal(out[1][:, :G], other[1][:, :G])  # the grid does not read it
            state, last, h = out[0], out[2], out[3]
        # the reset's function: the history of the first imagined step is the context's frames before its last
        frames = torch.rand(B, 4, c.frame_size, c.frame_size, 3) * 255
        ctx_actions = torch.randint(c.actions, (B, 4))
        reset_hist = grown.filter_context(frames, ctx_actions)[3]
        ctx_tok = grown.tokenizer.encode(frames.reshape(-1, c.frame_size, c.frame_size, 3)).view(B, 4, -1)
        assert torch.equal(reset_hist[:, 0, :3], ctx_tok[:, 2, G:]) and torch.equal(
            reset_hist[:, 0, 3], ctx_actions[:, 3]
        )
        assert torch.equal(reset_hist[:, 2, :3], ctx_tok[:, 0, G:]) and torch.equal(
            reset_hist[:, 2, 3], ctx_actions[:, 1]
        )
    with pytest.raises(ValueError, match="slot_history=2"):
        REM(dataclasses.replace(c, slot_mixer=False, slot_history=2))
    with pytest.raises(ValueError, match="without its history"):
        REM(dataclasses.replace(c, slot_history=2)).load_without_history(grown.state_dict())


def test_paddle_token_is_where_the_evaluator_sees_the_paddle():
    """On real Pong frames (the shipped dream's context bank), the paddle's token is the row of the player's
    paddle that `measure.pong.detect` finds, rounded; the ball's tokens are unchanged by it, and the paddle
    needs the ball's slots."""
    import dreamgym
    from dreamgym.export.families.tokenizer import ImageTokenizer, ImageTokenizerConfig
    from dreamgym.export.measure.pong import detect

    with np.load(dreamgym.resolve("Dream-Pong-v0") / "contexts.npz", allow_pickle=False) as z:
        frames = z["obs"].reshape(-1, 64, 64, 3)[:400]
    both = ImageTokenizer(ImageTokenizerConfig(codebook=32, code_dim=8, channels=8, ball=True, paddle=True))
    ball = ImageTokenizer(ImageTokenizerConfig(codebook=32, code_dim=8, channels=8, ball=True))
    ball.load_state_dict(both.state_dict())  # the same weights: the paddle's token adds none
    x = torch.from_numpy(frames)
    with torch.no_grad():
        tok = both.encode(x)
        np.testing.assert_array_equal(tok[:, :-1].numpy(), ball.encode(x).numpy())
    row = tok[:, -1].numpy() - (32 + 2 * 65)
    want = detect(frames)["paddle_y"]
    seen = ~np.isnan(want)
    assert seen.mean() > 0.9  # the player's paddle is in most frames
    np.testing.assert_array_equal(row[seen], np.floor(want[seen] + 0.5))
    floor = np.broadcast_to(np.array([144, 72, 17], np.uint8), (1, 64, 64, 3)).copy()  # a field with no paddle
    with torch.no_grad():
        assert both.encode(torch.from_numpy(floor))[0, -1].item() == 32 + 2 * 65 + 64  # "no paddle"
    with pytest.raises(ValueError, match="paddle needs ball"):
        ImageTokenizerConfig(paddle=True)


def test_contact_weight_reweights_only_the_ball_near_the_players_paddle():
    """`contact_weight` multiplies the ball's two tokens' loss at steps whose frame has the ball at or beyond
    `contact_col`; with the ball elsewhere (or absent) the loss is that of the unweighted model."""
    import dataclasses

    from dreamgym.export.families.rem import _random_tokens

    c = dataclasses.replace(TINY, ball_tokens=True)
    torch.manual_seed(0)
    plain = REM(c)
    weighted = REM(dataclasses.replace(c, contact_weight=10.0, contact_col=48))
    weighted.load_state_dict(plain.state_dict())
    rng = np.random.default_rng(1)
    tokens = torch.from_numpy(_random_tokens(c, rng, (2, 6)))
    col0 = c.vocab + c.frame_size + 1  # the id of column 0
    tokens[..., -1] = col0 + 10  # the ball far from the player's paddle in every frame
    args = (torch.zeros(2, 5, dtype=torch.long), torch.zeros(2, 5), torch.zeros(2, 5))
    with torch.no_grad():
        assert weighted.loss(tokens, *args)[1]["tokens"] == pytest.approx(plain.loss(tokens, *args)[1]["tokens"])
        tokens[1, 2, -1] = col0 + 50  # near the paddle in one frame read: its next frame's ball tokens weigh 10x
        x = plain.embed_blocks(tokens[:, :-1], args[0])
        logits = plain.token_logits(plain.run(x, plain.initial_state(2))[1])
        target = tokens[:, 1:]
        ce = torch.nn.functional.cross_entropy(logits.flatten(0, 2), target.flatten(), reduction="none")
        w = torch.ones_like(ce.view_as(target))
        w[1, 2, -2:] = 10.0
        expect = (ce.view_as(target) * w).sum() / w.sum()
        assert weighted.loss(tokens, *args)[1]["tokens"] == pytest.approx(expect.item(), rel=1e-5)

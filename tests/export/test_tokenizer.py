"""Tokenizers for the Simulus family: image VQ-VAE and symlog quantisation of vectors."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dreamgym.export.families.tokenizer import (  # noqa: E402
    ImageTokenizer,
    ImageTokenizerConfig,
    VectorTokenizer,
    VectorTokenizerConfig,
)


def test_image_tokenizer_shapes_and_ids():
    tok = ImageTokenizer(ImageTokenizerConfig(size=32, grid=8, codebook=16, code_dim=8, channels=8))
    frames = torch.from_numpy(np.random.default_rng(0).integers(0, 255, (2, 32, 32, 3), dtype=np.uint8))
    ids = tok.encode(frames)
    assert ids.shape == (2, 64) and ids.min() >= 0 and ids.max() < 16
    assert tok.decode(ids).shape == (2, 3, 32, 32)


def test_image_tokenizer_learns_a_frame():
    torch.manual_seed(0)
    tok = ImageTokenizer(ImageTokenizerConfig(size=16, grid=4, codebook=8, code_dim=8, channels=8))
    frame = torch.zeros(4, 16, 16, 3, dtype=torch.uint8)
    frame[:, 4:12, 4:12] = 255
    opt = torch.optim.Adam(tok.parameters(), 3e-3)
    first = None
    for _ in range(150):
        loss, logs = tok.loss(frame)
        first = first if first is not None else logs["mse"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert logs["mse"] < 0.25 * first and np.isfinite(logs["vq"])


def test_bad_grid_is_refused():
    with pytest.raises(ValueError, match="power of two"):
        ImageTokenizer(ImageTokenizerConfig(size=64, grid=12))


def test_vector_tokenizer_round_trip():
    tok = VectorTokenizer(VectorTokenizerConfig(dim=17, bins=255))
    x = torch.linspace(-20, 20, 17 * 8).view(8, 17)
    ids = tok.encode(x)
    assert ids.dtype == torch.int64 and ids.min() >= 0 and ids.max() <= 254
    back = tok.decode(ids)
    # the error is at most half a bin in symlog space
    half_bin = 10.0 / 254 / 2
    sl = lambda t: torch.sign(t) * torch.log1p(t.abs())  # noqa: E731
    assert (sl(back) - sl(x)).abs().max() <= half_bin + 1e-5


def test_weighted_loss_counts_the_weighted_pixels():
    torch.manual_seed(0)
    tok = ImageTokenizer(ImageTokenizerConfig(size=16, grid=4, codebook=8, code_dim=8, channels=8))
    frame = torch.full((2, 16, 16, 3), 128, dtype=torch.uint8)  # grey: near what an untrained decoder draws
    frame[:, 5, 5] = 255  # a one-pixel ball, which it misses
    w = torch.ones(2, 16, 16)
    plain, logs = tok.loss(frame)
    w[:, 5, 5] = 1000.0
    weighted, _ = tok.loss(frame, w)
    assert weighted > plain  # the ball's error now dominates the reconstruction term
    assert logs["ids"].shape == (2, 4, 4) and logs["z"].shape == (2, 4, 4, 8)


def test_dead_codes_restart_on_encoder_outputs():
    torch.manual_seed(0)
    tok = ImageTokenizer(ImageTokenizerConfig(size=16, grid=4, codebook=8, code_dim=8, channels=8))
    z = torch.randn(2, 4, 4, 8)
    dead = torch.zeros(8, dtype=torch.bool)
    dead[[1, 5]] = True
    before = tok.codes.weight.detach().clone()
    tok.restart_codes(dead, z, torch.Generator().manual_seed(0))
    after = tok.codes.weight.detach()
    torch.testing.assert_close(after[~dead], before[~dead])
    flat = z.reshape(-1, 8)
    for i in (1, 5):  # each restarted code sits (within its jitter) on one of the encoder outputs
        assert (flat - after[i]).abs().max(-1).values.min() < 1e-2


def test_tokens_are_patch_local():
    """A patch's token depends on that patch only; with a local decoder, a patch's pixels on its token only."""
    torch.manual_seed(0)
    tok = ImageTokenizer(
        ImageTokenizerConfig(size=32, grid=4, codebook=64, code_dim=8, channels=8, decoder_kernel=2)
    ).eval()
    rng = np.random.default_rng(0)
    a = rng.integers(0, 255, (1, 32, 32, 3), dtype=np.uint8)
    b = a.copy()
    b[0, 8:16, 16:24] = 255 - b[0, 8:16, 16:24]  # change patch (1, 2) only
    with torch.no_grad():
        ta, tb = tok.encode(torch.from_numpy(a)), tok.encode(torch.from_numpy(b))
        changed = (ta != tb).view(4, 4)
        assert not changed[torch.arange(4) != 1].any() and not changed[1, [0, 1, 3]].any()
        tb2 = ta.clone()
        tb2[0, 6] = (ta[0, 6] + 1) % 64  # another code for patch (1, 2)
        da, db = tok.decode(ta), tok.decode(tb2)
    diff = (da - db).abs().sum(1)[0] > 0
    assert diff[8:16, 16:24].any()
    diff[8:16, 16:24] = False
    assert not diff.any()

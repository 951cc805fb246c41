"""Tokenizers for the Simulus family: image VQ-VAE and symlog quantisation of vectors."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dreamgym.export.tokenizer import (  # noqa: E402
    ImageTokenizer, ImageTokenizerConfig, VectorTokenizer, VectorTokenizerConfig)


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

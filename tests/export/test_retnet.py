"""RetNet for the Simulus family: the parallel, chunkwise and recurrent forms agree."""

import pytest

torch = pytest.importorskip("torch")

from dreamgym.export.families.retnet import RetNet, RetNetConfig, head_decays  # noqa: E402


@pytest.fixture
def net():
    torch.manual_seed(0)
    return RetNet(RetNetConfig(d_model=32, heads=4, layers=2)).eval()


def test_parallel_equals_recurrent_equals_chunkwise(net):
    B, T = 3, 24
    x = torch.randn(B, T, 32)
    s0 = net.initial_state(B)
    with torch.no_grad():
        par, s_par = net(x, s0)
        steps, s = [], s0
        for t in range(T):
            y, s = net(x[:, t : t + 1], s)
            steps.append(y)
        rec = torch.cat(steps, 1)
        chunks, s2 = [], s0
        for a in range(0, T, 8):
            y, s2 = net(x[:, a : a + 8], s2)
            chunks.append(y)
        chk = torch.cat(chunks, 1)
    torch.testing.assert_close(rec, par, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(chk, par, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(s, s_par, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(s2, s_par, rtol=1e-4, atol=1e-4)


def test_state_is_fixed_size(net):
    s = net.initial_state(2)
    for C in (1, 5, 17):
        _, s = net(torch.randn(2, C, 32), s)
        assert s.shape == (2, 2, 4, 8, 8)


def test_prediction_chunk_does_not_need_to_advance_the_state(net):
    """Parallel observation prediction: K prediction tokens read the state; keeping the old state is exact."""
    x = torch.randn(2, 6, 32)
    with torch.no_grad():
        _, s = net(x, net.initial_state(2))
        pred_a, _ = net(torch.randn(2, 4, 32), s)
        y_next, _ = net(x[:, :1], s)
        y_again, _ = net(x[:, :1], s)
    assert pred_a.shape == (2, 4, 32)
    torch.testing.assert_close(y_next, y_again)


def test_decays_span_short_to_long_memory():
    g = head_decays(4)
    assert torch.all(g[1:] > g[:-1]) and g[0] == pytest.approx(1 - 2**-5)

"""oneDNN linears: same outputs and gradients as F.linear, copies stay correct."""

from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")

from sbert.backends.torch.kernels import (  # noqa: E402
    PRIMITIVE_CACHE_ENV,
    OneDNNLinear,
    bucket_rows,
    limit_primitive_cache,
    onednn_linear_available,
    stock_linears,
    use_onednn_linears,
)

pytestmark = pytest.mark.skipif(not onednn_linear_available(),
                                reason="this torch build has no usable oneDNN linear")


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.GELU(), torch.nn.Linear(16, 4))


def test_same_outputs_and_gradients_still_flow() -> None:
    model, x = _model(), torch.randn(3, 5, 8)
    with torch.inference_mode():
        expected = model(x)
    assert use_onednn_linears(model) == 2
    assert all(type(m) is OneDNNLinear for m in model if isinstance(m, torch.nn.Linear))
    with torch.inference_mode():
        torch.testing.assert_close(model(x), expected, atol=1e-5, rtol=1e-5)
    stock_linears(model)
    assert type(model[0]) is torch.nn.Linear


def test_row_counts_round_to_few_buckets_with_little_waste() -> None:
    sizes = {bucket_rows(rows) for rows in range(1, 16385)}
    assert len(sizes) <= 80  # kernels built per shape: a bounded set, not one per batch
    for rows in range(1, 16385):
        padded = bucket_rows(rows)
        assert padded >= rows and padded % 8 == 0
        assert padded <= max(8, rows * 1.125 + 8)


@pytest.mark.parametrize("shape", [(1, 1, 8), (3, 5, 8), (2, 47, 8), (131, 8)])
def test_bucketed_rows_give_the_same_rows(shape: tuple[int, ...]) -> None:
    model, x = _model(), torch.randn(*shape)
    with torch.inference_mode():
        expected = model(x)
        use_onednn_linears(model)
        got = model(x)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_training_gradients_match_stock() -> None:
    stock, x = _model(), torch.randn(3, 5, 8, requires_grad=True)
    fast = copy.deepcopy(stock)
    use_onednn_linears(fast)
    grad = torch.randn(3, 5, 4)
    stock(x).backward(grad)
    expected_x = x.grad.clone()
    x.grad = None
    out = fast(x)
    assert out.grad_fn is not None and "OneDNNLinearFunction" in repr(out.grad_fn)
    out.backward(grad)
    torch.testing.assert_close(x.grad, expected_x, atol=1e-5, rtol=1e-5)
    for a, b in zip(fast.parameters(), stock.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, atol=1e-5, rtol=1e-5)


def test_gradcheck_in_double_falls_back_and_frozen_weights_work() -> None:
    model = _model().double()
    use_onednn_linears(model)
    x = torch.randn(2, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(model, (x,))  # float64: the stock path
    model = _model()
    use_onednn_linears(model)
    model.requires_grad_(False)
    x = torch.randn(2, 8, requires_grad=True)
    model(x).sum().backward()  # only the input needs a gradient
    assert x.grad is not None and model[0].weight.grad is None


def test_deepcopy_uses_its_own_weights() -> None:
    model = _model()
    use_onednn_linears(model)
    clone = copy.deepcopy(model)
    with torch.no_grad():
        clone[0].weight.zero_()
        clone[0].bias.zero_()
    x = torch.randn(2, 8)
    with torch.inference_mode():
        assert not torch.allclose(model(x), clone(x))
        torch.testing.assert_close(clone[0](x), torch.zeros(2, 16))


def test_switch_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SBERT_ONEDNN", "0")
    assert use_onednn_linears(_model()) == 0


def test_the_kernel_cache_limit_is_set_once_and_yields_to_the_users(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # set, then removed: monkeypatch restores the process's own value (or its absence)
    # at the end, whatever the code under test writes into os.environ
    monkeypatch.setenv(PRIMITIVE_CACHE_ENV, "0")
    monkeypatch.delenv(PRIMITIVE_CACHE_ENV)
    assert limit_primitive_cache(64) is True
    assert limit_primitive_cache(32) is False  # already set: left alone
    import os

    assert os.environ[PRIMITIVE_CACHE_ENV] == "64"
    monkeypatch.setenv(PRIMITIVE_CACHE_ENV, "500")  # the user's own choice wins
    assert limit_primitive_cache(64) is False and os.environ[PRIMITIVE_CACHE_ENV] == "500"

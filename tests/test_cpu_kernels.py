"""oneDNN linears: same numbers as F.linear, only under inference mode, copies stay correct."""

from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")

from sbert.cpu_kernels import (  # noqa: E402
    OneDNNLinear,
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
    out = model(x)  # training path: stock F.linear with autograd
    out.sum().backward()
    assert model[0].weight.grad is not None
    stock_linears(model)
    assert type(model[0]) is torch.nn.Linear


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

"""`engine.nn.Dropout`: the drop rate, the scaling, the gradient, seeds, and eval mode."""
import pytest
import torch

from engine.nn.dropout import Dropout


@pytest.mark.parametrize("p", [0.1, 0.5])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_drops_at_rate_p_and_keeps_the_mean(p, dtype):
    torch.manual_seed(0)
    x = torch.ones(400, 500, dtype=dtype)
    out = Dropout(p)(x)
    dropped = (out == 0).float().mean().item()
    assert abs(dropped - p) < 4 * (p * (1 - p) / x.numel()) ** 0.5 + 1e-4  # within 4 standard errors
    kept = out[out != 0].float()
    assert torch.allclose(kept, torch.full_like(kept, 1 / (1 - p)), rtol=1e-2)
    assert out.dtype == dtype


def test_gradient_is_the_mask_scaled():
    torch.manual_seed(1)
    x = torch.randn(64, 32, requires_grad=True)
    out = Dropout(0.2)(x)
    out.sum().backward()
    expected = (out != 0).float() / 0.8
    assert torch.allclose(x.grad, expected)


def test_same_seed_same_mask_and_eval_is_identity():
    layer = Dropout(0.3)
    x = torch.randn(50, 40)
    torch.manual_seed(7)
    a = layer(x)
    torch.manual_seed(7)
    b = layer(x)
    assert torch.equal(a, b)
    layer.eval()
    assert torch.equal(layer(x), x)


def test_p_zero_and_p_one():
    x = torch.randn(10, 10)
    assert torch.equal(Dropout(0.0)(x), x)
    assert torch.equal(Dropout(1.0)(x), torch.zeros_like(x))


def test_odd_sizes():
    torch.manual_seed(2)
    x = torch.ones(3, 7, 5)  # 105 elements: not a multiple of four
    out = Dropout(0.5)(x)
    assert out.shape == x.shape
    assert set(out.unique().tolist()) <= {0.0, 2.0}

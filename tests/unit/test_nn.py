"""Building blocks: fully connected stacks and the gradient helpers."""
import pytest
import torch

from engine.nn import FCStack, grad_neutralize, grad_reverse


def test_fcstack_shapes_and_layers():
    stack = FCStack(10, [32, 8], norm="layer", activation="gelu", dropout=0.2)
    assert stack.out_dim == 8
    assert stack(torch.randn(5, 10)).shape == (5, 8)
    assert len(stack.linears) == 2


def test_fcstack_last_linear_leaves_output_unbounded():
    torch.manual_seed(0)
    relu_out = FCStack(6, [16, 4], norm="none")(torch.randn(64, 6))
    assert (relu_out >= 0).all()
    linear = FCStack(6, [16, 4], norm="none", last_linear=True)
    assert isinstance(linear.posts[-1], torch.nn.Identity)
    assert (linear(torch.randn(64, 6)) < 0).any()


def test_fcstack_injects_covariates_into_every_layer():
    stack = FCStack(10, [32, 16, 4], n_covariates=3, norm="batch", last_linear=True)
    assert [lin.in_features for lin in stack.linears] == [13, 35, 19]
    x = torch.randn(7, 10)
    cov = torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 0, 1, 2, 0]), 3).float()
    stack.eval()
    a = stack(x, cov)
    b = stack(x, cov.roll(1, dims=1))
    assert a.shape == (7, 4) and not torch.allclose(a, b)
    # The last layer sees the covariates directly: changing only its covariate weights changes out.
    with torch.no_grad():
        stack.linears[-1].weight[:, -3:] += 1.0
    assert not torch.allclose(stack(x, cov), a)


def test_fcstack_checks_covariates_and_sizes():
    with pytest.raises(ValueError, match="covariate"):
        FCStack(4, [3], n_covariates=2)(torch.randn(2, 4))
    with pytest.raises(ValueError, match="covariate"):
        FCStack(4, [3])(torch.randn(2, 4), torch.ones(2, 1))
    with pytest.raises(ValueError, match="norm"):
        FCStack(4, [3], norm="group")
    with pytest.raises(ValueError, match="activation"):
        FCStack(4, [3], activation="tanh")


def test_fcstack_empty_dims_is_identity():
    stack = FCStack(4, [])
    x = torch.randn(3, 4)
    assert stack.out_dim == 4 and torch.equal(stack(x), x)


@pytest.mark.parametrize("alpha", [0.5, torch.tensor(2.0)])
def test_grad_reverse_scales_gradient_by_minus_alpha(alpha):
    x = torch.randn(4, 3, requires_grad=True)
    upstream = torch.randn(4, 3)
    y = grad_reverse(x, alpha)
    assert torch.equal(y, x)
    y.backward(upstream)
    assert torch.allclose(x.grad, -float(alpha) * upstream)


def test_grad_reverse_alpha_changes_between_calls():
    w = torch.ones(3, requires_grad=True)
    for alpha in (0.1, 1.0, 3.0):
        w.grad = None
        grad_reverse(w * 2.0, alpha).sum().backward()
        assert torch.allclose(w.grad, torch.full((3,), -2.0 * alpha))


def test_grad_neutralize_returns_a_tensor_without_gradient_path():
    x = torch.randn(3, requires_grad=True)
    head = torch.ones(3, requires_grad=True)
    y = grad_neutralize(x)
    assert isinstance(y, torch.Tensor) and torch.equal(y, x) and not y.requires_grad
    (y * head).sum().backward()
    assert x.grad is None and torch.equal(head.grad, x.detach())

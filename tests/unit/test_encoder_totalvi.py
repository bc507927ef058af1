"""The TOTALVI-style encoder block: shapes, covariates into every layer, the logistic normal and
the log-normal library size."""
import pytest
import torch

from engine.nn import EncoderTOTALVI, GaussianDecoder


def _encoder(**kw):
    torch.manual_seed(0)
    return EncoderTOTALVI(30, 6, [3, 2], n_layers=2, n_hidden=16, **kw)


def _codes(n=20):
    return torch.randint(0, 3, (n,)), torch.randint(0, 2, (n,))


def test_shapes_and_positive_variances():
    out = _encoder(distribution="normal")(torch.randn(20, 30), *_codes())
    assert out.z_mean.shape == out.z_var.shape == out.untran_z.shape == out.z.shape == (20, 6)
    assert out.library.shape == out.library_mean.shape == (20, 1)
    assert (out.z_var > 0).all() and (out.library_var > 0).all()
    assert torch.equal(out.z, out.untran_z)  # 'normal': z is the gaussian sample itself


def test_the_logistic_normal_latent_lies_on_the_simplex():
    out = _encoder(distribution="ln")(torch.randn(20, 30), *_codes())
    assert torch.allclose(out.z.sum(dim=1), torch.ones(20), atol=1e-6)
    assert (out.z > 0).all()


def test_the_library_size_is_positive_even_for_extreme_inputs():
    out = _encoder()(torch.randn(20, 30) * 1e3, *_codes())
    assert (out.library > 0).all() and torch.isfinite(out.library).all()


def test_covariates_reach_every_hidden_layer():
    enc = _encoder()
    for linear in enc.z_trunk.linears:
        assert linear.in_features in (30 + 5, 16 + 5)
    enc.eval()
    x = torch.randn(4, 30)
    a = enc(x, torch.zeros(4, dtype=torch.long), torch.zeros(4, dtype=torch.long)).z_mean
    b = enc(x, torch.full((4,), 2), torch.zeros(4, dtype=torch.long)).z_mean
    assert not torch.allclose(a, b)


def test_soft_categories_and_missing_codes_are_taken():
    enc = _encoder()
    enc.eval()
    x = torch.randn(3, 30)
    codes = enc(x, torch.tensor([0, 1, 2]), torch.tensor([0, 1, 0])).z_mean
    soft = enc(x, torch.eye(3), torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])).z_mean
    assert torch.allclose(codes, soft, atol=1e-6)
    missing = enc(x, torch.tensor([-1, -1, -1]), torch.tensor([0, 1, 0])).z_mean
    zeros = enc(x, torch.zeros(3, 3), torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])).z_mean
    assert torch.allclose(missing, zeros, atol=1e-6)


def test_batch_norm_moves_slowly_as_in_scvi_tools():
    """Encoder and decoder: momentum 0.01 and eps 1e-3 (scvi-tools' FCLayers), so the eval-mode
    latent sees running statistics averaged over about a hundred steps, not the last ten."""
    blocks = [_encoder(), GaussianDecoder(6, 30, 2, n_layers=2, n_hidden=16, dropout_rate=0.1)]
    norms = [m for block in blocks for m in block.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert norms and all(m.momentum == 0.01 and m.eps == 1e-3 for m in norms)


def test_the_variance_activation_is_exp_or_softplus_of_the_same_head():
    x, codes = torch.randn(20, 30), _codes()
    exp, softplus = _encoder().eval(), _encoder(variance_activation="softplus").eval()
    a, b = exp(x, *codes), softplus(x, *codes)
    torch.testing.assert_close(a.z_mean, b.z_mean)
    head = (a.z_var - 1e-4).log()
    torch.testing.assert_close(b.z_var, torch.nn.functional.softplus(head) + 1e-4)
    torch.testing.assert_close(b.library_var, torch.nn.functional.softplus((a.library_var - 1e-4).log()) + 1e-4)
    with pytest.raises(ValueError, match="variance_activation"):
        _encoder(variance_activation="square")


def test_under_bf16_autocast_the_trunk_runs_in_bf16_and_the_distributions_stay_float32():
    encoder = _encoder(distribution="normal")
    trunk = []
    encoder.z_trunk.register_forward_hook(lambda module, args, out: trunk.append(out.dtype))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = encoder(torch.randn(20, 30), *_codes())
    assert trunk == [torch.bfloat16]
    for value in (out.z_mean, out.z_var, out.untran_z, out.library_mean, out.library_var, out.library):
        assert value.dtype == torch.float32


def test_layer_norm_and_no_library_trunk():
    enc = _encoder(use_layer_norm=True, library=False)
    assert any(isinstance(m, torch.nn.LayerNorm) for m in enc.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in enc.modules())
    assert enc(torch.randn(5, 30), *_codes(5)).library is None


def test_wrong_settings_are_refused():
    with pytest.raises(ValueError, match="distribution"):
        EncoderTOTALVI(10, 2, distribution="poisson")
    with pytest.raises(ValueError, match="categorical covariates"):
        _encoder()(torch.randn(3, 30), torch.zeros(3, dtype=torch.long))

"""SysVAE, the module: shapes, the VampPrior's density, the cycle's path and its loss."""
import math

import pytest
import torch
from torch import distributions as D
from torch import nn

from engine.models import SysVAE, VampPrior
from engine.nn.encoder_totalvi import EncoderOutput

G, B = 12, 40


def _tensors(n=B, n_batch=3, cats=True, cont=True):
    g = torch.Generator().manual_seed(1)
    return {"x": torch.rand(n, G, generator=g) * 3, "batch": torch.randint(0, n_batch, (n,), generator=g),
            "cat_covs": torch.randint(-1, 4, (n, 2), generator=g) if cats else None,
            "cont_covs": torch.randn(n, 1, generator=g) if cont else None}


def _model(prior="vamp", **kw):
    torch.manual_seed(0)
    t = _tensors()
    pseudo = {"x": t["x"][:5], "batch": t["batch"][:5], "cat_covs": t["cat_covs"][:5].clamp(min=0),
              "cont_covs": t["cont_covs"][:5]}
    return SysVAE(G, 3, 1, [4, 4], prior=prior, pseudoinput_data=pseudo, n_latent=4, n_hidden=16, **kw)


@pytest.mark.parametrize("embed", [False, True])
@pytest.mark.parametrize("prior", ["vamp", "standard_normal"])
def test_shapes_and_a_finite_loss(embed, prior):
    model = _model(prior, embed_categorical_covariates=embed)
    t = _tensors()
    inference, generative = model(t)
    assert inference["z"].shape == inference["qz_m"].shape == inference["qz_cycle_m"].shape == (B, 4)
    assert generative["x_m"].shape == (B, G) and generative["x_v"].shape == (G,) and (generative["x_v"] > 0).all()
    losses = model.loss(t, inference, generative)
    assert set(losses) == {"loss", "reconstruction_loss", "kl_local", "cycle_loss"}
    assert all(torch.isfinite(v) and v.dim() == 0 for v in losses.values())
    losses["loss"].backward()


def test_per_cell_variances_in_sample_feature_mode():
    model = _model(out_var_mode="sample_feature")
    t = _tensors()
    inference, generative = model(t)
    assert generative["x_v"].shape == (B, G) and (generative["x_v"] > 0).all()
    assert torch.isfinite(model.loss(t, inference, generative)["loss"])


def test_without_the_cycle_no_cycle_term():
    model = _model()
    t = _tensors()
    inference, generative = model(t, cycle=False)
    assert "qz_cycle_m" not in inference and "cycle_loss" not in model.loss(t, inference, generative)


@pytest.mark.parametrize("mixture", ["per_dimension", "joint"])
def test_vamp_prior_log_density_is_the_mixture_of_its_components(mixture):
    """'joint': one mixture of diagonal gaussians over the latent; 'per_dimension': a mixture for
    each latent dimension, their log densities summed."""
    torch.manual_seed(3)
    prior = VampPrior(torch.rand(5, G), [torch.randint(0, 3, (5,))], [3], None, mixture=mixture)
    with torch.no_grad():
        prior.logits.copy_(torch.randn(5))
    means, variances, z = torch.randn(5, 4), torch.rand(5, 4) + 0.1, torch.randn(30, 4)
    if mixture == "joint":
        expected = D.MixtureSameFamily(D.Categorical(logits=prior.logits),
                                       D.Independent(D.Normal(means, variances.sqrt()), 1)).log_prob(z)
    else:
        expected = sum(D.MixtureSameFamily(D.Categorical(logits=prior.logits),
                                           D.Normal(means[:, d], variances[:, d].sqrt())).log_prob(z[:, d])
                       for d in range(4))
    assert torch.allclose(prior.log_prob(z, means, variances), expected, atol=1e-5)


def test_the_vamp_prior_refuses_an_unknown_mixture():
    with pytest.raises(ValueError, match="mixture"):
        VampPrior(torch.rand(5, G), [torch.randint(0, 3, (5,))], [3], None, mixture="per_gene")


def test_the_pseudo_inputs_learn_when_trainable_and_stay_otherwise():
    trainable, fixed = _model(), _model(trainable_priors=False)
    assert isinstance(trainable.prior.x, nn.Parameter) and trainable.prior.category_logits_0.requires_grad
    assert not isinstance(fixed.prior.x, nn.Parameter)
    _, categories, _ = trainable.prior.inputs()
    assert all(torch.allclose(c.sum(dim=1), torch.ones(5)) for c in categories)


def test_kl_to_the_standard_normal_is_the_closed_form():
    model = _model("standard_normal")
    m, v = torch.randn(6, 4), torch.rand(6, 4) + 0.1
    expected = D.kl_divergence(D.Normal(m, v.sqrt()), D.Normal(0, 1)).sum(dim=1)
    assert torch.allclose(model.kl({"qz_m": m, "qz_v": v, "z": m}), expected, atol=1e-5)


def test_every_cell_gets_another_system():
    model = _model()
    batch = torch.randint(0, 3, (5000,))
    other = model.random_select_batch(batch)
    assert (other != batch).all() and other.min() >= 0 and other.max() <= 2
    assert len(torch.unique(other[batch == 0])) == 2  # both other systems are drawn


def test_the_cycle_loss_standardises_and_survives_constant_dimensions():
    z = torch.randn(50, 3)
    assert torch.allclose(SysVAE.latent_cycle_consistency(z, z), torch.zeros(50))
    scaled = SysVAE.latent_cycle_consistency(z * 1e-2, (z + 0.5) * 1e-2)
    assert torch.allclose(scaled, SysVAE.latent_cycle_consistency(z, z + 0.5), rtol=1e-3)  # scale cannot cheat
    constant = torch.ones(50, 3)
    assert torch.isfinite(SysVAE.latent_cycle_consistency(constant, constant)).all()


class _ShiftEncoder(nn.Module):
    """Latent = expression - `shift` in system 0 cells (undoes `_ShiftDecoder`)."""

    def __init__(self, shift):
        super().__init__()
        self.shift = shift

    def forward(self, x, *cat_list, cont=None):
        z = x - self.shift * (cat_list[0] == 0).to(x.dtype)[:, None]
        return EncoderOutput(z, torch.ones_like(z), z, z, None, None, None)


class _ShiftDecoder(nn.Module):
    """Expression = latent + `shift` in system 0 cells (the first one-hot column)."""

    def __init__(self, shift):
        super().__init__()
        self.shift = shift

    def forward(self, z, covariates):
        return z + self.shift * covariates[:, :1], torch.ones_like(z)


def _constructed(shift, cycle_input):
    """A decoder that adds a system's shift and an encoder that removes it: a perfectly
    system-aware pair; with shift 0 neither looks at the system."""
    model = SysVAE(G, 2, prior="standard_normal", n_latent=G, cycle_input=cycle_input)
    model.encoder, model.decoder = _ShiftEncoder(shift), _ShiftDecoder(shift)
    return model


@pytest.mark.parametrize("cycle_input", ["other_system", "own_system"])
def test_the_cycle_loss_is_zero_when_the_decoder_ignores_the_system(cycle_input):
    model = _constructed(0.0, cycle_input)
    t = _tensors(n_batch=2, cats=False, cont=False)
    losses = model.loss(t, *model(t))
    assert float(losses["cycle_loss"]) == pytest.approx(0.0, abs=1e-8)


def test_the_cycle_re_encodes_the_decoding_under_the_other_system():
    """Decode under the other system, re-encode under it: the system-aware pair maps every cell
    back to its latent (the paper's cycle is zero). scvi-tools' variant re-encodes the decoding
    under the cell's own system as if it came from the other, so the same pair is penalised."""
    t = _tensors(n_batch=2, cats=False, cont=False)
    paper, scvi = _constructed(1.0, "other_system"), _constructed(1.0, "own_system")
    assert float(paper.loss(t, *paper(t))["cycle_loss"]) == pytest.approx(0.0, abs=1e-8)
    assert float(scvi.loss(t, *scvi(t))["cycle_loss"]) > 0.1


@pytest.mark.parametrize("per_cell", [True, False])
def test_the_reconstruction_is_a_gaussian_likelihood_with_a_variance(per_cell):
    model = _model()
    t = _tensors()
    x_m, x_v = torch.rand(B, G), torch.rand(B, G) + 0.2 if per_cell else torch.rand(G) + 0.2
    inference = {"qz_m": torch.zeros(B, 4), "qz_v": torch.ones(B, 4), "z": torch.zeros(B, 4)}
    losses = model.loss(t, inference, {"x_m": x_m, "x_v": x_v})
    expected = -D.Normal(x_m, x_v.sqrt().expand(B, G)).log_prob(t["x"]).sum(dim=1) - 0.5 * G * math.log(2 * math.pi)
    assert float(losses["reconstruction_loss"]) == pytest.approx(float(expected.mean()), rel=1e-5)


def test_std_as_variance_hands_standard_deviations_to_the_likelihood_and_the_prior():
    paper, scvi = _model(), _model(std_as_variance=True)
    assert torch.equal(paper.decoder.raw_var, scvi.decoder.raw_var)
    z, t = torch.randn(B, 4), _tensors()
    torch.testing.assert_close(scvi.generative(z, t["batch"], t["cat_covs"], t["cont_covs"])["x_v"],
                               paper.generative(z, t["batch"], t["cat_covs"], t["cont_covs"])["x_v"].sqrt())
    (paper_m, paper_v), (scvi_m, scvi_v) = paper.prior_components(), scvi.prior_components()
    torch.testing.assert_close(scvi_m, paper_m)
    torch.testing.assert_close(scvi_v, paper_v.sqrt())
    assert torch.equal(scvi_v > paper_v, paper_v < 1)  # wider wherever a posterior variance is below 1


def test_sample_explains_why_there_is_none():
    with pytest.raises(NotImplementedError, match="latent"):
        _model().sample(10)


def test_wrong_settings_are_refused():
    with pytest.raises(ValueError, match="two systems"):
        SysVAE(G, 1, prior="standard_normal")
    with pytest.raises(ValueError, match="pseudoinput_data"):
        SysVAE(G, 2)
    with pytest.raises(ValueError, match="cycle_input"):
        SysVAE(G, 2, prior="standard_normal", cycle_input="both")

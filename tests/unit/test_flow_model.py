"""`PopulationFlow` on its own: an exact, invertible flow and a prior that is a true density."""
from __future__ import annotations

import math

import pytest
import torch

from engine.models import PopulationFlow
from engine.models.flow_prior import unknown_log_density

NAN = float("nan")
RHO = torch.tensor([[1.0, -1.0, NAN, 1.0, -1.0], [-1.0, 1.0, 1.0, NAN, 0.5], [1.0, 1.0, -1.0, -1.0, 1.0]])


def _flow(n_covariates=2, dtype=torch.float64, **settings) -> PopulationFlow:
    torch.manual_seed(0)
    flow = PopulationFlow(RHO, n_covariates, torch.tensor([False, False, False, False, True]), 8, 2, 6, 0.3, 0.5,
                          **settings).to(dtype)
    with torch.no_grad():  # weights larger than the default ones: every layer bends the cells
        for parameter in flow.parameters():
            parameter.normal_(0.0, 0.4)
    return flow


def test_cells_go_to_the_latent_and_back_within_1e_5():
    flow = _flow(dtype=torch.float32)
    x, c = torch.randn(64, 5) * 2, torch.randn(64, 2)
    u, covariates, _ = flow(x, c)
    assert covariates is c and not torch.allclose(u, x)
    assert (flow.inverse(u, c) - x).abs().max() < 1e-5


def test_the_log_determinant_is_the_jacobians():
    flow = _flow()
    x, c = torch.randn(4, 5, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)
    _, _, log_det = flow(x, c)
    for i in range(4):
        jacobian = torch.autograd.functional.jacobian(lambda v: flow(v[None], c[i : i + 1])[0][0], x[i])
        assert log_det[i].item() == pytest.approx(torch.slogdet(jacobian).logabsdet.item(), abs=1e-9)


@pytest.mark.parametrize("std", [0.1, 0.3, 0.8, 1.5])
def test_an_unknown_table_entry_is_a_density_that_integrates_to_one(std):
    grid = torch.linspace(-12, 12, 240_001, dtype=torch.float64)
    density = unknown_log_density(grid, std).exp()
    assert torch.trapezoid(density, grid).item() == pytest.approx(1.0, abs=1e-6)
    width = max(1 - std, 0)
    inside = unknown_log_density(torch.tensor([0.0, 0.9 * width, width + std], dtype=torch.float64), std).exp()
    assert inside[0].item() == pytest.approx(inside[1].item())  # flat on the plateau
    assert inside[2].item() == pytest.approx(inside[0].item() * math.exp(-0.5))  # a gaussian tail beyond it


def test_the_prior_sums_its_per_marker_terms_and_shrinks_continuum_markers():
    flow = _flow()
    u = torch.randn(7, 5, dtype=torch.float64) * 1.5
    together = flow.prior.log_prob(u, 0.3)
    per_marker = flow.prior.log_prob_per_marker(u, 0.3)
    assert torch.allclose(together, per_marker.sum(dim=2), atol=1e-5)
    assert flow.prior.modes[0, 4].item() == pytest.approx(-1.0 / 5)  # continuum: -1 becomes -0.2
    at_mode = flow.prior.log_prob_per_marker(flow.prior.modes[:1], 0.3)[0, 0]
    assert (at_mode[~flow.prior.unknown[0]] > per_marker[:, 0][:, ~flow.prior.unknown[0]]).all()


def test_samples_of_a_population_sit_on_its_mode():
    flow = _flow(n_covariates=0)
    torch.manual_seed(1)
    u = flow.prior.sample(torch.zeros(20_000, dtype=torch.long), 0.3)
    means = u.mean(dim=0)
    assert means[0].item() == pytest.approx(1.0, abs=0.02) and means[1].item() == pytest.approx(-1.0, abs=0.02)
    assert means[2].item() == pytest.approx(0.0, abs=0.03) and u[:, 2].abs().max() > 0.7  # unknown: spread out
    assert u[:, 0].std().item() == pytest.approx(0.3, abs=0.01)


def test_sample_takes_none_an_index_or_an_index_tensor_and_refuses_anything_else():
    flow = _flow(dtype=torch.float32)
    c = torch.randn(1, 2)
    x, z = flow.sample(50, c, return_z=True)
    assert x.shape == (50, 5) and z.shape == (50,)
    assert (flow.sample(10, c, z=2, return_z=True)[1] == 2).all()
    chosen = torch.tensor([0, 1, 2, 1])
    assert torch.equal(flow.sample(4, c, z=chosen, return_z=True)[1], chosen)
    for bad in ("B cells", 1.5, torch.tensor([0.5]), True):
        with pytest.raises(TypeError, match="population index"):
            flow.sample(3, c, z=bad)
    with pytest.raises(ValueError, match="outside"):
        flow.sample(3, c, z=7)


def test_population_weights_and_the_temperature_that_favours_small_populations():
    flow = _flow()
    with torch.no_grad():
        flow.pi_logits.copy_(torch.tensor([2.0, 0.0, -1.0], dtype=torch.float64))
    assert flow.pi.sum().item() == pytest.approx(1.0)
    assert torch.allclose(flow.prior_z.probs, flow.pi)
    tempered = flow.log_pi_temperature(0.5)
    assert tempered.argmax().item() == 2 and not tempered.requires_grad  # the rarest weighs most
    assert math.isclose(tempered.exp().sum().item(), 1.0)


def test_the_loss_is_the_mixture_negative_log_likelihood():
    flow = _flow()
    x, c = torch.randn(16, 5, dtype=torch.float64), torch.randn(16, 2, dtype=torch.float64)
    log_probs, log_det, u = flow.compute_probabilities(x, c)
    assert log_probs.shape == (16, 3) and u.shape == (16, 5)
    expected = -(torch.logsumexp(flow.prior.log_prob(u, 0.3) + flow.log_pi, dim=1) + log_det).mean()
    assert flow.kl(x, c).item() == pytest.approx(expected.item())
    assert flow.kl(x, c, use_temp=True).item() != pytest.approx(expected.item())


def test_covariates_are_scaled_by_a_setting():
    one, ten = _flow(covariate_scale=1.0), _flow(covariate_scale=10.0)
    x, c = torch.randn(8, 5, dtype=torch.float64), torch.randn(8, 2, dtype=torch.float64)
    assert torch.allclose(one(x, c * 10)[0], ten(x, c)[0])

"""Losses and regularisers against hand computations, masks, and the priors they should prefer."""
import math

import pytest
import torch

from engine.losses import LOSSES, REGULARIZERS, get_loss, get_regularizer
from engine.losses.priors import mixture_means


@pytest.fixture
def rng():
    return torch.Generator().manual_seed(0)


def test_registry_names_and_lookup_errors():
    assert set(LOSSES) == {"mse", "l1", "cosine", "nll", "bce", "nb"}
    assert set(REGULARIZERS) == {"sw2_uniform", "sw2_gaussian", "sw2_gmm", "l1", "l2", "kl"}
    assert get_loss("mse") is LOSSES["mse"]
    with pytest.raises(ValueError, match="valid names: .*mse"):
        get_loss("huber")
    with pytest.raises(ValueError, match="valid names: .*sw2_gmm"):
        get_regularizer("sw2")


def test_mse_l1_cosine_by_hand():
    pred = torch.tensor([[1.0, 2.0], [0.0, 4.0], [3.0, 0.0]])
    target = torch.tensor([[0.0, 0.0], [0.0, 1.0], [3.0, 1.0]])
    assert torch.isclose(LOSSES["mse"](pred, target), torch.tensor((2.5 + 4.5 + 0.5) / 3))
    assert torch.isclose(LOSSES["l1"](pred, target), torch.tensor((1.5 + 1.5 + 0.5) / 3))
    # The first cell has a zero target, so its cosine similarity is 0.
    expected = (1.0 + 0.0 + (1 - 3 / math.sqrt(10))) / 3
    assert torch.isclose(LOSSES["cosine"](pred, target), torch.tensor(expected), atol=1e-6)


def test_mask_selects_cells_and_ignores_their_nan_targets():
    pred = torch.tensor([[1.0, 2.0], [0.0, 4.0], [3.0, 0.0]], requires_grad=True)
    target = torch.tensor([[0.0, 0.0], [float("nan"), 1.0], [3.0, 1.0]])
    mask = torch.tensor([True, False, True])
    loss = LOSSES["mse"](pred, target, mask)
    assert torch.isclose(loss, torch.tensor((2.5 + 0.5) / 2))
    loss.backward()
    assert torch.isfinite(pred.grad).all() and (pred.grad[1] == 0).all()


@pytest.mark.parametrize("name", ["mse", "l1", "cosine", "bce"])
def test_empty_mask_gives_zero_with_graph(name):
    pred = torch.randn(4, 3, requires_grad=True)
    loss = LOSSES[name](pred, torch.rand(4, 3), torch.zeros(4, dtype=torch.bool))
    assert loss.dim() == 0 and loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert (pred.grad == 0).all()


def test_continuous_phenotype_accepts_flat_targets():
    pred = torch.tensor([[1.0], [3.0]])
    assert torch.isclose(LOSSES["mse"](pred, torch.tensor([0.0, 1.0])), torch.tensor(2.5))


def test_nll_by_hand_with_unknown_labels():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0], [0.5, 0.5, 3.0]])
    target = torch.tensor([0, -1, 2])
    mask = target >= 0
    logp = logits.log_softmax(dim=1)
    expected = -(logp[0, 0] + logp[2, 2]) / 2
    assert torch.isclose(LOSSES["nll"](logits, target, mask), expected)
    empty = LOSSES["nll"](logits.requires_grad_(), target, torch.zeros(3, dtype=torch.bool))
    assert empty.item() == 0.0 and empty.requires_grad


def test_bce_float_and_integer_targets():
    logits = torch.tensor([[0.0, 2.0], [-1.0, 1.0]])
    soft = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    sig = torch.sigmoid(logits)
    per = -(soft * sig.log() + (1 - soft) * (1 - sig).log())
    assert torch.isclose(LOSSES["bce"](logits, soft), per.mean(dim=1).mean())
    assert torch.isclose(LOSSES["bce"](logits, torch.tensor([0, 1])), per.mean(dim=1).mean())
    masked = LOSSES["bce"](logits, torch.tensor([0, -1]), torch.tensor([True, False]))
    assert torch.isclose(masked, per[0].mean())


def test_nb_matches_torch_negative_binomial():
    g = torch.Generator().manual_seed(1)
    mu = torch.rand(5, 4, generator=g) * 20 + 0.1
    log_theta = torch.randn(4, generator=g)
    counts = torch.randint(0, 40, (5, 4), generator=g).float()
    theta = log_theta.exp()
    # torch: total_count = theta, probs = mu / (mu + theta) gives mean mu, var mu + mu^2 / theta.
    dist = torch.distributions.NegativeBinomial(total_count=theta, probs=mu / (mu + theta))
    assert torch.allclose(dist.mean, mu, rtol=1e-5)
    expected = -dist.log_prob(counts).mean(dim=1).mean()
    assert torch.isclose(LOSSES["nb"](mu, counts, log_theta=log_theta), expected, rtol=1e-4)
    mask = torch.tensor([True, False, True, False, False])
    expected_masked = -dist.log_prob(counts)[mask].mean(dim=1).mean()
    masked = LOSSES["nb"](mu, counts, mask, log_theta=log_theta)
    assert torch.isclose(masked, expected_masked, rtol=1e-4)


def test_nb_is_stable_for_large_counts_and_tiny_means():
    mu = torch.tensor([[1e-9, 1e4]], requires_grad=True)
    log_theta = torch.tensor([5.0, -3.0], requires_grad=True)
    loss = LOSSES["nb"](mu, torch.tensor([[0.0, 1e5]]), log_theta=log_theta)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(mu.grad).all()
    assert torch.isfinite(log_theta.grad).all()
    with pytest.raises(ValueError, match="log_theta"):
        LOSSES["nb"](mu, mu)


def test_sparsity_and_kl_by_hand():
    z = torch.tensor([[1.0, -2.0], [0.0, 3.0]])
    assert torch.isclose(REGULARIZERS["l1"](z), torch.tensor(1.5))
    assert torch.isclose(REGULARIZERS["l2"](z), torch.tensor((2.5 + 4.5) / 2))
    mask = torch.tensor([False, True])
    assert torch.isclose(REGULARIZERS["l1"](z, mask=mask), torch.tensor(1.5))
    logvar = torch.tensor([[0.0, math.log(2.0)], [0.0, 0.0]])
    kl_cells = [0.5 * (1 + 4 + 2 - 1 - math.log(2.0)), 0.5 * 9]
    assert torch.isclose(REGULARIZERS["kl"](z, logvar=logvar), torch.tensor(sum(kl_cells) / 2))
    with pytest.raises(ValueError, match="logvar"):
        REGULARIZERS["kl"](z)


@pytest.mark.parametrize(
    "name, draw",
    [
        ("sw2_uniform", lambda g: torch.rand(2000, 3, generator=g) * 2 - 1),
        ("sw2_gaussian", lambda g: torch.randn(2000, 3, generator=g)),
    ],
)
def test_sw2_prefers_its_own_prior(name, draw, rng):
    z = draw(rng)
    fn = REGULARIZERS[name]
    matched = fn(z, generator=torch.Generator().manual_seed(5))
    shifted = fn(z + 0.5, generator=torch.Generator().manual_seed(5))
    assert matched < 0.02 < shifted
    other = "sw2_gaussian" if name == "sw2_uniform" else "sw2_uniform"
    assert matched < REGULARIZERS[other](z, generator=torch.Generator().manual_seed(5))


def test_sw2_mask_leaves_cells_out(rng):
    z = torch.randn(1000, 2, generator=rng)
    z_bad = torch.cat([z, torch.full((300, 2), 50.0)])
    mask = torch.cat([torch.ones(1000, dtype=torch.bool), torch.zeros(300, dtype=torch.bool)])
    sw2 = REGULARIZERS["sw2_gaussian"]
    kept = sw2(z_bad, mask=mask, generator=torch.Generator().manual_seed(2))
    assert kept < 0.05
    empty = sw2(z.requires_grad_(), mask=torch.zeros(1000, dtype=torch.bool))
    assert empty.item() == 0.0 and empty.requires_grad


def test_mixture_means_are_separated_and_fixed():
    for k, d in [(2, 1), (3, 2), (5, 16), (10, 2), (7, 1)]:
        means = mixture_means(k, d)
        dist = torch.cdist(means, means) + torch.eye(k) * 1e9
        assert means.shape == (k, d) and torch.isclose(dist.min(), torch.tensor(4.0))
    assert torch.equal(mixture_means(4, 3), mixture_means(4, 3))


def test_sw2_gmm_pairs_cells_with_their_own_label(rng):
    n_labels, d = 4, 3
    labels = torch.arange(n_labels).repeat_interleave(300)
    z = mixture_means(n_labels, d)[labels] + torch.randn(len(labels), d, generator=rng)
    permuted = labels[torch.randperm(len(labels), generator=rng)]
    fn = REGULARIZERS["sw2_gmm"]
    kw = dict(n_labels=n_labels, generator=torch.Generator().manual_seed(3))
    own = fn(z, labels=labels, **kw)
    kw["generator"] = torch.Generator().manual_seed(3)
    swapped = fn(z, labels=permuted, **kw)
    # Same label proportions and the same cloud of points: only the pairing differs.
    assert torch.equal(labels.bincount(), permuted.bincount())
    assert own < 0.05 and swapped > 10 * own


def test_sw2_gmm_leaves_out_unknown_and_masked_cells(rng):
    labels = torch.tensor([0] * 200 + [1] * 200 + [-1] * 100)
    z = mixture_means(2, 2)[labels.clamp(min=0)] + torch.randn(500, 2, generator=rng)
    z[400:] = 100.0
    mask = torch.ones(500, dtype=torch.bool)
    mask[:50] = False
    z[:50] = -100.0
    loss = REGULARIZERS["sw2_gmm"](z, labels=labels, mask=mask, n_labels=2,
                                   generator=torch.Generator().manual_seed(4))
    assert loss < 0.1
    with pytest.raises(ValueError, match="n_labels"):
        REGULARIZERS["sw2_gmm"](z, labels=labels)


def test_sw2_gradient_pulls_towards_prior():
    z = (torch.randn(500, 2) + 3.0).requires_grad_()
    REGULARIZERS["sw2_gaussian"](z, generator=torch.Generator().manual_seed(0)).backward()
    assert (z.grad.mean(dim=0) > 0).all()  # descending the gradient moves z back towards 0

"""ExtractorController: which terms a step backpropagates, and where their gradients go."""
import copy

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import torch

from engine.config import ExtractorConfig
from engine.controllers.extractor import ExtractorController
from engine.data.batches import CellBatches
from engine.losses import get_loss
from engine.models.extractor import Extractor

N_CELLS, N_GENES = 64, 20


def _adata(seed=0):
    rng = np.random.default_rng(seed)
    obs = pd.DataFrame(
        {
            "cell_type": pd.Categorical(rng.choice(["T", "B", "NK"], N_CELLS)),
            "tissue": pd.Categorical(rng.choice(["BM", "PB"], N_CELLS)),
        },
        index=[f"c{i}" for i in range(N_CELLS)],
    )
    obs.loc[obs.index[:5], "cell_type"] = np.nan
    x = rng.normal(size=(N_CELLS, N_GENES)).astype(np.float32)
    return ad.AnnData(x, obs=obs, var=pd.DataFrame(index=[f"g{i}" for i in range(N_GENES)]))


def _controller(tissue_gradient="normal", alpha=0.5, weights=None, seed=0, **overrides):
    """A deterministic controller (no dropout, layer norm) with two phenotypes and a signature."""
    weights = weights or {}
    config = ExtractorConfig(
        pre_encoder_dims=[16],
        encoder_dims=[8],
        main_latent_dim=4,
        decoder_dims=[16],
        dropout=0.0,
        norm="layer",
        reconstruction={"loss": "mse", "weight": weights.get("reconstruction", 1.0)},
        main_regularizers=[{"regularizer": "sw2_gaussian", "weight": weights.get("main", 1.0)}],
        phenotypes={
            "cell_type": {
                "latent_dim": 3,
                "losses": [{"loss": "nll", "weight": weights.get("cell_type", 1.0)}],
                "regularizers": [{"regularizer": "l2", "weight": weights.get("cell_type_l2", 1.0)}],
            },
            "tissue": {
                "attach": "main",
                "losses": [{"loss": "nll", "gradient": tissue_gradient, "alpha": alpha,
                            "weight": weights.get("tissue", 1.0)}],
            },
        },
        signatures={"sig": {"genes": ["g1", "g2", "g3"], "latent_dim": 2,
                            "losses": [{"loss": "mse", "weight": weights.get("sig", 1.0)}]}},
        **overrides,
    )
    adata = _adata()
    batches = CellBatches(adata, categorical=["cell_type", "tissue"])
    torch.manual_seed(seed)
    model = Extractor(
        N_GENES,
        pre_encoder_dims=(16,),
        main_latent_dim=4,
        encoder_dims=(8,),
        decoder_dims=(16,),
        phenotypes={
            "cell_type": {"out_dim": 3, "latent_dim": 3, "attach": None},
            "tissue": {"out_dim": 2, "latent_dim": None, "attach": "main"},
        },
        signatures={"sig": {"out_dim": 3, "latent_dim": 2, "attach": None}},
        norm="layer",
        dropout=0.0,
    )
    controller = ExtractorController(
        model, config, signature_genes={"sig": torch.tensor([1, 2, 3])}, n_categories={"cell_type": 3, "tissue": 2}
    )
    batch = batches.take(torch.arange(N_CELLS))
    return controller, batch


def _grads(module):
    return {n: (None if p.grad is None else p.grad.clone()) for n, p in module.named_parameters()}


def _has_grad(module):
    return any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())


ONLY_TISSUE = dict(
    backward_reconstruction_loss=False,
    backward_main_latent_regularization=False,
    backward_signature_loss=False,
    selected_pheno=["tissue"],
)


def test_report_names_every_term_hierarchically():
    controller, batch = _controller()
    report = controller.train(batch)
    assert set(report) == {
        "total",
        "reconstruction/mse",
        "main/sw2_gaussian",
        "pheno/cell_type/nll",
        "pheno/cell_type/l2",
        "pheno/tissue/nll",
        "signature/sig/mse",
    }
    parts = sum(v for k, v in report.items() if k != "total")
    assert torch.allclose(report["total"], parts)


@pytest.mark.parametrize("detach_from", ["pre_encoder", "encoder"])
def test_detach_options_stop_gradients(detach_from):
    controller, batch = _controller()
    controller.train(batch, detach=True, detach_from=detach_from)
    model = controller.model
    assert not _has_grad(model.pre_encoder)
    assert _has_grad(model.decoder)
    assert _has_grad(model.pheno_heads["cell_type"])
    encoders_trained = _has_grad(model.main_encoder) or _has_grad(model.pheno_encoders["cell_type"])
    assert encoders_trained == (detach_from == "pre_encoder")


def test_detach_from_unknown_place_raises():
    controller, batch = _controller()
    with pytest.raises(ValueError, match="detach_from"):
        controller.train(batch, detach=True, detach_from="decoder")


def test_gradient_reversal_negates_and_scales_upstream_only():
    normal, batch = _controller("normal")
    reverse, _ = _controller("reverse", alpha=0.5)
    reverse.model.load_state_dict(normal.model.state_dict())
    normal.train(batch, **ONLY_TISSUE)
    reverse.train(batch, **ONLY_TISSUE)
    for part in ("pre_encoder", "main_encoder"):
        g_normal = _grads(getattr(normal.model, part))
        g_reverse = _grads(getattr(reverse.model, part))
        for name in g_normal:
            assert torch.allclose(g_reverse[name], -0.5 * g_normal[name], atol=1e-6), (part, name)
    g_normal, g_reverse = _grads(normal.model.pheno_heads["tissue"]), _grads(reverse.model.pheno_heads["tissue"])
    for name in g_normal:
        assert torch.allclose(g_reverse[name], g_normal[name], atol=1e-6)
        assert g_normal[name].abs().sum() > 0


def test_gradient_neutralisation_trains_the_head_only():
    controller, batch = _controller("neutralize")
    controller.train(batch, **ONLY_TISSUE)
    assert _has_grad(controller.model.pheno_heads["tissue"])
    assert not _has_grad(controller.model.main_encoder)
    assert not _has_grad(controller.model.pre_encoder)


def test_selection_backpropagates_exactly_the_named_terms():
    controller, batch = _controller(weights={"cell_type": 0.7})
    reference = copy.deepcopy(controller.model)
    report = controller.train(
        batch,
        backward_reconstruction_loss=False,
        backward_main_latent_regularization=False,
        backward_signature_loss=False,
        selected_pheno={"cell_type": {"loss": ["nll"], "regularization": None}},
    )
    assert set(report) == {"total", "pheno/cell_type/nll"}
    out = reference(batch["x"], forward_reconstruction=False, forward_signature=False, selected_pheno=["cell_type"])
    expected = 0.7 * get_loss("nll")(out["pheno_out"]["cell_type"], batch["obs"]["cell_type"], batch["mask"]["cell_type"])
    expected.backward()
    for (name, p), (_, q) in zip(controller.model.named_parameters(), reference.named_parameters()):
        if q.grad is None:
            assert p.grad is None or p.grad.abs().sum() == 0, name
        else:
            assert torch.allclose(p.grad, q.grad, atol=1e-6), name


def test_selected_signature_only():
    controller, batch = _controller()
    report = controller.train(
        batch,
        backward_reconstruction_loss=False,
        backward_main_latent_regularization=False,
        backward_pheno_loss=False,
        selected_signature={"sig": {"loss": "*", "regularization": None}},
    )
    assert set(report) == {"total", "signature/sig/mse"}
    assert _has_grad(controller.model.signature_heads["sig"])
    assert not _has_grad(controller.model.pheno_heads["cell_type"])
    assert not _has_grad(controller.model.decoder)


def test_unknown_selection_lists_valid_names():
    controller, batch = _controller()
    with pytest.raises(ValueError, match=r"unknown phenotype 'nope'.*cell_type"):
        controller.train(batch, selected_pheno=["nope"])
    with pytest.raises(ValueError, match=r"unknown \['bce'\].*nll"):
        controller.train(batch, selected_pheno={"cell_type": {"loss": ["bce"]}})


def test_raw_losses_are_weighted_over_weight():
    weights = {"reconstruction": 2.0, "main": 0.3, "cell_type": 0.5, "cell_type_l2": 4.0, "tissue": 1.5, "sig": 0.25}
    controller, batch = _controller(weights=weights)
    report = controller.train(batch, save_raw_loss=True)
    terms = [k for k in report if k != "total" and not k.startswith("raw/")]
    assert len(terms) == 6
    for term in terms:
        weight = controller.weight(term)
        assert torch.allclose(report[f"raw/{term}"], report[term] / weight, rtol=1e-5), term


def test_suppress_backward_changes_nothing_and_keeps_graph():
    controller, batch = _controller()
    controller.train(batch)  # create optimiser state
    params = [p.detach().clone() for p in controller.model.parameters()]
    optimizer_state = copy.deepcopy(controller.optimizer.state_dict())
    report = controller.train(batch, suppress_backward=True)
    assert report["total"].requires_grad and report["total"].grad_fn is not None
    for before, p in zip(params, controller.model.parameters()):
        assert torch.equal(before, p)
    after = controller.optimizer.state_dict()
    for key, state in optimizer_state["state"].items():
        for name, value in state.items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(after["state"][key][name]))


def test_missing_phenotype_values_leave_the_loss_not_the_step():
    controller, batch = _controller()
    assert (~batch["mask"]["cell_type"]).sum() == 5
    reference = copy.deepcopy(controller.model)
    report = controller.train(batch, save_raw_loss=True, **{**ONLY_TISSUE, "selected_pheno": ["cell_type"]})
    out = reference(batch["x"], forward_reconstruction=False, forward_signature=False, selected_pheno=["cell_type"])
    valid = batch["mask"]["cell_type"]
    expected = torch.nn.functional.cross_entropy(out["pheno_out"]["cell_type"][valid], batch["obs"]["cell_type"][valid])
    assert torch.allclose(report["raw/pheno/cell_type/nll"], expected, atol=1e-6)
    # the reconstruction in a full step still uses every cell
    full = controller.train(batch, suppress_backward=True)
    assert torch.isfinite(full["reconstruction/mse"])


def test_weight_schedules_follow_the_epoch():
    controller, _ = _controller()
    controller.schedules["pheno/cell_type/nll"] = controller.schedules["pheno/cell_type/nll"].model_copy(
        update={"ramp": "linear", "rate": 0.5, "start_epoch": 1, "max": 2.0}
    )
    values = []
    for epoch in range(6):
        controller.set_epoch(epoch)
        values.append(controller.weight("pheno/cell_type/nll"))
    assert values == [1.0, 1.0, 1.5, 2.0, 2.0, 2.0]

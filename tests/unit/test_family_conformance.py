"""Every registered family, and a tiny one built here on the toy controller, meet one contract:
build, train, write, save, load on other cells (fewer classes, another category order, no label
columns) and give the same latents and calls there as the original model, and train from the CLI.
"""
from __future__ import annotations

from typing import Literal

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from pydantic import BaseModel, ConfigDict
from torch import nn

import engine
from engine.cli import main
from engine.config.family import FamilyConfig
from engine.data.errors import InputError
from engine.data.simulate import cells_from_table, random_table
from engine.data.simulate_systems import cells_from_systems
from engine.families import DataSpec, FamilyModel, Prediction, family_class, family_names, register
from tests.toy_controller import ToyController, ToyNet


class ToyTask(BaseModel):
    model_config = ConfigDict(extra="forbid")
    terms: list[Literal["recon", "value"]] = ["recon", "value"]


class ToyConfig(FamilyConfig):
    family: Literal["toy"] = "toy"
    hidden: int = 8
    label: str = "cell_type"
    value: str = "score"

    task_type = ToyTask


@register
class ToyFamily(FamilyModel):
    """The toy controller as a family: a trunk (the latent), reconstruction, a value and a label head."""

    config_class = ToyConfig

    def data_spec(self, adata):
        for column in (self.config.label, self.config.value):
            if column not in adata.obs.columns:
                raise InputError(f"column {column} is not in the cell annotations")
        return DataSpec(categorical=[self.config.label], continuous=[self.config.value])

    def build_module(self) -> nn.Module:
        net = ToyNet(len(self.registry.genes), self.config.hidden)
        net.label = nn.Linear(self.config.hidden, len(self.registry.categorical[self.config.label]))
        return net

    def build_controller(self):
        return ToyController(len(self.registry.genes), net=self.model, target=self.config.value,
                             training=self.config.training)

    @property
    def latent_names(self):
        return ["hidden"]

    def encode(self, batch, names):
        return {"hidden": self.model.trunk(batch["x"])}

    def prediction(self, target):
        return Prediction("label", self.config.label, True)

    def predict_batch(self, batch, target):
        return self.model.label(self.model.trunk(batch["x"]))


CLASSES = ["a", "b", "c", "d"]
GUIDED = {"pre_encoder_dims": [16], "encoder_dims": [8], "decoder_dims": [16], "main_latent_dim": 3,
          "norm": "batch", "dropout": 0.0, "phenotypes": {"cell_type": {"latent_dim": 2}}}
CONFIGS = {"guided": GUIDED, "toy": {"hidden": 8}}
TARGET = {"guided": "cell_type", "toy": None}


def _cells(n=120, genes=12, seed=0):
    rng = np.random.default_rng(seed)
    types = rng.choice(CLASSES, n)
    x = rng.normal(size=(n, genes)).astype(np.float32) + (np.array([CLASSES.index(t) for t in types])[:, None]
                                                          * (np.arange(genes) < 4))
    obs = pd.DataFrame({"cell_type": pd.Categorical(types, categories=CLASSES), "score": rng.normal(size=n)},
                       index=[f"c{i}" for i in range(n)])
    return ad.AnnData(x, obs=obs, var=pd.DataFrame(index=[f"g{i}" for i in range(genes)]))


def _other_cells(adata, how):
    """Cells of `adata` (those without class d) seen as other data; returns them and their positions."""
    keep = np.flatnonzero(adata.obs["cell_type"].to_numpy() != "d")
    other = adata[keep].copy()
    labels = other.obs["cell_type"].cat.remove_unused_categories()
    if how == "fewer":
        other.obs["cell_type"] = labels
    elif how == "reordered":
        other.obs["cell_type"] = labels.cat.reorder_categories(["c", "a", "b"])
    else:
        other.obs = other.obs.drop(columns=["cell_type", "score"])
    return other, keep


def test_the_registry_names_the_families_and_refuses_unknown_ones():
    assert {"guided", "toy"} <= set(family_names())
    with pytest.raises(InputError, match="unknown model family nosuch; known: .*flow.*guided") as caught:
        family_class("nosuch")
    assert caught.value.problems[0].location == ("family",)


@pytest.mark.parametrize("family", ["guided", "toy"])
def test_family_conformance(family, tmp_path):
    adata = _cells()
    cls = family_class(family)
    model = cls(adata, config=CONFIGS[family], device="cpu")
    assert model.family == family and model.name == family
    run = model.train(max_epochs=1, batch_size=32, progress=False)
    assert run.state == "finished" and run.epochs == 1
    written = model.write(adata)
    for key in written.obsm:
        assert adata.obsm[key].shape[0] == adata.n_obs
    assert f"X_{family}_{model.latent_names[0]}" in adata.obsm and family in adata.uns

    model.save(tmp_path / "m")
    latent, calls = model.latent(), model.predict(TARGET[family])
    assert list(calls.cat.categories) == CLASSES
    for how in ("fewer", "reordered", "no labels"):
        other, keep = _other_cells(adata, how)
        loaded = cls.load(tmp_path / "m", other, device="cpu")
        assert loaded.registry.categorical["cell_type"] == CLASSES
        np.testing.assert_allclose(loaded.latent(), latent[keep], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(model.latent(adata=other), latent[keep], rtol=1e-5, atol=1e-5)
        for predicted in (loaded.predict(TARGET[family]), model.predict(TARGET[family], adata=other)):
            assert list(predicted.cat.categories) == CLASSES
            assert predicted.index.equals(other.obs_names)
            assert list(predicted.astype(str)) == list(calls.iloc[keep].astype(str))


@pytest.mark.parametrize("family", ["guided", "toy"])
def test_family_trains_from_a_config_file_on_the_command_line(family, tmp_path):
    _cells().write_h5ad(tmp_path / "cells.h5ad")
    config = {"family": family, **CONFIGS[family], "training": {"max_epochs": 2, "batch_size": 40}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    code = main(["train", str(tmp_path / "config.yaml"), "--data", str(tmp_path / "cells.h5ad"),
                 "--out", str(tmp_path / "out"), "--no-progress", "--device", "cpu"])
    assert code == 0
    result = ad.read_h5ad(tmp_path / "out" / "cells.h5ad")
    loaded = family_class(family).load(tmp_path / "out" / "model", result, device="cpu")
    np.testing.assert_allclose(loaded.latent(), result.obsm[f"X_{family}_{loaded.latent_names[0]}"], atol=1e-5)


def _flow_model():
    table = random_table(3, 6, seed=0)
    return engine.FlowAnnotator(cells_from_table(table, 200, seed=1), table, device="cpu")


BUILDERS = {
    "guided": lambda: family_class("guided")(_cells(), config=GUIDED, device="cpu"),
    "toy": lambda: ToyFamily(_cells(), config=CONFIGS["toy"], device="cpu"),
    "flow": _flow_model,
    "sysvi": lambda: engine.SysVIModel(cells_from_systems(200, 40, n_cell_types=3, seed=0), "system",
                                       n_latent=4, n_hidden=32, n_prior_components=3, device="cpu"),
}


@pytest.mark.parametrize("family", sorted(BUILDERS))
def test_every_family_trains_when_the_trainer_runs_the_backward_step(family):
    """Under DDP or autocast the Trainer calls train(suppress_backward=True) and backpropagates the
    total itself, so the total must keep its graph; bf16 on the CPU takes that path here."""
    assert set(BUILDERS) == set(family_names()), "a new family joins this test"
    model = BUILDERS[family]()
    before = [p.detach().clone() for p in model.model.parameters()]
    run = model.train(max_epochs=1, batch_size=64, validation_fraction=0.0, early_stopping_patience=None, bf16=True,
                      progress=False)
    assert run.state == "finished"
    assert np.isfinite(run.history()["total"].to_numpy(dtype=float)).all()
    assert any(not torch.equal(old, new) for old, new in zip(before, model.model.parameters()))


def test_an_unknown_task_keyword_is_refused_when_the_config_is_read(tmp_path):
    story = {"phases": [{"tasks": [{"terms": ["recon"], "detach": True}]}]}
    with pytest.raises(InputError, match="unknown task keyword 'detach'") as caught:
        ToyFamily(_cells(), config={"training": {"story": story}}, device="cpu")
    assert caught.value.problems[0].location == ("training", "story", "phases", "0", "tasks", "0", "detach")


def test_weights_are_seeded_from_the_training_seed_without_touching_the_global_rng():
    torch.manual_seed(5)
    before = torch.rand(1)
    torch.manual_seed(5)
    one = ToyFamily(_cells(), device="cpu")
    after = torch.rand(1)
    two = ToyFamily(_cells(), device="cpu")
    three = ToyFamily(_cells(), config={"training": {"seed": 1}}, device="cpu")
    assert torch.equal(before, after)
    assert torch.equal(one.model.trunk[0].weight, two.model.trunk[0].weight)
    assert not torch.equal(one.model.trunk[0].weight, three.model.trunk[0].weight)


def test_a_model_saved_before_the_registry_still_loads(tmp_path):
    import json

    adata = _cells()
    model = family_class("guided")(adata, config=GUIDED, device="cpu")
    model.save(tmp_path / "m")
    saved = json.loads((tmp_path / "m" / "genes.json").read_text())
    assert saved["categorical"] == {"cell_type": CLASSES} and saved["family"] == "guided"
    old_form = {"genes": saved["genes"], "layer": None, "name": "guided"}
    (tmp_path / "m" / "genes.json").write_text(json.dumps(old_form))
    loaded = family_class("guided").load(tmp_path / "m", adata, device="cpu")
    np.testing.assert_allclose(loaded.latent(), model.latent(), atol=1e-6)

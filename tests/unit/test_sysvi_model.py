"""SysVIModel, the family: columns checked in a biologist's words, training with one-hot and
embedded covariates, the latent on new cells of known systems, write, save and load."""
import numpy as np
import pytest
import torch

import engine
from engine.data.errors import InputError
from engine.data.simulate_systems import cells_from_systems

SMALL = {"n_latent": 4, "n_hidden": 32, "n_prior_components": 3}


@pytest.fixture(scope="module")
def cells():
    adata = cells_from_systems(300, 60, n_cell_types=3, seed=0)
    adata.obs["depth"] = np.log(np.asarray(adata.layers["counts"].sum(axis=1)).ravel())
    return adata


@pytest.mark.parametrize("embed", [False, True])
def test_one_hot_and_embedded_covariates_both_train(cells, embed):
    model = engine.SysVIModel(cells, "system", batch_keys=["batch"], continuous_covariate_keys=["depth"],
                              embed_categorical_covariates=embed, **SMALL)
    run = model.train(max_epochs=2, batch_size=64)
    history = run.history()
    assert {"reconstruction", "kl", "cycle"} <= set(history.columns)
    assert np.isfinite(history[["total", "reconstruction", "kl", "cycle"]].to_numpy(dtype=float)).all()
    latent = model.latent()
    assert latent.shape == (cells.n_obs, 4) and np.isfinite(latent).all()
    np.testing.assert_allclose(latent, model.latent(), atol=1e-6)  # the posterior mean: no sampling


def test_training_lowers_the_loss_and_the_cycle_can_be_switched_off(cells):
    model = engine.SysVIModel(cells, "system", cycle_weight=0, **SMALL)
    history = model.train(max_epochs=6, batch_size=64).history()
    assert "cycle" not in history.columns or history["cycle"].isna().all()
    by_epoch = history[history["phase"] == "train"].groupby("epoch")["total"].mean()
    assert by_epoch.iloc[-1] < by_epoch.iloc[0]


def test_training_defaults_follow_sysvi(cells):
    model = engine.SysVIModel(cells, "system", training={"max_epochs": 3}, **SMALL)
    training = model.config.training
    assert (training.batch_size, training.lr, training.max_epochs) == (128, 1e-3, 3)
    assert model.controller.optimizer.param_groups[0]["eps"] == 0.01


def test_the_vamp_prior_settings_are_kept_by_a_saved_model(cells, tmp_path):
    default = engine.SysVIModel(cells, "system", **SMALL).model
    assert default.prior.mixture == "per_dimension" and not default.std_as_variance
    model = engine.SysVIModel(cells, "system", vamp_mixture="joint", std_as_variance=True,
                              encoder_variance="softplus", **SMALL)
    model.train(max_epochs=1, batch_size=64)
    model.save(tmp_path / "joint")
    loaded = engine.SysVIModel.load(tmp_path / "joint", cells)
    assert loaded.model.prior.mixture == "joint" and loaded.model.std_as_variance
    assert loaded.config.encoder_variance == "softplus"
    np.testing.assert_allclose(loaded.latent(), model.latent(), atol=1e-6)


def test_write_save_load_and_new_cells_of_known_systems(cells, tmp_path):
    model = engine.SysVIModel(cells, "system", batch_keys=["batch"], **SMALL)
    model.train(max_epochs=1, batch_size=64)
    written = model.write(cells)
    assert cells.obsm["X_sysvi_latent"].shape == (cells.n_obs, 4) and "sysvi" in written.uns
    model.save(tmp_path / "m")
    query = cells[cells.obs["system"] == "system 1"].copy()
    del query.obs["batch"]  # covariate columns are optional for mapping
    loaded = engine.SysVIModel.load(tmp_path / "m", query)
    expected = model.latent(adata=query)
    np.testing.assert_allclose(loaded.latent(), expected, atol=1e-5)
    np.testing.assert_allclose(expected[:, 0].shape, (query.n_obs,))


def test_a_new_system_is_refused_with_the_known_ones_named(cells):
    model = engine.SysVIModel(cells, "system", **SMALL)
    other = cells[:20].copy()
    other.obs["system"] = "mouse"
    with pytest.raises(InputError, match=r"mouse.*system 0, system 1"):
        model.latent(adata=other)


def test_the_system_column_is_checked(cells):
    with pytest.raises(InputError, match="system column tissue is not in the cell annotations"):
        engine.SysVIModel(cells, "tissue")
    one = cells.copy()
    one.obs["system"] = "only one"
    with pytest.raises(InputError, match="at least two systems"):
        engine.SysVIModel(one, "system")
    holes = cells.copy()
    holes.obs["system"] = holes.obs["system"].astype(object)
    holes.obs.iloc[:5, holes.obs.columns.get_loc("system")] = None
    with pytest.raises(InputError, match="5 cells have no value in the system column"):
        engine.SysVIModel(holes, "system")
    with pytest.raises(InputError, match="system_key"):
        engine.SysVIModel(cells)
    with pytest.raises(InputError, match="cannot also be a covariate"):
        engine.SysVIModel(cells, "system", batch_keys=["system"])


def test_raw_counts_get_a_warning(cells):
    with pytest.warns(UserWarning, match="looks like raw counts"):
        engine.SysVIModel(cells, "system", layer="counts", **SMALL)


def test_the_same_seed_builds_the_same_model(cells):
    a, b = (engine.SysVIModel(cells, "system", **SMALL) for _ in range(2))
    for (name, p), q in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(p, q), name
    assert engine.family_class("sysvi") is engine.SysVIModel


def test_trains_from_a_config_file_on_the_command_line(cells, tmp_path):
    import anndata as ad
    import yaml

    from engine.cli import main

    cells.write_h5ad(tmp_path / "cells.h5ad")
    config = {"family": "sysvi", "system_key": "system", "batch_keys": ["batch"], **SMALL,
              "training": {"max_epochs": 2, "batch_size": 64}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    code = main(["train", str(tmp_path / "config.yaml"), "--data", str(tmp_path / "cells.h5ad"),
                 "--out", str(tmp_path / "out"), "--no-progress", "--device", "cpu"])
    assert code == 0
    result = ad.read_h5ad(tmp_path / "out" / "cells.h5ad")
    loaded = engine.SysVIModel.load(tmp_path / "out" / "model", result, device="cpu")
    np.testing.assert_allclose(loaded.latent(), result.obsm["X_sysvi_latent"], atol=1e-5)

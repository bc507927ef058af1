"""The Integrate builder without a browser: the engine's SysVIConfig from the page's settings, the
checks a biologist reads in the page, and the family offered by the Model tab."""
import numpy as np
import pandas as pd
import pytest

from app.builders.registry import BUILDERS, builder_class
from app.builders.sysvi import NO_SYSTEM, PRIORS, SysVIBuilder, obs_column_kinds
from app.components.model_builder import ModelBuilder
from app.demo import SYSTEMS_TITLE, systems_demo
from app.state import StudioState
from engine.config.sysvi import SysVIConfig


@pytest.fixture
def state():
    made = StudioState()
    cells = systems_demo(200)
    cells.obs["donor"] = pd.Categorical(np.where(np.arange(cells.n_obs) % 2, "d1", "d2"))
    cells.obs["score"] = np.linspace(0, 1, cells.n_obs)
    cells.obs["one_system"] = pd.Categorical(["a"] * cells.n_obs)
    made.load(cells, SYSTEMS_TITLE)
    return made


@pytest.fixture
def builder(state):
    tab = ModelBuilder(state)
    tab._chooser.value = "sysvi"
    return tab.builder


def test_the_registry_and_the_model_tab_offer_integration(state):
    assert builder_class("sysvi") is SysVIBuilder and BUILDERS["sysvi"] is SysVIBuilder
    tab = ModelBuilder(state)
    assert tab._chooser.options[SysVIBuilder.title] == "sysvi"
    tab._chooser.value = "sysvi"
    assert isinstance(tab.builder, SysVIBuilder)
    assert tab.training.options()["batch_size"] == 128  # SysVI's own training defaults are shown


def test_the_column_named_system_is_chosen_and_columns_are_sorted_by_kind(builder, state):
    assert builder.system == "system"
    assert obs_column_kinds(state.adata) == (["system", "batch", "cell_type", "donor"], ["score"])
    assert builder._others.options == ["system", "batch", "cell_type", "donor", "score"]
    assert builder.valid


def test_config_data_round_trips_into_sysvi_config(builder):
    builder.set_columns(system="system", batches=["batch"], others=["donor", "score"])
    builder.set_settings(prior=PRIORS["standard normal"], cycle_weight=0.0, n_latent=8)
    data = builder.config_data()
    assert data["system_key"] == "system" and data["batch_keys"] == ["batch"]
    assert data["categorical_covariate_keys"] == ["donor"] and data["continuous_covariate_keys"] == ["score"]
    assert (data["prior"], data["cycle_weight"], data["n_latent"]) == ("standard_normal", 0.0, 8)
    config = builder.config()
    assert isinstance(config, SysVIConfig)
    assert SysVIConfig.model_validate(config.model_dump()) == config
    assert config.training.validation_fraction == 0.1 and config.training.early_stopping_patience == 10
    assert config.training.max_epochs == builder.training.epochs  # the shared options win
    assert config.training.batch_size == 128


def test_no_system_column_is_said_in_the_page(builder):
    builder.set_columns(system=None)
    assert builder._system.value == NO_SYSTEM and not builder.valid and builder._build_button.disabled
    texts = [p.text for p in builder.problems() if p.level == "danger"]
    assert texts == ["choose the system column: the one that says which system (species, protocol, tissue...) "
                     "each cell comes from"]
    assert builder.alerts()["columns"].visible and "choose the system column" in builder.alerts()["columns"].object


def test_a_column_with_one_system_cannot_be_the_system(builder):
    builder.set_columns(system="one_system")
    assert not builder.valid
    assert [p.text for p in builder.problems() if p.level == "danger"] == [
        "the system column one_system holds one system (a) in every cell; integration needs cells from at least "
        "two systems"]


def test_a_column_chosen_twice_is_said(builder):
    builder.set_columns(system="system", batches=["batch", "system"])
    assert not builder.valid
    assert any(p.where == "columns" and p.level == "danger" and p.text.startswith("system is the system column")
               for p in builder.problems())
    builder.set_columns(system="system", batches=["batch"], others=["batch", "donor"])
    assert builder.valid  # a batch also chosen as another column is used once, with a warning
    warning = [p for p in builder.problems() if p.level == "warning"]
    assert len(warning) == 1 and warning[0].text.startswith("batch: chosen as a batch column and as another column")
    assert builder.config_data()["categorical_covariate_keys"] == ["donor"]


def test_a_setting_out_of_range_shows_beside_the_settings(builder):
    builder.set_settings(cycle_weight=-1.0)
    assert not builder.valid
    problem = next(p for p in builder.problems() if p.level == "danger")
    assert problem.where == "settings" and problem.text.startswith("cycle weight:")


def test_building_makes_a_sysvi_model(builder, state):
    builder.set_columns(system="system", batches=["batch"])
    model = builder.build()
    assert state.model is model and model.family == "sysvi"
    assert model.config.system_key == "system" and model.config.batch_keys == ["batch"]

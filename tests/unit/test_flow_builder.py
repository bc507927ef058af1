"""The Populations builder and view without a browser: the engine's FlowConfig from the page's
settings, the table's errors stopping the build, and a trained model relabelled by the threshold."""
import numpy as np
import pytest

from app.builders.flow import FlowBuilder
from app.components.model_builder import ModelBuilder
from app.components.populations_view import SELECTION, PopulationsView
from app.demo import cytometry_demo, example_table
from app.state import StudioState
from engine.config.flow import FlowConfig
from engine.families.flow import FlowAnnotator, table_settings


@pytest.fixture
def state():
    made = StudioState()
    cells = cytometry_demo(400)
    cells.obs["donor"] = cells.obs["batch"].map({"batch1": "d1", "batch2": "d2"}).astype("category")
    cells.obs["age"] = np.linspace(20, 60, cells.n_obs)
    made.load(cells, "generated")
    return made


@pytest.fixture
def builder(state):
    tab = ModelBuilder(state)
    tab._chooser.value = "flow"
    return tab.builder


def test_the_populations_family_is_chosen_in_the_model_tab(builder):
    assert isinstance(builder, FlowBuilder)
    assert not builder.valid  # no population yet
    assert builder.problems()[0].text == "the knowledge table needs at least one population and one marker"


def test_config_data_is_the_flow_config_of_the_page(builder):
    builder.editor.load_example()
    builder.set_columns(batch="batch", others=["donor", "age", "batch"])
    builder.set_settings(prior_std=0.2, temperature=0.8, threshold=-30)
    data = builder.config_data()
    assert {k: data[k] for k in ("populations", "markers", "values")} == {
        k: v for k, v in table_settings(example_table()).items() if k != "levels"}
    assert data["batch_key"] == "batch"
    assert data["categorical_covariate_keys"] == ["donor"] and data["continuous_covariate_keys"] == ["age"]
    assert (data["prior_std"], data["temperature"], data["log_prob_threshold"]) == (0.2, 0.8, -30)
    config = builder.config()
    assert isinstance(config, FlowConfig)
    assert config.training.validation_fraction == 0.1  # the flow's own training defaults stay
    assert config.training.max_epochs == builder.training.epochs  # the shared options win
    assert any(p.where == "columns" and p.level == "warning" for p in builder.problems())  # batch chosen twice


def test_a_table_error_stops_the_build_and_shows_beside_the_cells(builder):
    builder.editor.load_csv("t.csv", b"population,M1,CD99\nA,1,-1\nB,-1,1\n")
    assert not builder.valid and builder._build_button.disabled
    assert any(p.where == "table" and p.level == "danger" and "CD99" in p.text for p in builder.problems())
    builder.editor.remove_marker("CD99")
    assert builder.valid


@pytest.fixture
def trained(state, builder):
    builder.editor.load_example()
    builder.set_columns(batch="batch")
    model = builder.build()
    model.train(max_epochs=1, batch_size=256, progress=False)
    model.write(state.adata)
    state.touch_obs()
    return model


def test_the_threshold_relabels_cells_without_the_model(state, trained):
    view = PopulationsView(state)
    assert view.ready()
    view.refresh_scores()
    assert view.explorer.coloring.name == "flow_population"
    assert "Pop1" in view.explorer.legend.entries["category"].tolist()
    strict = view.set_threshold(view._slider.end)
    assert strict.isna().all()
    assert state.adata.obs["flow_population"].isna().all()
    assert view._unknown.object.startswith("<b>400 cells unknown")
    samples = view._samples.value
    assert samples["batch"].tolist() == ["batch1", "batch2"] and samples["unknown"].sum() == 400
    loose = view.set_threshold(view._slider.start)
    assert loose.isna().sum() <= 4  # the worst 0.1% of cells may lie below the slider's start
    assert trained.config.log_prob_threshold == view._slider.start
    assert state.adata.obs["flow_population"].dtype == "category"


def test_why_this_label_for_a_population_and_a_selection(state, trained):
    view = PopulationsView(state)
    view.refresh_scores()
    table = view.explain(np.arange(20))
    assert list(table.index) == trained.config.populations and list(table.columns) == trained.config.markers
    assert "20 cells:" in view._why_note.object and view._why.object is not None
    view.set_threshold(view._slider.end)
    assert "20 cells: unknown 20" in view._why_note.object  # the same cells, labelled anew
    assert view._samples.value["batch"].tolist() == ["batch1", "batch2"]
    assert view._samples.value.drop(columns="batch").to_numpy().sum() == 400


def test_no_population_model_says_what_to_do(state):
    view = PopulationsView(state)
    assert not view.ready() and "2 · Model" in view._status.object and view._body.objects == []
    assert SELECTION not in view._explain.options
    assert isinstance(FlowAnnotator, type)


def test_the_flow_terms_have_plain_names():
    from app.words import term_label

    assert term_label("prior_fit") == "misfit of the cells to the table's populations"
    assert "log-determinant" in term_label("volume")


def test_the_data_tab_loads_generated_cytometry_cells_that_match_the_example_table():
    from app.components.data_loader import DataLoader
    from app.demo import CYTOMETRY_TITLE
    from app.settings import Settings

    loader = DataLoader(StudioState(), Settings(data_root=None))
    assert loader.load_cytometry_demo() and not loader.error
    assert loader.state.dataset == CYTOMETRY_TITLE and loader.state.adata.n_vars == 10
    assert "2 · Model" in loader._next.object


def test_the_pure_pieces_of_the_view():
    import pandas as pd

    from app.embedding.populations import mean_by_population, selection_line, unknown_line

    labels = pd.Series(pd.Categorical(["A", None, "A", "B"], categories=["A", "B", "C"]))
    assert unknown_line(labels, -3) == "1 cell unknown (25.0% of 4) at threshold -3"
    means = mean_by_population(np.array([[1.0], [5.0], [3.0], [-1.0]]), labels, ["M1"])
    assert means["M1"].tolist()[:2] == [2.0, -1.0] and np.isnan(means.loc["C", "M1"])
    assert selection_line(labels, np.array([0, 1, 2])) == "3 cells: A 2, unknown 1"


def test_a_box_selection_in_the_plot_is_explained_in_a_worker(state, trained):
    from in_a_thread import in_a_thread

    view = PopulationsView(state)
    view.refresh_scores()
    assert "M1 and M2" in view.explorer._status.object  # two markers as axes, named
    x, y = state.adata.obsm["X_flow_markers"][:, 0], state.adata.obsm["X_flow_markers"][:, 1]
    cells = in_a_thread(lambda: view.explorer.select_box(x.min(), y.min(), np.median(x), np.median(y)))
    assert view.explorer.selected == 1 and view._explain.value == SELECTION
    assert f"Why this label</b> · {cells.size:,} cells:" in view._why_note.object


def test_each_family_brings_its_own_training_defaults(state):
    tab = ModelBuilder(state)
    assert tab.training.options()["batch_size"] == 256  # the autoencoder's
    tab._chooser.value = "flow"
    options = tab.training.options()
    assert (options["batch_size"], options["lr"], options["max_epochs"]) == (8192, 5e-4, 100)
    tab._chooser.value = "guided"
    assert tab.training.options()["batch_size"] == 256

"""The model builder without a browser: rows from the data, configs from the rows, problems beside them."""
import anndata as ad
import numpy as np
import pandas as pd
import panel as pn
import pytest
import scanpy as sc

from app.builders.guided import GuidedBuilder
from app.builders.guided_heads import OWN
from app.components.model_builder import ModelBuilder
from app.state import StudioState
from engine import GuidedModel, InputError
from in_a_thread import in_a_thread
from test_escape_helpers import shown


@pytest.fixture(scope="module")
def pbmc():
    return sc.datasets.pbmc68k_reduced()


@pytest.fixture
def builder(pbmc):
    state = StudioState()
    state.load(pbmc, "pbmc68k_reduced")
    return ModelBuilder(state).builder


def test_rows_for_usable_columns_with_inferred_kinds(builder):
    rows = builder._pheno_rows
    assert {"bulk_labels", "phase", "louvain", "n_counts", "percent_mito"} <= set(rows)
    assert rows["bulk_labels"].kind.value == "categorical"
    assert rows["n_counts"].kind.value == "continuous"
    assert not any(row.on.value for row in rows.values())
    assert builder.valid  # reconstruction alone is a model
    assert builder.config().phenotypes == {}


def test_identifier_and_constant_columns_get_no_row(pbmc):
    adata = pbmc.copy()
    adata.obs["barcode"] = adata.obs_names.astype(str)
    adata.obs["one_donor"] = "d1"
    state = StudioState()
    state.load(adata, "ids")
    rows = GuidedBuilder(state)._pheno_rows
    assert "barcode" not in rows and "one_donor" not in rows and "bulk_labels" in rows


def test_switching_a_column_on_puts_it_in_the_config(builder):
    builder.set_phenotype("bulk_labels", latent_dim=6)
    spec = builder.config().phenotypes["bulk_labels"]
    assert spec.enabled and spec.kind == "categorical" and spec.latent_dim == 6 and spec.attach is None
    assert [(loss.loss, loss.gradient) for loss in spec.losses] == [("nll", "normal")]


def test_remove_role_reverses_the_gradient_on_the_main_latent(builder):
    builder.set_phenotype("phase", role="remove", alpha=0.5)
    spec = builder.config().phenotypes["phase"]
    assert spec.attach == "main"
    assert spec.losses[0].gradient == "reverse" and spec.losses[0].alpha.start == 0.5
    row = builder._pheno_rows["phase"]
    assert row.alpha.visible and not row.latent.visible
    assert row.attach.value == "main" and OWN not in row.attach.options


def test_attaching_to_a_switched_off_head_is_explained_beside_the_row(builder):
    builder.set_phenotype("louvain", attach="bulk_labels")
    row = builder._pheno_rows["louvain"]
    assert not builder.valid and builder._build_button.disabled
    assert row.problem.visible and "switched off" in shown(row.problem)
    assert not builder._pheno_rows["bulk_labels"].problem.visible
    with pytest.raises(InputError, match="phenotypes.louvain.attach"):
        builder.config()
    builder.set_phenotype("bulk_labels")
    assert builder.valid and not row.problem.visible
    assert builder.config().phenotypes["louvain"].attach == "bulk_labels"
    assert "bulk_labels" in row.attach.options


def test_every_problem_is_shown_at_once_beside_its_row(builder):
    builder.set_phenotype("bulk_labels", latent_dim=0)
    builder.set_phenotype("louvain", attach="phase")
    builder.set_phenotype("n_counts", attach="S_score")
    rows = builder._pheno_rows
    assert not builder.valid
    assert shown(rows["bulk_labels"].problem).startswith("dimensions: must be at least 1")
    assert "phase is switched off" in shown(rows["louvain"].problem)
    assert "S_score is switched off" in shown(rows["n_counts"].problem)
    with pytest.raises(InputError) as raised:
        builder.config()
    assert str(raised.value).count("\n  - ") == 3


def test_continuous_with_text_values_is_explained(builder):
    builder.set_phenotype("phase", kind="continuous")
    row = builder._pheno_rows["phase"]
    assert not builder.valid and "non-numeric" in shown(row.problem)
    builder.set_phenotype("phase", on=False)
    builder.set_phenotype("n_counts")
    assert builder.config().phenotypes["n_counts"].losses[0].loss == "mse"


def test_every_loss_off_is_refused_but_a_lone_remove_head_is_fine(builder):
    builder._reconstruction_weight.value = 0.0
    assert not builder.valid and builder._alerts["architecture"].visible
    builder.set_phenotype("phase", role="remove")
    assert builder.valid and not builder._alerts["architecture"].visible


def test_built_in_signature_matches_most_genes(builder):
    row = builder._sig_rows["CD4 T cells"]
    assert len(row.match.matched) >= 0.8 * len(row.genes)
    assert f"{len(row.match.matched)} of {len(row.genes)} genes" in row.genes_line.object
    assert "missing: CD14" in builder._sig_rows["CD14 monocytes"].genes_line.object
    builder.set_signature("CD4 T cells", exclude=True)
    spec = builder.config().signatures["CD4 T cells"]
    assert spec.exclude_from_input and "CD3D" in spec.genes


def test_signature_without_matching_genes_is_explained(builder):
    builder.add_gene_sets("mouse.txt", b"Cd3d\nNotAGene1\n")
    builder.add_gene_sets("nothing.txt", b"NotAGene1\nNotAGene2\n")
    builder.set_signature("nothing")
    row = builder._sig_rows["nothing"]
    assert not builder.valid and "none of its 2 genes" in shown(row.problem)
    assert builder._sig_rows["mouse"].genes_line.object.startswith("<small>1 of 2")


def test_uploading_a_bad_gmt_shows_the_error(builder):
    upload = builder._upload
    upload.filename = "broken.gmt"
    upload.value = b"just_a_name_without_tabs\n"
    assert builder._upload_message.visible and builder._upload_message.alert_type == "danger"
    assert "broken.gmt, line 1" in shown(builder._upload_message)
    assert "/tmp" not in shown(builder._upload_message)
    upload.filename = "mine.gmt"
    upload.value = b"T_memory\tmy set\tCD3D\tIL7R\tCCR7\n"
    assert builder._upload_message.alert_type == "success"
    builder.set_signature("T_memory")
    assert builder.config().signatures["T_memory"].genes == ["CD3D", "IL7R", "CCR7"]


def test_detach_and_two_phase_story_become_task_settings(builder):
    builder._detach.value = "encoder"
    assert builder.valid and builder._alerts["detach"].alert_type == "warning"
    builder.training._story_choice.value = "reconstruction first, then add the heads"
    builder.training._warmup.value, builder.training._epochs.value = 3, 10
    story = builder.training_options()["story"]
    detach = {"detach": True, "detach_from": "encoder"}
    assert story == {"phases": [
        {"name": "reconstruction", "epochs": 3,
         "tasks": [{"backward_pheno_loss": False, "backward_signature_loss": False, **detach}]},
        {"name": "heads", "epochs": 7, "tasks": [detach]},
    ]}
    assert builder.config().training.story.total_epochs == 10
    builder.training._warmup.value = 10
    assert not builder.valid and "never train" in shown(builder.training.alerts["story"])


def test_training_options_without_story(builder):
    assert builder.training_options() == {"max_epochs": 30, "batch_size": 256, "lr": 1e-3, "bf16": False, "story": None}


def test_faster_arithmetic_reaches_the_trainer(builder):
    builder.set_phenotype("bulk_labels")
    builder.training._bf16.value = True
    trainer = builder.build_model().trainer(**builder.training_options(), progress=False)
    assert trainer.training.bf16 and builder.config().training.bf16


def test_build_model_stores_a_model_whose_heads_match(builder):
    builder.set_phenotype("bulk_labels", latent_dim=4)
    builder.set_phenotype("phase", role="remove")
    builder.set_phenotype("n_counts", attach="bulk_labels")
    builder.set_signature("B cells")
    model = builder.build_model()
    assert isinstance(model, GuidedModel) and builder.state.model is model
    assert set(model.model.phenotypes) == {"bulk_labels", "phase", "n_counts"}
    assert set(model.model.signatures) == {"B cells"}
    assert set(model.latent_names) == {"main", "bulk_labels", "B cells"}
    assert builder._status.alert_type == "success"


def test_the_build_button_builds(builder):
    builder.set_phenotype("bulk_labels")
    in_a_thread(lambda: builder._build_button.param.update(clicks=builder._build_button.clicks + 1))
    assert isinstance(builder.state.model, GuidedModel)
    assert "bulk_labels" in shown(builder._status) and shown(builder._status).startswith("Model built")
    assert builder._next.visible and "3 · Train" in shown(builder._next) and "Start" in shown(builder._next)


def test_a_failed_build_leaves_the_state_alone(builder):
    kept = builder.build_model()  # the model an earlier build made
    builder.set_phenotype("louvain", attach="bulk_labels")
    with pytest.raises(InputError):
        builder.build_model()
    assert builder.state.model is kept
    assert builder._status.visible and builder._status.alert_type == "danger" and not builder._next.visible


def test_new_cells_rebuild_the_rows(builder):
    builder.set_phenotype("bulk_labels")
    builder.add_gene_sets("kept.txt", b"CD3D\n")
    rng = np.random.default_rng(0)
    other = ad.AnnData(
        rng.normal(size=(50, 4)).astype(np.float32),
        obs=pd.DataFrame({"donor": pd.Categorical(["a", "b"] * 25), "score": rng.normal(size=50)},
                         index=[f"c{i}" for i in range(50)]),
        var=pd.DataFrame(index=["CD3D", "MS4A1", "LYZ", "GNLY"]),
    )
    builder.state.load(other, "small")
    assert set(builder._pheno_rows) == {"donor", "score"}
    assert builder.config().phenotypes == {}
    assert "kept" in builder._sig_rows
    assert builder._sig_rows["B cells"].genes_line.object.startswith("<small>1 of 5")


def test_new_obs_columns_add_rows_and_keep_settings(builder, pbmc):
    builder.set_phenotype("bulk_labels")
    builder.state.adata.obs["cluster"] = pd.Categorical(np.arange(pbmc.n_obs) % 3)
    try:
        builder.state.touch_obs()
        assert "cluster" in builder._pheno_rows
        assert builder._pheno_rows["bulk_labels"].on.value
    finally:
        del builder.state.adata.obs["cluster"]


def test_head_names_the_model_accepts(pbmc):
    adata = pbmc.copy()
    adata.obs["all"] = adata.obs["phase"]
    adata.obs["sample.id"] = adata.obs["phase"]
    state = StudioState()
    state.load(adata, "odd names")
    builder = GuidedBuilder(state)
    builder.set_phenotype("all")
    builder.set_phenotype("sample.id")
    phenotypes = builder.config().phenotypes
    assert {spec.column for spec in phenotypes.values()} == {"all", "sample.id"}
    assert "all" not in phenotypes and not any("." in name for name in phenotypes)
    builder.build_model()


def test_renders(builder, tmp_path):
    builder.set_phenotype("phase", role="remove")
    pn.panel(builder).save(str(tmp_path / "builder.html"), resources="inline")
    assert (tmp_path / "builder.html").stat().st_size > 0
    assert builder.__panel__() is not None


def test_the_built_model_trains_through_the_story(builder):
    builder.set_phenotype("bulk_labels")
    builder.set_signature("NK cells", exclude=True)
    builder._detach.value = "pre_encoder"
    builder.training._story_choice.value = "reconstruction first, then add the heads"
    builder.training._epochs.value, builder.training._warmup.value = 2, 1
    model = builder.build_model()
    run = model.trainer(**builder.training_options(), progress=False).run()
    history = run.history()
    assert run.state == "finished" and set(history["phase"]) == {"reconstruction", "heads"}
    first = history[history["phase"] == "reconstruction"].dropna(axis=1, how="all")
    assert not any(term.startswith(("pheno/", "signature/")) for term in first.columns)
    assert "pheno/bulk_labels/nll" in history.columns


EVIL = "<img src=x onerror=alert(1)>"


def test_user_names_are_shown_as_text(pbmc):
    adata = pbmc.copy()
    adata.obs[EVIL] = np.where(adata.obs["phase"] == "G1", EVIL, "<b>other</b>")
    state = StudioState()
    state.load(adata, "evil")
    builder = GuidedBuilder(state)
    row = builder._pheno_rows[EVIL]
    name = row.view.objects[0].objects[0].object  # the row's name cell (an HTML pane)
    assert "<img" not in name and "&lt;img src=x onerror=alert(1)&gt;" in name
    builder.add_gene_sets(f"{EVIL}.gmt", f"{EVIL}\tdesc\tCD3E\t{EVIL}\n".encode())
    sig = builder._sig_rows[EVIL]
    for pane in (sig.name, sig.genes_line, builder._upload_message):
        assert "<img" not in pane.object and "&lt;img" in pane.object
    builder.set_phenotype(EVIL, kind="continuous")  # a problem quoting the column and its values
    assert "<img" not in row.problem.object and EVIL in shown(row.problem)


@pytest.mark.parametrize("filename, words", [(".", "no extension"), ("..", "no extension"),
                                             ("x." + "y" * 300, "unknown format '.yyyyyyyyyyyyyyy'")])
def test_a_gene_set_file_name_without_a_usable_extension_is_explained(builder, filename, words):
    assert builder.add_gene_sets(filename, b"CD3E\n") == []
    message = builder._upload_message
    assert message.visible and message.alert_type == "danger" and words in shown(message)


def test_a_very_long_gene_set_file_name_is_read(builder):
    name = "m" * 300
    assert builder.add_gene_sets(f"{name}.txt", b"CD3E\nLYZ\n") == [name]  # a list is named after its file
    assert builder._sig_rows[name].genes == ["CD3E", "LYZ"]
    assert builder.add_gene_sets(f"{'s' * 300}.gmt", b"T\tdesc\tCD3D\n") == ["T"]
    assert builder._upload_message.alert_type == "success"


def test_the_model_tab_offers_the_registered_families(pbmc):
    state = StudioState()
    state.load(pbmc, "pbmc68k_reduced")
    tab = ModelBuilder(state)
    assert set(tab._chooser.options.values()) == {"guided", "flow", "sysvi"} and tab.family == "guided"
    assert isinstance(tab.builder, GuidedBuilder) and len(tab._body.objects) == 1
    assert tab.training_options() == tab.builder.training_options()


def test_problems_come_with_their_engine_location(builder):
    builder.set_phenotype("bulk_labels", latent_dim=0)
    builder._main_latent.value = 0
    found = {p.where: p for p in builder.problems()}
    assert found["phenotypes.bulk_labels"].text.startswith("dimensions: ")  # the page's word for the field
    assert found["phenotypes.bulk_labels"].line.startswith("phenotypes.bulk_labels.latent_dim: ")
    assert found["architecture"].line.startswith("main_latent_dim: ")
    assert builder._alerts["architecture"].visible


def test_the_training_options_are_one_view_shared_with_the_train_tab(pbmc):
    state = StudioState()
    state.load(pbmc, "pbmc68k_reduced")
    tab = ModelBuilder(state)
    training, builder = tab.training, tab.builder
    assert builder.training is training and training.family() is builder
    assert training._story_choice.options == ["everything from the start", "expression first, then add the rest"]
    assert training._warmup.label == "expression-only epochs" and not training._warmup.visible
    training._epochs.value = 7
    builder._detach.value = "encoder"
    assert tab.training_options()["max_epochs"] == 7
    assert tab.training_options()["story"] == {"phases": [
        {"name": "train", "epochs": 7, "tasks": [{"detach": True, "detach_from": "encoder"}]}]}
    training._lr.value = -1.0
    assert not builder.valid and training.alerts["training"].visible
    assert "3 · Train" in shown(builder._general)


def test_a_refused_config_carries_each_problem_with_its_location(builder):
    builder.set_phenotype("bulk_labels", latent_dim=0)
    builder._reconstruction_weight.value = 0.0
    builder.set_phenotype("bulk_labels", latent_dim=0, weight=0.0)
    with pytest.raises(InputError) as raised:
        builder.config()
    locations = {problem.location for problem in raised.value.problems}
    assert ("phenotypes", "bulk_labels", "latent_dim") in locations and ("architecture",) in locations

"""Population annotation of the AML cells (Levine 32-marker, 280-cell subset) from table_aml.csv.

The table's 14 populations were gated by hand in the cells' `cell_type`; the flow sees only the
table. The same cells written to an FCS file and read back must get the same labels.
"""
import anndata as ad
import numpy as np
import pytest
from sklearn.metrics import f1_score

import engine
from tests.unit.test_read import write_fcs

pytestmark = pytest.mark.data

SETTINGS = dict(training=dict(batch_size=64, lr=3e-3, max_epochs=100, early_stopping_patience=5))


@pytest.fixture(scope="module")
def aml(shared_data):
    folder = shared_data / "cyto_aml_levine32_short"
    return ad.read_h5ad(folder / "aml_short.h5ad"), engine.read_knowledge_table(folder / "table_aml.csv")


@pytest.fixture(scope="module")
def labels(aml):
    cells, table = aml
    model = engine.FlowAnnotator(cells, table, device="cpu", **SETTINGS)
    model.train(progress=False)
    return model.predict()


def test_the_table_alone_recovers_the_gated_populations(aml, labels):
    cells, _ = aml
    truth = cells.obs["cell_type"].astype(str).to_numpy()
    called = labels.astype(object).fillna("unknown").to_numpy()
    accuracy = float((called == truth).mean())
    macro_f1 = f1_score(truth, called, average="macro")
    print(f"AML short: accuracy {accuracy:.3f}, macro-F1 {macro_f1:.3f}, unknown {int(labels.isna().sum())}")
    assert accuracy >= 0.90 and macro_f1 >= 0.85


def test_the_same_cells_read_from_an_fcs_file_get_the_same_labels(aml, labels, tmp_path):
    cells, table = aml
    names = list(cells.var_names)
    path = write_fcs(tmp_path / "aml.fcs", np.asarray(cells.X), names, names)
    from_fcs = engine.read(path)
    assert list(from_fcs.var_names) == names
    np.testing.assert_array_equal(from_fcs.X, cells.X)
    model = engine.FlowAnnotator(from_fcs, table, device="cpu", **SETTINGS)
    model.train(progress=False)
    again = model.predict()
    assert list(again.astype(str)) == list(labels.astype(str))

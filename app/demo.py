"""The built-in demo data, so the studio has cells to show before the user loads any."""
import scanpy as sc
from anndata import AnnData

from engine.data.simulate import cells_from_table, random_table

DEMO_TITLE = "pbmc68k_reduced (built-in demo)"
DEMO_NOTE = (
    "The demo: 700 blood immune cells (PBMC) measured with 10x Genomics, a reduced version of the 68k PBMC "
    "set that ships inside scanpy. It is already normalised, log-transformed and scaled, so values can be "
    "negative and there is nothing to preprocess. To try it: go to 2 · Model, switch on Learn cell type for "
    "bulk_labels, press Build model, then Start in 3 · Train."
)
DEMO_NEXT = (
    "Next: the demo is already preprocessed, so skip the preprocessing step. Open 2 · Model, switch on "
    "bulk_labels (Learn cell type) and press Build model."
)


def load_demo() -> AnnData:
    """700 PBMCs x 765 genes that ship inside scanpy: no download, loads in well under a second."""
    return sc.datasets.pbmc68k_reduced()


# Generated cytometry cells and the table they were drawn from: the Populations workflow's example
# (tests and first tries), offered by the table editor only when the loaded cells carry its markers.
CYTOMETRY_TITLE = "generated cytometry cells (drawn from the example table)"
EXAMPLE_TABLE = {"n_populations": 6, "n_markers": 10, "seed": 0}
CYTOMETRY_NOTE = (
    "2,000 cells with ten markers (M1 to M10) in two batches, generated from an example table of six "
    "populations (the true population is kept in the annotation 'population'): to try the Populations kind "
    "of model."
)
CYTOMETRY_NEXT = (
    "Next: open 2 · Model, choose \"Populations from a table of markers\", press Load example table, then "
    "Build model."
)


def example_table():
    """Six populations (Pop1 to Pop6) over ten markers (M1 to M10), 1 / -1 with a few blanks."""
    return random_table(EXAMPLE_TABLE["n_populations"], EXAMPLE_TABLE["n_markers"], seed=EXAMPLE_TABLE["seed"])


def cytometry_demo(n_cells: int = 2000) -> AnnData:
    """Cells drawn from `example_table()` in two batches; obs 'population' holds the truth."""
    return cells_from_table(example_table(), n_cells, n_batches=2, seed=EXAMPLE_TABLE["seed"])


# Generated RNA cells from two systems (say, two species) in two batches each: the Integrate
# workflow's example. The system shift is moderate, so integration visibly brings the systems together.
SYSTEMS_TITLE = "generated cells from two systems"
SYSTEMS_SETTINGS = {"n_cells": 2000, "n_genes": 300, "n_cell_types": 4, "n_systems": 2, "batches_per_system": 2,
                    "system_effect": 0.4, "seed": 0}
SYSTEMS_NOTE = (
    "2,000 RNA cells (300 genes, already normalised and log-transformed) of four cell types, measured in two "
    "systems (as if two species or protocols) with two batches each; the annotations 'system', 'batch' and "
    "'cell_type' say which: to try integrating cells across systems."
)
SYSTEMS_NEXT = (
    "Next: open 2 · Model, choose \"Integrate cells across systems\", check that the system column is system "
    "(and add batch as a batch column), press Build model, then Start in 3 · Train."
)


def systems_demo(n_cells: int | None = None) -> AnnData:
    """Cells of four types from two systems (obs 'system', 'batch', 'cell_type'); X is log expression."""
    from engine.data.simulate_systems import cells_from_systems

    settings = SYSTEMS_SETTINGS | ({"n_cells": n_cells} if n_cells else {})
    return cells_from_systems(settings.pop("n_cells"), settings.pop("n_genes"), **settings)

"""The built-in demo data, so the studio has cells to show before the user loads any."""
import scanpy as sc
from anndata import AnnData

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

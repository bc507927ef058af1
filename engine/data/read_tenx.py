"""10x Genomics output (a matrix.mtx folder, v2 or v3, gzipped or not; or a Cell Ranger .h5).

Gene expression goes to X (sparse float32). Other feature types in the same file (antibodies in
CITE-seq, CRISPR guides) would distort RNA normalisation, so they go to `obsm` as cells x features
DataFrames: 'Antibody Capture' to `obsm['protein']`, any other type to its lower-case snake name.
"""
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import scanpy as sc
import scipy.io
import scipy.sparse as sp
from anndata import AnnData

from engine.data.errors import InputError
from engine.data.validate import unreadable

LAYOUT = "matrix.mtx[.gz], features.tsv[.gz] (or genes.tsv[.gz]) and barcodes.tsv[.gz]"
GENE_EXPRESSION = "Gene Expression"
OBSM_KEYS = {"Antibody Capture": "protein"}


def read_tenx_h5(path: Path) -> AnnData:
    """Read a Cell Ranger feature-barcode .h5 file (v2 or v3 layout)."""
    try:
        adata = sc.read_10x_h5(path, gex_only=False)
    except Exception as err:
        raise unreadable(path, "a 10x Genomics .h5 matrix", err) from err
    adata.X = adata.X.astype("float32")
    return split_feature_types(adata)


def read_tenx_dir(path: Path, confine: Callable[[Path], Path] | None = None) -> AnnData:
    """Read a 10x folder; names come from the gene symbols, ids stay in `var['gene_ids']`.

    `confine` vets each member file and returns the path to open (engine.read passes its data-folder
    check), since a member may be a link to a file anywhere.
    """
    vet = confine or (lambda member: member)
    matrix_file = vet(_find(path, "matrix.mtx"))
    features_file = vet(_find(path, "features.tsv", "genes.tsv"))
    barcodes_file = vet(_find(path, "barcodes.tsv"))
    try:
        matrix = sp.csr_matrix(scipy.io.mmread(matrix_file).T, dtype="float32")
        features = pd.read_csv(features_file, sep="\t", header=None, dtype=str, keep_default_na=False)
        barcodes = pd.read_csv(barcodes_file, sep="\t", header=None, dtype=str, keep_default_na=False)
    except Exception as err:
        raise unreadable(path, f"a 10x Genomics folder ({LAYOUT})", err) from err
    if matrix.shape != (len(barcodes), len(features)):
        raise InputError(
            f"{path}: {matrix_file.name} is {matrix.shape[1]} features x {matrix.shape[0]} cells but "
            f"{features_file.name} lists {len(features)} features and {barcodes_file.name} "
            f"{len(barcodes)} barcodes; expected the three files from one Cell Ranger run."
        )
    symbols = features.iloc[:, 1] if features.shape[1] > 1 else features.iloc[:, 0]
    var = pd.DataFrame({"gene_ids": features.iloc[:, 0].to_numpy()}, index=pd.Index(symbols, dtype=str))
    if features.shape[1] > 2:
        var["feature_types"] = features.iloc[:, 2].to_numpy()
    obs = pd.DataFrame(index=pd.Index(barcodes.iloc[:, 0], dtype=str))
    return split_feature_types(AnnData(matrix, obs=obs, var=var))


def split_feature_types(adata: AnnData) -> AnnData:
    """Keep gene expression in X and move every other feature type to `obsm`."""
    if "feature_types" not in adata.var:
        return adata
    types = adata.var["feature_types"].astype(str).to_numpy()
    is_gene = types == GENE_EXPRESSION
    if is_gene.all() or not is_gene.any():
        return adata
    genes = adata[:, is_gene].copy()
    for kind in pd.unique(types[~is_gene]):
        part = adata[:, types == kind]
        values = part.X.toarray() if sp.issparse(part.X) else part.X
        key = OBSM_KEYS.get(kind, kind.lower().replace(" ", "_"))
        genes.obsm[key] = pd.DataFrame(values, index=adata.obs_names, columns=part.var_names)
    return genes


def _find(folder: Path, *stems: str) -> Path:
    for stem in stems:
        for name in (f"{stem}.gz", stem):
            if (folder / name).is_file():
                return folder / name
    wanted = " or ".join(f"{stem}[.gz]" for stem in stems)
    raise InputError(
        f"{folder}: the folder holds no {wanted}; expected a 10x Genomics folder with {LAYOUT}. "
        "Pass the folder Cell Ranger wrote (e.g. filtered_feature_bc_matrix), or a single file "
        "such as .h5ad, .h5, .csv or .fcs."
    )

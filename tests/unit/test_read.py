"""engine.read on small files each test writes itself: every format, and every error message."""
import gzip
from pathlib import Path

import anndata as ad
import flowio
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.io
import scipy.sparse as sp

import engine
from engine.data.errors import InputError

COUNTS = np.array([[0, 1, 2], [3, 0, 5], [6, 7, 0], [1, 1, 1]], dtype=np.float32)  # 4 cells x 3 genes
CELLS = ["c1", "c2", "c3", "c4"]
GENES = ["CD3E", "MS4A1", "LYZ"]


def error_of(path, **options) -> str:
    with pytest.raises(InputError) as caught:
        engine.read(path, **options)
    message = str(caught.value)
    assert Path(path).name in message
    return message


def write_text(path: Path, text: str) -> Path:
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "wt") as handle:
        handle.write(text)
    return path


def table_text(sep: str, *, transpose: bool = False) -> str:
    frame = pd.DataFrame(COUNTS, index=CELLS, columns=GENES)
    frame = frame.T if transpose else frame
    return frame.to_csv(sep=sep, index_label="name")


def write_fcs(path: Path, events: np.ndarray, channels, markers=None, metadata=None, version=None) -> Path:
    with open(path, "wb") as handle:
        flowio.create_fcs(handle, events.astype(np.float32).ravel().tolist(), channels,
                          opt_channel_names=markers, metadata_dict=metadata)
    if version is not None:
        raw = bytearray(path.read_bytes())
        raw[0:6] = f"FCS{version}".encode()
        path.write_bytes(bytes(raw))
    return path


def write_tenx_dir(folder: Path) -> Path:
    """Cell Ranger v3 layout, gzipped: 3 genes and one antibody (features x cells in the mtx)."""
    folder.mkdir()
    matrix = np.vstack([COUNTS.T, [[9, 8, 7, 6]]])
    with gzip.open(folder / "matrix.mtx.gz", "wb") as handle:
        scipy.io.mmwrite(handle, sp.coo_matrix(matrix.astype(np.int64)))
    rows = [f"ENSG{i}\t{g}\tGene Expression" for i, g in enumerate(GENES)] + ["CD4_ab\tCD4\tAntibody Capture"]
    write_text(folder / "features.tsv.gz", "\n".join(rows) + "\n")
    write_text(folder / "barcodes.tsv.gz", "\n".join(CELLS) + "\n")
    return folder


def write_tenx_h5(path: Path) -> Path:
    """Cell Ranger v3 .h5 layout: a CSC features x cells matrix under /matrix."""
    matrix = sp.csc_matrix(COUNTS.T.astype(np.int32))
    with h5py.File(path, "w") as handle:
        group = handle.create_group("matrix")
        group["barcodes"] = np.array(CELLS, dtype="S")
        group["data"] = matrix.data
        group["indices"] = matrix.indices.astype(np.int64)
        group["indptr"] = matrix.indptr.astype(np.int64)
        group["shape"] = np.array(matrix.shape, dtype=np.int32)
        features = group.create_group("features")
        features["id"] = np.array([f"ENSG{i}" for i in range(3)], dtype="S")
        features["name"] = np.array(GENES, dtype="S")
        features["feature_type"] = np.array(["Gene Expression"] * 3, dtype="S")
        features["genome"] = np.array(["GRCh38"] * 3, dtype="S")
        features["_all_tag_keys"] = np.array([b"genome"])
    return path


# --- formats -------------------------------------------------------------------------------


def test_h5ad_round_trip_keeps_annotations(tmp_path):
    original = ad.AnnData(COUNTS.copy(), obs=pd.DataFrame({"cell_type": list("abab")}, index=CELLS),
                          var=pd.DataFrame(index=GENES))
    original.write_h5ad(tmp_path / "cells.h5ad")
    adata = engine.read(tmp_path / "cells.h5ad")
    assert adata.shape == (4, 3)
    assert list(adata.obs["cell_type"]) == list("abab")
    np.testing.assert_array_equal(adata.X, COUNTS)


def test_tenx_folder_gzipped_v3_splits_antibodies(tmp_path):
    adata = engine.read(write_tenx_dir(tmp_path / "filtered_feature_bc_matrix"))
    assert list(adata.obs_names) == CELLS and list(adata.var_names) == GENES
    assert sp.issparse(adata.X) and adata.X.dtype == np.float32
    np.testing.assert_array_equal(adata.X.toarray(), COUNTS)
    assert list(adata.var["gene_ids"]) == ["ENSG0", "ENSG1", "ENSG2"]
    assert list(adata.obsm["protein"].columns) == ["CD4"]
    assert list(adata.obsm["protein"]["CD4"]) == [9, 8, 7, 6]


def test_tenx_folder_v2_uncompressed(tmp_path):
    folder = tmp_path / "hg19"
    folder.mkdir()
    scipy.io.mmwrite(folder / "matrix.mtx", sp.coo_matrix(COUNTS.T))
    write_text(folder / "genes.tsv", "\n".join(f"ENSG{i}\t{g}" for i, g in enumerate(GENES)) + "\n")
    write_text(folder / "barcodes.tsv", "\n".join(CELLS) + "\n")
    adata = engine.read(folder)
    assert list(adata.var_names) == GENES
    np.testing.assert_array_equal(adata.X.toarray(), COUNTS)


def test_tenx_h5_v3(tmp_path):
    adata = engine.read(write_tenx_h5(tmp_path / "filtered_feature_bc_matrix.h5"))
    assert list(adata.obs_names) == CELLS and list(adata.var_names) == GENES
    assert adata.X.dtype == np.float32
    np.testing.assert_array_equal(adata.X.toarray(), COUNTS)


@pytest.mark.parametrize("name, sep", [("cells.csv", ","), ("cells.tsv", "\t"), ("cells.txt", "\t"),
                                       ("cells.csv.gz", ","), ("cells.TSV.GZ", "\t")])
def test_tables_by_extension(tmp_path, name, sep):
    adata = engine.read(write_text(tmp_path / name, table_text(sep)))
    assert list(adata.obs_names) == CELLS and list(adata.var_names) == GENES
    assert adata.X.dtype == np.float32
    np.testing.assert_array_equal(adata.X, COUNTS)


def test_table_transpose_and_sep_override(tmp_path):
    path = write_text(tmp_path / "genes_by_cells.txt", table_text(";", transpose=True))
    adata = engine.read(path, sep=";", transpose=True)
    assert list(adata.obs_names) == CELLS and list(adata.var_names) == GENES
    np.testing.assert_array_equal(adata.X, COUNTS)


def test_table_header_without_corner_label(tmp_path):
    """R's write.csv leaves out the name above the row names."""
    body = "\n".join(f'"{g}",' + ",".join(str(int(v)) for v in COUNTS[:, j]) for j, g in enumerate(GENES))
    path = write_text(tmp_path / "counts.csv", ",".join(f'"{c}"' for c in CELLS) + "\n" + body + "\n")
    adata = engine.read(path, transpose=True)
    assert list(adata.obs_names) == CELLS and list(adata.var_names) == GENES
    np.testing.assert_array_equal(adata.X, COUNTS)


def test_fcs_31_names_by_marker_with_channel_fallback_and_spillover(tmp_path):
    events = np.arange(15, dtype=np.float32).reshape(5, 3)
    spill = "2,FL1-A,FL2-A,1,0.1,0.05,1"
    path = write_fcs(tmp_path / "sample.fcs", events, ["FSC-A", "FL1-A", "FL2-A"], ["", "CD3", "CD19"],
                     metadata={"spillover": spill, "cyt": "Aurora"})
    adata = engine.read(path)
    assert list(adata.var_names) == ["FSC-A", "CD3", "CD19"]
    assert list(adata.var["channel"]) == ["FSC-A", "FL1-A", "FL2-A"]
    assert list(adata.var["marker"]) == ["", "CD3", "CD19"]
    assert adata.X.dtype == np.float32
    np.testing.assert_array_equal(adata.X, events)
    spillover = adata.uns["spillover"]
    assert list(spillover.index) == list(spillover.columns) == ["FL1-A", "FL2-A"]
    np.testing.assert_allclose(spillover.to_numpy(), [[1, 0.1], [0.05, 1]])
    assert adata.uns["fcs_meta"]["cyt"] == "Aurora"
    assert adata.uns["fcs_meta"]["fcs_version"] == "3.1"
    assert all(isinstance(value, str) for value in adata.uns["fcs_meta"].values())


def test_fcs_metadata_survives_h5ad(tmp_path):
    path = write_fcs(tmp_path / "sample.fcs", np.ones((3, 2)), ["FL1-A", "FL2-A"], ["CD3", "CD4"],
                     metadata={"spillover": "2,FL1-A,FL2-A,1,0.2,0,1"})
    engine.read(path).write_h5ad(tmp_path / "back.h5ad")
    back = engine.read(tmp_path / "back.h5ad")
    assert isinstance(back.uns["spillover"], pd.DataFrame)
    assert back.uns["spillover"].loc["FL1-A", "FL2-A"] == pytest.approx(0.2)
    assert back.uns["fcs_meta"]["fcs_version"] == "3.1"


@pytest.mark.parametrize("version", ["2.0", "3.0"])
def test_fcs_older_versions_and_spill_keyword(tmp_path, version):
    events = np.array([[1.0, 2.0], [3.0, 4.0]])
    path = write_fcs(tmp_path / f"v{version}.fcs", events, ["FL1-A", "FL2-A"], ["CD3", None],
                     metadata={"SPILL": "2,FL1-A,FL2-A,1,0,0.3,1"}, version=version)
    adata = engine.read(path)
    assert list(adata.var_names) == ["CD3", "FL2-A"]
    assert list(adata.var["marker"]) == ["CD3", ""]
    np.testing.assert_array_equal(adata.X, events)
    assert adata.uns["spillover"].loc["FL2-A", "FL1-A"] == pytest.approx(0.3)
    assert adata.uns["fcs_meta"]["fcs_version"] == version


def test_make_unique_renames_repeats_and_leaves_the_file_alone(tmp_path):
    text = "name,CD3E,CD3E,LYZ\nc1,1,2,3\nc1,4,5,6\n"
    path = write_text(tmp_path / "dups.csv", text)
    adata = engine.read(path, make_unique=True)
    assert adata.obs_names.is_unique and adata.var_names.is_unique
    assert list(adata.var_names)[2] == "LYZ"
    assert path.read_text() == text


# --- errors --------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    message = error_of(tmp_path / "nothere.h5ad")
    assert "no such file" in message


def test_unknown_extension_lists_supported(tmp_path):
    message = error_of(write_text(tmp_path / "cells.xlsx", "x"))
    assert "unknown extension '.xlsx'" in message
    for supported in (".h5ad", ".h5", ".csv", ".tsv", ".txt", ".fcs", "matrix.mtx"):
        assert supported in message


def test_zero_byte_file(tmp_path):
    path = tmp_path / "cells.csv"
    path.touch()
    assert "empty" in error_of(path)


def test_corrupt_h5ad(tmp_path):
    path = tmp_path / "broken.h5ad"
    path.write_bytes(b"this is not an hdf5 file at all" * 10)
    message = error_of(path)
    assert "cannot read" in message and "corrupt" in message


def test_truncated_h5ad(tmp_path):
    ad.AnnData(np.ones((50, 20), dtype=np.float32)).write_h5ad(tmp_path / "whole.h5ad")
    raw = (tmp_path / "whole.h5ad").read_bytes()
    path = tmp_path / "cut.h5ad"
    path.write_bytes(raw[: len(raw) // 2])
    assert "truncated" in error_of(path)


def test_corrupt_fcs(tmp_path):
    path = tmp_path / "broken.fcs"
    path.write_bytes(b"FCS3.1    garbage header that is no header at all" * 3)
    message = error_of(path)
    assert "cannot read it as an FCS" in message and "corrupt" in message


def test_truncated_fcs(tmp_path):
    whole = write_fcs(tmp_path / "whole.fcs", np.ones((100, 3)), ["A", "B", "C"])
    path = tmp_path / "cut.fcs"
    path.write_bytes(whole.read_bytes()[:-200])
    assert "truncated" in error_of(path)


@pytest.mark.parametrize("par", [b"2", b"4"])
def test_fcs_whose_parameter_count_disagrees_with_its_data(tmp_path, par):
    raw = write_fcs(tmp_path / "whole.fcs", np.arange(30).reshape(10, 3), ["A", "B", "C"]).read_bytes()
    at = raw.index(b"$PAR/3/") + len(b"$PAR/")
    path = tmp_path / "edited.fcs"
    path.write_bytes(raw[:at] + par + raw[at + 1:])
    message = error_of(path)
    assert f"each event has {par.decode()} parameters ($PAR) but names 3 channels" in message
    assert "reshape" not in message and "Error" not in message


@pytest.mark.parametrize("layout", ["dense", "csr", "csc"])
def test_non_finite_values_are_named_when_read(tmp_path, layout):
    values = COUNTS.copy()
    values[1, 2] = np.nan
    values[3, 0] = -np.inf
    matrix = {"dense": values, "csr": sp.csr_matrix(values), "csc": sp.csc_matrix(values)}[layout]
    ad.AnnData(matrix, obs=pd.DataFrame(index=CELLS), var=pd.DataFrame(index=GENES)).write_h5ad(tmp_path / "nan.h5ad")
    message = error_of(tmp_path / "nan.h5ad")
    assert "cell c2, feature LYZ holds NaN (not a number); 2 values in 2 cells are not finite" in message
    assert message.endswith("Remove or replace them (for example with 0) and load the file again.")


def test_non_finite_values_in_fcs_are_named_by_marker(tmp_path):
    events = np.ones((4, 2))
    events[2, 1] = np.inf
    path = write_fcs(tmp_path / "inf.fcs", events, ["FL1-A", "FL2-A"], ["CD3", "CD4"])
    assert "cell 2, marker CD4 holds an infinite value; 1 value in 1 cell is not finite" in error_of(path)


def test_corrupt_gzip_table(tmp_path):
    path = tmp_path / "cells.csv.gz"
    path.write_bytes(b"not gzip data")
    assert "cannot read" in error_of(path)


def test_malformed_spillover(tmp_path):
    path = write_fcs(tmp_path / "spill.fcs", np.ones((2, 2)), ["FL1-A", "FL2-A"],
                     metadata={"spillover": "2,FL1-A,FL2-A,1,0"})
    message = error_of(path)
    assert "SPILLOVER" in message and "expected 7" in message


def test_duplicate_cell_names(tmp_path):
    message = error_of(write_text(tmp_path / "cells.csv", "name,A,B\nc1,1,2\nc1,3,4\nc2,5,6\n"))
    assert "duplicate cell names: 'c1'" in message
    assert "Rename them in the file" in message and "make_unique=True" in message


@pytest.mark.filterwarnings("ignore:Variable names are not unique")
def test_duplicate_feature_names_in_h5ad(tmp_path):
    adata = ad.AnnData(COUNTS.copy(), var=pd.DataFrame(index=["CD3E", "CD3E", "LYZ"]))
    adata.write_h5ad(tmp_path / "dups.h5ad")
    message = error_of(tmp_path / "dups.h5ad")
    assert "duplicate feature names: 'CD3E'" in message and "var_names_make_unique()" in message


def test_duplicate_markers_in_fcs(tmp_path):
    path = write_fcs(tmp_path / "dups.fcs", np.ones((2, 2)), ["FL1-A", "FL2-A"], ["CD3", "CD3"])
    assert "duplicate feature names: 'CD3'" in error_of(path)


def test_non_numeric_value_names_column_row_and_value(tmp_path):
    path = write_text(tmp_path / "cells.tsv", "name\tCD3E\tLYZ\nc1\t1\t2\nc2\t3\thigh\nc3\t5\tlow\n")
    message = error_of(path)
    assert "'LYZ'" in message and "'high'" in message and "'c2'" in message
    assert "non-numeric" in message


def test_missing_value_in_table(tmp_path):
    message = error_of(write_text(tmp_path / "cells.csv", "name,A,B\nc1,1,2\nc2,,4\n"))
    assert "empty value" in message and "'A'" in message and "'c2'" in message


def test_header_that_does_not_fit_the_rows(tmp_path):
    message = error_of(write_text(tmp_path / "cells.csv", "name,A,B,C,D\nc1,1,2\nc2,3,4\n"))
    assert "header line has 5 names" in message


def test_wrong_separator_suggests_sep(tmp_path):
    message = error_of(write_text(tmp_path / "cells.tsv", table_text(",")))
    assert "sep=" in message


def test_sep_on_a_non_table_is_refused(tmp_path):
    ad.AnnData(COUNTS.copy()).write_h5ad(tmp_path / "cells.h5ad")
    assert "apply to .csv/.tsv/.txt" in error_of(tmp_path / "cells.h5ad", transpose=True)


def test_empty_matrix_in_h5ad(tmp_path):
    ad.AnnData(np.zeros((0, 3), dtype=np.float32)).write_h5ad(tmp_path / "none.h5ad")
    message = error_of(tmp_path / "none.h5ad")
    assert "empty" in message and "0 cells" in message


def test_table_with_only_a_header(tmp_path):
    assert "empty" in error_of(write_text(tmp_path / "cells.csv", "name,A,B\n"))


def test_table_with_no_feature_columns(tmp_path):
    message = error_of(write_text(tmp_path / "cells.csv", "name\nc1\nc2\n"))
    assert "single field" in message


def test_tenx_folder_missing_barcodes(tmp_path):
    folder = write_tenx_dir(tmp_path / "tenx")
    (folder / "barcodes.tsv.gz").unlink()
    message = error_of(folder)
    assert "barcodes.tsv[.gz]" in message


def test_tenx_folder_with_mismatched_files(tmp_path):
    folder = write_tenx_dir(tmp_path / "tenx")
    write_text(folder / "barcodes.tsv.gz", "c1\nc2\n")
    assert "2 barcodes" in error_of(folder)


def test_tenx_h5_without_the_matrix_datasets(tmp_path):
    path = tmp_path / "raw_feature_bc_matrix.h5"
    with h5py.File(path, "w") as handle:
        handle.create_group("matrix")["barcodes"] = np.array(CELLS, dtype="S")
    assert "cannot read it as a 10x Genomics .h5" in error_of(path)

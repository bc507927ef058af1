"""engine.read(path, root=...): the path and every file a reader opens stay inside the root by real paths."""
import gzip

import anndata as ad
import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp

import engine
from engine.data.read import confined


@pytest.fixture
def place(tmp_path):
    """root/ with a 10x folder; a sibling root_secret/ and an outside/ folder next to it."""
    root, sibling, outside = tmp_path / "root", tmp_path / "root_secret", tmp_path / "outside"
    for folder in (root, sibling, outside):
        folder.mkdir()
    return root, sibling, outside


def write_tenx(folder, n_cells=3, genes=("CD3E", "LYZ")):
    folder.mkdir()
    counts = np.arange(len(genes) * n_cells, dtype=float).reshape(len(genes), n_cells)
    scipy.io.mmwrite(folder / "matrix.mtx", sp.coo_matrix(counts))
    (folder / "features.tsv").write_text("".join(f"ENSG{i}\t{g}\tGene Expression\n" for i, g in enumerate(genes)))
    (folder / "barcodes.tsv").write_text("".join(f"cell{i}\n" for i in range(n_cells)))
    return folder


def h5ad(path):
    ad.AnnData(np.ones((4, 2), dtype=np.float32)).write_h5ad(path)
    return path


def test_inside_the_root_reads_as_without_it(place):
    root, _, _ = place
    tenx = write_tenx(root / "sample")
    assert engine.read(tenx, root=root).shape == (3, 2)
    assert engine.read(h5ad(root / "cells.h5ad"), root=root).shape == (4, 2)
    (root / "alias.h5ad").symlink_to(root / "cells.h5ad")  # a link that stays inside is fine
    assert engine.read(root / "alias.h5ad", root=root).shape == (4, 2)


def test_a_sibling_folder_named_like_the_root_is_outside(place):
    root, sibling, _ = place
    cells = h5ad(sibling / "cells.h5ad")
    with pytest.raises(engine.InputError, match="outside the data folder"):
        engine.read(cells, root=root)
    with pytest.raises(engine.InputError, match="outside the data folder"):
        engine.read(root / ".." / "root_secret" / "cells.h5ad", root=root)


def test_a_linked_folder_leading_out_is_outside(place):
    root, _, outside = place
    write_tenx(outside / "sample")
    h5ad(outside / "cells.h5ad")
    (root / "linked").symlink_to(outside)
    for path in (root / "linked" / "sample", root / "linked" / "cells.h5ad"):
        with pytest.raises(engine.InputError, match="outside the data folder"):
            engine.read(path, root=root)


@pytest.mark.parametrize("member", ["barcodes.tsv", "features.tsv", "matrix.mtx"])
def test_a_tenx_member_linked_out_of_the_root_is_refused_by_name(place, member):
    root, _, outside = place
    tenx = write_tenx(root / "sample")
    secret = outside / "passwd"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1::/usr/sbin:/usr/sbin/nologin\nbin:x:2:2\n")
    (tenx / member).unlink()
    (tenx / member).symlink_to(secret)
    with pytest.raises(engine.InputError) as refused:
        engine.read(tenx, root=root)
    message = str(refused.value)
    assert f"{member}: outside the data folder" in message and "passwd" not in message


def test_a_gzipped_member_is_checked_too(place):
    root, _, outside = place
    tenx = write_tenx(root / "sample")
    (tenx / "barcodes.tsv").unlink()
    with gzip.open(outside / "b.tsv.gz", "wt") as handle:
        handle.write("a\nb\nc\n")
    (tenx / "barcodes.tsv.gz").symlink_to(outside / "b.tsv.gz")
    with pytest.raises(engine.InputError, match="barcodes.tsv.gz: outside the data folder"):
        engine.read(tenx, root=root)


def test_confined_returns_the_real_path(place):
    root, _, _ = place
    (root / "real.h5ad").write_bytes(b"x")
    (root / "link.h5ad").symlink_to(root / "real.h5ad")
    assert confined(root / "link.h5ad", root) == (root / "real.h5ad").resolve()
    assert confined(root, root) == root.resolve()

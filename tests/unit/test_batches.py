"""CellBatches: seeded order, full coverage, sparse == dense, obs encoding, errors and sharding."""
import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

import engine.data
from engine.data import CellBatches
from engine.data.errors import InputError

N_CELLS, N_GENES = 37, 11


def _obs(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    kind = pd.Categorical(rng.choice(["b", "a", "c"], size=n), categories=["b", "a", "c"])
    kind[[3, 10]] = np.nan
    age = rng.normal(40, 10, size=n)
    age[[0, 5, 6]] = np.nan
    return pd.DataFrame(
        {"kind": kind, "age": age, "donor": rng.choice(["d1", "d2"], size=n)},
        index=[f"cell{i}" for i in range(n)],
    )


def _dense_counts(n: int = N_CELLS, g: int = N_GENES) -> np.ndarray:
    rng = np.random.default_rng(0)
    x = rng.poisson(0.7, size=(n, g)).astype(np.float32)
    x[[2, 9, 20]] = 0.0  # cells with no counts at all
    return x


def _adata(x) -> ad.AnnData:
    n, g = x.shape
    return ad.AnnData(X=x, obs=_obs(n), var=pd.DataFrame(index=[f"g{j}" for j in range(g)]))


def _messy_csr() -> tuple[sp.csr_matrix, np.ndarray]:
    """A CSR with unsorted and duplicate column indices and empty rows, and its dense twin."""
    rng = np.random.default_rng(2)
    indptr, indices, data = [0], [], []
    for row in range(N_CELLS):
        k = 0 if row in (1, 2, 30) else int(rng.integers(1, 8))
        cols = rng.integers(0, N_GENES, size=k)  # may repeat: duplicates
        indices.extend(cols[::-1])  # and unsorted
        data.extend(rng.integers(1, 5, size=k))
        indptr.append(indptr[-1] + k)
    csr = sp.csr_matrix(
        (np.array(data, np.float32), np.array(indices, np.int32), np.array(indptr, np.int32)),
        shape=(N_CELLS, N_GENES),
    )
    assert not csr.has_canonical_format
    return csr, csr.toarray()  # toarray sums duplicates


def _indices(batches) -> list[np.ndarray]:
    return [b["index"].numpy() for b in batches]


def _assert_same_batch(a: dict, b: dict) -> None:
    assert torch.equal(a["index"], b["index"])
    assert torch.equal(a["x"], b["x"])
    assert a["obs"].keys() == b["obs"].keys() == a["mask"].keys()
    for col in a["obs"]:
        assert torch.equal(a["obs"][col], b["obs"][col])
        assert torch.equal(a["mask"][col], b["mask"][col])


def test_exported_from_engine_data():
    assert engine.data.CellBatches is CellBatches


def test_same_seed_and_epoch_repeat_the_order_and_other_epochs_or_seeds_differ():
    cells = CellBatches(_adata(_dense_counts()))
    first = _indices(cells.batches(8, seed=3, epoch=2))
    again = _indices(cells.batches(8, seed=3, epoch=2))
    assert len(first) == len(again) == 5
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    order = cells.epoch_order(seed=3, epoch=2).numpy()
    np.testing.assert_array_equal(np.concatenate(first), order)
    assert not np.array_equal(cells.epoch_order(seed=3, epoch=3).numpy(), order)
    assert not np.array_equal(cells.epoch_order(seed=4, epoch=2).numpy(), order)
    np.testing.assert_array_equal(
        cells.epoch_order(shuffle=False, seed=3, epoch=2).numpy(), np.arange(N_CELLS)
    )


@pytest.mark.parametrize("batch_size", [1, 5, 10, 37, 64])
def test_every_cell_once_per_epoch(batch_size):
    cells = CellBatches(_adata(_dense_counts()))
    batches = _indices(cells.batches(batch_size, seed=1))
    assert len(batches) == cells.n_batches(batch_size) == -(-N_CELLS // batch_size)
    np.testing.assert_array_equal(np.sort(np.concatenate(batches)), np.arange(N_CELLS))
    assert all(len(b) == batch_size for b in batches[:-1])
    assert len(batches[-1]) == N_CELLS - batch_size * (len(batches) - 1)


@pytest.mark.parametrize("batch_size", [2, 4, 6, 12, 18, 36])
def test_a_one_cell_tail_joins_the_batch_before_it(batch_size):
    """37 cells leave one cell over at these sizes; BatchNorm cannot train on a batch of one."""
    cells = CellBatches(_adata(_dense_counts()))
    batches = _indices(cells.batches(batch_size, seed=1))
    assert len(batches) == cells.n_batches(batch_size) == N_CELLS // batch_size
    assert [len(b) for b in batches] == [batch_size] * (len(batches) - 1) + [batch_size + 1]
    np.testing.assert_array_equal(np.sort(np.concatenate(batches)), np.arange(N_CELLS))
    resumed = _indices(cells.batches(batch_size, seed=1, first_batch=len(batches) - 1))
    np.testing.assert_array_equal(resumed[0], batches[-1])


def test_one_cell_alone_is_still_one_batch():
    cells = CellBatches(ad.AnnData(np.ones((1, 3), dtype=np.float32)))
    assert [len(b) for b in _indices(cells.batches(8))] == [1] and cells.n_batches(8) == 1


@pytest.mark.parametrize("batch_size", [1, 5, 10, 37, 64])
def test_drop_last_keeps_only_full_batches_of_distinct_cells(batch_size):
    cells = CellBatches(_adata(_dense_counts()))
    batches = _indices(cells.batches(batch_size, seed=1, drop_last=True))
    assert len(batches) == cells.n_batches(batch_size, drop_last=True) == N_CELLS // batch_size
    assert all(len(b) == batch_size for b in batches)
    seen = np.concatenate(batches) if batches else np.array([], dtype=np.int64)
    assert len(np.unique(seen)) == len(seen) == batch_size * (N_CELLS // batch_size)


def test_batch_size_below_one_is_refused():
    cells = CellBatches(_adata(_dense_counts()))
    with pytest.raises(ValueError, match="batch_size"):
        next(cells.batches(0))


@pytest.mark.parametrize("layout", ["csr", "csc", "csr_array"])
def test_sparse_and_dense_give_equal_batches(layout):
    csr, dense = _messy_csr()
    sparse_x = {"csr": csr, "csc": csr.tocsc(), "csr_array": sp.csr_array(csr)}[layout]
    obs = dict(categorical=["kind", "donor"], continuous=["age"])
    from_sparse = CellBatches(_adata(sparse_x), **obs)
    from_dense = CellBatches(_adata(dense), **obs)
    assert from_sparse.is_sparse and not from_dense.is_sparse
    for drop_last in (False, True):
        pairs = zip(
            from_sparse.batches(6, seed=7, epoch=1, drop_last=drop_last),
            from_dense.batches(6, seed=7, epoch=1, drop_last=drop_last),
            strict=True,
        )
        for a, b in pairs:
            _assert_same_batch(a, b)
            np.testing.assert_array_equal(a["x"].numpy(), dense[a["index"].numpy()])
    empty_rows = from_sparse.take(torch.tensor([1, 2, 30]))["x"]
    assert torch.count_nonzero(empty_rows) == 0


def test_sparse_input_is_not_modified():
    csr, _ = _messy_csr()
    before = (csr.data.copy(), csr.indices.copy(), csr.indptr.copy())
    adata = _adata(csr)
    CellBatches(adata)
    for array, original in zip((adata.X.data, adata.X.indices, adata.X.indptr), before):
        np.testing.assert_array_equal(array, original)


def test_take_returns_the_rows_asked_for_including_repeats():
    csr, dense = _messy_csr()
    cells = CellBatches(_adata(csr), categorical=["kind"], continuous=["age"])
    index = torch.tensor([36, 0, 5, 5, 2])
    batch = cells.take(index)
    assert torch.equal(batch["index"], index)
    assert batch["x"].shape == (5, N_GENES) and batch["x"].dtype == torch.float32
    np.testing.assert_array_equal(batch["x"].numpy(), dense[index.numpy()])
    codes = pd.Categorical(_obs(N_CELLS)["kind"]).codes[index.numpy()]
    np.testing.assert_array_equal(batch["obs"]["kind"].numpy(), codes)
    assert cells.take(torch.tensor([], dtype=torch.long))["x"].shape == (0, N_GENES)


@pytest.mark.parametrize("as_tensor", [False, True])
def test_subsets_by_mask_or_indices_cover_only_those_cells(as_tensor):
    cells = CellBatches(_adata(_dense_counts()))
    train = np.zeros(N_CELLS, dtype=bool)
    train[np.random.default_rng(5).choice(N_CELLS, size=25, replace=False)] = True
    chosen = {
        "train mask": (train, np.flatnonzero(train)),
        "validation mask": (~train, np.flatnonzero(~train)),
        "index array": (np.array([30, 4, 17, 8]), np.array([4, 8, 17, 30])),
    }
    for subset, expected in chosen.values():
        subset = torch.as_tensor(subset) if as_tensor else subset
        got = np.concatenate(_indices(cells.batches(4, subset, seed=2)))
        np.testing.assert_array_equal(np.sort(got), expected)
        # 25 training cells make 6 batches: the one-cell tail joins the sixth
        assert cells.n_batches(4, subset) == {25: 6, 12: 3, 4: 1}[len(expected)]


def test_mask_of_wrong_length_is_refused():
    cells = CellBatches(_adata(_dense_counts()))
    with pytest.raises(ValueError, match="36 entries for 37 cells"):
        cells.cell_index(np.ones(N_CELLS - 1, dtype=bool))


@pytest.mark.parametrize("fraction", [0.0, 0.2, 0.5])
def test_split_is_disjoint_covering_and_seeded(fraction):
    cells = CellBatches(_adata(_dense_counts()))
    train, validation = cells.split(fraction, seed=4)
    n_val = round(N_CELLS * fraction)
    assert len(validation) == n_val and len(train) == N_CELLS - n_val
    assert not set(train.tolist()) & set(validation.tolist())
    everyone = torch.cat([train, validation]).sort().values
    np.testing.assert_array_equal(everyone.numpy(), np.arange(N_CELLS))
    again = cells.split(fraction, seed=4)
    assert torch.equal(again[0], train) and torch.equal(again[1], validation)


def test_split_seeds_differ_and_bad_fractions_are_refused():
    cells = CellBatches(_adata(_dense_counts()))
    assert not torch.equal(cells.split(0.3, seed=0)[1], cells.split(0.3, seed=1)[1])
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match="validation_fraction"):
            cells.split(bad)


def test_categorical_columns_become_codes_with_missing_as_minus_one():
    adata = _adata(_dense_counts())
    cells = CellBatches(adata, categorical=["kind", "donor"])
    assert cells.obs_columns == ["kind", "donor"]
    assert cells.categories == {"kind": ["b", "a", "c"], "donor": ["d1", "d2"]}
    batch = cells.take(cells.cell_index())
    kind = batch["obs"]["kind"].numpy()
    code_of = {"b": 0, "a": 1, "c": 2}
    expected = [code_of.get(value, -1) for value in adata.obs["kind"].astype(object)]
    np.testing.assert_array_equal(kind, expected)
    assert kind[3] == kind[10] == -1
    present = adata.obs["kind"].notna().to_numpy()
    np.testing.assert_array_equal(batch["mask"]["kind"].numpy(), present)
    donors = np.array(cells.categories["donor"])[batch["obs"]["donor"].numpy()]
    np.testing.assert_array_equal(donors, adata.obs["donor"].to_numpy())
    assert batch["mask"]["donor"].all()
    assert batch["obs"]["kind"].dtype == torch.long


def test_continuous_columns_keep_values_and_mask_missing():
    adata = _adata(_dense_counts())
    cells = CellBatches(adata, continuous=["age"])
    batch = cells.take(cells.cell_index())
    age, present = batch["obs"]["age"], batch["mask"]["age"]
    assert age.dtype == torch.float32 and present.dtype == torch.bool
    expected_present = adata.obs["age"].notna().to_numpy()
    assert (~expected_present).sum() == 3
    np.testing.assert_array_equal(present.numpy(), expected_present)
    given = adata.obs["age"].to_numpy()
    np.testing.assert_allclose(age.numpy()[expected_present], given[expected_present], rtol=1e-6)
    assert torch.all(age[~present] == 0)


def test_unknown_obs_column_names_it_and_lists_the_available_ones():
    with pytest.raises(InputError) as err:
        CellBatches(_adata(_dense_counts()), categorical=["tissue"])
    message = str(err.value)
    assert "column tissue is not in the cell annotations" in message
    assert all(col in message for col in ("kind", "age", "donor"))


def test_continuous_column_with_strings_is_an_input_error():
    with pytest.raises(InputError, match="'donor'.*non-numeric.*categorical"):
        CellBatches(_adata(_dense_counts()), continuous=["donor"])


def test_unknown_layer_is_an_input_error():
    with pytest.raises(InputError, match="layer raw is not in the data; available layers: none"):
        CellBatches(_adata(_dense_counts()), layer="raw")


def test_genes_missing_from_the_data_are_named():
    with pytest.raises(InputError, match="2 of the 3 genes in the gene list are not in the data: CD3E, MS4A1;"):
        CellBatches(_adata(_dense_counts()), genes=["g1", "CD3E", "MS4A1"])


def test_an_empty_gene_list_says_so():
    with pytest.raises(InputError, match="^the gene list is empty, so the model would have no input"):
        CellBatches(_adata(_dense_counts()), genes=[])


@pytest.mark.parametrize("sparse", [False, True])
def test_non_finite_values_in_the_matrix_used_are_named(sparse):
    x = _dense_counts()
    adata = _adata(sp.csr_matrix(x) if sparse else x.copy())
    counts = x.copy()
    counts[6, 4] = np.nan
    adata.layers["counts"] = sp.csr_matrix(counts) if sparse else counts
    CellBatches(adata)  # X itself is finite
    CellBatches(adata, layer="counts", genes=["g0", "g1"])  # so are the genes chosen
    with pytest.raises(InputError) as err:
        CellBatches(adata, layer="counts")
    assert str(err.value) == (
        "layer counts: cell cell6, feature g4 holds NaN (not a number); 1 value in 1 cell is not finite. "
        "Remove or replace them (for example with 0) before building the model."
    )


def test_infinite_continuous_value_is_an_input_error():
    adata = _adata(_dense_counts())
    adata.obs.loc["cell8", "age"] = np.inf
    with pytest.raises(InputError, match="column age holds an infinite value in 1 cell \\(first: cell cell8\\)"):
        CellBatches(adata, continuous=["age"])


@pytest.mark.parametrize("sparse", [False, True])
def test_layer_and_genes_options_pick_the_matrix_and_columns(sparse):
    x = _dense_counts()
    adata = _adata(sp.csr_matrix(x) if sparse else x)
    counts = x * 10 + 1
    adata.layers["counts"] = sp.csr_matrix(counts) if sparse else counts
    genes = ["g7", "g0", "g3"]
    cells = CellBatches(adata, layer="counts", genes=genes)
    assert (cells.n_cells, cells.n_genes) == (N_CELLS, 3)
    assert cells.gene_names == genes
    batch = cells.take(torch.tensor([4, 0, 12]))
    np.testing.assert_array_equal(batch["x"].numpy(), counts[[4, 0, 12]][:, [7, 0, 3]])
    assert CellBatches(adata, layer="counts").n_genes == N_GENES
    plain = CellBatches(adata, genes=["g2"]).take(torch.arange(N_CELLS))["x"]
    np.testing.assert_array_equal(plain.numpy(), x[:, [2]])


def test_dtype_option_sets_x_and_continuous_dtype():
    cells = CellBatches(_adata(_dense_counts()), continuous=["age"], dtype=torch.float64)
    batch = cells.take(torch.tensor([1, 2]))
    assert batch["x"].dtype == batch["obs"]["age"].dtype == torch.float64


@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("world_size", [2, 3])
def test_ranks_together_see_exactly_the_single_process_batches(world_size, drop_last):
    csr, _ = _messy_csr()
    cells = CellBatches(_adata(csr), categorical=["kind"], continuous=["age"])
    kwargs = dict(seed=9, epoch=4, drop_last=drop_last)
    single = list(cells.batches(8, **kwargs))
    per_rank = [
        list(cells.batches(8, rank=r, world_size=world_size, **kwargs)) for r in range(world_size)
    ]
    assert all(len(shards) == len(single) for shards in per_rank)
    for step, whole in enumerate(single):
        shards = [per_rank[r][step] for r in range(world_size)]
        ids = [s["index"].tolist() for s in shards]
        assert sum(len(i) for i in ids) == len(whole["index"])
        assert sorted(sum(ids, [])) == sorted(whole["index"].tolist())
        for r in range(world_size):
            for other in range(r + 1, world_size):
                assert not set(ids[r]) & set(ids[other])
            _assert_same_batch(shards[r], cells.take(whole["index"][r::world_size]))
        if len(whole["index"]) >= world_size:
            assert max(map(len, ids)) - min(map(len, ids)) <= 1


def test_accelerator_gather_matches_scipy_on_cpu_tensors():
    """The torch scatter used on GPUs gives scipy's rows (run here on CPU tensors)."""
    from engine.data.batches import _TorchSparseRows

    matrix = sp.random(50, 30, density=0.2, format="csr", dtype=np.float32, random_state=3)
    matrix[7] = 0  # an empty row
    matrix.eliminate_zeros()
    rows = torch.tensor([7, 0, 49, 7, 12])
    gather = _TorchSparseRows(
        indptr=torch.as_tensor(matrix.indptr.astype(np.int64)),
        indices=torch.as_tensor(matrix.indices.astype(np.int32)),
        values=torch.as_tensor(matrix.data),
        n_cols=30,
    )
    assert torch.equal(gather.dense_rows(rows), torch.from_numpy(matrix[rows.numpy()].toarray()))

"""Cells resident on one device, served as shuffled batches of index tensors.

Models never see a DataLoader: the whole matrix (sparse stays sparse) and the encoded obs columns
live on the training device, an epoch is one permutation of cell indices, and each batch is a
gather on the device. No per-cell Python, no collate.
"""
from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from anndata import AnnData

from engine.data.errors import InputError
from engine.data.finite import require_finite
from engine.training.devices import resolve_device


@dataclass(frozen=True)
class _TorchSparseRows:
    """A CSR matrix as three accelerator tensors; rows are densified one batch at a time."""

    indptr: torch.Tensor  # int64 (n_cells + 1)
    indices: torch.Tensor  # int32 (nnz)
    values: torch.Tensor  # float (nnz)
    n_cols: int

    def dense_rows(self, rows: torch.Tensor) -> torch.Tensor:
        starts = self.indptr[rows]
        lengths = self.indptr[rows + 1] - starts
        n_rows = rows.shape[0]
        # One scalar read-back per batch: the size of the gathered entries.
        total = int(lengths.sum())
        row_of_entry = torch.repeat_interleave(
            torch.arange(n_rows, device=rows.device), lengths, output_size=total
        )
        first_entry_of_row = torch.cumsum(lengths, 0) - lengths
        offset_in_row = torch.arange(total, device=rows.device) - first_entry_of_row[row_of_entry]
        source = starts[row_of_entry] + offset_in_row
        out = torch.zeros(n_rows, self.n_cols, dtype=self.values.dtype, device=rows.device)
        out[row_of_entry, self.indices[source].long()] = self.values[source]
        return out


@dataclass(frozen=True)
class _HostSparseRows:
    """On the CPU the scipy CSR already is device-resident; its compiled row gather is ~6x
    faster than the scatter above (measured in bench/batches.py's development)."""

    matrix: sp.csr_matrix
    dtype: torch.dtype

    def dense_rows(self, rows: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.matrix[rows.numpy()].toarray()).to(self.dtype)


def _sparse_rows(csr: sp.csr_matrix, device: torch.device, dtype: torch.dtype):
    if device.type == "cpu":
        return _HostSparseRows(csr, dtype)
    return _TorchSparseRows(
        indptr=torch.as_tensor(csr.indptr.astype(np.int64), device=device),
        indices=torch.as_tensor(csr.indices.astype(np.int32, copy=False), device=device),
        values=torch.as_tensor(csr.data, device=device).to(dtype),
        n_cols=csr.shape[1],
    )


class CellBatches:
    """Expression and encoded obs columns of an AnnData, on a device, in shuffled index batches.

    `categorical` columns become integer codes (-1 where missing) with a presence mask;
    `continuous` columns become floats (0 where missing) with a presence mask. `categories` fixes
    a column's categories in code order (a saved model's): values outside them are missing, with a
    warning that names them. With `absent_columns_missing`, a column the data lacks is missing in
    every cell (a model loaded on unlabelled cells) instead of an error. A batch is a dict:
    ``{"index": LongTensor (B,), "x": FloatTensor (B, G), "obs": {col: tensor (B,)},
    "mask": {col: BoolTensor (B,)}}``.
    """

    def __init__(
        self,
        adata: AnnData,
        *,
        categorical: Sequence[str] = (),
        continuous: Sequence[str] = (),
        layer: str | None = None,
        genes: Sequence[str] | None = None,
        device: str | torch.device | None = "cpu",
        dtype: torch.dtype = torch.float32,
        categories: Mapping[str, Sequence[str]] | None = None,
        absent_columns_missing: bool = False,
    ):
        self.device = resolve_device(device)
        self.dtype = dtype
        matrix = self._matrix(adata, layer, genes)
        self.n_cells, self.n_genes = matrix.shape
        self.gene_names = list(adata.var_names if genes is None else genes)
        self.is_sparse = sp.issparse(matrix)
        if self.is_sparse:
            csr = sp.csr_matrix(matrix)
            if not csr.has_canonical_format:
                # sum_duplicates rewrites the arrays in place, and csr may share them with adata.
                csr = csr.copy()
                csr.sum_duplicates()
            self._sparse = _sparse_rows(csr, self.device, dtype)
            self._dense = None
        else:
            self._sparse = None
            self._dense = torch.as_tensor(np.asarray(matrix), device=self.device).to(dtype)
        self.categories: dict[str, list[str]] = {}
        self._obs: dict[str, torch.Tensor] = {}
        self._mask: dict[str, torch.Tensor] = {}
        fixed = dict(categories or {})
        for column in categorical:
            if absent_columns_missing and column not in adata.obs.columns:
                self.categories[column] = [str(c) for c in fixed.get(column, [])]
                self._set_missing(column, torch.long, -1)
            else:
                self._encode_categorical(adata, column, fixed.get(column))
        for column in continuous:
            if absent_columns_missing and column not in adata.obs.columns:
                self._set_missing(column, dtype, 0)
            else:
                self._encode_continuous(adata, column)

    @staticmethod
    def _matrix(adata: AnnData, layer: str | None, genes: Sequence[str] | None):
        if layer is not None and layer not in adata.layers:
            raise InputError(
                f"layer {layer} is not in the data; available layers: {', '.join(adata.layers) or 'none'}. "
                "Pick one of those, or leave the layer unset to use X."
            )
        matrix = adata.layers[layer] if layer is not None else adata.X
        if matrix is None or 0 in matrix.shape:
            raise InputError(f"the expression matrix is empty (shape {adata.shape}); load cells first")
        var_names = adata.var_names
        if genes is not None:
            if len(genes) == 0:
                raise InputError(
                    "the gene list is empty, so the model would have no input; give at least one "
                    "gene, or no gene list to use every gene in the data"
                )
            missing = [g for g in genes if g not in adata.var_names]
            if missing:
                shown = ", ".join(map(str, missing[:20])) + (f" and {len(missing) - 20} more" if len(missing) > 20 else "")
                raise InputError(
                    f"{len(missing)} of the {len(genes)} genes in the gene list are not in the data: {shown}; "
                    "pick genes the data has (check symbols vs Ensembl ids)"
                )
            matrix = matrix[:, adata.var_names.get_indexer(genes)]
            var_names = pd.Index(genes)
        # The model trains on exactly this matrix (the layer, if one is named), so check it here.
        require_finite(
            matrix, adata.obs_names, var_names, where=f"layer {layer}" if layer is not None else "X",
            then="before building the model",
        )
        return matrix

    def _check_column(self, adata: AnnData, column: str) -> pd.Series:
        if column not in adata.obs.columns:
            raise InputError(
                f"the column {column} is not in the cell annotations; available columns: "
                f"{', '.join(map(str, adata.obs.columns)) or 'none'}"
            )
        return adata.obs[column]

    def _set_missing(self, column: str, dtype: torch.dtype, fill: int) -> None:
        self._obs[column] = torch.full((self.n_cells,), fill, dtype=dtype, device=self.device)
        self._mask[column] = torch.zeros(self.n_cells, dtype=torch.bool, device=self.device)

    def _encode_categorical(self, adata: AnnData, column: str, fixed: Sequence[str] | None = None) -> None:
        series = self._check_column(adata, column)
        if fixed is None:
            values = pd.Categorical(series)
        else:
            text = series.astype(object).where(series.notna())
            text = text.map(lambda v: v if pd.isna(v) else str(v))
            values = pd.Categorical(text, categories=[str(c) for c in fixed])
            unseen = sorted(set(text.dropna()) - set(values.categories))
            if unseen:
                n = int(text.isin(unseen).sum())
                warnings.warn(
                    f"column {column} holds {len(unseen)} {'class' if len(unseen) == 1 else 'classes'} the model "
                    f"was not trained on ({', '.join(unseen[:10])}{' ...' if len(unseen) > 10 else ''}); "
                    f"the model treats {'that cell' if n == 1 else f'those {n:,} cells'} as having no {column} value",
                    UserWarning,
                    stacklevel=4,
                )
        codes = torch.as_tensor(np.asarray(values.codes, dtype=np.int64), device=self.device)
        self.categories[column] = [str(c) for c in values.categories]
        self._obs[column] = codes
        self._mask[column] = codes >= 0

    def _encode_continuous(self, adata: AnnData, column: str) -> None:
        series = self._check_column(adata, column)
        try:
            values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError) as err:
            raise InputError(
                f"the annotation column '{column}' is used as numbers but holds non-numeric values "
                f"(for example {series.iloc[0]}); use it as a categorical column instead"
            ) from err
        present = ~np.isnan(values)
        infinite = np.isinf(values)
        if infinite.any():
            n = int(infinite.sum())
            raise InputError(
                f"column {column} holds an infinite value in {n} {'cell' if n == 1 else 'cells'} "
                f"(first: cell {adata.obs_names[np.argmax(infinite)]}); leave such cells empty or give them a number"
            )
        self._obs[column] = torch.as_tensor(np.where(present, values, 0.0), device=self.device).to(
            self.dtype
        )
        self._mask[column] = torch.as_tensor(present, device=self.device)

    @property
    def obs_columns(self) -> list[str]:
        return list(self._obs)

    def category_counts(self, column: str) -> list[int]:
        """Cells per category of a categorical column, in code order (missing cells not counted)."""
        codes = self._obs[column]
        return torch.bincount(codes[codes >= 0], minlength=len(self.categories[column])).tolist()

    def cell_index(self, cells: np.ndarray | torch.Tensor | None = None) -> torch.Tensor:
        """Indices of the chosen cells on the device: all cells, a boolean mask, or indices."""
        if cells is None:
            return torch.arange(self.n_cells, device=self.device)
        cells = torch.as_tensor(np.asarray(cells) if not torch.is_tensor(cells) else cells)
        if cells.dtype == torch.bool:
            if cells.shape[0] != self.n_cells:
                raise ValueError(f"cell mask has {cells.shape[0]} entries for {self.n_cells} cells")
            cells = torch.nonzero(cells).flatten()
        return cells.to(device=self.device, dtype=torch.long)

    def take(self, index: torch.Tensor) -> dict:
        """The batch for these cell indices (a long tensor on the device)."""
        x = self._dense[index] if self._sparse is None else self._sparse.dense_rows(index)
        return {
            "index": index,
            "x": x,
            "obs": {name: values[index] for name, values in self._obs.items()},
            "mask": {name: present[index] for name, present in self._mask.items()},
        }

    def epoch_order(self, cells=None, *, shuffle: bool = True, seed: int = 0, epoch: int = 0) -> torch.Tensor:
        """The cells of one epoch in their visiting order; depends only on (seed, epoch)."""
        index = self.cell_index(cells)
        if not shuffle:
            return index
        generator = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch))
        order = torch.randperm(index.shape[0], generator=generator).to(self.device)
        return index[order]

    def n_batches(self, batch_size: int, cells=None, *, drop_last: bool = False) -> int:
        return _count(self.cell_index(cells).shape[0], batch_size, drop_last)

    def batches(
        self,
        batch_size: int,
        cells=None,
        *,
        shuffle: bool = True,
        seed: int = 0,
        epoch: int = 0,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
        first_batch: int = 0,
    ) -> Iterator[dict]:
        """Yield the batches of one epoch; every chosen cell exactly once.

        A last batch of a single cell joins the batch before it (that one is `batch_size + 1`
        cells): BatchNorm cannot train on one cell, and no cell is left out. `first_batch` starts the epoch later without gathering the batches skipped (a resumed
        run, or a tick that begins mid-pass).

        With `world_size > 1` each global batch of `batch_size` cells is split between ranks
        (rank r takes positions r, r + world_size, ...), so the ranks together see exactly the
        batches a single process would.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        order = self.epoch_order(cells, shuffle=shuffle, seed=seed, epoch=epoch)
        count = _count(order.shape[0], batch_size, drop_last)
        for batch in range(first_batch, count):
            start = batch * batch_size
            last = batch == count - 1 and not drop_last  # the last batch takes every cell left
            global_batch = order[start:] if last else order[start : start + batch_size]
            yield self.take(global_batch[rank::world_size])

    def split(self, validation_fraction: float, *, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """A seeded train / validation split of all cells, as two index tensors."""
        if not 0.0 <= validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
        order = self.epoch_order(seed=seed, epoch=-1)
        n_val = int(round(self.n_cells * validation_fraction))
        return order[n_val:].sort().values, order[:n_val].sort().values


def _count(n_cells: int, batch_size: int, drop_last: bool) -> int:
    """Batches in one pass over `n_cells`: a one-cell tail is merged, not a batch of its own."""
    full, tail = divmod(n_cells, batch_size)
    if drop_last or (tail == 1 and full > 0):
        return full
    return full + (tail > 0)

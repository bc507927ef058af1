"""What colours the cells: an obs column, one gene's expression from X, or one latent dimension."""
from __future__ import annotations

from dataclasses import dataclass
from difflib import get_close_matches

import colorcet as cc
import numpy as np
import pandas as pd
from anndata import AnnData
from scipy import sparse

KINDS = ("obs", "gene", "latent")
MISSING = "n/a"
MISSING_COLOR = "#bdbdbd"


@dataclass(frozen=True)
class Coloring:
    """Per-cell values plus, for categories, a colour per category (None means a colormap)."""

    kind: str
    name: str
    values: pd.Categorical | np.ndarray
    colors: dict[str, str] | None

    @property
    def categorical(self) -> bool:
        return self.colors is not None

    def counts(self) -> pd.DataFrame:
        """Category, colour and number of cells, in category order: the legend's rows."""
        counts = pd.Series(self.values).value_counts(sort=False)
        return pd.DataFrame(
            {"category": counts.index.astype(str), "color": list(self.colors.values()), "cells": counts.to_numpy()}
        )


def color_values(adata: AnnData, kind: str, name, embedding_key: str | None) -> Coloring:
    """Look up ``name`` of ``kind``; latent ``name`` is a dimension of ``embedding_key`` or 'KEY:DIM'."""
    if kind == "obs":
        return _obs(adata, str(name))
    if kind == "gene":
        gene = gene_name(adata, str(name))
        return Coloring("gene", gene, _gene(adata, gene), None)
    if kind == "latent":
        key, dim = _latent_address(name, embedding_key)
        return Coloring("latent", f"{key}:{dim}", _latent(adata, key, dim), None)
    raise ValueError(f"Cells can be coloured by one of {', '.join(KINDS)}, not {kind}.")


def default_coloring(adata: AnnData) -> Coloring:
    """The first categorical obs column, else the first obs column, else every cell alike."""
    obs = adata.obs
    categorical = [c for c in obs.columns if isinstance(obs[c].dtype, pd.CategoricalDtype)]
    if categorical or len(obs.columns):
        return _obs(adata, (categorical or list(obs.columns))[0])
    return _categories(pd.Categorical.from_codes(np.zeros(adata.n_obs, dtype=np.int8), ["cells"]), "", None)


def _obs(adata: AnnData, column: str) -> Coloring:
    if column not in adata.obs.columns:
        raise ValueError(f"The cell annotations have no column {column}; choose one from the list.")
    series = adata.obs[column]
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        return Coloring("obs", column, series.to_numpy(dtype=np.float32, na_value=np.nan), None)
    values = pd.Categorical(series)
    if values.isna().any():
        values = values.add_categories([MISSING]).fillna(MISSING)
    return _categories(values, column, adata.uns.get(f"{column}_colors"))


def _categories(values: pd.Categorical, column: str, stored) -> Coloring:
    """Scanpy's stored colours when they fit the categories, else glasbey; missing cells grey."""
    names = [str(c) for c in values.categories]
    palette = list(stored) if stored is not None and len(stored) == len(names) else None
    if palette is None:
        glasbey = cc.palette["glasbey_category10"]
        palette = [glasbey[i % len(glasbey)] for i in range(len(names))]
    colors = {n: (MISSING_COLOR if n == MISSING else str(c)) for n, c in zip(names, palette)}
    return Coloring("obs", column, values.rename_categories(names), colors)


def gene_name(adata: AnnData, typed: str) -> str:
    """The gene the user means: as typed, else the one gene that differs only in case.

    An unknown name is explained with the closest names among the measured genes, since a gene of
    a published set (CD14 in a marker list) is often simply not among the genes kept in the data.
    """
    typed = typed.strip()
    if typed in adata.var_names:
        return typed
    by_case = {}
    for gene in adata.var_names:
        by_case.setdefault(gene.upper(), []).append(gene)
    if len(by_case.get(typed.upper(), [])) == 1:
        return by_case[typed.upper()][0]
    close = [by_case[g][0] for g in get_close_matches(typed.upper(), list(by_case), n=5, cutoff=0.6)]
    hint = f" Close matches: {', '.join(close)}." if close else " No gene has a similar name."
    raise ValueError(f"{typed or 'That name'} is not among the {adata.n_vars:,} genes measured in these cells."
                     f"{hint} Check the spelling, or pick a gene from the suggestions.")


def _gene(adata: AnnData, gene: str) -> np.ndarray:
    """One column of X, densified alone."""
    column = adata.X[:, adata.var_names.get_loc(gene)]
    column = column.toarray() if sparse.issparse(column) else np.asarray(column)
    return column.ravel().astype(np.float32)


def _latent_address(name, embedding_key: str | None) -> tuple[str, int]:
    text = str(name)
    key, _, dim = text.rpartition(":") if ":" in text else (embedding_key, "", text)
    if not key:
        raise ValueError("Choose an embedding before colouring by one of its dimensions.")
    try:
        return key, int(dim)
    except ValueError:
        raise ValueError(f"A dimension is a whole number such as 0 or 3, not {dim}.") from None


def _latent(adata: AnnData, key: str, dim: int) -> np.ndarray:
    if key not in adata.obsm:
        raise ValueError(f"There is no embedding called {key}; choose one from the list.")
    rep = np.asarray(adata.obsm[key])
    if not 0 <= dim < rep.shape[1]:
        raise ValueError(f"{key} has dimensions 0 to {rep.shape[1] - 1}, not {dim}; choose one in that range.")
    return rep[:, dim].astype(np.float32)

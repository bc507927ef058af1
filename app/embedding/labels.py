"""Writing a selection's name into a categorical obs column without touching other cells."""
from __future__ import annotations

import numpy as np
import pandas as pd


def write_label(obs: pd.DataFrame, cells: np.ndarray, name: str, column: str) -> None:
    """Set ``obs[column]`` to ``name`` for ``cells``; others keep their value, or NaN in a new column."""
    name, column = name.strip(), column.strip()
    if not name:
        raise ValueError("Give the label a name.")
    if not column:
        raise ValueError("Name the annotation column the labels go into.")
    if column in obs.columns:
        current = obs[column]
        if pd.api.types.is_numeric_dtype(current.dtype) and not isinstance(current.dtype, pd.CategoricalDtype):
            raise ValueError(f"The annotation column {column} holds numbers; choose another column for labels.")
        values = pd.Categorical(current)
    else:
        values = pd.Categorical.from_codes(np.full(len(obs), -1), categories=pd.Index([], dtype=object))
    if name not in values.categories:
        values = values.add_categories([name])
    codes = values.codes.astype(np.int32)
    codes[cells] = values.categories.get_loc(name)
    obs[column] = pd.Categorical.from_codes(codes, categories=values.categories)

"""Delimited text matrices (.csv/.tsv/.txt, optionally gzipped) read into a float32 AnnData.

The first column holds row names and the first line column names; the header may leave out the
corner label (as R's write.csv does), so it may have one name fewer than the data rows have fields.
"""
from pathlib import Path

import numpy as np
import pandas as pd
from anndata import AnnData

from engine.data.errors import InputError
from engine.data.validate import unreadable

SEPARATORS = {".csv": ",", ".tsv": "\t", ".txt": "\t"}


def read_table(path: Path, suffix: str, *, sep: str | None = None, transpose: bool = False) -> AnnData:
    """Read a cells x features table (features x cells with `transpose=True`).

    `suffix` is the extension without `.gz`; it picks the separator unless `sep` is given.
    """
    sep = SEPARATORS[suffix] if sep is None else sep
    header, frame = _parse(path, sep)
    if frame.shape[1] == 0:
        raise InputError(
            f"{path}: every line has a single field when split on {sep!r}; expected a row name "
            "followed by numbers. Pass the separator the file uses, e.g. sep=',' or sep='\\t'."
        )
    names = _column_names(path, header, frame.shape[1])
    frame.columns = names
    _check_numeric(path, frame)
    values = frame.to_numpy(dtype=np.float32)
    _check_complete(path, frame, values)
    rows = pd.Index(frame.index.astype(str).to_numpy(), dtype=str)
    columns = pd.Index(names, dtype=str)
    if transpose:
        return AnnData(np.ascontiguousarray(values.T), obs=pd.DataFrame(index=columns),
                       var=pd.DataFrame(index=rows))
    return AnnData(values, obs=pd.DataFrame(index=rows), var=pd.DataFrame(index=columns))


def _parse(path: Path, sep: str) -> tuple[list[str], pd.DataFrame]:
    """Header and body are parsed apart so that repeated column names are not renamed by pandas."""
    options = dict(sep=sep, header=None, keep_default_na=False, compression="infer")
    try:
        header = pd.read_csv(path, nrows=1, dtype=str, **options).iloc[0].tolist()
        frame = pd.read_csv(path, skiprows=1, index_col=0, dtype={0: str}, na_values=[""],
                            low_memory=False, **options)
    except pd.errors.EmptyDataError as err:
        raise InputError(
            f"{path}: the table is empty (no data rows below the header); expected one row per "
            "cell, or per feature with transpose=True. Check that the right file was exported."
        ) from err
    except Exception as err:
        raise unreadable(path, f"a table separated by {sep!r}", err) from err
    return header, frame


def _column_names(path: Path, header: list[str], n_columns: int) -> list[str]:
    if len(header) == n_columns + 1:
        return header[1:]
    if len(header) == n_columns:
        return header
    raise InputError(
        f"{path}: the header line has {len(header)} names but data rows have {n_columns + 1} "
        f"fields; expected {n_columns} or {n_columns + 1} names (the first, above the row names, "
        "may be left out). Fix the header line or pass the right sep=."
    )


def _check_numeric(path: Path, frame: pd.DataFrame) -> None:
    for name, column in frame.items():
        if column.dtype.kind in "iuf":
            continue
        as_number = pd.to_numeric(column.astype(str), errors="coerce")
        bad = (as_number.isna() & column.notna()).to_numpy()
        if bad.any():
            row = int(np.argmax(bad))
            raise InputError(
                f"{path}: column {name!r} holds the non-numeric value {column.iloc[row]!r} "
                f"(row {frame.index[row]!r}); expected numbers only, with '.' as the decimal mark. "
                "Move annotations to a separate file and keep only the matrix here."
            )


def _check_complete(path: Path, frame: pd.DataFrame, values: np.ndarray) -> None:
    missing = np.isnan(values)
    if missing.any():
        row, col = np.argwhere(missing)[0]
        raise InputError(
            f"{path}: column {frame.columns[col]!r} has an empty value (row {frame.index[row]!r}); "
            "expected a number in every field. Fill it in (0 for a count) or remove the row."
        )

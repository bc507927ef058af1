"""Checks every reader's result must pass, so each format fails the same clear way."""
from pathlib import Path

import numpy as np
import pandas as pd
from anndata import AnnData

from engine.data.errors import InputError
from engine.data.finite import require_finite

_SHOWN = 5


def unreadable(path: Path, kind: str, err: BaseException) -> InputError:
    """Turn a parser library's exception into a message that names the file and what to do."""
    return InputError(
        f"{path}: cannot read it as {kind} ({type(err).__name__}: {err}). The file may be corrupt, "
        "truncated (an interrupted copy or download) or of another format: check its extension, "
        "then copy or export it again."
    )


def validated(adata: AnnData, path: Path, *, make_unique: bool) -> AnnData:
    """Return `adata` once its matrix is numeric, finite and non-empty and its names are unique."""
    _check_matrix(adata, path)
    require_finite(
        adata.X, adata.obs_names, adata.var_names, where=str(path),
        feature_word="marker" if path.suffix.lower() == ".fcs" else "feature",
        then="and load the file again",
    )
    _check_unique(adata, path, axis="obs", what="cell", make_unique=make_unique)
    _check_unique(adata, path, axis="var", what="feature", make_unique=make_unique)
    return adata


def _check_matrix(adata: AnnData, path: Path) -> None:
    if adata.X is None:
        raise InputError(
            f"{path}: the file has no X matrix; expected cells x features in X. If the values "
            "sit in a layer, set adata.X = adata.layers[name] and save the file again."
        )
    if np.dtype(adata.X.dtype).kind not in "biuf":
        raise InputError(
            f"{path}: X holds non-numeric values (dtype {adata.X.dtype}); expected numbers. "
            "Convert X to a numeric dtype and save the file again."
        )
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise InputError(
            f"{path}: the matrix is empty ({adata.n_obs} cells x {adata.n_vars} features); "
            "expected at least one cell and one feature. Check that the right file was exported."
        )


def _check_unique(adata: AnnData, path: Path, *, axis: str, what: str, make_unique: bool) -> None:
    names: pd.Index = getattr(adata, f"{axis}_names")
    if names.is_unique:
        return
    if make_unique:
        getattr(adata, f"{axis}_names_make_unique")()
        return
    duplicated = names[names.duplicated()].unique()
    shown = ", ".join(repr(name) for name in duplicated[:_SHOWN])
    more = f" and {len(duplicated) - _SHOWN} more" if len(duplicated) > _SHOWN else ""
    raise InputError(
        f"{path}: duplicate {what} names: {shown}{more}; expected each {what} name once. "
        "Rename them in the file so that each name appears once. (From Python, engine.read with "
        f"make_unique=True appends -1, -2 to repeats, as AnnData's {axis}_names_make_unique() does.)"
    )

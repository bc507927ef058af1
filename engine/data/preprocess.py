"""Standard preprocessing for the two kinds of data Hanami reads: RNA counts and cytometry.

Both functions follow scanpy's ``copy=`` convention: with ``copy=False`` (the default) the AnnData
given is changed in place and ``None`` is returned; with ``copy=True`` a processed copy is returned
and the argument is left untouched. Inputs are checked before anything is changed, so a call that
raises leaves the AnnData as it was. What was done is recorded in ``uns['hanami_preprocess']`` so
that a result can be traced and, for cytometry, undone by :func:`inverse_cytometry`.
"""
import warnings

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc
import scipy.sparse as sp

from engine.data.errors import InputError
from engine.data.finite import require_finite

RECORD_KEY = "hanami_preprocess"
TRANSFORMS = ("asinh", "logicle", "none")
LOGICLE_DEFAULTS = {"t": 262144.0, "m": 4.5, "w": 0.5, "a": 0.0}
INTEGER_CHECK_ROWS = 10_000


def rna(adata, *, target_sum=1e4, n_top_genes=2000, counts_layer="counts", subset=False, copy=False):
    """Normalise counts to ``target_sum`` per cell, log1p them and flag highly variable genes.

    Counts are read from ``layers[counts_layer]`` when that layer exists (so a file that already
    holds log-normalised ``X`` beside its counts is processed from the counts), otherwise from
    ``X``, which is then kept in ``layers[counts_layer]``. Highly variable genes use scanpy's
    ``seurat`` flavour: it works on the log-normalised values just made and needs no extra
    package, whereas ``seurat_v3`` needs raw counts and scikit-misc's loess. ``n_top_genes`` is
    capped at the number of genes; ``subset=True`` keeps only the highly variable genes.
    """
    if target_sum <= 0:
        raise InputError(f"target_sum must be a positive number of counts per cell, got {target_sum}.")
    if n_top_genes < 1:
        raise InputError(f"n_top_genes must be at least 1, got {n_top_genes}.")
    from_layer = counts_layer in adata.layers
    counts = adata.layers[counts_layer] if from_layer else adata.X
    source = f"layers['{counts_layer}']" if from_layer else "X"
    label = f"layer {counts_layer}" if from_layer else "X"
    if counts is None:
        raise InputError("The AnnData has no X and no counts layer: load a matrix of counts first.")
    require_finite(counts, adata.obs_names, adata.var_names, where=label, feature_word="gene",
                   then="before preprocessing")
    _check_counts(counts, adata, label)
    n_top = min(int(n_top_genes), adata.n_vars)
    # Normalise a new matrix beside the AnnData, so a refusal below leaves the argument as it was.
    work = ad.AnnData(counts.astype(np.float32), obs=pd.DataFrame(index=adata.obs_names),
                      var=pd.DataFrame(index=adata.var_names))
    sc.pp.normalize_total(work, target_sum=target_sum)
    sc.pp.log1p(work)
    _check_variable(work.X, label)
    sc.pp.highly_variable_genes(work, flavor="seurat", n_top_genes=n_top)

    if copy:
        adata = adata.copy()
        counts = adata.layers[counts_layer] if from_layer else adata.X
    adata.layers[counts_layer] = counts
    adata.X = work.X
    adata.uns["log1p"] = work.uns["log1p"]
    adata.uns["hvg"] = work.uns["hvg"]
    for column in work.var.columns:
        adata.var[column] = work.var[column].to_numpy()
    if subset:
        adata._inplace_subset_var(adata.var["highly_variable"].to_numpy())
    adata.uns[RECORD_KEY] = {
        "kind": "rna",
        "counts_from": source,
        "counts_layer": counts_layer,
        "target_sum": float(target_sum),
        "log1p": True,
        "hvg_flavor": "seurat",
        "n_top_genes": n_top,
        "subset": bool(subset),
    }
    return adata if copy else None


def _check_counts(counts, adata, source):
    """Refuse empty or negative counts (naming the first) and warn when values are not whole numbers."""
    if (counts.count_nonzero() if sp.issparse(counts) else np.count_nonzero(counts)) == 0:
        raise InputError(
            f"{source} holds no counts: every value in its {adata.n_obs:,} cells x {adata.n_vars:,} genes "
            "is 0, so there is nothing to normalise and no variable gene to find. Check that the "
            "file holds the counts matrix (not an empty export), or use the layer that does."
        )
    if sp.issparse(counts):
        coo = counts.tocoo()
        negative = coo.data < 0
        if negative.any():
            rows, cols = coo.row[negative], coo.col[negative]
            first = np.lexsort((cols, rows))[0]
            _raise_negative(adata, source, rows[first], cols[first], coo.data[negative][first])
        head = coo.data[coo.row < INTEGER_CHECK_ROWS]
    else:
        counts = np.asarray(counts)
        negative = np.argwhere(counts < 0)
        if len(negative):
            i, j = negative[0]
            _raise_negative(adata, source, i, j, counts[i, j])
        head = counts[:INTEGER_CHECK_ROWS]
    if np.issubdtype(head.dtype, np.floating) and np.any(head != np.round(head)):
        warnings.warn(
            f"{source} holds values that are not whole numbers, so it does not look like raw "
            "counts (already normalised or log-transformed?). RNA preprocessing expects counts: put them in "
            "X or in the counts layer.",
            UserWarning,
            stacklevel=3,
        )


def _raise_negative(adata, source, i, j, value):
    raise InputError(
        f"{source} holds a negative count ({value:g}) at cell '{adata.obs_names[i]}', gene "
        f"'{adata.var_names[j]}', so it does not hold raw counts: it looks already normalised or scaled. "
        "RNA preprocessing needs raw counts (0 or more): load the untransformed counts, or skip this step "
        "if the values are already preprocessed."
    )


def _check_variable(x, source):
    """Highly variable genes rank genes by their spread over cells; refuse when none spreads."""
    if sp.issparse(x):
        spread = (x.max(axis=0) - x.min(axis=0)).toarray()
    else:
        spread = np.ptp(x, axis=0)
    if not np.any(spread > 0):
        cells = "a single cell" if x.shape[0] == 1 else f"{x.shape[0]:,} cells"
        raise InputError(
            f"no gene varies between cells after normalising {source} ({cells}): each of the "
            f"{x.shape[1]:,} genes has the same value in every cell, so no highly variable gene can be chosen. "
            "Check that the matrix holds per-cell counts and not one profile repeated, or load more cells."
        )


def cytometry(adata, *, transform="asinh", cofactor=5.0, logicle_params=None, compensate=True, scale=True,
              copy=False):
    """Compensate, transform and standardise cytometry intensities, in that order.

    Compensation multiplies the spillover channels by the inverse of ``uns['spillover']`` (a
    DataFrame whose index and columns are channel names, matched to ``var['channel']`` when that
    column exists, else to ``var_names``); without a spillover matrix the step is skipped and
    the record says so. ``transform`` is ``'asinh'`` (``asinh(x / cofactor)``, 5 suits mass
    cytometry, about 150 flow), ``'logicle'`` (through flowutils, with ``logicle_params`` keys
    t, m, w, a) or ``'none'``. ``scale`` centres each marker and divides by its standard
    deviation, kept in ``var['mean']`` and ``var['std']`` so that models and
    :func:`inverse_cytometry` can go back.
    """
    if transform not in TRANSFORMS:
        raise InputError(f"transform must be one of {', '.join(TRANSFORMS)}, got '{transform}'.")
    if transform == "asinh" and not cofactor > 0:
        raise InputError(f"cofactor must be positive for the asinh transform, got {cofactor}.")
    if adata.X is None:
        raise InputError("The AnnData has no X: load the cytometry intensities first.")
    x = adata.X.toarray() if sp.issparse(adata.X) else np.asarray(adata.X)
    dtype = np.float64 if x.dtype == np.float64 else np.float32
    x = x.astype(np.float64)
    require_finite(x, adata.obs_names, adata.var_names, where="X", feature_word="marker",
                   then="before preprocessing")
    channels = _channels(adata)
    record = {"kind": "cytometry", "transform": transform, "scaled": bool(scale), "compensated": False}

    if compensate and adata.uns.get("spillover") is None:
        record["compensation_note"] = "skipped: the data has no uns['spillover'] matrix"
    elif compensate:
        names, matrix = _spillover(adata.uns["spillover"], channels)
        columns = _positions(channels, names)
        x[:, columns] = x[:, columns] @ np.linalg.inv(matrix)
        record.update(compensated=True, spillover_channels=names, spillover_matrix=matrix)

    if transform == "asinh":
        record["cofactor"] = float(cofactor)
    if transform == "logicle":
        record["logicle"] = _logicle_params(logicle_params)
    x = _forward(x, record)
    if scale:
        mean = x.mean(axis=0)
        std = x.std(axis=0)
        std[std == 0] = 1.0  # a constant marker stays at zero instead of dividing by zero
        x = (x - mean) / std

    if copy:
        adata = adata.copy()
    adata.X = x.astype(dtype)
    if scale:
        adata.var["mean"] = mean
        adata.var["std"] = std
    adata.uns[RECORD_KEY] = record
    return adata if copy else None


def inverse_cytometry(data, reference=None):
    """Map values from the preprocessed space back to raw intensities, as a numpy array.

    ``data`` is an AnnData processed by :func:`cytometry`, or an array of cells in that space
    (for example decoded by a model) together with the processed AnnData as ``reference``. The
    steps are undone in reverse order: scaling, the transform, then compensation.
    """
    if isinstance(data, ad.AnnData):
        reference, x = data, data.X
    elif reference is None:
        raise InputError("inverse_cytometry() of an array needs reference=, the AnnData that cytometry() processed.")
    else:
        x = data
    record = reference.uns.get(RECORD_KEY)
    if record is None or record.get("kind") != "cytometry":
        raise InputError(
            f"The AnnData has no cytometry record in uns['{RECORD_KEY}']: run "
            "engine.preprocess.cytometry() on it before undoing it."
        )
    x = np.array(x.toarray() if sp.issparse(x) else x, dtype=np.float64, ndmin=2)
    if x.shape[1] != reference.n_vars:
        raise InputError(
            f"The array has {x.shape[1]} columns but the reference AnnData has {reference.n_vars} "
            "markers: pass values for every marker, in the reference's var order."
        )
    if record["scaled"]:
        missing = [c for c in ("mean", "std") if c not in reference.var]
        if missing:
            raise InputError(
                f"The reference AnnData lacks var column(s) {missing} that cytometry() stored; "
                "without them the scaling cannot be undone."
            )
        x = x * reference.var["std"].to_numpy() + reference.var["mean"].to_numpy()
    x = _backward(x, record)
    if record["compensated"]:
        columns = _positions(_channels(reference), list(record["spillover_channels"]))
        x[:, columns] = x[:, columns] @ np.asarray(record["spillover_matrix"], dtype=np.float64)
    return x


def _forward(x, record):
    if record["transform"] == "asinh":
        return np.arcsinh(x / record["cofactor"])
    if record["transform"] == "logicle":
        return _flowutils_transforms().logicle(x, None, **record["logicle"])
    return x


def _backward(x, record):
    if record["transform"] == "asinh":
        return np.sinh(x) * record["cofactor"]
    if record["transform"] == "logicle":
        return _flowutils_transforms().logicle_inverse(x, None, **record["logicle"])
    return x


def _flowutils_transforms():
    """flowutils implements logicle as GatingML 2.0 defines it; it is only needed for that transform."""
    try:
        from flowutils import transforms
    except ImportError:
        raise InputError(
            "transform='logicle' needs the flowutils package: install it with "
            "'pip install flowutils', or use transform='asinh'."
        ) from None
    return transforms


def _logicle_params(given):
    params = dict(LOGICLE_DEFAULTS)
    unknown = sorted(set(given or {}) - set(params))
    if unknown:
        raise InputError(f"logicle_params accepts the keys t, m, w, a; unknown: {', '.join(unknown)}.")
    params.update({k: float(v) for k, v in (given or {}).items()})
    return params


def _channels(adata):
    """Channel names as the spillover matrix spells them: var['channel'] when the reader kept it."""
    names = adata.var["channel"] if "channel" in adata.var else adata.var_names
    return [str(n) for n in names]


def _positions(channels, names):
    index = {c: i for i, c in enumerate(channels)}
    return [index[n] for n in names]


def _spillover(spill, channels):
    """Check the spillover DataFrame against the data's channels; return its names and matrix."""
    if not isinstance(spill, pd.DataFrame):
        raise InputError(
            f"uns['spillover'] must be a pandas DataFrame indexed and columned by channel names, "
            f"got {type(spill).__name__}."
        )
    rows, cols = [str(n) for n in spill.index], [str(n) for n in spill.columns]
    if sorted(rows) != sorted(cols) or len(set(rows)) != len(rows):
        raise InputError(
            "uns['spillover'] must be square with the same channel names, once each, as index and "
            f"columns; index: {rows}, columns: {cols}."
        )
    absent = [n for n in rows if n not in set(channels)]
    if absent:
        raise InputError(
            f"uns['spillover'] names channels absent from the data: {', '.join(absent)}. The data's "
            f"channels (its channel column, or else its marker names) are: {', '.join(channels)}."
        )
    ordered = spill.copy()
    ordered.index, ordered.columns = rows, cols
    try:
        matrix = ordered.loc[rows, rows].to_numpy(dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError("uns['spillover'] holds values that are not numbers.") from None
    if not np.all(np.isfinite(matrix)) or np.linalg.matrix_rank(matrix) < len(rows):
        raise InputError(
            "uns['spillover'] cannot be inverted (missing values or linearly dependent rows): "
            "check the spillover matrix or call cytometry(compensate=False)."
        )
    return rows, matrix

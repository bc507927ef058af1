"""`engine.read`: one entry point that picks a reader from the path and validates what it returns."""
import os
import warnings
from pathlib import Path

import anndata
from anndata import AnnData

from engine.data.errors import InputError
from engine.data.read_fcs import read_fcs
from engine.data.read_table import SEPARATORS, read_table
from engine.data.read_tenx import read_tenx_dir, read_tenx_h5
from engine.data.validate import unreadable, validated

SUPPORTED = (
    ".h5ad; .h5 (10x Genomics); .csv, .tsv, .txt (each also .gz); .fcs; "
    "or a 10x Genomics folder holding matrix.mtx[.gz]"
)


def read(path: str | Path, *, sep: str | None = None, transpose: bool = False,
         make_unique: bool = False, root: str | Path | None = None) -> AnnData:
    """Read cells from a file or 10x folder into a new, validated AnnData (cells x features).

    `sep` and `transpose` apply to text tables only (`transpose=True` when rows are features).
    `make_unique=True` renames repeated cell or feature names instead of raising.
    `root` confines reading to one folder: the path and every file a reader opens (a 10x folder's
    members too) must lie inside it once links are followed; a server reading for a browser sets it.
    Every unusable input raises `InputError` naming the file and what to do.
    """
    path = Path(path)
    opened = path if root is None else confined(path, root)  # read by its real path: a link cannot move later
    if not path.exists():
        raise InputError(
            f"{path}: no such file or folder (looked for {path.resolve()}); expected the path of "
            f"one of: {SUPPORTED}. Check the spelling and the working folder."
        )
    suffix = _suffix(path)
    if suffix not in SEPARATORS and (sep is not None or transpose):
        raise InputError(
            f"{path}: sep= and transpose= apply to .csv/.tsv/.txt tables only, not to "
            f"{'a folder' if path.is_dir() else suffix or 'a file without extension'}; "
            "leave them out for this file."
        )
    if path.is_file() and path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty (0 bytes); expected {SUPPORTED}. Copy or export it again.")
    with warnings.catch_warnings():
        # validated() reports repeated names with the file and a fix; anndata's bare warning would only repeat it
        warnings.filterwarnings("ignore", message=r".* names are not unique", category=UserWarning)
        adata = _dispatch(opened, suffix, sep, transpose, root)
        return validated(adata, path, make_unique=make_unique)


def confined(path: str | Path, root: str | Path) -> Path:
    """The real path of `path` (every link followed), or InputError when it lies outside the real `root`.

    Real paths are compared folder by folder, so neither a link leading out nor a sibling folder
    whose name starts like the root's (/data_secret beside /data) passes.
    """
    real_root = Path(os.path.realpath(root))
    real = Path(os.path.realpath(path))
    if real.is_relative_to(real_root):
        return real
    raise InputError(
        f"{path}: outside the data folder {real_root} (the path, or a link on the way, leads elsewhere); "
        "only files and folders inside it can be read. Copy the file into the data folder instead of linking to it."
    )


def _suffix(path: Path) -> str:
    """The format-giving extension in lower case, seen through a trailing .gz for text tables."""
    if path.is_dir():
        return ""
    suffixes = [suffix.lower() for suffix in path.suffixes]
    if len(suffixes) >= 2 and suffixes[-1] == ".gz" and suffixes[-2] in SEPARATORS:
        return suffixes[-2]
    return suffixes[-1] if suffixes else ""


def _dispatch(path: Path, suffix: str, sep: str | None, transpose: bool, root: str | Path | None) -> AnnData:
    if path.is_dir():
        return read_tenx_dir(path, confine=None if root is None else lambda member: confined(member, root))
    if suffix == ".h5ad":
        try:
            return anndata.read_h5ad(path)
        except Exception as err:
            raise unreadable(path, "an .h5ad (AnnData) file", err) from err
    if suffix == ".h5":
        return read_tenx_h5(path)
    if suffix in SEPARATORS:
        return read_table(path, suffix, sep=sep, transpose=transpose)
    if suffix == ".fcs":
        return read_fcs(path)
    raise InputError(
        f"{path}: unknown extension {suffix or '(none)'!r}; supported: {SUPPORTED}. "
        "Rename the file if its extension is wrong, or convert it to one of these."
    )

"""Gene sets a user uploads: read a .gmt, .json or .txt file into named gene lists, or say why not."""
from __future__ import annotations

import tempfile
from pathlib import Path, PurePath

from app.uploads import stored_name
from engine.data.errors import InputError
from engine.data.genesets import TEXT_SUFFIXES, read_gene_sets

BUILT_IN_SETS = Path(__file__).resolve().parents[2] / "assets" / "genesets" / "pbmc_markers.json"
MAX_UPLOAD_BYTES = 5_000_000


def built_in_sets() -> dict[str, list[str]]:
    return read_gene_sets(BUILT_IN_SETS)


def read_upload(filename: str, data: bytes) -> dict[str, list[str]]:
    """The sets in an uploaded file, or InputError naming the user's file (never the server's copy).

    The file is stored under its extension only (a browser may send a name the file system
    refuses, such as '.' or hundreds of characters); a plain list is named after the user's file.
    """
    name = PurePath(filename).name or filename
    if len(data) > MAX_UPLOAD_BYTES:
        raise InputError(f"{name}: {len(data):,} bytes is too large for a gene set file "
                         f"(at most {MAX_UPLOAD_BYTES:,})")
    stored = stored_name(name, "geneset")
    if not PurePath(stored).suffix:
        raise InputError(f"{name}: the file name has no extension, so its format is unknown; "
                         "upload a .gmt, .json or .txt gene set file")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / stored
        try:
            path.write_bytes(data)
            sets = read_gene_sets(path)
        except InputError as error:
            raise InputError(str(error).replace(str(path), name)) from None
        except UnicodeDecodeError:
            raise InputError(f"{name}: not a text file; upload a .gmt, .json or .txt gene set file") from None
        except OSError as error:
            raise InputError(f"{name}: could not be stored on the server to be read "
                             f"({error.strerror}); try again, or ask the administrator") from None
    if path.suffix.lower() in TEXT_SUFFIXES:
        sets = {PurePath(name).stem: genes for genes in sets.values()}
    return sets

"""The name an upload is stored under on the server while it is read.

A browser may send any name: hundreds of characters long, `.`, or a path. Only its format-giving
extensions travel to the file system (`cells.csv.gz` is stored as `upload.csv.gz`), so the
name can neither fail there nor point anywhere else.
"""
from pathlib import PurePath

MAX_SUFFIX = 16  # longer is no file format's extension (".h5ad", ".csv", ".gz", ".json")


def stored_name(filename: str, stem: str = "upload") -> str:
    """`stem` plus the last (at most two) short extensions of `filename`, as the readers need them."""
    kept = []
    for suffix in reversed(PurePath(filename).suffixes[-2:]):
        if len(suffix) > MAX_SUFFIX:
            break
        kept.insert(0, suffix)
    return stem + "".join(kept)

"""The name an upload is stored under on the server while it is read.

A browser may send any name: hundreds of characters long, `.`, or a path. Only its format-giving
extensions travel to the file system (`cells.csv.gz` is stored as `upload.csv.gz`), each cut to
a length no format's extension reaches, so the name can neither fail there nor point anywhere
else, and a reader refusing an odd extension still quotes its start.
"""
from pathlib import PurePath

MAX_SUFFIX = 16  # longer than any file format's extension (".h5ad", ".csv", ".gz", ".json")


def stored_name(filename: str, stem: str = "upload") -> str:
    """`stem` plus the last (at most two) extensions of `filename`, each cut to MAX_SUFFIX characters."""
    return stem + "".join(suffix[:MAX_SUFFIX] for suffix in PurePath(filename).suffixes[-2:])

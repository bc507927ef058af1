"""Studio settings an operator sets through environment variables, read once when a page is built.

They bound what a browser may do on the server: how large an upload may be, and which folder the
server-side file picker may show.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

MAX_UPLOAD_VAR = "HANAMI_MAX_UPLOAD_MB"
DATA_ROOT_VAR = "HANAMI_DATA_ROOT"
DEFAULT_MAX_UPLOAD_MB = 500.0
BYTES_PER_MB = 1_000_000  # decimal megabytes, as the browser's upload widget counts them


@dataclass(frozen=True)
class Settings:
    """The folder the server-side file picker is confined to (None: no picker), and the upload limit in MB."""

    data_root: Path | None
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * BYTES_PER_MB)

    @property
    def export_folder(self) -> Path:
        """Where large exports are written on this computer: `exports` in the data folder, else
        `hanami-exports` where the studio was started. File names there are the studio's own."""
        return self.data_root / "exports" if self.data_root is not None else Path.cwd() / "hanami-exports"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from `environ` (the process environment by default); bad values fail loudly at start."""
        environ = os.environ if environ is None else environ
        return cls(
            data_root=_data_root(environ.get(DATA_ROOT_VAR)),
            max_upload_mb=_max_upload_mb(environ.get(MAX_UPLOAD_VAR)),
        )


def _max_upload_mb(raw: str | None) -> float:
    if raw is None or not raw.strip():
        return DEFAULT_MAX_UPLOAD_MB
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(
            f"{MAX_UPLOAD_VAR}={raw!r} is not a number; give the upload limit in megabytes, e.g. 500."
        ) from None
    if not value > 0:
        raise ValueError(f"{MAX_UPLOAD_VAR}={raw!r} must be a positive number of megabytes.")
    return value


def _data_root(raw: str | None) -> Path | None:
    """The given folder, else ./data when it exists, else None (no picker); symlinks resolved.

    Never a broader default such as the home folder: whatever the picker shows, any browser that
    opens the studio may read.
    """
    if raw is None or not raw.strip():
        local = Path.cwd() / "data"
        return local.resolve() if local.is_dir() else None
    root = Path(raw).expanduser().resolve()
    if not root.is_dir():
        raise ValueError(
            f"{DATA_ROOT_VAR}={raw!r} is not a folder on this server ({root}); "
            "point it at the folder holding the data files."
        )
    return root

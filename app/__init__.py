"""Hanami's studio (Panel). `from app import Studio; Studio(adata)` in Jupyter; `panel serve app`."""
from app.studio import Studio

__all__ = ["Studio"]

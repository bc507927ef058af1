"""The export area: take the session's results home as files, built only when a button is clicked.

Each file is made on demand (FileDownload callbacks), in a worker thread while the button shows it
is busy, so nothing is serialised while the user is still working and the page (and other users')
keeps answering; a failure is reported in the page and changes nothing in the session. When a run
ends, the registry writes the model's results into the session's cells, and an export writes them as
they are (waiting, if they are still being written); otherwise (a model not trained yet, or training
now) the results go into a copy of the cells through the model's own `write` (the one writer), so an
export never changes the session's data as a side effect.
"""
from __future__ import annotations

import asyncio
import io
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import panel as pn
import param
import scipy.sparse as sp

from app.escape import markdown_text
from app.runs import REGISTRY, RunRegistry
from app.state import StudioState
from engine.data.errors import InputError

EMBEDDING_PREFIX = "X_"
PNG_UNAVAILABLE = "The PNG needs the embedding explorer: open it first, it draws the view this button saves."
# A download travels through the page's connection, which takes messages up to 20 MB (Bokeh's
# default) in base64 (4/3 larger): a file larger than this is written on this computer instead.
PAGE_LIMIT_MB = 12
# What each file holds and how to open it, shown under its button.
HOLDS = {
    "h5ad": "All cells, genes and annotations, with the model's embeddings (obsm) and predictions (obs). "
            "Open with scanpy (`sc.read_h5ad`), or in R with zellkonverter / SeuratDisk.",
    "csv": "One row per cell: every embedding's coordinates and every label column. Opens in Excel, R or pandas.",
    "model": "The trained model (settings, gene list, weights) as a zip: unzip it and reopen it in Python with "
             "`engine.GuidedModel.load(folder, cells)`, on these or new cells.",
    "png": "The embedding view as shown in 4 · Explore, zoom and colours included, 800 × 600 pixels.",
}


class ExportPanel(pn.viewable.Viewer):
    """Download buttons for the AnnData, embeddings and labels as CSV, the model, and the embedding view."""

    message = param.String(default="", doc="The last export failure shown in the page.")

    def __init__(self, state: StudioState, png_source: Callable[[], bytes] | None = None,
                 folder: Path | None = None, registry: RunRegistry = REGISTRY, **params):
        """`folder`: where "Save on this computer" writes files too large for a download (None: no such button);
        `registry`: the runs that may have written the model's results into the session's cells."""
        super().__init__(**params)
        self.state = state
        self.registry = registry
        self.png_source = png_source
        self.folder = folder
        self._alert = pn.pane.Alert("", alert_type="danger", visible=False, sizing_mode="stretch_width")
        self.downloads = {
            "h5ad": self._button("h5ad", "AnnData (.h5ad)", "cells.h5ad", self.h5ad_bytes),
            "csv": self._button("csv", "Embeddings and labels (.csv)", "embeddings.csv",
                                lambda: self.csv_text().encode()),
            "model": self._button("model", "Model checkpoint (.zip)", "model.zip", self.model_zip_bytes),
            "png": self._button("png", "Embedding view (.png)", "embedding.png", self.png_bytes),
        }
        self._save = pn.widgets.Button(label="Save .h5ad on this computer", width=260, visible=folder is not None,
                                       css_classes=["hanami-save-h5ad"],
                                       description=f"Write the .h5ad into {folder} on the computer running the studio: "
                                                   "for data too large to download through the page.")
        self._save.on_click(self._save_clicked)
        self._png_note = pn.pane.Markdown(
            f"*{PNG_UNAVAILABLE}*", visible=png_source is None, styles={"color": "#666"}, margin=(12, 10)
        )
        if png_source is None:  # a disabled button shows no tooltip in most browsers, hence the note too
            self.downloads["png"].param.update(disabled=True, description=PNG_UNAVAILABLE)

    # -- the files ---------------------------------------------------------------------------
    def h5ad_bytes(self) -> bytes:
        """The cells as .h5ad; with a model, a copy of them holding its results."""
        self._check_fits_the_page()
        adata = self._exported()
        with tempfile.TemporaryDirectory(prefix="hanami-export-") as folder:
            path = Path(folder) / "cells.h5ad"
            adata.write_h5ad(path)  # h5py wants a file; the bytes are read back for the download
            return path.read_bytes()

    def save_h5ad(self) -> Path:
        """Write the .h5ad into `folder` under a new name made of the time; returns its path."""
        if self.folder is None:
            raise InputError("Saving on this computer is not set up here; use the download instead.")
        adata = self._exported()
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"cells-{time.strftime('%Y%m%d-%H%M%S')}.h5ad"
        while path.exists():
            path = path.with_name(f"{path.stem}-1.h5ad")
        adata.write_h5ad(path)
        return path

    def csv_text(self) -> str:
        """One row per cell: every obsm['X_*'] embedding as key_0, key_1, ... then the categorical labels."""
        adata = self._exported()
        columns = {}
        for key in sorted(k for k in adata.obsm if k.startswith(EMBEDDING_PREFIX)):
            values = adata.obsm[key]
            values = values.toarray() if sp.issparse(values) else np.asarray(values)
            for i in range(values.shape[1]):
                columns[f"{key}_{i}"] = values[:, i]
        for name in adata.obs.columns:
            if isinstance(adata.obs[name].dtype, pd.CategoricalDtype):
                columns[name] = adata.obs[name].to_numpy()
        if not columns:
            raise InputError("The cells have no embedding (such as X_umap) and no label column to export yet: "
                             "train a model or add labels in 4 · Explore first.")
        return pd.DataFrame(columns, index=adata.obs_names.rename("cell")).to_csv()

    def model_zip_bytes(self) -> bytes:
        """The model's saved folder (config, genes, weights) as one zip."""
        if self.state.model is None:
            raise InputError("No model to export: build one in 2 · Model and train it in 3 · Train first.")
        buffer = io.BytesIO()
        with tempfile.TemporaryDirectory(prefix="hanami-export-") as folder:
            saved = self.state.model.save(Path(folder) / "model")
            with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                for file in sorted(saved.iterdir()):
                    archive.write(file, arcname=file.name)
        return buffer.getvalue()

    def png_bytes(self) -> bytes:
        if self.png_source is None:
            raise InputError(PNG_UNAVAILABLE)
        return self.png_source()

    # -- helpers -----------------------------------------------------------------------------
    def _check_fits_the_page(self) -> None:
        megabytes = _megabytes(self._adata())
        if megabytes > PAGE_LIMIT_MB:
            where = "press Save .h5ad on this computer" if self.folder is not None else "write it from Python"
            raise InputError(f"These cells come to about {megabytes:,.0f} MB, more than a page can receive (up to "
                             f"{PAGE_LIMIT_MB} MB): {where} instead.")

    async def _save_clicked(self, _event) -> None:
        self._save.loading = True
        try:
            path = await asyncio.to_thread(self.save_h5ad)
        except Exception as err:
            return self._show(f"Could not save the .h5ad: {_reason(err)}")
        finally:
            self._save.loading = False
        self._show(f"Saved {path.name} ({path.stat().st_size / 1e6:,.1f} MB) in {path.parent}. Open it with "
                   "scanpy's read_h5ad, or in R with zellkonverter.", level="success")

    def _exported(self):
        """The session's cells, holding the model's results: as they are when the run that trained the
        model wrote them there (on a million cells, encoding every cell again took seconds), else a
        copy of them with the results written (`model.write`)."""
        adata = self._adata()
        if self.state.model is None or self.registry.holds_results(self.state.model, adata):
            return adata
        exported = adata.copy()
        self.state.model.write(exported)
        return exported

    def _adata(self):
        if self.state.adata is None:
            raise InputError("No cells loaded: load a file or the demo in 1 · Data first.")
        return self.state.adata

    def _button(self, key: str, label: str, filename: str, make: Callable[[], bytes]) -> pn.widgets.FileDownload:
        async def callback():
            button.loading = True
            try:
                data = await asyncio.to_thread(make)
            except Exception as err:
                self._show(f"Could not export {filename}: {_reason(err)}")
                raise  # FileDownload has nothing to send; the server log keeps the trace
            finally:
                button.loading = False
            self._show("")
            return io.BytesIO(data)

        button = pn.widgets.FileDownload(callback=callback, filename=filename, label=label, width=260,
                                         css_classes=[f"hanami-download-{key}"])
        return button

    def _show(self, text: str, level: str = "danger") -> None:
        """Show `text` as plain text: error messages may quote the user's names."""
        self.message = text
        self._alert.param.update(object=markdown_text(text), alert_type=level, visible=bool(text))

    def __panel__(self):
        rows = [
            pn.Row(pn.Column(button, self._save) if key == "h5ad" else button, pn.pane.Markdown(HOLDS[key], styles={"color": "#555"}, margin=(0, 10), align="center",
                                            sizing_mode="stretch_width"),
                   sizing_mode="stretch_width")
            for key, button in self.downloads.items()
        ]
        return pn.Column(
            pn.pane.Markdown("#### Take your cells and results home\n\nEach file is made when you click its button; "
                             "the cells in this page stay as they are."),
            self._alert,
            *rows,
            self._png_note,
            sizing_mode="stretch_width",
        )


def _reason(error: Exception) -> str:
    """An expected failure in its own words; anything else named by its kind as well."""
    return str(error) if isinstance(error, InputError) else f"{type(error).__name__}: {error}"


def _megabytes(adata) -> float:
    """About how large the .h5ad of `adata` is: its matrices, embeddings and layers, in MB."""
    def size(matrix) -> int:
        if sp.issparse(matrix):
            return matrix.data.nbytes + matrix.indices.nbytes + matrix.indptr.nbytes
        return getattr(matrix, "nbytes", 0)

    parts = [adata.X, *adata.obsm.values(), *adata.layers.values()]
    return (sum(size(part) for part in parts) + adata.obs.memory_usage(deep=False).sum()) / 1e6

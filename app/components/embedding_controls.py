"""The embedding explorer's side panel: the widgets that choose the view and the colouring.

A mixin of `EmbeddingExplorer`: each widget calls the explorer's public actions (`set_view`,
`color_by`), and `_sync_widgets` shows the explorer's current view in them without calling back.
"""
from __future__ import annotations

import asyncio
from functools import partial

import numpy as np
import panel as pn

from app.quiet_updates import QuietUpdates
from app.embedding.coords import embedding_keys, is_layout, umap_key, umap_layout
from app.escape import markdown_text

SIDE_WIDTH = 290


class ViewControls(QuietUpdates):
    """View (embedding, dimensions or UMAP) and colour (obs column, gene, latent) widgets."""

    def _build_view_widgets(self) -> None:
        """The side panel's view and colour widgets, each calling the explorer's public actions."""
        self._key_select = pn.widgets.Select(
            label="Embedding", width=SIDE_WIDTH - 20, css_classes=["hanami-embedding-key"],
            description="Where the cells sit: a UMAP, a PCA, or what a trained model learnt (X_guided_...); "
                        "stored in the cells' obsm.",
        )
        self._mode_select = pn.widgets.RadioButtonGroup(
            options={"Dimensions": "dimensions", "UMAP": "umap"}, color="light", width=SIDE_WIDTH - 20,
            css_classes=["hanami-view-mode"],
            description="Draw two dimensions as they are, or lay all of them out in 2-D with UMAP (computed once).",
        )
        self._mode_note = pn.pane.Markdown("", styles={"color": "#666", "font-size": "0.9em"}, margin=(0, 10))
        self._dim_x = pn.widgets.IntInput(label="x dimension", start=0, value=0, width=125,
                                          description="Which dimension of the embedding runs left to right (from 0).")
        self._dim_y = pn.widgets.IntInput(label="y dimension", start=0, value=1, width=125,
                                          description="Which dimension of the embedding runs bottom to top (from 0).")
        for widget in (self._key_select, self._mode_select, self._dim_x, self._dim_y):
            widget.param.watch(self._on_view_widgets, "value")
        self._kind_select = pn.widgets.RadioButtonGroup(
            options={"Annotation": "obs", "Gene": "gene", "Dimension": "latent"}, color="light", width=SIDE_WIDTH - 20,
            css_classes=["hanami-color-kind"],
        )
        self._obs_select = pn.widgets.Select(
            label="Annotation", width=SIDE_WIDTH - 20, css_classes=["hanami-color-obs"],
            description="A column of the cell annotations (obs): cell type, sample, or your own labels.",
        )
        self._gene_input = pn.widgets.AutocompleteInput(
            label="Gene", placeholder="type a gene name, e.g. LYZ", case_sensitive=False, search_strategy="includes",
            min_characters=1, restrict=False, width=SIDE_WIDTH - 20, css_classes=["hanami-color-gene"],
            description="Expression of one gene in each cell; press Enter after typing.",
        )
        self._latent_key = pn.widgets.Select(label="Embedding", width=160,
                                             description="Colour each cell by one dimension of this embedding.")
        self._latent_dim = pn.widgets.IntInput(label="dimension", start=0, value=0, width=90,
                                               description="Which dimension of that embedding (from 0).")
        self._latent_row = pn.Row(self._latent_key, self._latent_dim)
        for widget in (self._kind_select, self._obs_select, self._gene_input, self._latent_key, self._latent_dim):
            widget.param.watch(self._on_color_widgets, "value")
    def _on_view_widgets(self, event) -> None:
        """Widgets to set_view; a UMAP not yet cached is computed in a worker thread first.

        A plain watcher, so `_syncing` is read while the sync that set the widget still runs.
        """
        if self._syncing:
            return
        adata, key, mode = self.state.adata, self._key_select.value, self._mode_select.value
        if event.obj is self._key_select:  # a new embedding opens on its first two dimensions
            mode, dims = "dimensions", (0, 1)
        else:
            dims = (self._dim_x.value, self._dim_y.value)
        if adata is not None and mode == "umap" and key in adata.obsm and umap_key(key) not in adata.obsm:
            pn.state.execute(partial(self._umap_then_view, adata, key))
            return
        self.set_view(key, mode, dims)
        self._sync_widgets()

    async def _umap_then_view(self, adata, key: str) -> None:
        try:
            with self._loading():
                layout = await asyncio.to_thread(umap_layout, np.asarray(adata.obsm[key]))
        except ValueError as error:
            self._fail(error)
            return self._sync_widgets()
        if self.state.adata is not adata:
            return
        adata.obsm[umap_key(key)] = layout
        self.state.touch_obs()
        self.set_view(key, "umap")
        self._sync_widgets()

    def _on_color_widgets(self, _event) -> None:
        if self._syncing:
            return
        kind = self._kind_select.value
        self._show_color_inputs(kind)
        if kind == "obs" and self._obs_select.value:
            self.color_by("obs", self._obs_select.value)
        elif kind == "gene" and self._gene_input.value:
            self.color_by("gene", self._gene_input.value)
        elif kind == "latent" and self._latent_key.value:
            self.color_by("latent", f"{self._latent_key.value}:{self._latent_dim.value}")

    def _show_color_inputs(self, kind: str) -> None:
        self._obs_select.visible = kind == "obs"
        self._gene_input.visible = kind == "gene"
        self._latent_row.visible = kind == "latent"

    def _refresh_options(self) -> None:
        adata = self.state.adata
        keys = embedding_keys(adata)
        with self._quiet():
            self._key_select.options = keys
            self._latent_key.options = keys
            self._obs_select.options = adata.obs.columns.tolist()

    def _sync_widgets(self) -> None:
        """Show the explorer's current view and colouring in its widgets, without re-triggering them."""
        if self.key is None:
            return
        coloring = self.coloring
        n_dims = np.shape(self.state.adata.obsm[self.key])[1]
        with self._quiet():
            self._key_select.value = self.key
            self._mode_select.param.update(value=self.mode, disabled=is_layout(self.key))
            self._mode_note.object = markdown_text(self._next_view_step())  # the key is the user's name
            self._dim_x.param.update(end=n_dims - 1, value=self.dims[0], visible=self.mode == "dimensions")
            self._dim_y.param.update(end=n_dims - 1, value=self.dims[1], visible=self.mode == "dimensions")
            if coloring.name:
                self._kind_select.value = coloring.kind
            if coloring.kind == "obs" and coloring.name:
                self._obs_select.value = coloring.name
            elif coloring.kind == "gene":
                self._gene_input.value = coloring.name
            elif coloring.kind == "latent":
                key, _, dim = coloring.name.rpartition(":")
                self._latent_key.value = key
                self._latent_dim.param.update(end=np.shape(self.state.adata.obsm[key])[1] - 1, value=int(dim))
            self._show_color_inputs(self._kind_select.value)

    def _next_view_step(self) -> str:
        if is_layout(self.key):
            return f"{self.key} is already a 2-D layout."
        if self.mode == "dimensions":
            return "Press UMAP to see the structure of all its dimensions."
        return ""


    def _view_controls(self) -> pn.Column:
        return pn.Column(
            "#### View", self._key_select, self._mode_select, self._mode_note, pn.Row(self._dim_x, self._dim_y),
            "#### Colour", self._kind_select, self._obs_select, self._gene_input, self._latent_row,
            self.legend, width=SIDE_WIDTH,
        )

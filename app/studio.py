"""The studio: one session's areas around one shared `StudioState`.

`panel serve app` builds a `Studio` per browser session and serves `page()` (a template with the
logo and the steps as tabs); in Jupyter, displaying `Studio(adata)` shows the same areas inline,
and each area can also be used on its own.
"""
from pathlib import Path

import panel as pn
from anndata import AnnData

from app.components.data_loader import DataLoader
from app.components.embedding_explorer import EmbeddingExplorer
from app.components.export_panel import ExportPanel
from app.components.model_builder import ModelBuilder
from app.components.training_monitor import TrainingMonitor
from app.demo import DEMO_TITLE, load_demo
from app.settings import Settings
from app.state import StudioState

ASSETS = Path(__file__).resolve().parents[1] / "assets"
LOGO = ASSETS / "logo.svg"
CSS = ASSETS / "hanami.css"
RESULT_STATES = {"finished", "stopped", "early_stopped"}


class Studio(pn.viewable.Viewer):
    """Hanami for one user: starts on the built-in demo when no AnnData is given.

    In Jupyter call ``pn.extension("tabulator", "filedropper")`` first, then display ``Studio(adata)``.
    """

    def __init__(self, adata: AnnData | None = None, title: str | None = None, settings: Settings | None = None, **params):
        super().__init__(**params)
        if adata is None:
            adata, title = load_demo(), title or DEMO_TITLE
        self.state = StudioState(adata=adata, dataset=title or "AnnData in memory")
        self.data = DataLoader(self.state, settings or Settings.from_env())
        self.builder = ModelBuilder(self.state)
        self.monitor = TrainingMonitor(self.state, training_options=self.builder.training_options)
        self.explorer = EmbeddingExplorer(self.state)
        self.export = ExportPanel(self.state, png_source=self.explorer.png_bytes)
        self.monitor.param.watch(self._publish_results, "run_state")
        self._tabs = pn.Tabs(
            ("1 · Data", self.data),
            ("2 · Model", self.builder),
            ("3 · Train", self.monitor),
            ("4 · Explore", self.explorer),
            ("5 · Export", self.export),
            dynamic=False,
            sizing_mode="stretch_width",
        )

    def _publish_results(self, event) -> None:
        """When a run ends with a model worth keeping, its latents go into the cells' obsm."""
        model = self.state.model
        run = self.monitor.run
        if event.new in RESULT_STATES and model is not None and run is not None and run.model is model:
            model.write(self.state.adata)
            self.state.touch_obs()

    def __panel__(self):
        return self._tabs

    def page(self) -> pn.template.FastListTemplate:
        """The full page: header with the logo, the studio's steps as tabs."""
        return pn.template.FastListTemplate(
            title="Hanami",
            logo=str(LOGO),
            favicon=str(LOGO),
            accent="#d95f8e",
            header_background="#3d1a2b",
            raw_css=[CSS.read_text()],
            main=[self._tabs],
        )

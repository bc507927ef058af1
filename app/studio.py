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
from app.components.integration_view import IntegrationView
from app.components.model_builder import ModelBuilder
from app.components.populations_view import PopulationsView
from app.components.training_monitor import TrainingMonitor
from app.demo import DEMO_TITLE, load_demo
from app.offline_design import FONT, OfflineFast
from app.runs import REGISTRY, RESULT_STATES
from app.settings import Settings
from app.state import StudioState
from app.users import remember_owner, session_owner

ASSETS = Path(__file__).resolve().parents[1] / "assets"
LOGO = ASSETS / "logo.svg"
CSS = ASSETS / "hanami.css"


MODEL_TAB, TRAIN_TAB = 1, 2  # positions of the tabs in the page


class Studio(pn.viewable.Viewer):
    """Hanami for one user. Without an AnnData it opens where the user left off (their latest
    run, with its cells and model), or else on the built-in demo.

    In Jupyter call ``pn.extension("tabulator", "filedropper")`` first, then display ``Studio(adata)``.
    """

    def __init__(self, adata: AnnData | None = None, title: str | None = None, settings: Settings | None = None, **params):
        super().__init__(**params)
        owner, new_owner = session_owner()
        if new_owner:
            remember_owner(owner)
        latest = REGISTRY.latest_of(owner) if adata is None else None
        if latest is not None and latest.adata is not None:
            self.state = StudioState(owner=owner, adata=latest.adata)
            self.state.open_run(latest)
        else:
            if adata is None:
                adata, title = load_demo(), title or DEMO_TITLE
            self.state = StudioState(owner=owner, adata=adata, dataset=title or "AnnData in memory")
        settings = settings or Settings.from_env()
        self.data = DataLoader(self.state, settings)
        self.builder = ModelBuilder(self.state)
        self.monitor = TrainingMonitor(self.state, training_options=self.builder.training_options,
                                       options_view=self.builder.training)
        self.explorer = EmbeddingExplorer(self.state)
        self.populations = PopulationsView(self.state)
        self.export = ExportPanel(self.state, png_source=self.explorer.png_bytes, folder=settings.export_folder)
        self.integration = IntegrationView(self.state, export=self.export)
        self.monitor.param.watch(self._publish_results, "run_state")
        self._tabs = pn.Tabs(
            ("1 · Data", self.data),
            ("2 · Model", self.builder),
            ("3 · Train", self.monitor),
            ("4 · Explore", self.explorer),
            ("4 · Populations", self.populations),
            ("4 · Integrate", self.integration),
            ("5 · Export", self.export),
            dynamic=True,  # a tab is rendered when it is first opened: the page shows its first content fast
            sizing_mode="stretch_width",
        )
        self._tabs.param.watch(self._on_tab, "active")

    def _on_tab(self, event) -> None:
        """The model builder is made when a tab that shows it (Model, or Train with its shared
        training options) is first opened, not with the page."""
        if event.new in (MODEL_TAB, TRAIN_TAB):
            self.builder.show()

    def _publish_results(self, event) -> None:
        """When a run ends with a model worth keeping, its worker has written the latents into the
        cells it trained on: the areas showing those cells learn that obsm changed.

        On the next tick of the event loop, so that the page shows "stopped" first, as fast as it
        shows "paused", and redraws what depends on the cells after.
        """
        run = self.monitor.run
        if event.new in RESULT_STATES and run is not None and run.adata is self.state.adata:
            pn.state.execute(self.state.touch_obs, schedule=True)

    def __panel__(self):
        return self._tabs

    def page(self) -> pn.template.FastListTemplate:
        """The full page: header with the logo, the studio's steps as tabs; nothing from the web."""
        return pn.template.FastListTemplate(
            title="Hanami",
            logo=str(LOGO),
            favicon=str(LOGO),
            accent="#d95f8e",
            header_background="#3d1a2b",
            design=OfflineFast,
            font=FONT,
            font_url="",  # the template's own link to Google's web font
            raw_css=[CSS.read_text()],
            main=[self._tabs],
        )

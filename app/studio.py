"""The studio page: one template per browser session, or the bare components in Jupyter."""
from pathlib import Path

import panel as pn
from anndata import AnnData

from app.components.data_summary import DataSummary
from app.demo import DEMO_TITLE, load_demo

ASSETS = Path(__file__).resolve().parents[1] / "assets"
LOGO = ASSETS / "logo.svg"
CSS = ASSETS / "hanami.css"


class Studio(pn.viewable.Viewer):
    """Hanami for one user: starts on the built-in demo when no AnnData is given.

    In Jupyter, displaying ``Studio(adata)`` shows the components without the page chrome
    (call ``pn.extension("tabulator")`` first); ``panel serve app`` serves ``page()``.
    """

    def __init__(self, adata: AnnData | None = None, title: str | None = None, **params):
        super().__init__(**params)
        if adata is None:
            adata, title = load_demo(), title or DEMO_TITLE
        self.data = DataSummary(adata=adata, title=title or "AnnData in memory")

    def __panel__(self):
        return pn.Column(self.data, sizing_mode="stretch_width")

    def page(self) -> pn.template.FastListTemplate:
        """The full page: header with the logo, the studio's areas in the main column."""
        return pn.template.FastListTemplate(
            title="Hanami",
            logo=str(LOGO),
            favicon=str(LOGO),
            accent="#d95f8e",
            header_background="#3d1a2b",
            raw_css=[CSS.read_text()],
            main=[self.__panel__()],
        )

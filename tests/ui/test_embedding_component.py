"""The embedding explorer alone, served by `panel serve` and used in Chromium: draw, box-select, label."""
import re

import pytest
from playwright.sync_api import Page, expect
from serving import panel_served
from studio_driver import SLOW_WAIT_MS, drag_box

pytestmark = pytest.mark.ui

SCREENSHOT = "/tmp/hanami_embedding.png"
APP = '''
import panel as pn
import scanpy as sc

from app.components.embedding_explorer import EmbeddingExplorer
from app.state import StudioState

pn.extension("tabulator")
state = StudioState()
state.load(sc.datasets.pbmc68k_reduced(), "pbmc68k_reduced")
EmbeddingExplorer(state).__panel__().servable()
'''


@pytest.fixture(scope="module")
def explorer_url(tmp_path_factory):
    """A one-component app in a temporary folder, served on a free port with the repo importable."""
    script = tmp_path_factory.mktemp("embedding") / "explorer.py"
    script.write_text(APP)
    with panel_served(script, "explorer") as url:
        yield url


def test_draw_select_and_label(page: Page, explorer_url):
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(explorer_url)
    expect(page.get_by_text("X_umap dimensions 0 and 1")).to_be_visible(timeout=SLOW_WAIT_MS)
    expect(page.get_by_role("gridcell", name="Dendritic", exact=True)).to_be_visible()
    expect(page.get_by_role("gridcell", name="240", exact=True)).to_be_visible()
    canvas = page.locator(".bk-Canvas").first
    expect(canvas).to_be_visible(timeout=SLOW_WAIT_MS)

    drag_box(page, canvas)
    expect(page.get_by_text(re.compile(r"A: [\d,]+ cells"))).to_be_visible(timeout=SLOW_WAIT_MS)

    page.get_by_placeholder("e.g. activated T cells").fill("left half")
    page.get_by_role("button", name="Add label").click()
    expect(page.get_by_text(re.compile(r'Labelled [\d,]+ cells "left half"'))).to_be_visible(timeout=SLOW_WAIT_MS)
    page.screenshot(path=SCREENSHOT, full_page=True)

"""What the served page fetches and what it hands out: nothing from another host (the studio works
offline), and an Export PNG that shows the cells even before the Explore tab was opened."""
import io
from urllib.parse import urlparse

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Page, expect
from studio_driver import SLOW_WAIT_MS, open_studio, tab

pytestmark = pytest.mark.ui

# Each tab, and what shows that it has been rendered (tabs are rendered when first opened).
TABS = {
    "2 · Model": ".hanami-build-model",
    "3 · Train": ".hanami-start",
    "4 · Explore": ".hanami-embedding-key",
    "5 · Export": ".hanami-download-h5ad",
    "1 · Data": ".hanami-headline",
}


def test_no_request_leaves_the_machine(page: Page, studio_url):
    elsewhere = []
    page.on("request", lambda request: elsewhere.append(request.url)
            if urlparse(request.url).hostname not in ("localhost", "127.0.0.1", None) else None)
    open_studio(page, studio_url)
    for name, shown in TABS.items():
        tab(page, name)
        expect(page.locator(shown).first).to_be_visible(timeout=SLOW_WAIT_MS)
    page.wait_for_load_state("networkidle")
    assert elsewhere == []


def test_the_png_export_of_a_served_page_shows_the_cells(page: Page, studio_url):
    open_studio(page, studio_url)
    tab(page, "5 · Export")
    with page.expect_download(timeout=SLOW_WAIT_MS) as download:
        page.locator(".hanami-download-png").click()
    pixels = np.asarray(Image.open(io.BytesIO(open(download.value.path(), "rb").read())).convert("RGB"))
    assert pixels.shape == (600, 800, 3)
    assert (pixels < 250).any(axis=-1).sum() > 2000  # 700 cells, each a few pixels wide

"""Names are text, never markup: a file, obs column, category and gene named like an HTML tag.

Today's Panel panes render Markdown and HTML, so each name is escaped where it is shown; here
Chromium renders the whole studio after such an upload and no element is made from a name.
"""
import anndata as ad
import numpy as np
import pandas as pd
import pytest
from playwright.sync_api import Page, expect
from studio_driver import SLOW_WAIT_MS, UPDATE_WAIT_MS, open_studio, tab
from test_uploads import upload

pytestmark = pytest.mark.ui

FILE_NAME = "<img src=x onerror=alert(1)>.h5ad"
COLUMN = "<img src=x onerror=alert(2)>"
CATEGORIES = ["<img src=x onerror=alert(3)>", "<b>bold</b>"]
GENE = "<img src=x onerror=alert(4)>"
MADE_FROM_A_NAME = "img[onerror], b:text-is('bold')"


def hostile_h5ad(folder) -> bytes:
    rng = np.random.default_rng(0)
    cells = ad.AnnData(rng.poisson(2.0, (50, 4)).astype(np.float32))
    cells.var_names = ["CD3E", "LYZ", "MS4A1", GENE]
    cells.obs[COLUMN] = pd.Categorical(rng.choice(CATEGORIES, 50))
    cells.obsm["X_umap"] = rng.normal(size=(50, 2)).astype(np.float32)
    cells.write_h5ad(folder / "hostile.h5ad")
    return (folder / "hostile.h5ad").read_bytes()


def test_names_from_an_upload_show_as_text_everywhere(page: Page, studio_url, tmp_path):
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    open_studio(page, studio_url)
    upload(page, FILE_NAME, hostile_h5ad(tmp_path))
    # the literal name, as text; the message comes last, once every view follows the new cells
    expect(page.get_by_text(f"Loaded {FILE_NAME}: 50 cells")).to_be_visible(timeout=SLOW_WAIT_MS)
    expect(page.get_by_text("50 cells × 4 genes")).to_be_visible()
    expect(page.get_by_role("heading", name=FILE_NAME)).to_be_visible()
    tab(page, "2 · Model")
    expect(page.get_by_text(COLUMN, exact=True).first).to_be_visible(timeout=UPDATE_WAIT_MS)
    tab(page, "4 · Explore")
    expect(page.get_by_text(f"coloured by {COLUMN}")).to_be_visible(timeout=UPDATE_WAIT_MS)
    expect(page.get_by_role("gridcell", name=CATEGORIES[0], exact=True)).to_be_visible()
    assert page.locator(MADE_FROM_A_NAME).count() == 0
    assert dialogs == []

"""Uploads through the page's file dropper: bad files are explained in the page and the cells
loaded before stay; a good file replaces them and the summary follows."""
import re

import anndata as ad
import numpy as np
import pytest
from playwright.sync_api import Page, expect
from studio_driver import SLOW_WAIT_MS, open_studio

pytestmark = pytest.mark.ui


def upload(page: Page, name: str, data: bytes) -> None:
    page.locator("input[type=file]").first.set_input_files(
        files=[{"name": name, "mimeType": "application/octet-stream", "buffer": data}]
    )


def small_h5ad(folder) -> bytes:
    cells = ad.AnnData(np.ones((50, 4), dtype=np.float32))
    cells.var_names = ["A", "B", "C", "D"]
    cells.write_h5ad(folder / "fifty.h5ad")
    return (folder / "fifty.h5ad").read_bytes()


@pytest.mark.parametrize(
    "name, data, words",
    [
        ("broken.h5ad", b"not an hdf5 file at all" * 10, r"broken\.h5ad: cannot read"),
        ("table.xlsx", b"PK\x03\x04 spreadsheet", r"table\.xlsx.*\.h5ad"),
        ("huge.h5ad", b"\0" * 1_500_000, r"too large|HANAMI_MAX_UPLOAD_MB"),
    ],
    ids=["corrupt", "wrong-extension", "over-limit"],
)
def test_bad_upload_is_explained_and_data_kept(page: Page, studio_url, name, data, words):
    open_studio(page, studio_url)
    upload(page, name, data)
    expect(page.get_by_text(re.compile(words)).first).to_be_visible(timeout=SLOW_WAIT_MS)
    expect(page.get_by_text("700 cells × 765 genes")).to_be_visible()


def test_good_upload_replaces_the_cells(page: Page, studio_url, tmp_path):
    open_studio(page, studio_url)
    upload(page, "fifty.h5ad", small_h5ad(tmp_path))
    expect(page.get_by_text("50 cells × 4 genes")).to_be_visible(timeout=SLOW_WAIT_MS)


@pytest.mark.parametrize(
    "name, words",
    [
        ("a" * 300 + ".h5ad", "50 cells × 4 genes"),
        ("x." + "y" * 300, "unknown extension"),
    ],
    ids=["long-name-loads", "long-extension-explained"],
)
def test_a_very_long_upload_name_gets_an_answer_in_the_page(page: Page, studio_url, tmp_path, name, words):
    open_studio(page, studio_url)
    upload(page, name, small_h5ad(tmp_path))
    expect(page.get_by_text(words).first).to_be_visible(timeout=SLOW_WAIT_MS)


def test_a_gene_set_file_named_dot_is_explained(page: Page, studio_url):
    open_studio(page, studio_url)
    page.get_by_text("2 · Model", exact=True).click()
    page.locator(".hanami-geneset-upload input[type=file]").set_input_files(
        files=[{"name": ".", "mimeType": "text/plain", "buffer": b"CD3E\n"}]
    )
    expect(page.locator(".hanami-geneset-upload-problem")).to_contain_text("no extension", timeout=SLOW_WAIT_MS)

"""The Integrate workflow end to end in Chromium: the Data tab's generated cells from two systems →
the integration family in 2 · Model with the system column chosen → build → train a few epochs →
4 · Integrate shows the cells before and after, side by side, and the scores before and after.
Screenshots go to /tmp/integrate_shots/.
"""
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from studio_driver import PAGE_READY, SLOW_WAIT_MS, open_studio, tab, train_to_end

from app.builders.sysvi import SysVIBuilder
from app.demo import SYSTEMS_SETTINGS

pytestmark = pytest.mark.ui

SHOTS = Path("/tmp/integrate_shots")
EPOCHS = 3
METRICS = ("ilisi_knn", "silhouette_batch", "clisi_knn", "silhouette_label", "knn_label_accuracy")


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_systems_build_train_and_compare(page: Page, studio_url):
    open_studio(page, studio_url)
    load_systems(page)
    build(page)
    train(page)
    compare(page)


def load_systems(page: Page) -> None:
    page.locator(".hanami-systems-demo button").click()
    cells = f"{SYSTEMS_SETTINGS['n_cells']:,} cells × {SYSTEMS_SETTINGS['n_genes']} genes"
    expect(page.get_by_text(cells)).to_be_visible(timeout=SLOW_WAIT_MS)
    page.wait_for_function(PAGE_READY, timeout=SLOW_WAIT_MS)


def build(page: Page) -> None:
    tab(page, "2 · Model")
    page.locator(".hanami-model-family select").select_option(label=SysVIBuilder.title)
    system = page.locator(".hanami-sysvi-system select")
    expect(system).to_be_visible(timeout=SLOW_WAIT_MS)
    system.select_option("(choose a column)")
    expect(page.locator(".hanami-sysvi-columns-problem")).to_contain_text("choose the system column")
    expect(page.locator(".hanami-build-model button")).to_be_disabled()
    system.select_option("system")
    expect(page.locator(".hanami-sysvi-columns-problem")).to_be_hidden()
    shot(page, "1_builder")
    page.locator(".hanami-build-model button").click()
    expect(page.locator(".hanami-build-status")).to_contain_text("Model built", timeout=SLOW_WAIT_MS)


def train(page: Page) -> None:
    train_to_end(page, {"epochs": EPOCHS}, "4 · Integrate")
    shot(page, "2_trained")


def compare(page: Page) -> None:
    tab(page, "4 · Integrate")
    view = page.locator(".hanami-integration")
    expect(page.locator(".hanami-integration-status")).to_contain_text("cells from 2 systems", timeout=SLOW_WAIT_MS)
    for side in ("before", "after"):
        expect(page.locator(f".hanami-integration-{side} .bk-Canvas")).to_be_visible(timeout=SLOW_WAIT_MS)
    table = page.locator(".hanami-integration-metrics")
    for metric in METRICS:
        expect(table.get_by_role("gridcell", name=metric, exact=True)).to_be_visible(timeout=SLOW_WAIT_MS)
    expect(view.get_by_text("system 0", exact=False).first).to_be_visible()
    page.wait_for_function(PAGE_READY, timeout=SLOW_WAIT_MS)
    shot(page, "3_integrate")
    page.locator(".hanami-integration-color select").select_option("cell_type")
    expect(page.locator(".hanami-integration-legend")).to_contain_text("type 0")
    page.wait_for_function(PAGE_READY, timeout=SLOW_WAIT_MS)
    shot(page, "4_by_cell_type")
    page.locator(".hanami-integration-download").scroll_into_view_if_needed()
    expect(page.locator(".hanami-integration-download")).to_be_visible()
    page.screenshot(path=str(SHOTS / "5_scores_and_export.png"))

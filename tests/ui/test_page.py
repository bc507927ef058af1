"""The served studio, rendered by Chromium: the day-one page shows the demo data's summary."""
import urllib.request

import pytest
from playwright.sync_api import Page, expect
from studio_driver import open_studio

pytestmark = pytest.mark.ui

SCREENSHOT = "/tmp/hanami_page.png"


def test_app_answers_http(studio_url):
    with urllib.request.urlopen(studio_url) as response:
        assert response.status == 200
        assert "<title>Hanami</title>" in response.read().decode()


def test_page_shows_demo_summary(page: Page, studio_url):
    open_studio(page, studio_url)  # waits for PAGE_READY: every view painted, the server told
    expect(page).to_have_title("Hanami")
    expect(page.get_by_text("pbmc68k_reduced (built-in demo)")).to_be_visible()
    for column in ("bulk_labels", "phase", "louvain", "percent_mito"):
        expect(page.get_by_role("gridcell", name=column, exact=True)).to_be_visible()
    logo = page.locator("img.app-logo")
    expect(logo).to_be_visible()
    assert logo.evaluate("img => img.naturalWidth") > 0
    # bars and both QC histograms are drawn on the data tab's canvases, each with room to be read
    canvases = page.locator(".bk-Canvas >> visible=true")
    expect(canvases).to_have_count(3)
    for canvas in canvases.all():
        assert canvas.bounding_box()["width"] > 300
    expect(page.locator(".hanami-count-choice select")).to_have_value("bulk_labels")
    page.screenshot(path=SCREENSHOT, full_page=True)

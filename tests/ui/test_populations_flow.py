"""The Populations workflow end to end in Chromium, on generated cytometry cells.

Choose the Populations family → load the example table, refuse a typed word and take a fraction
in one cell, see a diagnostic beside the cells it concerns → build → train a few epochs → the cells
coloured by population (the legend names them) → moving the threshold changes the count of unknown
cells → a box selection is explained by the "why this label" heatmap → after a reload, the same
populations at the threshold the user chose. Screenshots go to /tmp/shots_pop/.
"""
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from serving import panel_served
from studio_driver import PAGE_READY, SLOW_WAIT_MS, UPDATE_WAIT_MS, drag_box, tab, train_to_end

from app.builders.flow import FlowBuilder

pytestmark = pytest.mark.ui

APP = Path(__file__).with_name("cytometry_app.py")
SHOTS = Path("/tmp/shots_pop")
EPOCHS = 4


@pytest.fixture(scope="module")
def cytometry_url():
    try:
        with panel_served(APP, APP.stem) as url:
            yield url
    except RuntimeError as error:
        pytest.fail(str(error))


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def cell(page: Page, population: str, marker: str):
    """The editor's cell of one population (row) and marker (column)."""
    name = page.locator('.tabulator-cell[tabulator-field="population"]', has_text=re.compile(rf"^{population}$"))
    row = page.locator(".hanami-table-grid .tabulator-row").filter(has=name)
    return row.locator(f'.tabulator-cell[tabulator-field="{marker}"]')


def type_into(page: Page, target, text: str) -> None:
    target.click()
    editor = target.locator("input")
    expect(editor).to_be_focused()
    editor.fill(text)
    editor.press("Enter")


def move_threshold(page: Page, fraction: float) -> None:
    """Drag the threshold slider's handle to a fraction of its track, as a user does."""
    handle = page.locator(".hanami-populations-threshold .noUi-handle")
    track = page.locator(".hanami-populations-threshold .noUi-base").bounding_box()
    grip = handle.bounding_box()
    page.mouse.move(grip["x"] + grip["width"] / 2, grip["y"] + grip["height"] / 2)
    page.mouse.down()
    page.mouse.move(track["x"] + track["width"] * fraction, grip["y"] + grip["height"] / 2, steps=10)
    page.mouse.up()


def unknown_cells(line) -> int:
    """The count the "N cells unknown" line shows, once it shows one."""
    expect(line).to_contain_text(re.compile(r"[\d,]+ cells? unknown"), timeout=UPDATE_WAIT_MS)
    text = line.text_content()
    found = re.search(r"([\d,]+) cells? unknown", text)
    assert found, text
    return int(found[1].replace(",", ""))


def test_table_build_train_relabel_and_explain(page: Page, cytometry_url):
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(cytometry_url)
    expect(page.get_by_text("2,000 cells × 10 genes")).to_be_visible(timeout=SLOW_WAIT_MS)
    page.wait_for_function(PAGE_READY, timeout=SLOW_WAIT_MS)
    edit_table(page)
    build(page)
    train(page)
    relabel_and_explain(page)
    after_a_reload(page)


def edit_table(page: Page) -> None:
    tab(page, "2 · Model")
    page.locator(".hanami-model-family select").select_option(label=FlowBuilder.title)
    expect(page.locator(".hanami-table-findings")).to_contain_text("no population yet", timeout=SLOW_WAIT_MS)
    page.locator(".hanami-table-example button").click()
    expect(page.locator(".hanami-table-findings")).to_contain_text("No problem found", timeout=UPDATE_WAIT_MS)

    type_into(page, cell(page, "Pop1", "M1"), "high")
    expect(page.locator(".hanami-table-message")).to_contain_text("high is not a level")
    expect(cell(page, "Pop1", "M1")).not_to_have_text("high")
    type_into(page, cell(page, "Pop1", "M1"), "0.5")
    expect(page.locator(".hanami-table-message")).to_be_hidden()
    expect(cell(page, "Pop1", "M1")).to_have_text("0.5")

    # A population with no known level is pointed out, its row coloured; taking it out clears it.
    page.locator(".hanami-table-population-name input").fill("Pop7")
    page.locator(".hanami-table-add-population button").click()
    findings = page.locator(".hanami-table-findings")
    expect(findings).to_contain_text("population Pop7 has no known marker level")
    expect(cell(page, "Pop7", "M1")).to_have_css("background-color", "rgb(253, 240, 200)")
    shot(page, "1_table_with_diagnostic")
    page.locator(".hanami-table-population-pick select").select_option("Pop7")
    page.locator(".hanami-table-remove-population button").click()
    expect(findings).to_contain_text("No problem found")
    page.locator(".hanami-flow-batch select").select_option("batch")


def build(page: Page) -> None:
    page.locator(".hanami-build-model button").click()
    expect(page.locator(".hanami-build-status")).to_contain_text("Model built", timeout=SLOW_WAIT_MS)


def train(page: Page) -> None:
    train_to_end(page, {"epochs": EPOCHS, "batch-size": 512}, "4 · Populations")


def relabel_and_explain(page: Page) -> None:
    tab(page, "4 · Populations")
    unknown = page.locator(".hanami-populations-unknown b")  # the line, inside the pane's shadow root
    expect(unknown).to_contain_text(re.compile(r"[\d,]+ cells? unknown"), timeout=SLOW_WAIT_MS)
    view = page.locator(".hanami-populations")
    expect(view.get_by_text(re.compile(r"X_flow_markers: M1 and M2 · coloured by flow_population"))).to_be_visible(
        timeout=SLOW_WAIT_MS)
    expect(view.get_by_role("gridcell", name="Pop1", exact=True).first).to_be_visible(timeout=SLOW_WAIT_MS)
    canvas = view.locator(".bk-Canvas >> visible=true").first
    expect(canvas).to_be_visible(timeout=SLOW_WAIT_MS)
    expect(page.locator(".hanami-populations-means .bk-Canvas")).to_be_visible(timeout=SLOW_WAIT_MS)
    shot(page, "2_populations_coloured")

    before = unknown_cells(unknown)
    move_threshold(page, 0.97)
    expect(unknown).not_to_contain_text(re.compile(rf"(^|\D){before:,} cells? unknown"), timeout=UPDATE_WAIT_MS)
    strict = unknown_cells(unknown)
    assert strict > before

    drag_box(page, canvas, start=(0.3, 0.2), end=(0.8, 0.8))
    note = page.locator(".hanami-populations-why-note")
    expect(note).to_contain_text(re.compile(r"Why this label · [\d,]+ cells:"), timeout=SLOW_WAIT_MS)
    expect(page.locator(".hanami-populations-explain select")).to_have_value("the latest selection in the plot")
    expect(page.locator(".hanami-populations-why .bk-Canvas")).to_be_visible(timeout=SLOW_WAIT_MS)
    shot(page, "3_threshold_and_selection")
    move_threshold(page, 0.4)  # back towards the start: fewer cells unknown again
    expect(unknown).not_to_contain_text(re.compile(rf"(^|\D){strict:,} cells? unknown"), timeout=UPDATE_WAIT_MS)
    assert unknown_cells(unknown) < strict
    page.locator(".hanami-populations-why").scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "4_heatmaps.png"))


def after_a_reload(page: Page) -> None:
    """A reload opens on the run, and its populations come back at the threshold the user chose."""
    shown = unknown_cells(page.locator(".hanami-populations-unknown b"))
    page.reload()
    page.wait_for_function(PAGE_READY, timeout=SLOW_WAIT_MS)
    tab(page, "4 · Populations")
    unknown = page.locator(".hanami-populations-unknown b")
    expect(unknown).to_contain_text(re.compile(rf"(^|\D){shown:,} cells? unknown"), timeout=SLOW_WAIT_MS)

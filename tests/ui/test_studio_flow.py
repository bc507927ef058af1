"""The knowledge-guided workflow end to end in Chromium, against a real `panel serve app`.

Load (the demo) → switch a phenotype head on → build → train live (loss points counted twice) →
a click answered while training → Stop → the embedding coloured by a label → a box selection
becomes a label → the exported .h5ad holds the latent. The box is drawn with the mouse on the
Bokeh canvas (the real tool), not by driving the selection stream from Python.
"""
import re

import anndata as ad
import pytest
from playwright.sync_api import Page, expect
from studio_driver import (
    SLOW_WAIT_MS,
    UPDATE_WAIT_MS, build_and_start, drag_box, loss_points, open_studio, points_at_state, record_points_at_state,
    run_id, stop_run, tab, wait_for_points,
)

pytestmark = pytest.mark.ui

def test_load_build_train_explore_label_export(page: Page, studio_url, tmp_path):
    open_studio(page, studio_url)
    build_and_start(page)
    try:
        train_pause_stop(page)
    finally:
        stop_run(page)
    explore_label_export(page, tmp_path)


def train_pause_stop(page: Page) -> None:
    state = page.locator(".hanami-run-state")
    expect(state).to_contain_text("running", timeout=UPDATE_WAIT_MS)

    first = wait_for_points(page, 0)
    second = wait_for_points(page, first)
    assert second > first > 0
    expect(page.locator(".hanami-loss-chart .bk-Canvas")).to_be_visible()  # drawn, not only sent

    # A click during the run takes effect (bench/click_latency.py measures how fast).
    page.locator(".hanami-pause button").click()
    expect(state).to_contain_text("paused", timeout=UPDATE_WAIT_MS)
    page.locator(".hanami-pause button").click()
    expect(state).to_contain_text("running", timeout=UPDATE_WAIT_MS)

    record_points_at_state(page, "stopped")
    page.locator(".hanami-stop button").click()
    expect(state).to_contain_text("stopped", timeout=UPDATE_WAIT_MS)
    stopped_at = loss_points(page)
    assert points_at_state(page) == stopped_at  # "stopped" arrived with, not before, the last points
    page.wait_for_timeout(1500)
    assert loss_points(page) == stopped_at


def explore_label_export(page: Page, tmp_path) -> None:
    tab(page, "4 · Explore")
    page.locator(".hanami-embedding-key select").select_option("X_guided_main")
    expect(page.get_by_text(re.compile(r"X_guided_main dimensions 0 and 1 · coloured by bulk_labels"))).to_be_visible(
        timeout=SLOW_WAIT_MS
    )
    expect(page.get_by_role("gridcell", name="Dendritic", exact=True)).to_be_visible()
    canvas = page.locator(".bk-Canvas >> visible=true").first
    expect(canvas).to_be_visible(timeout=SLOW_WAIT_MS)
    drag_box(page, canvas, start=(0.1, 0.1), end=(0.7, 0.9))
    expect(page.get_by_text(re.compile(r"A: [\d,]+ cells"))).to_be_visible(timeout=SLOW_WAIT_MS)
    page.get_by_placeholder("e.g. activated T cells").fill("my gate")
    page.get_by_role("button", name="Add label").click()
    expect(page.get_by_text(re.compile(r'Labelled [\d,]+ cells "my gate" in the annotation column'))).to_be_visible(timeout=SLOW_WAIT_MS)

    tab(page, "5 · Export")
    with page.expect_download(timeout=SLOW_WAIT_MS) as download:
        page.get_by_text("AnnData (.h5ad)").click()
    path = tmp_path / "cells.h5ad"
    download.value.save_as(path)
    exported = ad.read_h5ad(path)
    assert exported.obsm["X_guided_main"].shape == (700, 16)
    assert "my gate" in set(exported.obs["hanami_selection"].astype(str))
    page.screenshot(path="/tmp/hanami_flow.png", full_page=True)


def test_two_sessions_keep_their_runs_apart(browser, studio_url):
    """Two users in two tabs. Each tab is brought to the front before it is used, as a person
    would: Chromium throttles background tabs, which would delay their clicks and drawing."""
    alice, bob = browser.new_page(), browser.new_page()
    try:
        for user in (alice, bob):
            user.bring_to_front()
            open_studio(user, studio_url)
        alice.bring_to_front()
        build_and_start(alice)
        expect(alice.locator(".hanami-run-state")).to_contain_text("running", timeout=UPDATE_WAIT_MS)
        wait_for_points(alice, 0)

        bob.bring_to_front()
        tab(bob, "3 · Train")
        expect(bob.locator(".hanami-run-state")).to_contain_text("No run yet")
        assert loss_points(bob) == 0
        build_and_start(bob)
        # One run per device: Bob's run waits, visibly, behind Alice's.
        expect(bob.locator(".hanami-run-state")).to_contain_text("behind 1 run", timeout=SLOW_WAIT_MS)
        assert loss_points(bob) == 0
        bob_run = run_id(bob)

        alice.bring_to_front()
        alice_run = run_id(alice)
        assert alice_run != bob_run
        alice.locator(".hanami-stop button").click()
        expect(alice.locator(".hanami-run-state")).to_contain_text("stopped", timeout=UPDATE_WAIT_MS)
        alice_points = loss_points(alice)

        bob.bring_to_front()
        expect(bob.locator(".hanami-run-state")).to_contain_text("running", timeout=UPDATE_WAIT_MS)
        wait_for_points(bob, 0)

        alice.bring_to_front()
        alice.wait_for_timeout(1000)
        assert loss_points(alice) == alice_points  # Bob's curves never reach Alice's page
        assert run_id(alice) == alice_run
        bob.bring_to_front()
        bob.locator(".hanami-stop button").click()
        expect(bob.locator(".hanami-run-state")).to_contain_text("stopped", timeout=UPDATE_WAIT_MS)
    finally:
        for user in (alice, bob):
            user.bring_to_front()
            stop_run(user)
            user.close()

"""Runs belong to their user, not to a tab: a reload finds the run again, and a run left in a
closed tab is listed and stopped from a new tab of the same browser."""
import pytest
from playwright.sync_api import Page, expect
from studio_driver import UPDATE_WAIT_MS, build_and_start, loss_points, open_studio, run_id, stop_run, tab, wait_for_points

pytestmark = pytest.mark.ui


def test_a_reload_mid_run_brings_back_the_curves_and_stop(page: Page, studio_url):
    open_studio(page, studio_url)
    build_and_start(page)
    try:
        expect(page.locator(".hanami-run-state")).to_contain_text("running", timeout=UPDATE_WAIT_MS)
        wait_for_points(page, 0)
        before = run_id(page)

        page.reload()
        open_studio(page, studio_url)
        tab(page, "3 · Train")
        state = page.locator(".hanami-run-state")
        expect(state).to_contain_text("running", timeout=UPDATE_WAIT_MS)
        assert run_id(page) == before
        wait_for_points(page, 0)  # the curves are drawn again from the run's first step
        expect(page.locator(f".hanami-run-{before}")).to_contain_text("running")

        page.locator(".hanami-stop button").click()
        expect(state).to_contain_text("stopped", timeout=UPDATE_WAIT_MS)
    finally:
        stop_run(page)


def test_a_closed_tabs_run_is_listed_and_stopped_from_a_new_tab(browser, studio_url):
    context = browser.new_context()  # one browser profile: one user
    first = context.new_page()
    try:
        open_studio(first, studio_url)
        build_and_start(first)
        expect(first.locator(".hanami-run-state")).to_contain_text("running", timeout=UPDATE_WAIT_MS)
        left = run_id(first)
        first.close()

        second = context.new_page()
        open_studio(second, studio_url)
        tab(second, "3 · Train")
        row = second.locator(f".hanami-run-{left}")
        expect(row).to_contain_text("running", timeout=UPDATE_WAIT_MS)
        row.get_by_role("button", name="Stop").click()
        expect(row).to_contain_text("stopped", timeout=UPDATE_WAIT_MS)
        expect(second.locator(".hanami-run-state")).to_contain_text("stopped", timeout=UPDATE_WAIT_MS)
        assert loss_points(second) > 0
        row.get_by_role("button", name="Remove").click()
        expect(second.locator(f".hanami-run-{left}")).to_have_count(0, timeout=UPDATE_WAIT_MS)
        expect(second.get_by_text("No runs yet")).to_be_visible()
    finally:
        for page in context.pages:
            stop_run(page)
        context.close()

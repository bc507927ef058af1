"""Browser tests: Debian's Chromium through pytest-playwright, against a real `panel serve app`."""
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from serving import panel_served
from studio_driver import SLOW_WAIT_MS, UPDATE_WAIT_MS

CHROMIUM = Path("/usr/bin/chromium")
UPLOAD_LIMIT_MB = "1"  # small, so a test can send an over-limit upload


@pytest.fixture(scope="session", autouse=True)
def _needs_chromium():
    """Skip rather than fail where the system Chromium is not installed (`make chromium`)."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent: install Debian's chromium to run the browser tests")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """The system Chromium, headless and quiet, instead of a Playwright-downloaded browser."""
    return {
        **browser_type_launch_args,
        "executable_path": str(CHROMIUM),
        "args": [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            # Two users are two tabs here; keep a background tab as lively as a second machine.
            "--disable-background-timer-throttling",
            "--disable-renderer-backgrounding",
            "--disable-backgrounding-occluded-windows",
        ],
    }


expect.set_options(timeout=UPDATE_WAIT_MS)  # every expect() without its own bound: only a hang reaches it


@pytest.fixture(autouse=True)
def _patient_page(request):
    """Navigations and clicks wait as long as a busy machine needs (Playwright's default is 30 s)."""
    if "page" in request.fixturenames:
        page: Page = request.getfixturevalue("page")
        page.set_default_timeout(SLOW_WAIT_MS)
        page.set_default_navigation_timeout(SLOW_WAIT_MS)


@pytest.fixture(scope="session")
def studio_url():
    """`panel serve app` on a free localhost port, exactly as a user starts it; the app's URL."""
    try:
        with panel_served("app", "app", env={"HANAMI_MAX_UPLOAD_MB": UPLOAD_LIMIT_MB}) as url:
            yield url
    except RuntimeError as error:
        pytest.fail(str(error))

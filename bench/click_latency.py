"""How fast the studio answers a click while a model trains: Pause/Resume during a live run.

Serves the studio (`panel serve app`), builds the demo's cell-type model in Chromium, starts a long
run, then clicks Pause and Resume alternately and times each click until the page shows the new
state. The training runs in the server's worker thread throughout. Target: under 500 ms.

    .venv/bin/python bench/click_latency.py [--clicks 20]
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "ui"))
from results_file import save  # noqa: E402
from serving import panel_served  # noqa: E402
from studio_driver import build_and_start, open_studio, wait_for_points  # noqa: E402

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=20)
    args = parser.parse_args()
    latencies = []
    with panel_served("app", "app") as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page()
        open_studio(page, url)
        build_and_start(page, epochs=100_000)
        state = page.locator(".hanami-run-state")
        expect(state).to_contain_text("running", timeout=60_000)
        wait_for_points(page, 0)
        # The pointer rests on the button first, as a user's would: otherwise the first timed click
        # also holds Playwright's first scroll-and-move to the button (about 450 ms here).
        page.locator(".hanami-pause button").hover()
        for click in range(args.clicks):
            expected = "paused" if click % 2 == 0 else "running"
            started = time.perf_counter()
            page.locator(".hanami-pause button").click()
            expect(state).to_contain_text(expected, timeout=10_000)
            latencies.append(time.perf_counter() - started)
            page.wait_for_timeout(300)
        page.locator(".hanami-stop button").click()
        browser.close()
    ms = sorted(1000 * s for s in latencies)
    result = {"clicks": len(ms), "median_ms": round(statistics.median(ms)), "max_ms": round(ms[-1]),
              "p90_ms": round(ms[int(0.9 * (len(ms) - 1))]), "over_500_ms": sum(m > 500 for m in ms),
              "in_order_ms": [round(1000 * s) for s in latencies]}
    save("click_latency", result)


if __name__ == "__main__":
    main()

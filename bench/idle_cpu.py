"""What an open studio page costs the server while nobody touches it: CPU seconds per wall second.

Serves the studio (`panel serve app`), opens it in Chromium and reads the server's CPU time from
/proc over a quiet window in each state a user leaves a page in: loaded, after visiting the
explorer, after a run was stopped, and after the tab was closed. Each window starts after a few
seconds' settling (the explorer draws its first plot once the page has loaded). An idle server
should be near 0; a value near 1 means something re-schedules itself on every event-loop tick.
Linux only.

    .venv/bin/python bench/idle_cpu.py [--window 10] [--settle 5]
"""
import argparse
import os
import sys
import time
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "ui"))
from results_file import save  # noqa: E402
from serving import panel_server  # noqa: E402
from studio_driver import UPDATE_WAIT_MS, build_and_start, open_studio, tab, wait_for_points  # noqa: E402

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process, from /proc/<pid>/stat (fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def busy_fraction(pid: int, window_s: float, settle_s: float = 0.0) -> float:
    """CPU seconds the process used per wall second over `window_s` seconds, after `settle_s`."""
    time.sleep(settle_s)
    before, started = cpu_seconds(pid), time.monotonic()
    time.sleep(window_s)
    return round((cpu_seconds(pid) - before) / (time.monotonic() - started), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=float, default=10.0, help="seconds measured in each state")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds waited before each window")
    args = parser.parse_args()
    idle = {"window_s": args.window, "settle_s": args.settle}
    result = dict(idle)
    with panel_server("app", "app") as (url, server), sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page()
        open_studio(page, url)
        result["page_loaded"] = busy_fraction(server.pid, **idle)
        tab(page, "4 · Explore")
        expect(page.locator(".bk-Canvas >> visible=true").first).to_be_visible(timeout=UPDATE_WAIT_MS)
        tab(page, "1 · Data")
        result["after_explorer_visit"] = busy_fraction(server.pid, **idle)
        build_and_start(page)
        wait_for_points(page, 0)
        page.locator(".hanami-stop button").click()
        expect(page.locator(".hanami-run-state")).to_contain_text("stopped", timeout=UPDATE_WAIT_MS)
        result["after_run_stopped"] = busy_fraction(server.pid, **idle)
        page.close()
        result["page_closed"] = busy_fraction(server.pid, **idle)
        browser.close()
    save("idle_cpu", result)


if __name__ == "__main__":
    main()

"""Browser tests: Debian's Chromium through pytest-playwright, against a real `panel serve app`."""
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 90


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
        ],
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def studio_url():
    """`panel serve app` on a free localhost port, exactly as a user starts it; the app's URL."""
    port = _free_port()
    command = [
        sys.executable, "-m", "panel", "serve", "app",
        "--address", "localhost", "--port", str(port),
        f"--allow-websocket-origin=localhost:{port}",
    ]
    url = f"http://localhost:{port}/app"
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_until_served(url, server, log)
            yield url
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def _wait_until_served(url: str, server: subprocess.Popen, log) -> None:
    """Poll until the app answers 200; fail with the server's own output if it never does."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    log.seek(0)
    output = log.read().decode(errors="replace")
    state = f"exited with {server.returncode}" if server.poll() is not None else "still not answering"
    pytest.fail(f"`panel serve app` {state} after {START_TIMEOUT_S} s at {url}:\n{output}")

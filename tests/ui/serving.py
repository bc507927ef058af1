"""Serve a Panel app exactly as a user does (`panel serve ...` on localhost) for a test or a bench."""
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 90


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@contextmanager
def panel_served(target: str | Path, url_path: str, env: dict[str, str] | None = None, *,
                 bare: bool = False, args: Sequence[str] = ()) -> Iterator[str]:
    """`panel serve TARGET` on a free localhost port, from the repo root; yields the app's URL."""
    with panel_server(target, url_path, env, bare=bare, args=args) as (url, _server):
        yield url


@contextmanager
def panel_server(target: str | Path, url_path: str, env: dict[str, str] | None = None, *,
                 bare: bool = False, args: Sequence[str] = ()) -> Iterator[tuple[str, subprocess.Popen]]:
    """As `panel_served`, also yielding the server process (a bench reads its CPU time).

    `bare=True` leaves out --address and --allow-websocket-origin, as a user typing the README's
    `panel serve app` does (the server then listens on every interface); `args` are added as given.
    Raises RuntimeError with the server's own output if it does not answer HTTP 200 in time.
    """
    port = free_port()
    command = [sys.executable, "-m", "panel", "serve", str(target), "--port", str(port), *args]
    if not bare:
        command += ["--address", "localhost", f"--allow-websocket-origin=localhost:{port}"]
    url = f"http://localhost:{port}/{url_path}"
    environment = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(command, cwd=REPO, env=environment, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_until_served(target, url, server, log)
            yield url, server
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def _wait_until_served(target, url: str, server: subprocess.Popen, log) -> None:
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
    raise RuntimeError(f"`panel serve {target}` {state} after {START_TIMEOUT_S} s at {url}:\n{output}")


"""Serve a Panel app exactly as a user does (`panel serve ...` on localhost) for a test or a bench."""
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Only a hang reaches it: on a 2-core machine whose cores are busy, Panel's start-up takes a minute.
START_TIMEOUT_S = 300
READY_LINE = b"Bokeh app running at"  # what `panel serve` logs once it listens


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
    Waits for the server's own readiness line in its log, then for one answer to one request (a
    slow first page is waited for, never asked for again). Raises RuntimeError with the server's
    output if it does not answer HTTP 200 in time.
    """
    port = free_port()
    command = [sys.executable, "-m", "panel", "serve", str(target), "--port", str(port), *args]
    if not bare:
        command += ["--address", "localhost", f"--allow-websocket-origin=localhost:{port}"]
    url = f"http://localhost:{port}/{url_path}"
    environment = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    server = subprocess.Popen(command, cwd=REPO, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    log = ServerLog(server)
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


class ServerLog:
    """The server's output, read line by line in a thread of its own (so its pipe never fills);
    `ready` is set when the server logs READY_LINE, or when its output ends (it exited)."""

    def __init__(self, server: subprocess.Popen):
        self.lines: list[bytes] = []
        self.ready = threading.Event()
        threading.Thread(target=self._read, args=(server.stdout,), daemon=True).start()

    def _read(self, stream) -> None:
        for line in stream:
            self.lines.append(line)
            if READY_LINE in line:
                self.ready.set()
        self.ready.set()

    def text(self) -> str:
        return b"".join(self.lines).decode(errors="replace")


def _wait_until_served(target, url: str, server: subprocess.Popen, log: ServerLog) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    state = f"did not log '{READY_LINE.decode()}' in {START_TIMEOUT_S} s"
    if log.ready.wait(START_TIMEOUT_S) and server.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=max(1.0, deadline - time.monotonic())):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
            state = f"answered the first request with: {error}"
    if server.poll() is not None:
        state = f"exited with {server.returncode}"
    raise RuntimeError(f"`panel serve {target}` {state} at {url}:\n{log.text()}")

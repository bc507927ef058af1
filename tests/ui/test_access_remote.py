"""A bare `panel serve app` (no --address: it listens on every interface) serves this computer only.

Another computer is played by a second loopback address, 127.0.0.2, bound as the client's source
address: nothing leaves the machine, yet the server sees a client that is not 127.0.0.1.
"""
import asyncio
import http.client
import json
from concurrent.futures import ThreadPoolExecutor
from http.cookies import SimpleCookie
from urllib.parse import urlencode, urlparse

import pytest
from bokeh.protocol import Protocol
from bokeh.util.token import generate_jwt_token, generate_session_id
from serving import panel_served
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from app.access import ALLOW_REMOTE_VAR, REFUSAL

pytestmark = pytest.mark.ui

THIS_COMPUTER, OTHER_COMPUTER = "127.0.0.1", "127.0.0.2"
STUDIO_MARK = "Load built-in demo"  # a button only the studio has
REFUSAL_MARK = "only serves the computer it runs on"
WAIT_S = 90
PASSWORD = "hanami-test-password"


@pytest.fixture(scope="module")
def bare_url():
    with panel_served("app", "app", bare=True) as url:
        yield url


@pytest.fixture(scope="module")
def login_url():
    """Opened to other computers as the owner must: the setting and Panel's own login."""
    args = ["--basic-auth", PASSWORD, "--cookie-secret", "hanami-test-cookie-secret"]
    with panel_served("app", "app", env={ALLOW_REMOTE_VAR: "1"}, bare=True, args=args) as url:
        yield url


def http_request(url: str, source: str, method: str = "GET", path: str | None = None, body: str | None = None,
                 headers: dict | None = None) -> http.client.HTTPResponse:
    """One request over a connection whose source address is `source`; the response, body read."""
    parsed = urlparse(url)
    connection = http.client.HTTPConnection(THIS_COMPUTER, parsed.port, timeout=WAIT_S, source_address=(source, 0))
    try:
        connection.request(method, path or parsed.path, body=body, headers=headers or {})
        response = connection.getresponse()
        response.text = response.read().decode(errors="replace")
        return response
    finally:
        connection.close()


def get_page(url: str, source: str) -> tuple[int, str]:
    response = http_request(url, source)
    return response.status, response.text


async def _pulled_document(url: str, source: str) -> str:
    """Open a session over the websocket alone (no page request) from `source`; the document's JSON."""
    port = urlparse(url).port
    token = generate_jwt_token(generate_session_id())
    request = HTTPRequest(f"ws://{THIS_COMPUTER}:{port}/app/ws", network_interface=source,
                          headers={"Origin": f"http://localhost:{port}"})  # the origin check lets any client say so
    socket = await websocket_connect(request, subprotocols=["bokeh", token])
    try:
        if await _next_message(socket) != "ACK":  # the server reads nothing before its session exists
            return ""
        pull = Protocol().create("PULL-DOC-REQ")
        for fragment in (pull.header_json, pull.metadata_json, pull.content_json):
            await socket.write_message(fragment)
        while True:
            fragment = await socket.read_message()
            if fragment is None:
                return ""  # closed by the server
            if isinstance(fragment, str) and fragment.startswith('{"doc"'):
                return fragment
    finally:
        socket.close()


async def _next_message(socket) -> str | None:
    """The type of the next Bokeh message (header, metadata, content), or None when closed."""
    header = await socket.read_message()
    if header is None:
        return None
    for _ in range(2):
        await socket.read_message()
    return json.loads(header)["msgtype"]


def pulled_document(url: str, source: str) -> str:
    """In a thread of its own: after browser tests, Playwright's event loop holds the main thread."""
    with ThreadPoolExecutor(max_workers=1) as worker:
        return worker.submit(asyncio.run, asyncio.wait_for(_pulled_document(url, source), WAIT_S)).result()


def test_another_computer_is_refused_the_page(bare_url):
    status, body = get_page(bare_url, OTHER_COMPUTER)
    assert status == 403
    assert REFUSAL in body and "<script" not in body


def test_this_computer_is_served_the_page(bare_url):
    status, body = get_page(bare_url, THIS_COMPUTER)
    assert status == 200 and "<title>Hanami</title>" in body


def test_another_computer_gets_no_studio_over_the_websocket(bare_url):
    document = pulled_document(bare_url, OTHER_COMPUTER)
    assert STUDIO_MARK not in document
    assert REFUSAL_MARK in document


def test_this_computer_gets_the_studio_over_the_websocket(bare_url):
    document = pulled_document(bare_url, THIS_COMPUTER)
    assert STUDIO_MARK in document and REFUSAL_MARK not in document


def test_with_the_setting_and_a_login_another_computer_logs_in_first(login_url):
    first = http_request(login_url, OTHER_COMPUTER)
    assert first.status == 302 and "login" in first.getheader("Location")
    form = urlencode({"username": "colleague", "password": PASSWORD})
    login = http_request(login_url, OTHER_COMPUTER, "POST", "/login", form,
                         {"Content-Type": "application/x-www-form-urlencoded"})
    assert login.status == 302
    cookies = SimpleCookie()
    for header in login.headers.get_all("Set-Cookie"):
        cookies.load(header)
    cookie = "; ".join(f"{name}={morsel.value}" for name, morsel in cookies.items())
    page = http_request(login_url, OTHER_COMPUTER, headers={"Cookie": cookie})
    assert page.status == 200 and "<title>Hanami</title>" in page.text

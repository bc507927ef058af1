"""The access rule: this computer only, unless HANAMI_ALLOW_REMOTE=1 and a login are both set."""
import logging
from types import SimpleNamespace

import pytest
from tornado.web import HTTPError

from app import app_hooks
from app.access import ALLOW_REMOTE_VAR, REFUSAL, is_this_computer, refusal_reason, session_refused


@pytest.fixture(autouse=True)
def _no_login_no_setting(monkeypatch):
    for var in (ALLOW_REMOTE_VAR, "PANEL_BASIC_AUTH", "PANEL_OAUTH_PROVIDER"):
        monkeypatch.delenv(var, raising=False)


def page_request(address: str, **headers) -> SimpleNamespace:
    return SimpleNamespace(remote_ip=address, headers=headers, path="/app")


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "::ffff:127.0.0.1"])
def test_loopback_is_this_computer(address):
    assert is_this_computer(address) and refusal_reason(address) is None


@pytest.mark.parametrize("address", ["127.0.0.2", "192.168.1.20", "::ffff:10.0.0.3", "fe80::1%eth0", "", None, "x"])
def test_any_other_address_is_refused_by_default(address):
    assert not is_this_computer(address)
    assert ALLOW_REMOTE_VAR in refusal_reason(address)


def test_remote_needs_the_setting_and_a_login(monkeypatch):
    assert "not set" in refusal_reason("10.0.0.3", {}, login=True)
    assert "no login is configured" in refusal_reason("10.0.0.3", {ALLOW_REMOTE_VAR: "1"}, login=False)
    assert refusal_reason("10.0.0.3", {ALLOW_REMOTE_VAR: "1"}, login=True) is None
    assert "not set" in refusal_reason("10.0.0.3", {ALLOW_REMOTE_VAR: "maybe"}, login=True)


def test_a_refused_page_request_is_answered_403_with_plain_words_and_logged(caplog):
    with caplog.at_level(logging.WARNING, logger="hanami.access"), pytest.raises(HTTPError) as refused:
        app_hooks.process_request(page_request("127.0.0.2"))
    assert refused.value.status_code == 403 and refused.value.reason == REFUSAL
    assert "only serves the computer it runs on" in REFUSAL and "<" not in REFUSAL
    assert "127.0.0.2" in caplog.text and ALLOW_REMOTE_VAR in caplog.text
    assert app_hooks.process_request(page_request("127.0.0.1")) == {}


def test_allowed_remote_without_login_is_still_refused_and_says_so(monkeypatch, caplog):
    monkeypatch.setenv(ALLOW_REMOTE_VAR, "1")
    with caplog.at_level(logging.WARNING, logger="hanami.access"):
        app_hooks.on_server_loaded(None)
        with pytest.raises(HTTPError):
            app_hooks.process_request(page_request("192.168.1.20"))
    assert caplog.text.count("no login is configured") == 2


def test_allowed_remote_with_panels_login_is_served(monkeypatch):
    monkeypatch.setenv(ALLOW_REMOTE_VAR, "1")
    monkeypatch.setenv("PANEL_BASIC_AUTH", "a password")
    assert app_hooks.process_request(page_request("192.168.1.20")) == {}


def test_websocket_requests_are_left_to_the_session_check():
    assert app_hooks.process_request(page_request("127.0.0.2", Upgrade="websocket")) == {}


def test_session_check_uses_the_address_that_opened_the_session():
    def doc(address):
        return SimpleNamespace(session_context=SimpleNamespace(request=SimpleNamespace(remote_ip=address)))

    assert session_refused(doc("127.0.0.2")) and not session_refused(doc("::1"))
    assert session_refused(SimpleNamespace(session_context=SimpleNamespace(request=None)))
    assert not session_refused(SimpleNamespace(session_context=None))  # a notebook, not a server

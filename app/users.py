"""Who a page belongs to, so that runs follow their user across reloads and tabs.

With a login (Panel's `--basic-auth` or an OAuth provider) the user is the logged-in name. On the
studio's own machine, where no login is asked, the user is the browser: the first page a browser
opens gets a random id that the page keeps in a cookie, and every later page of that browser
(a reload, a second tab) presents it again. A notebook is one user of its own.
"""
from __future__ import annotations

import re
import secrets

import panel as pn
from bokeh.models import CustomJS

COOKIE = "hanami_user"
COOKIE_DAYS = 365
_ID = re.compile(r"^[0-9a-f]{32}$")


def session_owner() -> tuple[str, bool]:
    """The owner id for the current page, and whether it is new (the browser must remember it)."""
    user = pn.state.user
    if user and user != "guest":
        return f"user:{user}", False
    remembered = pn.state.cookies.get(COOKIE, "")
    if _ID.match(remembered):
        return remembered, False
    return secrets.token_hex(16), True


def remember_owner(owner: str) -> None:
    """Have the served page store `owner` in its browser's cookie once the page has loaded."""
    doc = pn.state.curdoc
    if doc is None or doc.session_context is None or not _ID.match(owner):
        return
    days = COOKIE_DAYS * 24 * 3600
    doc.js_on_event(
        "document_ready",
        CustomJS(code=f"document.cookie = '{COOKIE}={owner}; path=/; max-age={days}; SameSite=Strict';"),
    )

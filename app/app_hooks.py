"""Bokeh's hooks for the `panel serve app` directory app: the access rule of app/access.py per request.

A page request from a refused client is answered 403 with the plain refusal before any session
exists. A websocket opening a session without a page request is left to app/main.py, which
shows that client only the refusal: raising here would leave its connection open, unanswered.
"""
from tornado.web import HTTPError

from app.access import ALLOW_REMOTE_VAR, REFUSAL, log, login_configured, refused, remote_allowed


def on_server_loaded(server_context) -> None:
    """Say at start-up when the owner allowed other computers but gave them no login to pass."""
    if remote_allowed() and not login_configured():
        log.warning("%s=1 is set but no login is configured (--basic-auth or --oauth-provider): "
                    "Hanami serves this computer only.", ALLOW_REMOTE_VAR)


def process_request(request) -> dict:
    if request.headers.get("Upgrade", "").lower() == "websocket":
        return {}
    if refused(request.remote_ip, f"page request {request.path}"):
        raise HTTPError(403, reason=REFUSAL)
    return {}

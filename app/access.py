"""Who may use the studio: the computer it runs on, and others only when its owner asks, behind a login.

A bare ``panel serve app`` listens on every network interface, and the studio lets whoever opens
it browse the server's data folder, upload files and train on its devices. So the rule is checked
per client address, however the server was started: on each page request (app/app_hooks.py) and
again for each session, which also covers a session opened over the websocket alone (app/main.py).

Only 127.0.0.1 and ::1 (also written ::ffff:127.0.0.1) count as this computer. Serving other
computers needs ``HANAMI_ALLOW_REMOTE=1`` and Panel's own login (``--basic-auth`` or an OAuth
provider); with the setting but no login, other computers are still refused, and the server log
says why. Panel checks the login before the studio runs, so this rule never sees a stranger.
"""
from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Mapping

ALLOW_REMOTE_VAR = "HANAMI_ALLOW_REMOTE"
YES = {"1", "true", "yes", "on"}
NO = {"", "0", "false", "no", "off"}
THIS_COMPUTER = {ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")}
REFUSAL = (
    "This Hanami studio only serves the computer it runs on; ask its owner to open it to others "
    f"(they set {ALLOW_REMOTE_VAR}=1 and start it with a login), or use it on that computer."
)

log = logging.getLogger("hanami.access")


def is_this_computer(address: str | None) -> bool:
    """Whether a client address is the loopback address of the computer the studio runs on."""
    try:
        ip = ipaddress.ip_address((address or "").split("%")[0])
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip in THIS_COMPUTER


def remote_allowed(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the owner set HANAMI_ALLOW_REMOTE to a yes; an unreadable value counts as no."""
    raw = (os.environ if environ is None else environ).get(ALLOW_REMOTE_VAR, "").strip().lower()
    if raw not in YES | NO:
        log.warning("%s=%r is neither 1 nor 0; other computers stay refused.", ALLOW_REMOTE_VAR, raw)
    return raw in YES


def login_configured() -> bool:
    """Whether Panel was started with a login: --basic-auth or an OAuth provider (flags or PANEL_ env)."""
    import panel as pn

    return bool(pn.config.basic_auth or pn.config.oauth_provider)


def refusal_reason(address: str | None, environ: Mapping[str, str] | None = None,
                   login: bool | None = None) -> str | None:
    """None when the client at `address` may use the studio, else why not, for the server log."""
    if is_this_computer(address):
        return None
    if not remote_allowed(environ):
        return f"it is not this computer, and {ALLOW_REMOTE_VAR} is not set to 1"
    if not (login_configured() if login is None else login):
        return (f"{ALLOW_REMOTE_VAR}=1 is set but no login is configured; start the studio with "
                "--basic-auth or --oauth-provider to serve other computers")
    return None


def refused(address: str | None, what: str) -> bool:
    """Apply the rule to one client, writing a server log line when it is refused."""
    reason = refusal_reason(address)
    if reason is not None:
        log.warning("Hanami refused the %s from %s: %s.", what, address or "an unknown address", reason)
    return reason is not None


def session_refused(doc) -> bool:
    """Whether a served session's client is refused; a document outside a server (notebook) is not."""
    context = getattr(doc, "session_context", None)
    if context is None:
        return False
    request = context.request
    return refused(getattr(request, "remote_ip", None) if request is not None else None, "session")

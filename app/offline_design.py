"""Panel's Fast design with nothing fetched from the web, so the studio works on an air-gapped machine.

Fast links Google's "Open Sans" for every page; this design leaves that link out (the page uses the
system's font, `FONT`) and points its own script at the copy Panel bundles, which `panel serve`
serves itself.
"""
from panel.io.resources import CDN_DIST
from panel.theme import Fast

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"


def _bundled(url: str) -> str:
    """Fast's relative resource paths are looked up under its class name; a subclass has another."""
    return url if "//" in url else f"{CDN_DIST}bundled/{Fast.__name__.lower()}/{url}"


class OfflineFast(Fast):
    """Fast, without the web font."""

    _resources = {
        **Fast._resources,
        "font": {},
        "js_modules": {name: _bundled(url) for name, url in Fast._resources["js_modules"].items()},
    }

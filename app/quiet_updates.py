"""Widget updates a view makes itself, kept from calling back into it."""
from __future__ import annotations

from contextlib import contextmanager


class QuietUpdates:
    """Mixin: inside `with self._quiet():` watchers see `self._syncing` and do nothing."""

    _syncing = False

    @contextmanager
    def _quiet(self):
        self._syncing = True
        try:
            yield
        finally:
            self._syncing = False

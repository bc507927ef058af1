"""The one error type for unusable user input, so the app can show it and tests can match it."""
from __future__ import annotations


class InputError(ValueError):
    """A file, table or column the user gave cannot be used.

    The message always names the thing (file path, column, gene), says what was expected and,
    where there is one, what to do about it. `problems` holds every problem found, each with its
    location (a `engine.config.problems.Problem`), so a UI can show each next to its control.
    """

    def __init__(self, message: str, problems=()):
        super().__init__(message)
        self.problems = list(problems)

"""The one error type for unusable user input, so the app can show it and tests can match it."""


class InputError(ValueError):
    """A file, table or column the user gave cannot be used.

    The message always names the thing (file path, column, gene), says what was expected and,
    where there is one, what to do about it.
    """

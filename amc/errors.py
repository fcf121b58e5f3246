"""One exception type for bad user input, so stages can print it cleanly and exit non-zero."""

from __future__ import annotations


class InputError(ValueError):
    """Bad input data or parameters.

    The message names the offending file / patient id / parameter key; ``hint`` says what to do.
    """

    def __init__(self, message: str, hint: str | None = None) -> None:
        self.hint = hint
        super().__init__(f"{message}\n  hint: {hint}" if hint else message)

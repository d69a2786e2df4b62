"""One vocabulary of errors and warnings for volguard.

Errors about the data subclass ``ValueError`` so callers that already catch those keep
working; :class:`ConfigError` on purpose does not: code that records a failed fit and goes on
(``volguard.models.base.FIT_ERRORS``) must never swallow a misspelt setting. Recoverable
numerical trouble is a warning, never a silent NaN.
"""

from __future__ import annotations

from pathlib import Path


class VolguardError(Exception):
    """Base class of every error volguard raises on purpose."""


class DataFileError(VolguardError, ValueError):
    """A whole input file cannot be read: unreadable, truncated, wrong encoding, missing columns.

    The message names the file and what was expected, so a user can fix the input.
    """

    def __init__(self, path: str | Path, problem: str, expected: str) -> None:
        self.path = str(path)
        self.problem = problem
        self.expected = expected
        super().__init__(f"{self.path}: {problem}; expected {expected}")

    def __reduce__(self) -> tuple[type, tuple[str, str, str]]:
        # rebuilt from its fields, so it crosses a process pool intact (not a broken pool)
        return type(self), (self.path, self.problem, self.expected)


class DataRowError(VolguardError, ValueError):
    """One row of an input file is invalid where the caller asked for strict parsing."""

    def __init__(self, path: str | Path, row: int, field: str, expected: str, got: object) -> None:
        self.path = str(path)
        self.row = row
        self.field = field
        self.expected = expected
        self.got = got
        super().__init__(
            f"{self.path}, line {row}, field {field!r}: expected {expected}, got {got!r}"
        )

    def __reduce__(self) -> tuple[type, tuple[str, int, str, str, object]]:
        return type(self), (self.path, self.row, self.field, self.expected, self.got)


class ConfigError(VolguardError):
    """A setting or a configuration file is invalid; the message names the key and the rule.

    Not a ``ValueError``: a configuration error always surfaces, it is never counted as a
    failed fit (``FIT_ERRORS``).
    """


class StoreError(VolguardError, RuntimeError):
    """The quote store cannot be opened or written as asked (locked, corrupt manifest, ...)."""


class FetchError(VolguardError, RuntimeError):
    """A download failed for good (after retries where the failure could be transient).

    The message names the URL, what went wrong and, where useful, what to do.
    """

    def __init__(self, url: str, problem: str) -> None:
        self.url = url
        self.problem = problem
        super().__init__(f"{url}: {problem}")

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        return type(self), (self.url, self.problem)


class NumericalWarning(RuntimeWarning):
    """A numerical routine recovered from a problem (fallback fit, clipped input, ...)."""

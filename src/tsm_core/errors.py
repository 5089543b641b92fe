"""Errors a user can act on. The CLI prints them as one line (no traceback)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path


class TSMError(Exception):
    """Base class of every error the Training Set Maker reports to its user.

    ``key`` is the dotted config key the error is about, where there is one.
    Every subclass that carries a config key takes it first: ``(key, message, ...)``
    (``""`` when there is none); the others take only their message.
    """

    key: str = ""

    @property
    def message(self) -> str:
        """The error without its config key (``str(error)`` is ``"key: message"``)."""
        text = str(self)
        return text[len(self.key) + 2 :] if self.key and text.startswith(f"{self.key}: ") else text


class ConfigError(TSMError, ValueError):
    """A configuration value is invalid; ``key`` is its dotted path in the config.

    ``problems`` lists every refusal of one validation as ``{"field", "message", "type"}``
    (the first is ``key``'s), so that a form can show each at its field; by default, this one.
    """

    def __init__(self, key: str, message: str, problems: list[dict[str, str]] | None = None) -> None:
        self.key = key
        self.problems = problems or [{"field": key, "message": message, "type": ""}]
        super().__init__(f"{key}: {message}" if key else message)


class UnknownChoiceError(ConfigError):
    """A name (release, flux type, dereddener, format) that no installed plugin offers."""

    def __init__(self, key: str, kind: str, value: str, choices: Iterable[str]) -> None:
        import difflib

        self.value = value
        self.choices = sorted(choices)
        listed = ", ".join(self.choices) if self.choices else "(none installed)"
        folded = {c.casefold(): c for c in self.choices}
        close = difflib.get_close_matches(str(value).casefold(), list(folded), n=1, cutoff=0.6)
        hint = f" (did you mean {folded[close[0]]!r}?)" if close else ""
        super().__init__(key, f"unknown {kind} {value!r}{hint}; installed choices: {listed}")


class CatalogError(TSMError):
    """An input catalog is unreadable or does not hold what it must."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(message)


class BadRowsError(CatalogError):
    """Rows of a redshift catalog with invalid values; ``rows`` are 0-based row numbers."""

    def __init__(self, key: str, what: str, rows: Sequence[int], source: str) -> None:
        self.rows = list(rows)
        shown = ", ".join(str(r) for r in self.rows[:10])
        more = f" (and {len(self.rows) - 10} more)" if len(self.rows) > 10 else ""
        super().__init__(key, f"{source}: {len(self.rows)} row(s) with {what}: rows {shown}{more} (0-based)")


class MissingDustMapError(ConfigError):
    """The files of a dust map are not installed."""

    def __init__(self, key: str, name: str, missing: Sequence[Path], fetch: str | None) -> None:
        self.missing = list(missing)
        files = ", ".join(str(p) for p in self.missing)
        hint = f"; install them with `{fetch}`" if fetch else ""
        hint += " or set object_catalog.dust_maps_dir (or TSM_DUSTMAPS_DIR) to where they are"
        super().__init__(key, f"dust map {name!r} is missing file(s) {files}{hint}")


class OutputError(TSMError):
    """The output cannot be written where asked."""

    key = "output.directory"


class PluginClashError(TSMError):
    """Two plugins offer a record under the same name."""


class RunCancelled(TSMError):
    """A run was stopped (a signal, a cancel request, a server shutting down).

    ``status`` is what its product becomes: ``cancelled`` (asked for by a user) or
    ``failed`` (interrupted).
    """

    def __init__(self, reason: str, status: str = "cancelled") -> None:
        self.status = status
        super().__init__(reason)


class TooManyRuns(TSMError):
    """A user has as many training sets queued or running as the service allows."""


def one_line(exc: BaseException | str, limit: int = 500) -> str:
    """The message of ``exc`` as one line: the first meaningful line of a multi-line
    library error (a FITSIO dump, an HDF5 stack), whitespace collapsed, cut at ``limit``."""
    text = str(exc) if not isinstance(exc, str) else exc
    lines = [" ".join(line.split()) for line in text.splitlines()]
    lines = [line for line in lines if line and set(line) - set("-=*_#~ ")]
    if not lines:
        return type(exc).__name__ if isinstance(exc, BaseException) else ""
    first = lines[0]
    if len(lines) > 1 and len(first) < 40:  # a heading such as "FITSIO status = 106: ..." and its detail
        first = f"{first} {lines[1]}"
    return first if len(first) <= limit else first[: limit - 3] + "..."

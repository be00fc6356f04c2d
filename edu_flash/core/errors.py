"""The library's own errors, so callers can catch edu-flash problems apart from bugs.

Every data error says where the problem is (file, column, row) so a user can fix the data without
reading a traceback.
"""
from __future__ import annotations


class EduFlashError(Exception):
    """Base of every error edu-flash raises on purpose."""


class ConfigError(EduFlashError, ValueError):
    """A hyperparameter, argument or backbone name is not valid."""


class DataError(EduFlashError, ValueError):
    """Input data is unreadable or has bad values; the message names file, column and row."""

    def __init__(self, message: str, *, source: str | None = None, column: str | None = None,
                 row: int | None = None, line: int | None = None):
        self.source, self.column, self.row, self.line = source, column, row, line
        where = []
        if source:
            where.append(source)
        if column is not None:
            where.append(f"column {column!r}")
        if row is not None:
            where.append(f"row {row}" + (f" (line {line})" if line is not None else ""))
        elif line is not None:
            where.append(f"line {line}")
        super().__init__(": ".join([", ".join(where), message]) if where else message)


class MissingColumnError(DataError, KeyError):
    """A required column is absent; lists the columns that do exist."""

    def __init__(self, message: str, *, source: str | None = None, column: str | None = None, **kw):
        super().__init__(message, source=source, **kw)  # the message names the column once
        self.column = column

    def __str__(self) -> str:  # KeyError would otherwise quote the whole message
        return self.args[0]


class UnknownLabelError(DataError):
    """A value at predict time (e.g. a prompt id) that training never saw."""


class NotFittedError(EduFlashError, RuntimeError):
    """predict/evaluate/save was called before the task had a trained model."""


class CheckpointError(EduFlashError, OSError):
    """A model folder or training checkpoint is missing, corrupt or from an incompatible task."""


class DistributedError(EduFlashError, RuntimeError):
    """A worker process failed or the distributed set-up is inconsistent."""

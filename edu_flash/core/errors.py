"""The library's own errors, so callers can catch edu-flash problems apart from bugs.

Every data error says where the problem is (file, column, row) so a user can fix the data without
reading a traceback.
"""
from __future__ import annotations

import re


# numpy 2 writes scalars as np.int64(2) / np.float64(0.5) / np.str_('a'): a user wrote 2, 0.5, 'a'.
_NUMPY_REPR = re.compile(r"\bnp\.(?:u?int|float|complex|bool|str|bytes|longdouble|datetime64|timedelta64)\w*"
                         r"\(((?:[^()]|\([^()]*\))*)\)")


def plain(text: str) -> str:
    """A message with numpy scalar reprs written as the values the user wrote."""
    if "np." not in text:
        return text
    return _NUMPY_REPR.sub(r"\1", re.sub(r"\bnp\.(True|False)_", r"\1", text))


class EduFlashError(Exception):
    """Base of every error edu-flash raises on purpose."""

    def __init__(self, *args):
        super().__init__(*(plain(a) if isinstance(a, str) else a for a in args))


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


def warn_user(message: str, category=UserWarning) -> None:
    """A warning pointing at the user's own line (the first frame outside edu_flash), not at the
    library line that raised it."""
    import os
    import sys
    import warnings

    package, frame, level = os.path.dirname(os.path.dirname(os.path.abspath(__file__))), sys._getframe(0), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package + os.sep):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)

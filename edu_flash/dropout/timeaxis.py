"""Time columns -> course weeks, for the three ways time arrives: course weeks (the default), day
offsets (`time_unit="day"`) and dates (a datetime64 column, or text that parses as dates).

Dates have no course week of their own: they become days since their course's start (the
`course_start=` given, else the first activity event of that course, which is said in the notes),
then weeks like day offsets (week = floor(day / 7) + 1). Every converted value is bounded: a time
more than MAX_WEEKS weeks from the course start (1e15, 1e300, a Unix timestamp read as weeks) is
refused with its file, column and row instead of silently becoming an empty feature.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..core.data import Table
from ..core.errors import ConfigError, DataError

MAX_WEEKS = 1040  # 20 years either side of the course start: beyond that a value is no time in a course
ALL = "(all students)"  # the one course when no course_column is given


def unit(cols: dict) -> str:
    return cols.get("time_unit") or "week"


def _parse(values: pd.Series) -> pd.Series:
    """Text/objects -> naive UTC Timestamps (NaT where a value does not parse)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas' "could not infer format" notices
        out = pd.to_datetime(values, errors="coerce", utc=True, format="ISO8601")
        if out.notna().sum() < values.notna().sum() / 2:
            out = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
    return out.dt.tz_convert(None)


def as_dates(table: Table, col: str) -> pd.Series | None:
    """The column as Timestamps if it holds dates (datetime dtype, or mostly text that parses as
    dates and not as numbers), else None. A date column's unparsable value is a DataError with its row."""
    raw = table.df[col]
    if pd.api.types.is_datetime64_any_dtype(raw.dtype):
        s = pd.Series(raw)
        return (s.dt.tz_convert(None) if getattr(s.dt, "tz", None) is not None else s).reset_index(drop=True)
    if pd.api.types.is_numeric_dtype(raw.dtype) or pd.api.types.is_bool_dtype(raw.dtype):
        return None
    given = raw.dropna()
    if not len(given) or pd.to_numeric(given, errors="coerce").notna().mean() >= 0.5:
        return None  # numbers (a bad one is reported by the numeric path)
    parsed = _parse(raw)
    if parsed.notna().sum() < len(given) / 2:
        return None
    bad = raw.notna().to_numpy() & parsed.isna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"value {raw.iloc[i]!r} is not a date (the column holds dates, e.g. "
                        f"{str(parsed.dropna().iloc[0].date())!r})", column=col, **table.where(i))
    return parsed.reset_index(drop=True)


def _timestamp(v, what: str) -> pd.Timestamp:
    try:
        t = pd.Timestamp(v)
    except (TypeError, ValueError):
        t = pd.NaT
    if pd.isna(t):
        raise ConfigError(f"{what}: {v!r} is not a date")
    return t.tz_convert(None) if t.tzinfo is not None else t


@dataclass
class Clock:
    """Converts every time column of one call; for dates it knows each student's course start.

    course_of: student id -> course key (ALL without a course column); starts: course -> Timestamp,
    the ones fixed in advance (given, or a trained model's); the rest are found from first events."""

    cols: dict
    course_of: dict = field(default_factory=dict)
    starts: dict = field(default_factory=dict)
    inferred: dict = field(default_factory=dict)
    dates: list = field(default_factory=list)  # (table, column) of every date column seen
    _parsed: dict = field(default_factory=dict)

    def dates_of(self, table: Table, col: str) -> pd.Series | None:
        key = (id(table), col)
        if key not in self._parsed:
            self._parsed[key] = as_dates(table, col)
        return self._parsed[key]

    @classmethod
    def build(cls, cols: dict, st: Table, ids: pd.Series, saved_starts: dict | None) -> "Clock":
        course_col = cols.get("course_column")
        if course_col:
            if course_col not in st.df.columns:
                from ..core.data import require_columns

                require_columns(st, {"course": course_col})
            from .features import _cat

            courses = st.df[course_col].map(_cat).to_numpy()
        else:
            courses = np.full(len(ids), ALL, dtype=object)
        clock = cls(cols, dict(zip(ids.to_numpy(), courses)))
        clock.starts = {k: _timestamp(v, "saved course start") for k, v in (saved_starts or {}).items()}
        given = cols.get("course_start")
        if isinstance(given, dict):
            clock.starts.update({str(k): _timestamp(v, f"course_start[{k!r}]") for k, v in given.items()})
        elif isinstance(given, str) and given in st.df.columns:
            dates = as_dates(st, given)
            if dates is None:
                raise DataError("course_start names this column, but it does not hold dates", column=given,
                                source=st.source)
            for c, d in zip(courses, dates):
                if not pd.isna(d):
                    clock.starts.setdefault(str(c), d)
        elif given is not None:
            t = _timestamp(given, "course_start")
            clock.starts.update({str(c): t for c in set(courses)})
        return clock

    def find_starts(self, candidates: list[tuple[pd.Series, pd.Series]]) -> None:
        """Courses without a start: the first of their (dates, student ids) events, in the order
        given (activity first, then assessments)."""
        for dates, sid in candidates:
            course = sid.map(self.course_of)
            first = dates.groupby(course.to_numpy()).min()
            for c, t in first.items():
                if c not in self.starts and not pd.isna(t):
                    self.starts[c] = self.inferred[c] = t

    def weeks(self, table: Table, col: str, sid: pd.Series, *, allow_nan: bool, known=None) -> np.ndarray:
        """The column in course weeks (float, NaN where missing). `known`: rows that matter (rows of
        students not in the students table are dropped later and not checked)."""
        known = np.ones(len(sid), dtype=bool) if known is None else np.asarray(known)
        dates = self.dates_of(table, col)
        if dates is None:
            from .data import _numeric

            days_or_weeks = _numeric(table, col, allow_nan=allow_nan, rows=known)
            weeks = np.floor(days_or_weeks / 7.0) + 1 if unit(self.cols) == "day" else np.floor(days_or_weeks)
            self._bound(table, col, weeks, days_or_weeks, known, dated=False)
            return weeks
        self.dates.append((table.source, col))
        course = sid.map(self.course_of)
        start = course.map(self.starts)
        need = known & dates.notna().to_numpy()
        missing = need & start.isna().to_numpy()
        if missing.any():
            i = int(np.flatnonzero(missing)[0])
            raise DataError(f"this date has no course start for course {course.iloc[i]!r}: pass course_start= "
                            "(a date, {course: date}, or a students column of dates)", column=col, **table.where(i))
        days = (dates - pd.to_datetime(start)).dt.total_seconds().to_numpy() / 86400.0
        if not allow_nan:
            gap = known & np.isnan(days)
            if gap.any():
                i = int(np.flatnonzero(gap)[0])
                raise DataError("value missing", column=col, **table.where(i))
        weeks = np.floor(days / 7.0) + 1
        self._bound(table, col, weeks, dates.to_numpy(), known, dated=True)
        return weeks

    def _bound(self, table, col, weeks, raw, known, *, dated: bool) -> None:
        with np.errstate(invalid="ignore"):
            far = known & (np.abs(weeks) > MAX_WEEKS)
        if not far.any():
            return
        i = int(np.flatnonzero(far)[0])
        v = raw[i]
        if dated:
            hint = "check the date or the course start"
        elif unit(self.cols) == "day":
            hint = "day offsets must count days from the course start"
        else:
            hint = ("if these are day offsets pass time_unit='day'; dates or Unix timestamps: give dates "
                    "(pd.to_datetime(..., unit='s'))")
        shown = str(v) if dated else f"{v:g}"
        raise DataError(f"value {shown} is not a plausible course time (more than {MAX_WEEKS} weeks from the "
                        f"course start): {hint}", column=col, **table.where(i))

    def notes(self) -> list[str]:
        if not self.dates:
            return []
        cols = ", ".join(sorted({c for _, c in self.dates}))
        out = [f"dates ({cols}) were converted to days since each course's start, then to course weeks "
               "(week 1 = days 0-6)"]
        if self.inferred:
            shown = ", ".join(f"{c}: {t.date()}" for c, t in sorted(self.inferred.items())[:5])
            more = f" and {len(self.inferred) - 5} more" if len(self.inferred) > 5 else ""
            out.append(f"course start not given, taken as the first activity event of the course ({shown}{more}); "
                       "pass course_start= to set it")
        return out

    def saved_starts(self) -> dict:
        return {c: t.isoformat() for c, t in self.starts.items()}

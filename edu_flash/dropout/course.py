"""What the training data says about the course before anything trains: its length in weeks (the
weeks a model is trained for and may be asked about) and how each static column is read.

The course length is the week of the last event (a click, a deadline, a submission, a withdrawal).
Without `max_week` the model is trained for weeks 1..that; an explicit `max_week` or `cutoff_week`
past it is refused (the weeks after the data ends would be trained as "no activity"). Time values
far past the course length a user gave, or a "course" over two years long, are day offsets read as
weeks far more often than real courses: refused with a message that says `time_unit="day"` (or
`time_unit="week"` to confirm).
"""
from __future__ import annotations

import math

from ..core.errors import ConfigError, DataError

PLAUSIBLE_WEEKS = 104  # a course longer than two years, in unconfirmed week units, is taken for days


def _far(last: float, max_week: int) -> bool:
    return last > 3 * max_week + 4


def resolve_weeks(hp, norm, cols: dict) -> dict:
    """{"last": the last week trained for, "default": the week predict/evaluate use without week=,
    "course": the last event's week, "inferred": max_week came from the data}."""
    last, where = norm.last_event, dict(norm.last_event_where)
    course = int(last) if math.isfinite(last) and last >= 1 else None
    unit_given = cols.get("time_unit") is not None or norm.dated
    at = f" ({_where(where)})" if where else ""
    if course is not None and not unit_given:
        if hp.max_week is not None and _far(course, hp.max_week):
            raise DataError(f"time values run to week {course}, far beyond max_week={hp.max_week}: are they day "
                            "offsets? Pass time_unit='day' (or time_unit='week' to confirm they are weeks of a "
                            "longer course)", **where)
        if hp.max_week is None and course > PLAUSIBLE_WEEKS:
            raise DataError(f"time values run to week {course}, a course of more than two years: are they day "
                            "offsets? Pass time_unit='day' (or time_unit='week' and max_week= to confirm)", **where)
    if course is None and hp.max_week is None:
        raise DataError("no click, deadline, submission or withdrawal after the course start, so the course "
                        "length cannot be inferred: pass max_week=", source=norm.source)
    if hp.max_week is not None and course is not None and hp.max_week > course:
        raise ConfigError(f"max_week={hp.max_week}, but the training data ends in week {course}{at}: weeks "
                          f"{course + 1}-{hp.max_week} would be trained as zero activity. Leave max_week unset "
                          f"(the course length is taken from the data) or set it to {course} or less")
    max_week = hp.max_week if hp.max_week is not None else min(course, 520)
    if hp.cutoff_week is not None and hp.cutoff_week > max_week:
        raise ConfigError(f"cutoff_week={hp.cutoff_week} is beyond the weeks this model is trained for (1-{max_week}"
                          f"{'; the training data ends in week %d' % course if course is not None else ''}{at}): "
                          f"choose a week from 1 to {max_week}")
    default = hp.cutoff_week if hp.cutoff_week is not None else max(1, math.ceil(max_week / 2))
    return {"last": int(max_week), "default": int(default), "course": course, "inferred": hp.max_week is None,
            "default_given": hp.cutoff_week is not None}


def _where(where: dict) -> str:
    parts = [where.get("source"), f"column {where['column']!r}" if where.get("column") else None,
             f"row {where['row']}" if where.get("row") else None]
    return ", ".join(p for p in parts if p)


def classify_static(st, static: list[str], cols: dict, *, explicit: bool, source: str | None = None) -> tuple[list[str], dict, dict]:
    """(static columns kept, column -> "num"/"cat", report). Identifier columns are left out with a
    warning when the static columns were picked automatically, refused when the user listed them."""
    import warnings

    import pandas as pd

    from .features import read_as

    cat = set(_listed(cols, "categorical_columns"))
    num = set(_listed(cols, "numeric_columns"))
    both = sorted(cat & num)
    if both:
        raise ConfigError(f"column(s) {both} are in both categorical_columns and numeric_columns")
    for c in sorted((cat | num) - set(static)):
        raise ConfigError(f"{c!r} is in categorical_columns/numeric_columns but is not a static column "
                          f"(static columns: {static})")
    kept, kinds, why = [], {}, {}
    for c in static:
        col = st[c]
        if c in cat:
            kinds[c], why[c] = "cat", "categorical_columns"
        elif c in num:
            vals = pd.to_numeric(col, errors="coerce")
            bad = vals.isna() & col.notna()
            if bad.any():
                i = int(bad.to_numpy().nonzero()[0][0])
                raise DataError(f"value {col.iloc[i]!r} is not a number (the column is in numeric_columns)",
                                source=source, column=c, row=i + 1)
            kinds[c], why[c] = "num", "numeric_columns"
        else:
            kinds[c], why[c] = read_as(col, c)
        if kinds[c] == "id":
            msg = (f"static column {c!r} looks like an identifier ({why[c]}), not a feature: a model would learn "
                   "who the students are, not why they leave")
            if explicit:
                raise DataError(msg + "; leave it out of static_columns (or name it in categorical_columns if it "
                                "really is a category)", source=source, column=c)
            warnings.warn(msg + "; it is left out (list it in categorical_columns to use it)", UserWarning,
                          stacklevel=4)
            continue
        kept.append(c)
    report = {"numbers": [c for c in kept if kinds[c] == "num"],
              "categories": [c for c in kept if kinds[c] == "cat"],
              "integer codes read as categories": [c for c in kept if kinds[c] == "cat"
                                                   and pd.api.types.is_numeric_dtype(st[c]) and c not in cat],
              "identifiers left out": [c for c in static if kinds[c] == "id"]}
    return kept, {c: kinds[c] for c in kept}, report


def _listed(cols: dict, key: str) -> list[str]:
    v = cols.get(key) or []
    return [v] if isinstance(v, str) else list(v)

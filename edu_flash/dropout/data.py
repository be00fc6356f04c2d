"""The dropout task's data: a students table (static features + outcome) and two optional long
tables, weekly activity and assessments, joined by a student id.

Every time value becomes a *course week*: week 1 is days 0-6 of the course, week 0 and below are
before it starts (`time_unit="day"` converts day offsets with week = floor(day / 7) + 1; date
columns are converted by `timeaxis`). Keeping time as data, not as columns of a wide table, is what lets `features.py` cut everything at week w.
Each table can come from any source the spine reads (path, DataFrame, Dataset, records).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..core.data import Table, read_table, require_columns
from ..core.errors import ConfigError, DataError

OUTCOMES = {"withdrawn": "Withdrawn", "fail": "Fail", "pass": "Pass", "distinction": "Distinction"}
SUBGROUPS = ("gender", "age_band", "disability", "imd_band")
# role -> default column name; with time_unit="day" the *_week roles default to *_day names
STUDENT_ROLES = {"registered_week": "registered_week", "withdrawn_week": "withdrawn_week"}
ASSESSMENT_ROLES = {"due_week": "due_week", "submitted_week": "submitted_week", "scored_week": "scored_week",
                    "score": "score", "weight": "weight"}
_TIME_ROLES = ("week", "registered_week", "withdrawn_week", "due_week", "submitted_week", "scored_week")
_ROLES = _TIME_ROLES + ("score", "weight")
# column-mapping keyword arguments: <role>_column for every role (time roles also as *_day_column)
COLUMN_KW = ("id_column", "label_column", "static_columns", "subgroup_columns", "activity_columns", "group_column",
             "categorical_columns", "numeric_columns", "course_column", "course_start", "time_unit",
             *(f"{r}_column" for r in _ROLES), *(f"{r.replace('week', 'day')}_column" for r in _TIME_ROLES))


@dataclass
class DropoutData:
    """A bundle of the three tables; pass it anywhere the task takes data."""

    students: Any
    activity: Any = None
    assessments: Any = None
    source: str = "dropout data"
    notes: list[str] = field(default_factory=list)
    columns: dict = field(default_factory=dict)  # column mapping kwargs (id_column=..., time_unit=...)
    loader: str | None = None  # the function that read it ("load_oulad"), for the card's snippet

    def __len__(self) -> int:
        return len(self.students)

    def subset(self, ids) -> "DropoutData":
        """Only the given student ids (activity and assessments follow)."""
        ids = set(ids)
        sid = self.columns.get("id_column", "student")
        pick = lambda df: None if df is None else df[df[sid].isin(ids)].reset_index(drop=True)  # noqa: E731
        return DropoutData(pick(self.students), pick(self.activity), pick(self.assessments), self.source,
                           list(self.notes), dict(self.columns), self.loader)

    def split(self, test_size: float = 0.2, *, seed: int = 0, by: str | None = None):
        """Student-disjoint (train, test): whole groups go to one side. `by` defaults to the `group`
        column when present (OULAD: the person, who may have several registrations), else the id."""
        import numpy as np

        sid = self.columns.get("id_column", "student")
        by = by or ("group" if "group" in self.students.columns else sid)
        groups = self.students[by].astype(str)
        uniq = np.array(sorted(set(groups)))
        rng = np.random.default_rng(seed)
        test_groups = set(rng.choice(uniq, size=max(1, int(round(test_size * len(uniq)))), replace=False))
        in_test = groups.isin(test_groups)
        ids = self.students[sid]
        return self.subset(ids[~in_test]), self.subset(ids[in_test])


@dataclass
class Normalized:
    """Tables renamed to the standard roles, every time value in course weeks."""

    students: Any       # student, [outcome], [registered_week, withdrawn_week], static..., subgroups...
    activity: Any       # student, week, channels...
    assessments: Any    # student, due_week, submitted_week, scored_week, score, weight
    static: list[str]
    channels: list[str]
    subgroups: list[str]
    source: str
    notes: list[str] = field(default_factory=list)
    starts: dict = field(default_factory=dict)      # course -> ISO start, for date columns
    last_event: float = float("-inf")               # the latest course week of any event
    last_event_where: dict = field(default_factory=dict)
    dated: bool = False                             # some time column held dates
    scored_given: bool = False                      # the assessments had a scored-week column

    def subset(self, mask) -> "Normalized":
        """Only the students where mask is True (their activity and assessments follow)."""
        import dataclasses

        students = self.students[mask].reset_index(drop=True)
        ids = set(students["student"])
        pick = lambda df: None if df is None else df[df["student"].isin(ids)].reset_index(drop=True)  # noqa: E731
        return dataclasses.replace(self, students=students, activity=pick(self.activity),
                                   assessments=pick(self.assessments))


def resolve_columns(saved: dict | None = None, **kw) -> dict:
    """The column mapping for this call: explicit kwargs, else what training used, else defaults.
    `time_unit` stays None unless given: weeks, but checked against the course length."""
    cols = dict(saved or {})
    for k, v in kw.items():
        if v is not None:
            cols[k] = v
    cols.setdefault("id_column", "student")
    cols.setdefault("label_column", "final_result")
    unknown = set(cols) - set(COLUMN_KW)
    if unknown:
        raise ConfigError(f"unknown column argument(s) {sorted(unknown)}; valid: {list(COLUMN_KW)}")
    if cols.get("time_unit") not in (None, "week", "day"):
        raise ConfigError(f"time_unit must be 'week' or 'day', got {cols['time_unit']!r} (date columns are "
                          "recognised by themselves)")
    start = cols.get("course_start")
    if start is not None and not isinstance(start, (str, dict)):  # a date object: kept as JSON text
        cols["course_start"] = str(start)
    elif isinstance(start, dict):
        cols["course_start"] = {str(k): str(v) for k, v in start.items()}
    return cols


def _role_name(role: str, cols: dict, have=None) -> str:
    """The user's column for a role: mapped with <role>_column / <day>_column, else the default name
    (with time_unit="day" the *_day name, or the *_week one when the table `have` only has that)."""
    day = role.replace("week", "day")
    for k in (f"{role}_column", f"{day}_column"):
        if cols.get(k):
            return cols[k]
    if cols.get("time_unit") == "day" and role in _TIME_ROLES:
        return role if have is not None and day not in have and role in have else day
    return role


def _numeric(table: Table, col: str, *, allow_nan: bool, min_value: float | None = None, rows=None):
    """A float array, or a DataError naming the first bad row (vectorised; fine for millions of rows).
    `rows`: a mask of the rows to check (others are dropped later)."""
    import numpy as np
    import pandas as pd

    raw = table.df[col]
    if pd.api.types.is_datetime64_any_dtype(raw.dtype):
        raise DataError("holds dates where numbers are expected", column=col, source=table.source)
    vals = pd.to_numeric(raw, errors="coerce").astype(float).to_numpy()
    bad = np.isinf(vals) | (np.isnan(vals) & (raw.notna().to_numpy() | (not allow_nan)))
    if min_value is not None:
        bad |= vals < min_value
    if rows is not None:
        bad &= rows
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        what = "missing" if pd.isna(raw.iloc[i]) else f"{raw.iloc[i]!r} is not a valid number"
        if min_value is not None and not np.isnan(vals[i]) and vals[i] < min_value:
            what = f"{raw.iloc[i]!r} is below {min_value}"
        raise DataError(f"value {what}", column=col, **table.where(i))
    return vals


def _ids(table: Table, col: str):
    ids = table.df[col]
    if ids.isna().any():
        i = int(ids.isna().to_numpy().nonzero()[0][0])
        raise DataError("student id is missing", column=col, **table.where(i))
    return ids.map(lambda v: str(int(v)) if isinstance(v, float) and v.is_integer() else str(v))


def positives(outcomes, target: str, table: Table | None = None, col: str | None = None):
    """Outcome values -> 0/1 for the target. Strings are OULAD's final_result (any case); 0/1 and
    booleans are taken as the target already."""
    import numpy as np

    out = np.zeros(len(outcomes), dtype=np.int64)
    pos = {"withdrawn"} if target == "withdrawn" else {"withdrawn", "fail"}
    for i, v in enumerate(outcomes):
        if isinstance(v, str) and v.strip().lower() in OUTCOMES:
            out[i] = v.strip().lower() in pos
        elif isinstance(v, (bool, np.bool_)) or (isinstance(v, (int, float, np.integer, np.floating))
                                                 and v in (0, 1)):
            out[i] = int(v)
        else:
            where = table.where(i) if table is not None else {}
            raise DataError(f"outcome {v!r} is not one of {sorted(OUTCOMES.values())} or 0/1", column=col, **where)
    return out


@dataclass
class _Events:
    """The latest time value seen, and where: the course length is inferred from it."""

    week: float = float("-inf")
    where: dict = field(default_factory=dict)

    def see(self, weeks, table: Table, col: str, known) -> None:
        import numpy as np

        w = np.where(known, weeks, np.nan)
        if np.isnan(w).all():
            return
        i = int(np.nanargmax(w))
        if w[i] > self.week:
            self.week, self.where = float(w[i]), {"column": col, **table.where(i)}


def normalize(students, activity, assessments, cols: dict, *, need_label: bool, name: str = "data",
              static: list[str] | None = None, channels: list[str] | None = None,
              subgroups: list[str] | None = None, starts: dict | None = None) -> Normalized:
    """Read, map and check the three tables; errors name file, column and row. `static` and
    `channels` fix the column lists (a trained model's); None takes them from the data. `starts`:
    a trained model's course starts (for date columns)."""
    import numpy as np
    import pandas as pd

    from .timeaxis import Clock

    st = read_table(students, name=f"{name} students", split="test" if not need_label else "train")
    sid, lab = cols["id_column"], cols["label_column"]
    require_columns(st, {"id": sid, "label": lab if need_label else None})
    ids = _ids(st, sid)
    dup = ids.duplicated()
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise DataError(f"student id {ids.iloc[i]!r} appears twice (one row per student)", column=sid, **st.where(i))
    clock = Clock.build(cols, st, ids, starts)
    act_t = read_table(activity, name=f"{name} activity") if activity is not None else None
    asm_t = read_table(assessments, name=f"{name} assessments") if assessments is not None else None
    known = set(ids)
    act_ids = _table_ids(act_t, cols, {"week": _role_name("week", cols, act_t.df.columns if act_t else None)})
    asm_ids = _table_ids(asm_t, cols, {})
    _find_starts(clock, cols, (act_t, act_ids), (asm_t, asm_ids), known)
    events = _Events()
    out = pd.DataFrame({"student": ids.to_numpy()})
    if lab in st.df.columns:
        out["outcome"] = st.df[lab].to_numpy()
    reserved = {sid, lab, cols.get("group_column") or "group", cols.get("course_column"),
                cols.get("course_start") if isinstance(cols.get("course_start"), str) else None}
    for role in STUDENT_ROLES:
        c = _role_name(role, cols, st.df.columns)
        reserved.add(c)
        out[role] = clock.weeks(st, c, ids, allow_nan=True) if c in st.df.columns else np.nan
        if role == "withdrawn_week" and c in st.df.columns:
            events.see(out[role].to_numpy(), st, c, np.ones(len(st), dtype=bool))
    if subgroups is None:
        subgroups = cols.get("subgroup_columns")
        subgroups = [subgroups] if isinstance(subgroups, str) else subgroups
        subgroups = list(subgroups) if subgroups is not None else [c for c in SUBGROUPS if c in st.df.columns]
    if static is None:
        static = cols.get("static_columns")
        static = list(static) if static is not None else [c for c in st.df.columns if c not in reserved]
    for c in static:
        require_columns(st, {"static": c})
    subgroups = [c for c in subgroups if c in st.df.columns]  # absent at predict time: not reported
    for c in dict.fromkeys([*static, *subgroups]):
        out[c] = st.df[c].to_numpy()
    act, channels = _activity(act_t, act_ids, cols, known, name, channels, clock, events)
    asm = _assessments(asm_t, asm_ids, cols, known, clock, events)
    notes = clock.notes()
    if clock.inferred:
        import warnings

        warnings.warn(f"{st.source}: {notes[-1]}", UserWarning, stacklevel=3)
    return Normalized(out, act, asm, list(static), channels, list(subgroups), st.source, notes=notes,
                      starts=clock.saved_starts() if clock.dates else {}, last_event=events.week,
                      last_event_where=events.where, dated=bool(clock.dates),
                      scored_given=asm_t is not None
                      and _role_name("scored_week", cols, asm_t.df.columns) in asm_t.df.columns)


def _table_ids(t: Table | None, cols: dict, extra: dict):
    if t is None:
        return None
    sid = cols["id_column"]
    require_columns(t, {"id": sid, **extra})
    return _ids(t, sid)


def _find_starts(clock, cols, act, asm, known) -> None:
    """Course starts for date columns: the first activity event, else the first submission or deadline."""
    candidates = []
    for (t, ids), roles in ((act, ("week",)), (asm, ("submitted_week", "due_week"))):
        if t is None:
            continue
        for r in roles:
            c = _role_name(r, cols, t.df.columns)
            if c in t.df.columns:
                d = clock.dates_of(t, c)
                if d is not None:
                    keep = ids.isin(known).to_numpy()
                    candidates.append((d[keep].reset_index(drop=True), ids[keep].reset_index(drop=True)))
    clock.find_starts(candidates)


def _activity(t, ids, cols, known, name, channels, clock, events):
    import pandas as pd

    if t is None:
        if channels:
            raise DataError(f"this model uses weekly activity ({channels}): pass activity=...", source=name)
        return pd.DataFrame({"student": [], "week": []}), []
    sid, wk = cols["id_column"], _role_name("week", cols, t.df.columns)
    if channels is None:
        # every other column is a count (a text column fails with its row: pick columns with activity_columns=)
        channels = cols.get("activity_columns") or [c for c in t.df.columns if c not in (sid, wk)]
    for c in channels:
        require_columns(t, {"activity": c})
    keep = ids.isin(known).to_numpy()
    week = clock.weeks(t, wk, ids, allow_nan=False, known=keep)
    events.see(week, t, wk, keep)
    out = pd.DataFrame({"student": ids.to_numpy(), "week": week})
    for c in channels:
        out[c] = _numeric(t, c, allow_nan=False, min_value=0, rows=keep)
    return out[keep].reset_index(drop=True), list(channels)


def _assessments(t, ids, cols, known, clock, events):
    import numpy as np
    import pandas as pd

    if t is None:
        return None
    names = {r: _role_name(r, cols, t.df.columns) for r in ASSESSMENT_ROLES}
    if names["due_week"] not in t.df.columns and names["submitted_week"] not in t.df.columns:
        require_columns(t, {"submitted_week": names["submitted_week"]})
    keep = ids.isin(known).to_numpy()
    out = pd.DataFrame({"student": ids.to_numpy()})
    for role, c in names.items():
        if c in t.df.columns:
            if role in _TIME_ROLES:
                out[role] = clock.weeks(t, c, ids, allow_nan=True, known=keep)
                events.see(out[role].to_numpy(), t, c, keep)
            else:
                out[role] = _numeric(t, c, allow_nan=True, rows=keep)
        else:
            out[role] = np.nan
    out["weight"] = out["weight"].fillna(1.0)
    # a score is known when it is scored: given, else when it was submitted
    out["scored_week"] = np.fmax(out["scored_week"].fillna(out["submitted_week"]), out["submitted_week"])
    return out[keep].reset_index(drop=True)

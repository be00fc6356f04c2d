"""Adapter for the Open University Learning Analytics Dataset (OULAD; Kuzilek et al. 2017, CC BY 4.0).

Turns the OULAD tables into a `DropoutData` in course weeks (week = floor(day / 7) + 1, so week 1
is days 0-6): one row per registration (module-presentation-student), the assessment schedule
crossed with each student's submissions (so missed deadlines are visible), and weekly clicks from
either the daily `studentVle.csv` users download (read in chunks) or an already-weekly file such
as `studentVle_weekly_partial.csv` (0-based week = floor(date / 7)).

Clicks are only used for presentations the click file covers: a registration with no click file is
unknown, not zero. By default presentations without clicks are dropped (`activity="none"` keeps
all of them and uses no clicks).
"""
from __future__ import annotations

import gzip
import os
import zipfile
from pathlib import Path

from ..core.data import read_table, require_columns
from ..core.errors import ConfigError, DataError
from .data import DropoutData

KEY = ["code_module", "code_presentation", "id_student"]
STATIC = ["code_module", "gender", "region", "highest_education", "imd_band", "age_band", "num_of_prev_attempts",
          "studied_credits", "disability", "date_registration", "module_presentation_length"]
VLE_CANDIDATES = ("studentVle.csv", "studentVle.csv.gz", "studentVle.zip", "studentVle.txt",
                  "studentVle_weekly_partial.csv")


def _read(folder: Path, name: str, columns: list[str]):
    t = read_table(folder / name, name=name)
    require_columns(t, {c: c for c in columns})
    return t.df


def _week(days):
    import numpy as np

    return np.floor(days / 7.0) + 1


def load_oulad(folder: str | os.PathLike, *, activity: str = "auto", vle: str | os.PathLike | None = None,
               presentations: list[str] | None = None, score_delay_days: int = 0,
               chunksize: int = 2_000_000) -> DropoutData:
    """OULAD folder -> DropoutData. `activity`: "auto" (clicks; presentations the click file does
    not cover are dropped) or "none" (no clicks, every presentation). `vle`: the click file (default:
    the first of VLE_CANDIDATES in the folder). `presentations`: e.g. ["AAA-2013J"].
    `score_delay_days`: OULAD has no marking date, so a score counts as known this many days after
    submission (0: on the submission day)."""
    import pandas as pd

    if activity not in ("auto", "none"):
        raise ConfigError(f"activity must be 'auto' or 'none', got {activity!r}")
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError("OULAD folder not found", source=str(folder))
    courses = _read(folder, "courses.csv", ["code_module", "code_presentation", "module_presentation_length"])
    info = _read(folder, "studentInfo.csv", KEY + ["final_result"])
    reg = _read(folder, "studentRegistration.csv", KEY + ["date_registration", "date_unregistration"])
    asmt = _read(folder, "assessments.csv", ["code_module", "code_presentation", "id_assessment", "date", "weight"])
    sub = _read(folder, "studentAssessment.csv", ["id_assessment", "id_student", "date_submitted", "score"])
    notes = []
    st = info.merge(reg, on=KEY, how="left").merge(courses, on=["code_module", "code_presentation"], how="left")
    st["presentation"] = st["code_module"] + "-" + st["code_presentation"].astype(str)
    if presentations is not None:
        missing = sorted(set(presentations) - set(st["presentation"]))
        if missing:
            raise ConfigError(f"presentations {missing} are not in {folder}; known: {sorted(set(st['presentation']))}")
        st = st[st["presentation"].isin(presentations)]
    acts = None
    if activity == "auto":
        path = Path(vle) if vle is not None else next((folder / n for n in VLE_CANDIDATES if (folder / n).exists()), None)
        if path is None:
            raise DataError(f"no click file ({', '.join(VLE_CANDIDATES)}); pass vle=... or activity='none'",
                            source=str(folder))
        acts = read_clicks(path, chunksize=chunksize)
        covered = set(acts["code_module"] + "-" + acts["code_presentation"].astype(str))
        dropped = sorted(set(st["presentation"]) - covered)
        if dropped:
            notes.append(f"{path.name} has no clicks for {len(dropped)} presentation(s) ({', '.join(dropped)}); "
                         "they were left out (activity='none' keeps them without clicks)")
            st = st[st["presentation"].isin(covered)]
        notes += _truncation_notes(acts, courses)
    if "imd_band" in st.columns:  # OULAD spells one band without its percent sign
        st["imd_band"] = st["imd_band"].replace({"10-20": "10-20%"})
    st = st.reset_index(drop=True)
    st["student"] = st["presentation"] + "-" + st["id_student"].astype(str)
    st["group"] = st["id_student"].astype(str)  # the person: a student can register more than once
    st["registered_week"] = _week(st["date_registration"].astype(float))
    st["withdrawn_week"] = _week(st["date_unregistration"].astype(float))
    students = st[["student", "group", "presentation", "final_result", "registered_week", "withdrawn_week",
                   *[c for c in STATIC if c in st.columns]]]
    # the schedule x the students of each presentation, then their submissions (if any)
    sched = asmt.merge(courses, on=["code_module", "code_presentation"], how="left")
    sched["date"] = sched["date"].fillna(sched["module_presentation_length"])  # exams without a date: the end
    rows = st[KEY + ["student"]].merge(sched[["code_module", "code_presentation", "id_assessment", "date", "weight"]],
                                       on=["code_module", "code_presentation"])
    rows = rows.merge(sub[["id_assessment", "id_student", "date_submitted", "score"]],
                      on=["id_assessment", "id_student"], how="left")
    assessments = pd.DataFrame({"student": rows["student"], "due_week": _week(rows["date"].astype(float)),
                                "submitted_week": _week(rows["date_submitted"].astype(float)),
                                "scored_week": _week(rows["date_submitted"].astype(float) + score_delay_days),
                                "score": rows["score"].astype(float), "weight": rows["weight"].astype(float)})
    activity_df = None
    if acts is not None:
        acts = acts.merge(st[KEY + ["student"]], on=KEY)
        activity_df = acts[["student", "week", "clicks", "records"]].reset_index(drop=True)
    static = [c for c in STATIC if c in students.columns]
    cols = {"id_column": "student", "label_column": "final_result", "static_columns": static, "time_unit": "week",
            "subgroup_columns": [c for c in ("gender", "age_band", "disability", "imd_band") if c in students.columns]}
    notes.append("OULAD has no marking dates: a score counts as known on its submission day"
                 + (f" + {score_delay_days} days" if score_delay_days else "") + " (score_delay_days=)")
    return DropoutData(students, activity_df, assessments.reset_index(drop=True), str(folder), notes, cols,
                       loader="load_oulad")


def _first_line(path: Path) -> str:
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as z:
            with z.open(z.namelist()[0]) as fh:
                return fh.readline().decode("utf-8", "replace")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        return fh.readline().decode("utf-8", "replace")


def read_clicks(path: str | os.PathLike, *, chunksize: int = 2_000_000):
    """A daily studentVle file (csv/tsv, optionally .gz/.zip) or a weekly one -> weekly counts:
    code_module, code_presentation, id_student, week (course week, 1-based), clicks, records."""
    import numpy as np
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise DataError("click file not found", source=str(path))
    head = _first_line(path)
    sep = "\t" if head.count("\t") > head.count(",") else ","
    cols = [c.strip().strip('"') for c in head.strip().split(sep)]
    daily = "date" in cols
    need = KEY + (["date", "sum_click"] if daily else ["week", "sum_click"])
    missing = [c for c in need if c not in cols]
    if missing:
        raise DataError(f"not a studentVle file: missing columns {missing}; the columns are {cols}", source=str(path))
    use = need + (["n_records"] if not daily and "n_records" in cols else [])
    parts = []
    try:
        reader = pd.read_csv(path, sep=sep, usecols=use, chunksize=chunksize, compression="infer",
                             dtype={"code_module": str, "code_presentation": str})
        for chunk in reader:
            if daily:
                chunk["week"] = np.floor(chunk["date"].astype(float) / 7.0).astype(np.int64) + 1
                chunk["records"] = 1
            else:
                chunk["week"] = chunk["week"].astype(np.int64) + 1
                chunk["records"] = chunk["n_records"] if "n_records" in chunk else 1
            parts.append(chunk.groupby(KEY + ["week"], as_index=False)[["sum_click", "records"]].sum())
    except (ValueError, pd.errors.ParserError) as e:
        raise DataError(f"cannot read clicks: {e}", source=str(path)) from e
    out = pd.concat(parts).groupby(KEY + ["week"], as_index=False)[["sum_click", "records"]].sum()
    return out.rename(columns={"sum_click": "clicks"})


def _truncation_notes(acts, courses) -> list[str]:
    """Flag presentations whose clicks stop well before the module ends (a cut-off download)."""
    last = acts.groupby(["code_module", "code_presentation"])["week"].max().reset_index()
    last = last.merge(courses, on=["code_module", "code_presentation"])
    short = last[last["week"] * 7 < last["module_presentation_length"] - 21]
    return [f"clicks for {r.code_module}-{r.code_presentation} stop at week {r.week} of a "
            f"{r.module_presentation_length}-day module: the click file looks truncated" for r in short.itertuples()]

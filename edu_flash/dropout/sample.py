"""Built-in synthetic students for the demo and the tests (deterministic by seed, no files needed).

Each student has a latent engagement that drives clicks, submissions, scores, the weekly hazard of
withdrawing and the final result, and a few static traits nudge it (previous attempts, credits,
deprivation), so the signal is real but noisy. Clicks fade in the weeks before a withdrawal, as in
OULAD. `write_oulad_folder` writes the same students as OULAD files (with a *daily* studentVle.csv)
so the adapter can be tested without the real data.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from .data import DropoutData

DUE_WEEKS = (3, 7, 11, 16, 21, 27)
COURSE_WEEKS = 30
IMD = ["0-10%", "10-20%", "20-30%", "30-40%", "40-50%", "50-60%", "60-70%", "70-80%", "80-90%", "90-100%"]
EDU = ["No Formal quals", "Lower Than A Level", "A Level or Equivalent", "HE Qualification"]


def sample_dropout_data(n: int = 600, seed: int = 0) -> DropoutData:
    """`n` synthetic registrations over two modules, in the generic format (weeks)."""
    rng = np.random.default_rng(seed)
    imd = rng.integers(0, 10, n)
    prev = rng.choice([0, 0, 0, 0, 1, 2], n)
    credits = rng.choice([30, 60, 60, 60, 90, 120, 180], n)
    edu = rng.choice(4, n, p=[0.05, 0.4, 0.4, 0.15])
    z = rng.normal(0, 1, n) - 0.35 * prev + 0.04 * (imd - 4.5) - 0.004 * (credits - 60) + 0.15 * (edu - 1.5)
    students = pd.DataFrame({
        "student": [f"S{seed}-{i:05d}" for i in range(n)],
        "group": [f"P{seed}-{i:05d}" for i in range(n)],
        "code_module": rng.choice(["AAA", "BBB"], n),
        "gender": rng.choice(["F", "M"], n), "age_band": rng.choice(["0-35", "35-55", "55<="], n, p=[.7, .27, .03]),
        "disability": rng.choice(["N", "Y"], n, p=[.9, .1]),
        "imd_band": np.where(rng.random(n) < 0.04, None, np.array(IMD, dtype=object)[imd]),
        "highest_education": np.array(EDU)[edu], "num_of_prev_attempts": prev, "studied_credits": credits})
    # registration: mostly before the start, a few late (weeks 1-2)
    registered = np.where(rng.random(n) < 0.04, rng.integers(1, 3, n), -rng.integers(0, 20, n))
    # withdrawal: a weekly hazard from the latent engagement; some leave before the start
    hazard = 1 / (1 + np.exp(4.7 + 1.3 * z))
    weeks = np.arange(-2, COURSE_WEEKS + 1)
    draws = rng.random((n, len(weeks))) < hazard[:, None]
    first = np.where(draws.any(1), weeks[np.argmax(draws, axis=1)], np.nan)
    withdrawn = np.where(first >= registered, first, np.nan)
    p_fail = 1 / (1 + np.exp(1.1 + 1.6 * z))
    u = rng.random(n)
    result = np.where(u < p_fail, "Fail", np.where(u > 1 - 0.12 / (1 + np.exp(-z)), "Distinction", "Pass"))
    result = np.where(np.isnan(withdrawn), result, "Withdrawn")
    students["final_result"] = result
    students["registered_week"] = registered.astype(float)
    students["withdrawn_week"] = withdrawn
    # weekly clicks: engagement x a course rhythm, fading over the 4 weeks before a withdrawal
    wk = np.arange(-1, COURSE_WEEKS + 1)
    rate = np.exp(2.6 + 0.55 * z[:, None] + 0.3 * np.isin(wk, DUE_WEEKS)[None, :] + rng.normal(0, .5, (n, len(wk))))
    until = np.where(np.isnan(withdrawn), np.inf, withdrawn)[:, None]
    fade = np.clip((until - wk[None, :]) / 4.0, 0, 1)
    rate = rate * fade * (wk[None, :] >= np.minimum(registered, 0)[:, None])
    clicks = rng.poisson(rate)
    s_idx, w_idx = np.nonzero(clicks)
    c = clicks[s_idx, w_idx]
    records = np.maximum(1, np.minimum(c, rng.poisson(1 + c / 6.0)))
    activity = pd.DataFrame({"student": students["student"].to_numpy()[s_idx], "week": wk[w_idx],
                             "clicks": c, "records": records})
    # assessments: the schedule for everyone; submissions depend on engagement and being still there
    rows = []
    for j, due in enumerate(DUE_WEEKS):
        present = until[:, 0] > due
        submit = present & (rng.random(n) < 1 / (1 + np.exp(-(1.8 + 1.4 * z))))
        late = rng.random(n) < 0.12
        sub_week = np.where(submit, due + late, np.nan)
        score = np.where(submit, np.clip(np.round(62 + 13 * z + rng.normal(0, 12, n)), 0, 100), np.nan)
        rows.append(pd.DataFrame({"student": students["student"], "assessment": j, "due_week": float(due),
                                  "submitted_week": sub_week, "score": score, "weight": 100 / len(DUE_WEEKS)}))
    assessments = pd.concat(rows, ignore_index=True)
    cols = {"id_column": "student", "label_column": "final_result", "time_unit": "week",
            "static_columns": ["code_module", "gender", "age_band", "disability", "imd_band", "highest_education",
                               "num_of_prev_attempts", "studied_credits"]}
    return DropoutData(students, activity, assessments, f"synthetic students (n={n}, seed={seed})", [], cols)


def write_oulad_folder(folder: str | os.PathLike, data: DropoutData, *, daily: bool = True, seed: int = 0) -> Path:
    """Write `data` (from sample_dropout_data) as OULAD csv files; clicks as a daily studentVle.csv
    (each week's clicks spread over rows on days of that week) or as a 0-based weekly file."""
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    st = data.students
    ids = {s: 1000 + i for i, s in enumerate(st["student"])}
    key = pd.DataFrame({"code_module": st["code_module"], "code_presentation": "2013J",
                        "id_student": st["student"].map(ids)})
    pd.DataFrame({"code_module": ["AAA", "BBB"], "code_presentation": "2013J",
                  "module_presentation_length": COURSE_WEEKS * 7}).to_csv(folder / "courses.csv", index=False)
    info = key.assign(**{c: st[c] for c in ["gender", "region", "highest_education", "imd_band", "age_band",
                                            "num_of_prev_attempts", "studied_credits", "disability"]
                         if c in st}, final_result=st["final_result"])
    info.to_csv(folder / "studentInfo.csv", index=False)
    to_day = lambda w: (w - 1) * 7 + rng.integers(0, 7, len(w))  # noqa: E731 (a day inside course week w)
    key.assign(date_registration=to_day(st["registered_week"].to_numpy()),
               date_unregistration=to_day(st["withdrawn_week"].to_numpy())).to_csv(
        folder / "studentRegistration.csv", index=False)
    a = data.assessments
    sched = pd.DataFrame({"code_module": np.repeat(["AAA", "BBB"], len(DUE_WEEKS)), "code_presentation": "2013J",
                          "id_assessment": np.arange(2 * len(DUE_WEEKS)) + 100, "assessment_type": "TMA",
                          "date": np.tile([(d - 1) * 7 + 6 for d in DUE_WEEKS], 2), "weight": 100 / len(DUE_WEEKS)})
    sched.to_csv(folder / "assessments.csv", index=False)
    module = a["student"].map(dict(zip(st["student"], st["code_module"])))
    done = a[a["submitted_week"].notna()]
    mod = module[done.index]
    pd.DataFrame({"id_assessment": 100 + done["assessment"] + np.where(mod == "BBB", len(DUE_WEEKS), 0),
                  "id_student": done["student"].map(ids), "date_submitted": (done["submitted_week"] - 1) * 7 + 5,
                  "is_banked": 0, "score": done["score"]}).to_csv(folder / "studentAssessment.csv", index=False)
    act = data.activity.merge(pd.DataFrame({"student": st["student"], **key}), on="student")
    if not daily:
        act.assign(week=act["week"] - 1, sum_click=act["clicks"], n_records=act["records"])[
            ["code_module", "code_presentation", "id_student", "week", "sum_click", "n_records"]].to_csv(
            folder / "studentVle_weekly_partial.csv", index=False)
        return folder
    rep = act.loc[act.index.repeat(act["records"])].reset_index(drop=True)
    first = ~rep.duplicated(["student", "week"])
    # split each week's clicks over its records: one click each, the rest on the first record
    rep["sum_click"] = 1 + np.where(first, rep["clicks"] - rep["records"], 0)
    rep["date"] = to_day(rep["week"].to_numpy())
    rep["id_site"] = rng.integers(500000, 500050, len(rep))
    rep[["code_module", "code_presentation", "id_student", "id_site", "date", "sum_click"]].to_csv(
        folder / "studentVle.csv", index=False)
    return folder


def builtin_splits(n: int | None = None, seed: int = 0):
    """n (default 600) `sample_dropout_data` registrations split 70/10/20 by student, for the demo,
    examples, recipes and compare."""
    from ..core.task import Splits

    data = sample_dropout_data(n or 600, seed=seed)
    rest, test = data.split(0.2, seed=seed)
    train, val = rest.split(0.125, seed=seed + 1)
    sid = data.columns.get("id_column", "student")
    return Splits(train, val, test, example=test.subset(test.students[sid].iloc[:3]),
                  about=f"{len(data)} synthetic registrations over two modules (weekly clicks, assessments)")

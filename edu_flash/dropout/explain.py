"""Explanations that do not contradict the risk: near-duplicate features are explained together.

Two features that carry the same information at a week (clicks in total and per week, clicks and
records) can get large credits of opposite sign that cancel: a low-risk student then shows
"clicks_total (+3.9)" with the balancing "clicks_per_week (-3.8)" out of sight. So, at each
training week, features whose values correlate at |r| >= COLLINEAR over the training students
(complete linkage: every pair in a group, not a chain) are one explanation group: their credits
are added (the GRU's occlusion removes them together) and shown as "a & b".

`top_features` goes one step further: all weekly-activity features are one unit, "activity", and
all assessment features one unit, "assessments". Their parts are not near-duplicates but still pull
against each other (a high click total credited +0.5 next to recent clicks credited -0.3 and
active weeks -0.2, for a student whose activity as a whole lowers the risk), so a part alone
misleads; the whole does not. `explain(by="feature")` keeps every (grouped) feature.
"""
from __future__ import annotations

import warnings

import numpy as np

COLLINEAR = 0.9
JOIN = " & "


def collinear_groups(X: np.ndarray, col_groups: list[str], *, threshold: float = COLLINEAR,
                     max_rows: int = 20000, seed: int = 0) -> list[list[str]]:
    """Groups (of 2+ feature names) that move together in X's rows. Only one-column features take
    part (a one-hot category is already explained as one)."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    names = list(dict.fromkeys(col_groups))
    counts = {g: col_groups.count(g) for g in names}
    idx = [i for i, g in enumerate(col_groups) if counts[g] == 1]
    if len(X) < 3 or len(idx) < 2:
        return []
    if len(X) > max_rows:
        X = X[np.random.default_rng(seed).choice(len(X), max_rows, replace=False)]
    A = X[:, idx].astype(float)
    with warnings.catch_warnings(), np.errstate(invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-missing column (scores at week 1) is skipped
        A = np.where(np.isnan(A), np.nanmean(A, axis=0), A)
        sd = np.nanstd(A, axis=0)
    live = np.isfinite(sd) & (sd > 1e-12)
    idx, A = [i for i, ok in zip(idx, live) if ok], A[:, live]
    if len(idx) < 2:
        return []
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.nan_to_num(np.corrcoef(A, rowvar=False))
    dist = np.clip(1 - np.abs(r), 0, None)
    np.fill_diagonal(dist, 0)
    labels = fcluster(linkage(squareform(dist, checks=False), method="complete"), t=1 - threshold,
                      criterion="distance")
    out = []
    for lab in np.unique(labels):
        members = [col_groups[idx[j]] for j in np.flatnonzero(labels == lab)]
        if len(members) > 1:
            out.append(members)
    return out


def merged_names(groups: list[list[str]]) -> dict[str, str]:
    """feature -> its explanation group's name ("a & b"); features in no group keep their name."""
    return {f: JOIN.join(g) for g in groups for f in g}


def join_values(values: dict[str, list[str]], name: str) -> list[str]:
    """The shown value of a group: its members' values, in the group's order."""
    parts = name.split(JOIN)
    if len(parts) == 1 or not all(p in values for p in parts):
        return values.get(name, [])
    return [JOIN.join(v) for v in zip(*(values[p] for p in parts))]


ACTIVITY, ASSESSMENTS = "activity", "assessments"


def source_names(names: list[str], dynamic: list[str]) -> dict[str, str]:
    """(grouped) feature name -> "activity" / "assessments" when every member is one of those."""
    dyn = set(dynamic) - {"week"}
    out = {}
    for n in names:
        parts = n.split(JOIN)
        if all(p in dyn and p.startswith("asmt_") for p in parts):
            out[n] = ASSESSMENTS
        elif all(p in dyn and not p.startswith("asmt_") for p in parts):
            out[n] = ACTIVITY
    return out


def summary(unit: str, D: np.ndarray, dynamic: list[str], channels: list[str]) -> list[str]:
    """What a tutor reads for an "activity" / "assessments" unit, per student (rows of D)."""
    col = {n: D[:, j] for j, n in enumerate(dynamic)}

    def num(v) -> str:
        return "none" if np.isnan(v) else f"{v:.0f}" if float(v).is_integer() else f"{v:.3g}"

    rows = []
    for i in range(len(D)):
        if unit == ACTIVITY:
            parts = []
            for c in channels:
                since = col[f"{c}_weeks_since_active"][i]
                parts.append(f"{c} {num(col[f'{c}_total'][i])} in total, {num(col[f'{c}_last_2w'][i])} in the last "
                             f"2 weeks" + (f", none for {num(since)} weeks" if since >= 1 else ""))
            rows.append("; ".join(parts))
        else:
            due, missed, failed = col["asmt_due"][i], col["asmt_missed"][i], col["asmt_failed"][i]
            text = f"{num(missed)} of {num(due)} due missed, mean score {num(col['asmt_score_mean'][i])}"
            rows.append(text + (f", {num(failed)} below the pass mark" if failed >= 1 else ""))
    return rows

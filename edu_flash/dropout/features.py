"""What is known about each student at the end of course week w, and nothing later.

`Panel(norm, upto=w)` keeps only what happened by week `upto`: activity in later weeks is dropped,
later submissions count as not submitted, later scores as unknown, later unregistrations as not
happened. Every feature at a cutoff w <= upto then reads only weeks <= w, so a model at week w
cannot see the future (tests perturb everything after w and check the features do not move).
Outcomes never enter the panel.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

CHANNEL_FEATURES = ("pre", "total", "per_week", "last_week", "last_2w", "active_frac", "weeks_since_active")
ASSESSMENT_FEATURES = ("due", "submitted", "missed", "missed_frac", "late", "scored", "score_mean",
                       "score_weighted", "score_min", "score_last", "failed")


def _cat(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "missing"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


_ID_WORDS = {"id", "ids", "uid", "code", "codes", "course", "module", "school", "class", "section", "program",
             "programme", "cohort", "group", "team", "site", "campus", "region", "zip", "postcode", "teacher",
             "instructor", "tutor", "presentation", "term", "semester", "department", "dept", "faculty", "country",
             "district", "email", "mail", "username", "login", "key", "cid", "sid", "pid", "gid"}


# words that make a column a quantity even when it also names a thing ("module_presentation_length")
_QUANTITY_WORDS = {"length", "len", "count", "counts", "num", "number", "credits", "credit", "days", "weeks",
                   "hours", "minutes", "duration", "size", "total", "attempts", "score", "scores", "age", "amount",
                   "year", "years", "rate", "grade", "points"}


def _words(name: str) -> set[str]:
    import re

    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", str(name))
    return {w.lower() for w in re.split(r"[^A-Za-z0-9]+", spaced) if w}


def read_as(col: pd.Series, name: str) -> tuple[str, str]:
    """How a static column is read: ("num" | "cat" | "id", why). Integers that name a thing (a
    course, school or module code) are categories; near-unique text (emails, names, ids) identifies
    a student and is no feature."""
    vals = col.dropna()
    n, distinct = len(vals), vals.nunique()
    if pd.api.types.is_bool_dtype(col) or not pd.api.types.is_numeric_dtype(col):
        as_text = vals.astype(str)
        if as_text.str.contains("@", regex=False).mean() > 0.5:
            return "id", "e-mail addresses"
        if n >= 20 and distinct > 0.5 * n and distinct > 10:
            return "id", f"{distinct} distinct values in {n} rows"
        return "cat", "text"
    integral = bool(n) and bool(np.all(np.isfinite(vals.to_numpy(dtype=float)))) and \
        bool(np.all(np.mod(vals.to_numpy(dtype=float), 1) == 0))
    words = _words(name)
    if integral and words & _ID_WORDS and not words & _QUANTITY_WORDS:
        if n >= 20 and distinct > 0.5 * n and distinct > 10:
            return "id", f"an identifier ({distinct} distinct values in {n} rows)"
        return "cat", "integer codes (the name says what they identify)"
    if integral and 1 < distinct <= 20 and vals.min() >= 1000:
        u = np.sort(vals.unique())
        if np.any(np.diff(u) > 1):  # 1042, 2077, 3311: codes; 2013, 2014, 2015: years, a quantity
            return "cat", f"integer codes ({distinct} distinct values, all >= 1000)"
    return "num", "numbers"


class StaticEncoder:
    """Static columns -> numbers: numeric columns as they are (NaN kept), others one-hot over the
    levels seen at least `min_count` times in training (rarer ones and unseen ones share "other")."""

    def __init__(self, spec: list[dict] | None = None):
        self.spec = spec or []

    def fit(self, df: pd.DataFrame, columns: list[str], min_count: int = 5, *,
            kinds: dict[str, str] | None = None) -> "StaticEncoder":
        """`kinds`: column -> "num" / "cat" (the detection's or the user's choice); by default
        numeric dtypes are numbers."""
        self.spec = []
        for c in columns:
            col = df[c]
            kind = (kinds or {}).get(c) or ("num" if pd.api.types.is_numeric_dtype(col)
                                            and not pd.api.types.is_bool_dtype(col) else "cat")
            if kind == "num":
                self.spec.append({"name": c, "kind": "num"})
                continue
            counts = col.map(_cat).value_counts()
            levels = sorted(str(k) for k, n in counts.items() if n >= min_count)
            if len(levels) < len(counts):
                levels.append("other")
            self.spec.append({"name": c, "kind": "cat", "levels": levels})
        return self

    @property
    def names(self) -> list[str]:
        return [n for s in self.spec for n in ([s["name"]] if s["kind"] == "num"
                                               else [f"{s['name']}={lv}" for lv in s["levels"]])]

    @property
    def groups(self) -> list[str]:
        """The source column of each output column (contributions are summed per source)."""
        return [s["name"] for s in self.spec for _ in (["x"] if s["kind"] == "num" else s["levels"])]

    def transform(self, df: pd.DataFrame) -> np.ndarray:
        cols = []
        for s in self.spec:
            col = df[s["name"]]
            if s["kind"] == "num":
                cols.append(pd.to_numeric(col, errors="coerce").to_numpy(dtype=float)[:, None])
                continue
            vals = col.map(_cat).to_numpy()
            levels = s["levels"]
            if "other" in levels:
                vals = np.where(np.isin(vals, levels), vals, "other")
            cols.append((vals[:, None] == np.array(levels)[None, :]).astype(float))
        return np.hstack(cols) if cols else np.zeros((len(df), 0))


def log_mask(names: list[str]) -> np.ndarray:
    """Which dynamic features are counts the models see as log1p (shown to users as they are)."""
    counted = {f"_{f}" for f in CHANNEL_FEATURES[:5]}
    return np.array([any(n.endswith(s) for s in counted) and not n.startswith("asmt_") for n in names])


def dynamic_names(channels: list[str], has_assessments: bool) -> list[str]:
    names = [f"{c}_{f}" for c in channels for f in CHANNEL_FEATURES]
    if has_assessments:
        names += [f"asmt_{f}" for f in ASSESSMENT_FEATURES]
    return names + ["week"]


class Panel:
    """Per-student weekly activity (index 0 = before the course, t = week t) and assessment events,
    censored at week `upto`; plus registration/unregistration weeks for the population rule."""

    def __init__(self, norm, upto: int, *, channels: list[str], has_assessments: bool, pass_mark: float = 40.0):
        s = norm.students
        self.ids, self.upto, self.n = s["student"].to_numpy(), int(upto), len(s)
        self.channels, self.has_assessments, self.pass_mark = list(channels), has_assessments, pass_mark
        self.registered = s["registered_week"].to_numpy(dtype=float)
        wd = s["withdrawn_week"].to_numpy(dtype=float)
        self.withdrawn = np.where(wd <= upto, wd, np.nan)  # a later unregistration is not known yet
        index = pd.Index(self.ids)
        T = self.upto + 1
        self.act = np.zeros((self.n, T, len(channels)))
        a = norm.activity
        if len(a) and channels:
            week = a["week"].to_numpy(dtype=float)
            keep = week <= upto
            rows = index.get_indexer(a["student"].to_numpy()[keep])
            flat = rows * T + np.clip(week[keep], 0, None).astype(np.int64)
            for j, c in enumerate(channels):
                self.act[:, :, j] = np.bincount(flat, weights=a[c].to_numpy(dtype=float)[keep],
                                                minlength=self.n * T).reshape(self.n, T)
        self.asmt = None
        if has_assessments and norm.assessments is not None:
            m = norm.assessments
            later = lambda v: np.where(v <= upto, v, np.inf)  # noqa: E731 (NaN/later: has not happened)
            scored = later(m["scored_week"].to_numpy(dtype=float))
            self.asmt = {"owner": index.get_indexer(m["student"].to_numpy()),
                         "due": m["due_week"].to_numpy(dtype=float),  # deadlines are known in advance
                         "sub": later(m["submitted_week"].to_numpy(dtype=float)), "scored": scored,
                         "score": np.where(np.isfinite(scored), m["score"].to_numpy(dtype=float), np.nan),
                         "weight": m["weight"].to_numpy(dtype=float)}

    def population(self, w: int) -> np.ndarray:
        """Students to warn at week w: registered by then and not unregistered by then."""
        self._check(w)
        return ~(self.registered > w) & ~(self.withdrawn <= w)

    def _check(self, w: int) -> None:
        if not 0 <= w <= self.upto:
            raise ValueError(f"week {w} is outside this panel (0..{self.upto})")

    def dynamic(self, w: int) -> np.ndarray:
        """Features at the end of week w, in `dynamic_names` order."""
        self._check(w)
        n, a, span = self.n, self.act, max(w, 1)
        cols = []
        for j in range(len(self.channels)):
            weeks = a[:, 1:w + 1, j]
            total = weeks.sum(1)
            active = weeks > 0
            since = np.where(active.any(1), np.argmax(active[:, ::-1], axis=1), w) if w else np.zeros(n)
            last = a[:, w, j] if w else np.zeros(n)
            last2 = a[:, max(1, w - 1):w + 1, j].sum(1) if w else np.zeros(n)
            cols += [a[:, 0, j], total, total / span, last, last2, active.sum(1) / span, since.astype(float)]
        if self.has_assessments:
            cols += self._assessments(w)
        cols.append(np.full(n, float(w)))
        return np.stack(cols, axis=1) if cols else np.zeros((n, 0))

    def _assessments(self, w: int) -> list[np.ndarray]:
        n = self.n
        if self.asmt is None:
            return [np.zeros(n)] * 5 + [np.zeros(n)] + [np.full(n, np.nan)] * 4 + [np.zeros(n)]
        m = self.asmt
        own = m["owner"]
        count = lambda mask: np.bincount(own[mask], minlength=n).astype(float)  # noqa: E731
        due, sub = m["due"] <= w, m["sub"] <= w
        sc = (m["scored"] <= w) & ~np.isnan(m["score"])
        n_due, n_sub, n_missed = count(due), count(sub), count(due & ~sub)
        late = count(sub & (m["sub"] > m["due"]))
        n_sc = count(sc)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.bincount(own[sc], weights=m["score"][sc], minlength=n) / n_sc
            wsum = np.bincount(own[sc], weights=m["weight"][sc], minlength=n)
            weighted = np.bincount(own[sc], weights=(m["score"] * m["weight"])[sc], minlength=n) / wsum
            missed_frac = n_missed / n_due
        mn = np.full(n, np.inf)
        np.minimum.at(mn, own[sc], m["score"][sc])
        last = np.full(n, np.nan)
        idx = np.flatnonzero(sc)
        order = idx[np.lexsort((np.nan_to_num(m["due"][idx], nan=1e9), m["scored"][idx], own[idx]))]
        last[own[order]] = m["score"][order]  # the latest known score wins (later writes overwrite)
        failed = count(sc & (m["score"] < self.pass_mark))
        fix = lambda v: np.where(np.isfinite(v), v, np.nan)  # noqa: E731
        return [n_due, n_sub, n_missed, fix(missed_frac), late, n_sc, fix(mean), fix(weighted), fix(mn), last,
                failed]

    def sequence(self, w: int) -> np.ndarray:
        """(n, w + 1, features): the dynamic features at every cutoff 0..w, for the sequence model."""
        return np.stack([self.dynamic(t) for t in range(w + 1)], axis=1)

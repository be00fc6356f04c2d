"""DropoutPredictor's training steps around the fit: read and check the data, decide what the
course is (weeks, static columns), hold out students for the threshold, and afterwards choose the
threshold, find the features to explain together and write what the card says.

The threshold is chosen on students the model did not train on: the `val=` data, else
`val_fraction` of the training students (whole people, by the `group` column when there is one).
Chosen on training rows it flags far too many (it was seen flagging 91% of students when 82% left).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..core.errors import DataError


@dataclass
class Prepared:
    norm: Any
    y: Any
    weeks: list[int]
    train: dict = field(default_factory=dict)
    val: dict | None = None
    describe: dict = field(default_factory=dict)
    held_out: int = 0  # training students held out as validation (no val= given)


def _native(v):
    return v.item() if hasattr(v, "item") else v


def _example(norm, static: list[str], kinds: dict) -> dict:
    """Typical values of the training data, for the card's runnable snippet."""
    import numpy as np
    import pandas as pd

    out = {"static": {}, "channels": {}, "assessment": {}}
    for c in static:
        col = norm.students[c]
        if kinds[c] == "num":
            v = pd.to_numeric(col, errors="coerce").median()
            v = 0.0 if pd.isna(v) else float(v)
            out["static"][c] = int(v) if v.is_integer() else round(v, 3)
        else:
            counts = col.dropna().value_counts()
            out["static"][c] = _native(counts.index[0]) if len(counts) else "missing"
    for c in norm.channels:
        a = norm.activity[c].to_numpy(dtype=float)
        a = a[a > 0]
        v = float(np.median(a)) if len(a) else 1.0
        out["channels"][c] = int(round(v)) if np.all(np.mod(a, 1) == 0) else round(v, 2)
    if norm.assessments is not None:
        m = norm.assessments
        for k in ("score", "weight"):
            v = m[k].median()
            if not pd.isna(v):
                out["assessment"][k] = round(float(v), 1)
    return out


def _holdout(train_df, students, y, fraction: float, seed: int):
    """A mask of held-out students (whole groups), or None when the data is too small for one."""
    import numpy as np

    if fraction <= 0:
        return None
    groups = train_df["group"].astype(str).to_numpy() if "group" in train_df.columns else students
    uniq = np.array(sorted(set(groups)))
    rng = np.random.default_rng(seed)
    held = set(rng.choice(uniq, size=max(1, int(round(fraction * len(uniq)))), replace=False))
    mask = np.isin(groups, list(held))
    pos_held, pos_rest = int(y[mask].sum()), int(y[~mask].sum())
    if min(pos_held, int(mask.sum()) - pos_held) < 10 or min(pos_rest, int((~mask).sum()) - pos_rest) < 10:
        return None
    return mask


def prepare(m, train, val, activity, assessments, val_activity, val_assessments, kw) -> Prepared:
    import numpy as np

    from .course import classify_static, resolve_weeks
    from .data import positives
    from .features import StaticEncoder, dynamic_names

    hp = m.hparams
    keep = m._torch and m.model is not None  # continued training keeps the input layout
    norm, cols = m._normalize(train, activity, assessments, kw, need_label=True, name=train.source, fitted=keep)
    y = positives(norm.students["outcome"].tolist(), hp.target, train, cols["label_column"])
    if not 0 < y.sum() < len(y):
        raise DataError(f"the training outcomes have one class only for target={hp.target!r}", source=train.source,
                        column=cols["label_column"])
    if not keep:
        static, kinds, report = classify_static(norm.students, norm.static, cols, source=norm.source,
                                                explicit=cols.get("static_columns") is not None)
        norm.static = static
        enc = StaticEncoder().fit(norm.students, static, hp.min_category_count, kinds=kinds)
        has_asmt = norm.assessments is not None
        m.state = {"columns": cols, "static": static, "channels": norm.channels, "subgroups": norm.subgroups,
                   "has_assessments": has_asmt, "encoder": enc.spec, "dynamic": dynamic_names(norm.channels, has_asmt),
                   "target": hp.target, "weeks": resolve_weeks(hp, norm, cols), "starts": norm.starts,
                   "static_report": report, "loader": getattr(m, "_loader", None),
                   "has_scored_week": norm.scored_given,
                   "example": _example(norm, static, kinds)}
    weeks = m._train_weeks()
    held = None
    if val is None:
        held = _holdout(train.df, norm.students["student"].to_numpy(), y, hp.val_fraction, hp.seed)
    m.state["held_out"] = int(held.sum()) if held is not None else 0
    prep = Prepared(norm, y, weeks, held_out=m.state["held_out"])
    if held is not None:
        prep.val = m._inputs(norm.subset(held), y[held], weeks)
        norm, y = norm.subset(~held), y[~held]
        prep.norm, prep.y = norm, y
    prep.train = m._inputs(norm, y, weeks)
    if len(prep.train["y"]) == 0:
        raise DataError(f"no student is in the population at weeks {weeks[0]}-{weeks[-1]}", source=train.source)
    if val is not None:
        vnorm, _ = m._normalize(val, val_activity if val_activity is not None else activity,
                                val_assessments if val_assessments is not None else assessments,
                                {}, need_label=True, name=val.source)
        prep.val = m._inputs(vnorm, positives(vnorm.students["outcome"].tolist(), hp.target, val,
                                              cols["label_column"]), weeks)
    if m._torch:
        mk = prep.train["mask"][:, weeks] > 0
        rows = np.broadcast_to(y[:, None], mk.shape)[mk]
    else:
        rows = prep.train["y"]
    w = m._weeks_info()
    report = m.state.get("static_report", {})
    prep.describe = {
        "source": train.source, "students": len(y),
        "validation students": (len(val) if val is not None else
                                f"{prep.held_out} (held out of the training data: no val= given)" if prep.held_out
                                else "0 (too few students to hold some out)"),
        "target": hp.target, "positives (students)": f"{int(y.sum())} ({y.mean():.1%})",
        "course weeks trained": (f"1-{w['last']}" + (f" (the data's last event is in week {w['course']})"
                                                      if w.get("inferred") else "")),
        "training cutoffs (weeks)": f"{weeks[0]}-{weeks[-1]}" if len(weeks) > 1 else str(weeks[0]),
        "student-weeks in the population": int(len(rows)), "positive rate over student-weeks": f"{np.mean(rows):.1%}",
        "static features read as numbers": ", ".join(report.get("numbers", [])) or "none",
        "static features read as categories": ", ".join(report.get("categories", [])) or "none",
        "activity channels": ", ".join(m.state["channels"]) or "none",
        "assessments": "yes" if m.state["has_assessments"] else "no", "features": len(m._design().names)}
    if report.get("identifiers left out"):
        prep.describe["static columns left out (identifiers)"] = ", ".join(report["identifiers left out"])
    if norm.notes:
        prep.describe["time"] = "; ".join(norm.notes)
    return prep


def finish(m, prep: Prepared) -> None:
    """After training: the flag threshold, the explanation groups and what the card says."""
    import numpy as np

    from . import cardtext
    from .evaluation import best_f1_threshold
    from .explain import collinear_groups

    hp = m.hparams
    part = prep.val if prep.val is not None else prep.train
    if hp.threshold is not None:
        thr, how = hp.threshold, "set by the user"
    else:
        if m._torch:
            from .model import logits_at

            logits = logits_at(m.model, *m._scale(part["seq"], part["static"])) - m.state["shift"]
            mk = part["mask"] > 0
            y, z = np.broadcast_to(part["y"][:, None], mk.shape)[mk], logits[mk]
        else:
            pick = np.random.default_rng(0).permutation(len(part["y"]))[:50000]
            y, z = part["y"][pick], m.model.logit(part["X"][pick])
        thr = best_f1_threshold(y.astype(int), 1 / (1 + np.exp(-z)))
        how = ("the F1-best on the validation students' weeks" if prep.val is not None and not prep.held_out else
               f"the F1-best on {prep.held_out} held-out training students' weeks" if prep.held_out else
               "the F1-best on the training student-weeks: too few students to hold some out")
    m.state["threshold"], m.state["threshold_how"] = float(thr), how
    d = m._design()
    t, groups = prep.train, {}
    for w in prep.weeks:
        if m._torch:
            rows = t["mask"][:, w] > 0
            X = np.hstack([t["static"][rows], t["seq"][rows, w]])
        else:
            X = t["X"][t["week"] == w]
        found = collinear_groups(X, d.groups, seed=hp.seed)
        if found:
            groups[str(w)] = found
    m.state["collinear"] = groups
    m.state["reference"] = _references(m, prep)
    m.card.notes = [*m._notes, *cardtext.notes(m, prep, how)]
    m.card.hyperparameters = m._card_hparams()


def _references(m, prep: Prepared) -> dict:
    """What "the average student at week w" contributes, per model column, so explanations compare a
    student with the others at the same week (the pooled model's own baseline mixes early and late
    weeks: at week 15 everyone's click total is "above average" then). GRU: the standardised
    features' mean per week, to occlude with."""
    import numpy as np

    t = prep.train
    if m._torch:
        seq, _ = m._scale(t["seq"], t["static"])
        means = np.zeros(seq.shape[1:])
        for w in range(seq.shape[1]):
            rows = t["mask"][:, w] > 0 if w in prep.weeks else np.ones(len(seq), dtype=bool)
            if rows.any():
                means[w] = seq[rows, w].mean(0)
        return {"week_means": means.round(6).tolist()}
    rng = np.random.default_rng(0)
    out = {}
    for w in prep.weeks:
        idx = np.flatnonzero(t["week"] == w)
        if len(idx):
            idx = rng.choice(idx, size=min(len(idx), 5000), replace=False)
            C, _ = m.model.contributions(t["X"][idx])
            out[str(w)] = C.mean(0).round(8).tolist()
    return out

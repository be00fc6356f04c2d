"""The parts of a DropoutPredictor card that depend on the model: limitations, notes, the
hyperparameters that apply, and a "How to use" snippet that runs as written against the saved
model (two made-up students with exactly the columns, time unit and weeks the model reads).

Nothing here is fixed prose about one data set: a model trained without static features, clicks
or assessments says so, and subgroup tables are pointed to only when an evaluation recorded them.
"""
from __future__ import annotations

from .data import _role_name

COMMON = ("target", "pool_weeks", "class_weight", "advisor_k", "seed")
BY_BACKBONE = {
    "gbm": ("gbm_learning_rate", "gbm_max_iter", "gbm_max_depth", "gbm_max_leaf_nodes", "gbm_min_samples_leaf",
            "gbm_l2"),
    "logreg": ("logreg_C",),
    "gru": ("hidden_size", "num_layers", "dropout", "lr", "weight_decay", "max_epochs", "max_steps", "batch_size",
            "patience", "warmup_ratio", "scheduler", "grad_accum", "clip_norm", "precision", "torch_threads"),
}
EXPLAINED = {"gbm": "path credits of each tree (Saabas / treeinterpreter) minus the average training student's at "
                    "the same week, in log-odds; path credits over-credit features split near the roots",
             "logreg": "coefficient x standardised value minus the average training student's at the same week, "
                       "in log-odds",
             "gru": "occlusion: log-odds minus log-odds with the unit replaced by the training students' mean at "
                    "each week"}


def _weeks(m) -> dict:
    return m._weeks_info()


def card_hparams(m) -> dict:
    """Only what this backbone uses, plus what the fit chose (marked so)."""
    hp, st = m.hparams, m.state
    w = _weeks(m)
    out = {k: getattr(hp, k) for k in COMMON}
    out["max_week"] = f"{w['last']} (from the data: its last event is in week {w['course']})" if w.get("inferred") \
        else w["last"]
    if not hp.pool_weeks or w.get("default_given"):
        out["cutoff_week"] = w["default"]
    else:
        out["cutoff_week"] = f"{w['default']} (not given: the middle of weeks 1-{w['last']})"
    if "threshold" in st:
        out["threshold"] = (hp.threshold if hp.threshold is not None
                            else f"{st['threshold']:.4g} (chosen: {st.get('threshold_how', 'F1-best')})")
    if st.get("held_out"):
        out["val_fraction"] = hp.val_fraction
    if st.get("has_assessments"):
        out["pass_mark"] = hp.pass_mark
    if any(s["kind"] == "cat" for s in st.get("encoder", [])):
        out["min_category_count"] = hp.min_category_count
    for k in BY_BACKBONE[m.backbone]:
        out[k] = getattr(hp, k)
    fit = st.get("fit", {})
    for k, v in fit.items():
        out[f"{k} (chosen by the fit)"] = v
    return out


def limitations(m) -> str:
    st, w = m.state, _weeks(m)
    static, channels = st.get("static", []), st.get("channels", [])
    parts = ["Risks are estimated from past cohorts and assume the future looks like them."]
    tables = any(t.startswith("By subgroup") for ev in m.card.evaluations for t in ev.get("tables", {}))
    if static:
        parts.append(f"Static features used: {', '.join(static)}; the model can be less accurate for some groups "
                     + ("(see the subgroup AUC and ABROCA tables)." if tables else
                        "(no subgroup evaluation was recorded for this model: evaluate with subgroup columns such "
                        "as gender or age to see it)."))
    else:
        parts.append("No static features (demographics, prior study) are used.")
    parts.append(f"Weekly activity: {', '.join(channels)}." if channels else "No weekly activity (clicks) is used.")
    if st.get("has_assessments"):
        scored = ("on its submission day (OULAD has no marking dates; load_oulad's score_delay_days shifts it)"
                  if st.get("loader") == "load_oulad" else "at the scored week the data gives"
                  if st.get("has_scored_week") else "on the submission week (the data gave no scored week)")
        parts.append(f"Assessments are used; a score counts as known {scored}.")
    else:
        parts.append("No assessments are used.")
    parts.append(f"Trained for course weeks 1-{w['last']}"
                 + (" (the course length in the training data)" if w.get("inferred") else "")
                 + "; other weeks are refused. Students who already left by the week are not scored.")
    return " ".join(parts)


def _time_value(week: int, tinfo: dict) -> object:
    """A time value of course week `week` in the model's own unit (weeks, day offsets or dates)."""
    if tinfo["kind"] == "date":
        import pandas as pd

        return str((pd.Timestamp(tinfo["start"]) + pd.Timedelta(days=(week - 1) * 7 + 2)).date())
    return (week - 1) * 7 + 2 if tinfo["kind"] == "day" else week


def how_to_use(m, folder: str) -> str:
    st, w = m.state, _weeks(m)
    cols, ex = st.get("columns", {}), st.get("example", {})
    week = w["default"]
    starts = st.get("starts") or {}
    course_col = cols.get("course_column")
    if starts:
        course = next(iter(starts))
        tinfo = {"kind": "date", "start": starts[course]}
    else:
        course, tinfo = None, {"kind": "day" if cols.get("time_unit") == "day" else "week"}
    sid = cols.get("id_column", "student")
    students = {sid: ["s1", "s2"]}
    if course_col:
        students[course_col] = [course] * 2
    for c, v in ex.get("static", {}).items():
        students[c] = [v, v]
    lines = ["import pandas as pd", "from edu_flash import DropoutPredictor", "",
             f"model = DropoutPredictor.from_pretrained({folder!r})",
             f"# Backbone {m.backbone}, trained for course weeks 1-{w['last']}; it reads the columns below "
             f"({'weeks' if tinfo['kind'] == 'week' else 'day offsets' if tinfo['kind'] == 'day' else 'dates'}).",
             "# Two made-up students with typical values: s1 active every week, s2 only in weeks 1-2"
             + (" and missing a deadline." if st.get("has_assessments") else "."),
             f"students = pd.DataFrame({students!r})"]
    args = ""
    if st.get("channels"):
        wk = _role_name("week", cols)
        rows = [(s, t) for s in ("s1", "s2") for t in range(1, week + 1) if s == "s1" or t <= 2]
        act = {sid: [s for s, _ in rows], wk: [_time_value(t, tinfo) for _, t in rows]}
        for c, v in ex.get("channels", {}).items():
            act[c] = [v] * len(rows)
        lines.append(f"activity = pd.DataFrame({act!r})")
        args += ", activity=activity"
    if st.get("has_assessments"):
        a = ex.get("assessment", {})
        due = min(max(1, week - 1), week)
        asm = {sid: ["s1", "s2"], _role_name("due_week", cols): [_time_value(due, tinfo)] * 2,
               _role_name("submitted_week", cols): [_time_value(due, tinfo), None],
               "score" if not cols.get("score_column") else cols["score_column"]: [a.get("score", 60.0), None],
               "weight" if not cols.get("weight_column") else cols["weight_column"]: [a.get("weight", 10.0)] * 2}
        lines.append(f"assessments = pd.DataFrame({asm!r})")
        args += ", assessments=assessments"
    lines += [f"risks = model.predict(students{args}, week={week})  # risk, flag and top features per student",
              'print(risks[["student", "risk", "flagged", "top_features"]].to_string())']
    if st.get("loader") == "load_oulad":
        lines += ["# OULAD files: from edu_flash.dropout import load_oulad; "
                  f"model.evaluate(load_oulad(\"path/to/oulad\"), week={week})"]
    return "\n".join(lines)


def notes(m, prep, how_threshold: str) -> list[str]:
    st, w, hp = m.state, _weeks(m), m.hparams
    known = ["clicks up to week w"] if st.get("channels") else []
    if st.get("has_assessments"):
        known += ["assessments submitted and scored by then", "deadlines passed by then"]
    weeks = (f"one model for weeks 1-{w['last']}" if hp.pool_weeks else f"trained for week {w['default']} only")
    balance = ("balanced class weights (pos_weight for the GRU); the log-odds shift they cause is removed so "
               "risks stay probabilities" if hp.class_weight == "balanced" else "no class weights")
    out = [f"Cutoff: a prediction at week w uses only what is known by the end of course week w (week 1 = days "
           f"0-6){': ' + ', '.join(known) if known else ''}; never a later unregistration or the outcome.",
           "Population at week w: registered by week w and not unregistered by week w. Students who already left "
           "are not scored (they are no longer to be warned).",
           f"Weeks: {weeks}; default week {w['default']}.", f"Class imbalance: {balance}.",
           f"Flag threshold {st['threshold']:.3f} on the risk ({how_threshold}).",
           f"Top features: {EXPLAINED[m.backbone]}. "
           "All weekly-activity features count as one unit ('activity') and all assessment features as another "
           "('assessments'): their parts pull against each other, so a part alone misleads. Static features that "
           "move together (|r| >= 0.9 at that week) are explained together, as 'a & b'; explain(by='feature') "
           "lists every feature."]
    report = st.get("static_report", {})
    for k in ("integer codes read as categories", "identifiers left out"):
        if report.get(k):
            out.append(f"Static columns, {k}: {', '.join(report[k])}.")
    return out

"""Issue 16 (DropoutPredictor inputs) and issue 17 (absurd values, identifiers): dates, day offsets
read as weeks, the course length, integer codes and identifier columns. Each of these was accepted
silently before and gave a wrong model."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from edu_flash import ConfigError, DataError
from edu_flash.dropout import DropoutData, DropoutPredictor, sample_dropout_data
from edu_flash.dropout.data import normalize, resolve_columns

pytestmark = pytest.mark.usefixtures("one_thread")
STARTS = {"AAA": pd.Timestamp("2024-01-08"), "BBB": pd.Timestamp("2024-02-05")}
STATIC = ["code_module", "gender", "age_band", "num_of_prev_attempts", "studied_credits"]


@pytest.fixture(scope="module")
def data():
    return sample_dropout_data(400, seed=3)


def _no_time_unit(d: DropoutData, **extra) -> dict:
    return {k: v for k, v in {**d.columns, **extra}.items() if k != "time_unit"}


def _dated(d: DropoutData, seed: int = 0):
    """The same students with every time as a date (a random day inside the week), per module start."""
    rng = np.random.default_rng(seed)
    st = d.students.copy()
    start_of = st.set_index("student")["code_module"].map(STARTS)

    def date(weeks, ids):
        days = (np.asarray(weeks, dtype=float) - 1) * 7 + rng.integers(0, 7, len(weeks))
        return start_of.loc[ids].to_numpy() + pd.to_timedelta(days, unit="D")

    st["registered_week"] = date(st["registered_week"], st["student"])
    st["withdrawn_week"] = date(st["withdrawn_week"], st["student"])
    act = d.activity.assign(week=date(d.activity["week"], d.activity["student"]))
    a = d.assessments.copy()
    for c in ("due_week", "submitted_week"):
        a[c] = date(a[c], a["student"])
    return st, act, a


def test_date_columns_become_course_weeks_per_course(data):
    st, act, a = _dated(data)
    assert pd.api.types.is_datetime64_any_dtype(act["week"])
    cols = resolve_columns(_no_time_unit(data), course_column="code_module",
                           course_start={k: str(v.date()) for k, v in STARTS.items()})
    got = normalize(st, act, a, cols, need_label=True)
    ref = normalize(data.students, data.activity, data.assessments, resolve_columns(data.columns), need_label=True)
    pd.testing.assert_frame_equal(got.activity, ref.activity, check_dtype=False)
    for c in ("registered_week", "withdrawn_week"):
        np.testing.assert_array_equal(got.students[c].to_numpy(), ref.students[c].to_numpy())
    np.testing.assert_array_equal(got.assessments["due_week"].to_numpy(), ref.assessments["due_week"].to_numpy())
    assert got.dated and set(got.starts) == {"AAA", "BBB"}


def test_a_model_trained_on_dates_learns_and_predicts_from_dates(data, tmp_path):
    train, test = data.split(0.3, seed=0)
    st, act, a = _dated(train)
    kw = dict(static_columns=STATIC, course_column="code_module")
    with pytest.warns(UserWarning, match="course start not given.*first activity event"):
        m = DropoutPredictor(backbone="logreg").finetune(st, activity=act, assessments=a, **kw)
    # the start was inferred from each module's first click (the pre-course weeks -1/0 included)
    first = {c: act.loc[act["student"].map(train.students.set_index("student")["code_module"]) == c, "week"].min()
             for c in STARTS}
    assert {c: pd.Timestamp(v) for c, v in m.state["starts"].items()} == first
    assert 28 <= m.state["weeks"]["last"] <= 33  # a 30-week course, counted from the first click
    tst, tact, ta = _dated(test, seed=1)
    ev = m.evaluate(tst, activity=tact, assessments=ta, week=10)
    assert ev["roc_auc"] > 0.65  # it was 0.500 when dates were read as nanoseconds
    p = m.predict(tst, activity=tact, assessments=ta, week=10)
    assert p["top_features"].str.contains(r"\+0\.00\)").mean() < 0.5
    folder = m.save_pretrained(tmp_path / "dated")  # the starts travel with the model
    back = DropoutPredictor.from_pretrained(folder)
    pd.testing.assert_frame_equal(back.predict(tst, activity=tact, assessments=ta, week=10), p)


def test_date_text_in_a_file_is_read_and_a_bad_date_names_its_row(data, tmp_path):
    st, act, a = _dated(data.subset(data.students["student"][:60]))
    act = act.assign(week=act["week"].dt.strftime("%Y-%m-%d")).astype({"week": object})
    act.to_csv(tmp_path / "clicks.csv", index=False)
    cols = resolve_columns(_no_time_unit(data), course_column="code_module",
                           course_start={k: str(v.date()) for k, v in STARTS.items()})
    got = normalize(st, tmp_path / "clicks.csv", a, cols, need_label=True)
    assert got.activity["week"].between(-2, 31).all()
    act.loc[40, "week"] = "yesterday"
    act.to_csv(tmp_path / "clicks.csv", index=False)
    with pytest.raises(DataError, match=r"clicks\.csv.*'week'.*row 41 \(line 42\).*'yesterday' is not a date"):
        normalize(st, tmp_path / "clicks.csv", a, cols, need_label=True)


def _short_course(d: DropoutData, weeks: int = 5) -> DropoutData:
    """The first `weeks` weeks of the course only: the data ends there."""
    act = d.activity[d.activity["week"] <= weeks]
    a = d.assessments[d.assessments["due_week"] <= weeks]
    st = d.students.assign(withdrawn_week=d.students["withdrawn_week"].where(d.students["withdrawn_week"] <= weeks))
    return DropoutData(st, act, a, columns=_no_time_unit(d))


def test_day_offsets_passed_as_weeks_are_refused_with_the_fix(data):
    short = _short_course(data)
    days = DropoutData(short.students.assign(registered_week=(short.students["registered_week"] - 1) * 7,
                                             withdrawn_week=(short.students["withdrawn_week"] - 1) * 7 + 3),
                       short.activity.assign(week=(short.activity["week"] - 1) * 7 + 4),
                       short.assessments.assign(due_week=(short.assessments["due_week"] - 1) * 7,
                                                submitted_week=(short.assessments["submitted_week"] - 1) * 7),
                       columns=short.columns)
    with pytest.raises(DataError, match=r"activity.*column 'week', row \d+.*far beyond max_week=5.*time_unit='day'"):
        DropoutPredictor(backbone="logreg", max_week=5).finetune(days)
    m = DropoutPredictor(backbone="logreg").finetune(days, time_unit="day")
    assert m.state["weeks"]["last"] == 5
    # long day offsets without any max_week: a "course" of 269 weeks is refused too
    long = DropoutData(data.students, data.activity.assign(week=data.activity["week"] * 9), data.assessments,
                       columns=_no_time_unit(data))
    with pytest.raises(DataError, match="more than two years.*time_unit='day'"):
        DropoutPredictor(backbone="logreg").finetune(long)


def test_course_length_is_inferred_and_weeks_past_it_are_refused(data):
    train, test = _short_course(data).split(0.3, seed=0)
    m = DropoutPredictor(backbone="logreg").finetune(train)
    assert m.state["weeks"] == {"last": 5, "default": 3, "course": 5, "inferred": True, "default_given": False}
    assert m.card.training_data["training cutoffs (weeks)"] == "1-5"
    assert m.evaluate(test)["week"] == 3
    for week in (8, 60):
        with pytest.raises(ConfigError, match=f"week {week} is beyond the weeks this model was trained for "
                                              r"\(0-5: the training data ends in week 5\)"):
            m.evaluate(test, week=week)
    with pytest.raises(ConfigError, match="beyond"):
        m.predict(test, week=6)
    with pytest.raises(ConfigError, match=r"cutoff_week=8 is beyond.*1-5.*ends in week 5"):
        DropoutPredictor(backbone="logreg", cutoff_week=8).finetune(train)
    with pytest.raises(ConfigError, match=r"max_week=20, but the training data ends in week 5.*zero activity"):
        DropoutPredictor(backbone="logreg", max_week=20).finetune(train)
    assert len(m.early_warning(test, png=None)) == 5  # weeks 1-5 by default


def test_a_week_with_one_class_warns_instead_of_a_silent_nan(data):
    train, test = data.split(0.3, seed=0)
    m = DropoutPredictor(backbone="logreg", max_week=12).finetune(train, time_unit="week")
    passed = DropoutData(test.students.assign(final_result="Pass", withdrawn_week=np.nan), test.activity,
                         test.assessments, columns=test.columns)
    with pytest.warns(UserWarning, match="week 6: .* 0 of them positive: ROC-AUC and PR-AUC are undefined"):
        m.evaluate(passed, week=6)


@pytest.mark.parametrize("table,column,value", [("activity", "week", 1e15), ("activity", "week", -1e15),
                                                ("students", "registered_week", 1e300)])
def test_absurd_time_values_are_refused_with_file_column_and_row(data, table, column, value):
    d = data.subset(data.students["student"][:80])
    frames = {"students": d.students.copy(), "activity": d.activity.copy()}
    frames[table].loc[7, column] = value
    with pytest.raises(DataError, match=rf"\(DataFrame\).*column '{column}', row 8.*not a plausible course time"):
        DropoutPredictor(backbone="logreg").finetune(frames["students"], activity=frames["activity"],
                                                     assessments=d.assessments, **d.columns)


def test_integer_codes_are_categories_and_the_report_names_the_numbers(data):
    codes = {"AAA": 1042, "BBB": 2077}
    st = data.students.assign(course_id=data.students["code_module"].map(codes),
                              school=np.where(np.arange(len(data.students)) % 3 == 0, 311, 517),
                              unit=np.array([1042, 2077, 3311])[np.arange(len(data.students)) % 3],
                              length_days=np.array([234, 241, 269])[np.arange(len(data.students)) % 3],
                              module_presentation_length=np.array([240, 269])[np.arange(len(data.students)) % 2])
    d = DropoutData(st.drop(columns="code_module"), data.activity, data.assessments,
                    columns={**data.columns, "static_columns": None})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the `group` column is reserved, not an identifier warning
        m = DropoutPredictor(backbone="logreg", max_week=10).finetune(d)
    kinds = {s["name"]: s["kind"] for s in m.state["encoder"]}
    assert kinds["course_id"] == kinds["school"] == kinds["unit"] == "cat"  # codes, not quantities
    assert kinds["num_of_prev_attempts"] == kinds["studied_credits"] == kinds["length_days"] == "num"
    td = m.card.training_data
    assert kinds["module_presentation_length"] == "num"  # names a module, but is a length
    assert td["static features read as numbers"] == ("num_of_prev_attempts, studied_credits, length_days, "
                                                     "module_presentation_length")
    assert "course_id" in td["static features read as categories"]
    assert any("integer codes read as categories: course_id, school, unit" in n for n in m.card.notes)
    forced = DropoutPredictor(backbone="logreg", max_week=10).finetune(d, numeric_columns=["school"])
    assert {s["name"]: s["kind"] for s in forced.state["encoder"]}["school"] == "num"


def test_identifier_columns_are_left_out_or_refused(data):
    st = data.students.assign(email=[f"student{i}@uni.example" for i in range(len(data.students))])
    d = DropoutData(st, data.activity, data.assessments, columns={**data.columns, "static_columns": None})
    with pytest.warns(UserWarning, match="'email' looks like an identifier.*left out"):
        m = DropoutPredictor(backbone="logreg", max_week=10).finetune(d)
    assert "email" not in m.state["static"]
    assert m.card.training_data["static columns left out (identifiers)"] == "email"
    assert len(m.predict(st.drop(columns="email"), activity=data.activity, assessments=data.assessments, week=4))
    explicit = DropoutData(st, data.activity, data.assessments,
                           columns={**data.columns, "static_columns": ["gender", "email"]})
    with pytest.raises(DataError, match="column 'email': static column 'email' looks like an identifier"):
        DropoutPredictor(backbone="logreg", max_week=10).finetune(explicit)

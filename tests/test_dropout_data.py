"""Issue 5, item 1: the dropout task's data path, the OULAD adapter (weekly and daily click files)
and the cutoff rule: features at week w do not move when anything after week w changes."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from edu_flash import DataError, MissingColumnError
from edu_flash.dropout import DropoutData, load_oulad, sample_dropout_data, write_oulad_folder
from edu_flash.dropout.data import normalize, resolve_columns
from edu_flash.dropout.design import Design
from edu_flash.dropout.features import StaticEncoder, dynamic_names

OULAD = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "oulad"
W = 6


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data():
    return sample_dropout_data(300, seed=1)


def _norm(d: DropoutData, **kw):
    return normalize(d.students, d.activity, d.assessments, resolve_columns(d.columns, **kw), need_label=True)


def _design(norm):
    enc = StaticEncoder().fit(norm.students, norm.static)
    return Design({"encoder": enc.spec, "channels": norm.channels, "has_assessments": norm.assessments is not None,
                   "dynamic": dynamic_names(norm.channels, norm.assessments is not None)}, 40.0)


def _features(d: DropoutData, w: int = W, upto: int | None = None):
    norm = _norm(d)
    des = _design(norm)
    panel, D, X = des.at(norm, w) if upto is None else (None, None, None)
    if upto is not None:
        panel = des.panel(norm, upto)
        D = panel.dynamic(w)
        X = np.hstack([des.static(norm), des._logged(D)])
    seq = des.sequences(norm, w)[0]
    return X, panel.population(w), seq


def _same(a, b) -> bool:
    return np.array_equal(a, b, equal_nan=True)


# ------------------------------------------------------------------------------------------- leakage
def _perturb_after(d: DropoutData, w: int, seed: int = 0) -> DropoutData:
    """Change everything that happens after week w, and every outcome."""
    rng = np.random.default_rng(seed)
    st = d.students.copy()
    later = st["withdrawn_week"] > w
    st.loc[later, "withdrawn_week"] = np.where(rng.random(later.sum()) < 0.5, np.nan, w + 1 + rng.integers(0, 9, later.sum()))
    never = st["withdrawn_week"].isna() & (rng.random(len(st)) < 0.3)
    st.loc[never, "withdrawn_week"] = w + 1 + rng.integers(0, 5, never.sum())
    st["final_result"] = rng.permutation(st["final_result"].to_numpy())
    act = d.activity.copy()
    late = act["week"] > w
    act.loc[late, "clicks"] = rng.integers(0, 500, late.sum())
    extra = pd.DataFrame({"student": rng.choice(st["student"], 200), "week": w + 1 + rng.integers(0, 10, 200),
                          "clicks": rng.integers(1, 99, 200), "records": rng.integers(1, 9, 200)})
    a = d.assessments.copy()
    sub_late = a["submitted_week"] > w
    a.loc[sub_late, "score"] = rng.integers(0, 101, sub_late.sum()).astype(float)
    a.loc[sub_late, "submitted_week"] = w + 1 + rng.integers(0, 6, sub_late.sum())
    unsubmitted = a["submitted_week"].isna() & (rng.random(len(a)) < 0.5)
    a.loc[unsubmitted, "submitted_week"] = w + 1 + rng.integers(0, 6, unsubmitted.sum())  # submitted later
    a.loc[unsubmitted, "score"] = 99.0
    a["scored_week"] = np.where(a["submitted_week"] <= w, a["submitted_week"], np.nan)
    marked_later = (a["submitted_week"] == w) & (rng.random(len(a)) < 0.5)
    a.loc[marked_later, "scored_week"] = w + 2  # marked after w: its score must not be used
    a.loc[marked_later, "score"] = rng.integers(0, 101, marked_later.sum()).astype(float)
    return DropoutData(st, pd.concat([act, extra], ignore_index=True), a, columns=d.columns)


def test_features_at_cutoff_ignore_everything_after_it(data):
    changed = _perturb_after(data, W)
    # the scored-later rows: their scores must be unknown at w in both versions
    base = DropoutData(data.students, data.activity,
                       data.assessments.assign(scored_week=np.where(changed.assessments["scored_week"] == W + 2,
                                                                    W + 2, data.assessments["submitted_week"])),
                       columns=data.columns)
    for upto in (None, 20):
        X0, pop0, seq0 = _features(base, W, upto)
        X1, pop1, seq1 = _features(changed, W, upto)
        assert _same(X0, X1) and _same(pop0, pop1) and _same(seq0, seq1)
    assert pop0.sum() > 100 and np.isnan(X0).any()  # the check covers real rows and missing scores
    assert not _same(_features(base, W + 3)[0], _features(changed, W + 3)[0])  # the changes are real


def test_changing_week_w_itself_does_change_features(data):
    """The control for the test above: the comparison is not blind."""
    act = data.activity.copy()
    act.loc[act["week"] == W, "clicks"] += 50
    X0, _, _ = _features(data)
    X1, _, _ = _features(DropoutData(data.students, act, data.assessments, columns=data.columns))
    assert not _same(X0, X1)


def test_population_leaves_out_students_who_left_or_are_not_registered_yet():
    st = pd.DataFrame({"student": list("abcde"), "final_result": ["Withdrawn", "Withdrawn", "Pass", "Pass", "Fail"],
                       "registered_week": [-3, -3, 5, -1, np.nan], "withdrawn_week": [4, 5, np.nan, np.nan, np.nan],
                       "gender": list("FMFMF")})
    d = DropoutData(st, columns={"static_columns": ["gender"]})
    norm = _norm(d)
    panel = _design(norm).panel(norm, 20)
    assert panel.population(4).tolist() == [False, True, False, True, True]  # a left in week 4; c registers in 5
    assert panel.population(5).tolist() == [False, False, True, True, True]
    assert panel.population(0).tolist() == [True, True, False, True, True]


# ------------------------------------------------------------------------------------------- sources
def test_every_source_gives_the_same_tables(data, tmp_path):
    st, act = data.students.iloc[:40], data.activity
    ref = _norm(DropoutData(st, act, data.assessments, columns=data.columns))
    st.to_csv(tmp_path / "s.csv", index=False)
    act.to_json(tmp_path / "a.jsonl", orient="records", lines=True)
    act.to_parquet(tmp_path / "a.parquet")
    for s, a in ((tmp_path / "s.csv", tmp_path / "a.jsonl"), (st.to_dict("records"), tmp_path / "a.parquet")):
        got = normalize(s, a, data.assessments, resolve_columns(data.columns), need_label=True)
        pd.testing.assert_frame_equal(got.activity, ref.activity, check_dtype=False)
        assert got.students["student"].tolist() == ref.students["student"].tolist()


def test_day_offsets_and_renamed_columns(data):
    d = data.subset(data.students["student"][:50])
    st = d.students.rename(columns={"student": "sid", "final_result": "result"})
    st["unreg"] = (st.pop("withdrawn_week") - 1) * 7 + 3
    st["registered_day"] = (st.pop("registered_week") - 1) * 7
    act = d.activity.rename(columns={"student": "sid"}).assign(date=lambda f: (f.pop("week") - 1) * 7 + 6)
    a = d.assessments.rename(columns={"student": "sid"})
    for c in ("due_week", "submitted_week"):
        a[c.replace("week", "day")] = (a.pop(c) - 1) * 7 + 2
    got = normalize(st, act, a, resolve_columns(id_column="sid", label_column="result", time_unit="day",
                                                static_columns=d.columns["static_columns"],
                                                day_column="date", withdrawn_week_column="unreg"), need_label=True)
    ref = _norm(d)
    pd.testing.assert_frame_equal(got.activity, ref.activity, check_dtype=False)
    assert _same(got.students["withdrawn_week"].to_numpy(), ref.students["withdrawn_week"].to_numpy())
    assert _same(got.assessments["due_week"].to_numpy(), ref.assessments["due_week"].to_numpy())


def test_bad_input_names_file_column_and_row(data, tmp_path):
    st = data.students.iloc[:20].copy()
    with pytest.raises(MissingColumnError, match="final_result.*columns are"):
        normalize(st.drop(columns="final_result"), None, None, resolve_columns(), need_label=True)
    bad = st.copy()
    bad.loc[3, "final_result"] = "Dropped"
    bad.to_csv(tmp_path / "s.csv", index=False)
    with pytest.raises(DataError, match=r"s\.csv.*final_result.*row 4 \(line 5\).*Dropped") as e:
        from edu_flash import DropoutPredictor

        DropoutPredictor(backbone="logreg").finetune(tmp_path / "s.csv", activity=data.activity,
                                                     assessments=data.assessments)
    assert e.value.row == 4
    dup = pd.concat([st, st.iloc[[2]]], ignore_index=True)
    with pytest.raises(DataError, match="row 21.*appears twice"):
        normalize(dup, None, None, resolve_columns(), need_label=True)
    act = data.activity.iloc[:30].copy().astype({"clicks": object})
    act.loc[7, "clicks"] = "many"
    with pytest.raises(DataError, match="activity.*clicks.*row 8.*many"):
        normalize(st, act, None, resolve_columns(), need_label=True)
    act.loc[7, "clicks"] = -2
    with pytest.raises(DataError, match="row 8.*below 0"):
        normalize(st, act, None, resolve_columns(), need_label=True)


def test_split_is_student_disjoint(data):
    st = data.students.copy()
    st["group"] = [f"P{i // 2}" for i in range(len(st))]  # two registrations per person
    tr, te = DropoutData(st, data.activity, data.assessments, columns=data.columns).split(0.3, seed=2)
    assert not set(tr.students["group"]) & set(te.students["group"])
    assert len(tr) + len(te) == len(st) and 0.2 < len(te) / len(st) < 0.4
    assert set(te.activity["student"]) <= set(te.students["student"])


# ------------------------------------------------------------------------------------------- OULAD
def test_oulad_daily_and_weekly_click_files_agree(tmp_path):
    import csv
    import zipfile

    d = sample_dropout_data(120, seed=3)
    folder = write_oulad_folder(tmp_path / "daily", d)
    vle = pd.read_csv(folder / "studentVle.csv")  # rewrite it as the OU ships it: all quoted, CRLF
    vle.to_csv(folder / "studentVle.csv", index=False, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    daily = load_oulad(folder)
    weekly = load_oulad(write_oulad_folder(tmp_path / "weekly", d, daily=False))
    key = ["student", "week"]
    pd.testing.assert_frame_equal(daily.activity.sort_values(key).reset_index(drop=True),
                                  weekly.activity.sort_values(key).reset_index(drop=True))
    with zipfile.ZipFile(tmp_path / "studentVle.zip", "w") as z:  # a zipped tab-separated copy, read in chunks
        z.writestr("studentVle.txt", vle.to_csv(sep="\t", index=False))
    zipped = load_oulad(folder, vle=tmp_path / "studentVle.zip", chunksize=5000)
    pd.testing.assert_frame_equal(zipped.activity, daily.activity)
    assert daily.activity["clicks"].sum() == d.activity["clicks"].sum()
    # the same students, weeks and assessments as the generic tables they were written from
    ids = dict(zip(d.students["code_module"] + "-2013J-" + (1000 + np.arange(len(d.students))).astype(str),
                   d.students["student"]))
    st = daily.students.set_index(daily.students["student"].map(ids))
    ref = d.students.set_index("student")
    assert _same(st.loc[ref.index, "withdrawn_week"].to_numpy(), ref["withdrawn_week"].to_numpy())
    assert _same(st.loc[ref.index, "registered_week"].to_numpy(), ref["registered_week"].to_numpy())
    X_daily, _, _ = _features(daily)
    X_weekly, _, _ = _features(weekly)
    assert _same(X_daily, X_weekly)


def test_oulad_raw_files_after_the_cutoff_do_not_change_features(tmp_path):
    d = sample_dropout_data(120, seed=4)
    f = write_oulad_folder(tmp_path / "o", d)
    X0, pop0, _ = _features(load_oulad(f))
    vle = pd.read_csv(f / "studentVle.csv")
    vle.loc[vle["date"] >= 7 * W, "sum_click"] *= 3
    vle.to_csv(f / "studentVle.csv", index=False)
    sa = pd.read_csv(f / "studentAssessment.csv")
    sa.loc[sa["date_submitted"] >= 7 * W, "score"] = 0
    sa.to_csv(f / "studentAssessment.csv", index=False)
    reg = pd.read_csv(f / "studentRegistration.csv")
    reg.loc[reg["date_unregistration"] >= 7 * W, "date_unregistration"] = np.nan
    reg.to_csv(f / "studentRegistration.csv", index=False)
    X1, pop1, _ = _features(load_oulad(f))
    assert _same(X0, X1) and _same(pop0, pop1)


def test_oulad_presentations_without_clicks_are_left_out_and_said_so(tmp_path):
    d = sample_dropout_data(80, seed=5)
    f = write_oulad_folder(tmp_path / "o", d, daily=False)
    w = pd.read_csv(f / "studentVle_weekly_partial.csv")
    w[(w["code_module"] == "AAA") & (w["week"] < 15)].to_csv(f / "studentVle_weekly_partial.csv", index=False)
    got = load_oulad(f)
    assert set(got.students["code_module"]) == {"AAA"}
    assert any("BBB-2013J" in n and "left out" in n for n in got.notes)
    assert any("truncated" in n for n in got.notes)
    every = load_oulad(f, activity="none")
    assert len(every.students) == 80 and every.activity is None


@pytest.mark.skipif(not (OULAD / "studentInfo.csv").exists(), reason="shared OULAD copy not present")
def test_shared_oulad_copy_loads_with_its_three_click_presentations():
    d = load_oulad(OULAD)
    assert sorted(set(d.students["presentation"])) == ["AAA-2013J", "AAA-2014J", "BBB-2013B"]
    assert len(d.students) == 383 + 365 + 1767
    assert d.students["imd_band"].isin(["10-20"]).sum() == 0  # OULAD's one band without '%' is fixed
    assert d.activity["clicks"].sum() <= 2_594_563

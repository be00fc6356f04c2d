"""Issue 16 "Done when": per task, a fuzz test feeds malformed inputs (empty, header-only, binary, wrong
types, NaN/inf, out-of-range, datetime where numbers are expected, unknown names, duplicated columns,
broken lines) and asserts a library error naming the file / column / row, with nothing written.

Each case builds its input inside the test's own folder (the working folder, where a default run
folder would go) and lists what the error must name; the folder must look the same afterwards.

This file: EssayScorer, PathRecommender, DropoutPredictor; test_fuzz_generators.py: ProblemGenerator,
DiagramDiffusion; test_fuzz_evaluate.py: evaluate / predict.
"""
from __future__ import annotations

import json

import numpy as np
import pytest



from fuzz_helpers import BINARY, _csv, _raw, _with, expect_error


# ------------------------------------------------------------------------------------------ EssayScorer
ESSAY_CASES = ["empty", "header_only", "binary", "text_score", "nan_score", "inf_score", "huge_score",
               "date_score", "unknown_column", "duplicated_header", "empty_essay", "jsonl_not_object",
               "numeric_essay", "records_not_dicts"]


@pytest.mark.parametrize("case", ESSAY_CASES)
def test_fuzz_essay_scorer(case, essays, tiny_encoder, tmp_path):
    from edu_flash import EssayScorer

    df = essays.iloc[:40].reset_index(drop=True)[["essay", "score", "prompt"]]
    cols = dict(text_column="essay", prompt_column="prompt")
    where = {}
    if case == "empty":
        data = _raw(tmp_path, "e.csv", b"")
        where = dict(source=data, word="empty")
    elif case == "header_only":
        data = _raw(tmp_path, "e.csv", "essay,score,prompt\n")
        where = dict(source=data, word="no data rows")
    elif case == "binary":
        data = _raw(tmp_path, "e.csv", BINARY)
        where = dict(source=data)
    elif case == "text_score":
        data = _csv(tmp_path, "e.csv", _with(df, "score", 4, "four"))
        where = dict(source=data, column="score", row=5)
    elif case == "nan_score":
        data = _csv(tmp_path, "e.csv", _with(df, "score", 2, None))
        where = dict(source=data, column="score", row=3)
    elif case == "inf_score":
        data = _csv(tmp_path, "e.csv", _with(df, "score", 6, float("inf")))
        where = dict(source=data, column="score", row=7)
    elif case == "huge_score":
        data = _csv(tmp_path, "e.csv", _with(df, "score", 7, 1e300))
        where = dict(source=data, column="score", row=8)
    elif case == "date_score":
        data = _csv(tmp_path, "e.csv", _with(df, "score", 1, "2024-05-01"))
        where = dict(source=data, column="score", row=2)
    elif case == "unknown_column":
        data = _csv(tmp_path, "e.csv", df)
        cols["text_column"] = "text"
        where = dict(source=data, column="text")
    elif case == "duplicated_header":
        data = _raw(tmp_path, "e.csv", "essay,score,score,prompt\n" + "".join(
            f'"{e}",{s},{s},{p}\n' for e, s, p in zip(df.essay.str.replace('"', "'"), df.score, df.prompt)))
        where = dict(source=data, column="score")
    elif case == "empty_essay":
        data = _csv(tmp_path, "e.csv", _with(df, "essay", 9, "   "))
        where = dict(source=data, column="essay", row=10)
    elif case == "jsonl_not_object":
        rows = [json.dumps(r) for r in df.to_dict("records")]
        rows[3] = "[1, 2, 3]"
        data = _raw(tmp_path, "e.jsonl", "\n".join(rows) + "\n")
        where = dict(source=data, line=4)
    elif case == "numeric_essay":
        data = [dict(r) for r in df.to_dict("records")]
        data[5]["essay"] = 12345
        where = dict(column="essay", row=6)
    else:
        data = [*df.to_dict("records")[:3], ["not", "a", "dict"]]
        where = dict(row=4)
    scorer = EssayScorer(str(tiny_encoder), max_length=32, batch_size=8, max_steps=1, precision="32")
    expect_error(lambda: scorer.finetune(data, progress=False, **cols), tmp_path, **where)
    assert scorer.model is None


# ------------------------------------------------------------------------------------------ PathRecommender
PATH_CASES = ["empty", "header_only", "binary", "correct_text", "correct_out_of_range", "nan_student", "inf_time",
              "date_in_numbers", "unknown_column", "duplicated_header", "dkt_bad_flag", "jsonl_broken_line",
              "bool_time"]


@pytest.fixture(scope="module")
def kt_logs():
    from edu_flash.path.sample import sample_logs

    return sample_logs(30, seed=0).reset_index(drop=True)


@pytest.mark.parametrize("case", PATH_CASES)
def test_fuzz_path_recommender(case, kt_logs, tmp_path):
    from edu_flash import PathRecommender

    df = kt_logs.copy()
    if "time" not in df.columns:
        df["time"] = np.arange(len(df), dtype=float)
    kw, where = {}, {}
    if case == "empty":
        data = _raw(tmp_path, "l.csv", b"")
        where = dict(source=data)
    elif case == "header_only":
        data = _raw(tmp_path, "l.csv", ",".join(df.columns) + "\n")
        where = dict(source=data, word="no data rows")
    elif case == "binary":
        data = _raw(tmp_path, "l.csv", BINARY)
        where = dict(source=data)
    elif case == "correct_text":
        data = _csv(tmp_path, "l.csv", _with(df, "correct", 11, "maybe"))
        where = dict(source=data, column="correct", row=12)
    elif case == "correct_out_of_range":
        data = _csv(tmp_path, "l.csv", _with(df, "correct", 20, 2))
        where = dict(source=data, column="correct", row=21, word="found 2")
    elif case == "nan_student":
        data = _csv(tmp_path, "l.csv", _with(df, "student", 3, None))
        where = dict(source=data, column="student", row=4)
    elif case == "inf_time":
        data = _csv(tmp_path, "l.csv", _with(df, "time", 8, float("inf")))
        where = dict(source=data, column="time", row=9)
    elif case == "date_in_numbers":
        data = _csv(tmp_path, "l.csv", _with(df, "time", 40, "2024-01-01"))
        where = dict(source=data, column="time", row=41)
    elif case == "unknown_column":
        data = _csv(tmp_path, "l.csv", df)
        kw = dict(student_column="learner")
        where = dict(source=data, column="learner")
    elif case == "duplicated_header":
        data = _csv(tmp_path, "l.csv", df.rename(columns={"time": "correct"}))
        where = dict(source=data, column="correct")
    elif case == "dkt_bad_flag":
        data = _raw(tmp_path, "l.csv", "3\n1,2,3\n1,0,1\n2\n4,5\n1,7\n")
        where = dict(source=data, line=6, word="'7'")
    elif case == "jsonl_broken_line":
        rows = [json.dumps(r) for r in df.to_dict("records")]
        rows[14] = rows[14][:-5]
        data = _raw(tmp_path, "l.jsonl", "\n".join(rows) + "\n")
        where = dict(source=data, line=15)
    else:
        data = _with(df, "time", 2, True)
        where = dict(column="time", row=3)
    rec = PathRecommender("dkt", max_steps=1, d_model=8, window=10)
    expect_error(lambda: rec.finetune(data, progress=False, **kw), tmp_path, **where)
    assert rec.model is None


# ------------------------------------------------------------------------------------------ DropoutPredictor
DROPOUT_CASES = ["empty_students", "header_only_students", "binary_students", "bad_outcome", "nan_week",
                 "inf_clicks", "negative_clicks", "date_in_clicks", "huge_week", "unknown_id_column",
                 "duplicated_activity_header", "missing_activity_file", "duplicated_student"]


@pytest.fixture(scope="module")
def dropout_tables():
    from edu_flash import DropoutPredictor

    d = DropoutPredictor.builtin_data(120).train
    return d.students.reset_index(drop=True), d.activity.reset_index(drop=True)


@pytest.mark.parametrize("case", DROPOUT_CASES)
def test_fuzz_dropout_predictor(case, dropout_tables, tmp_path):
    from edu_flash import DropoutPredictor

    students, activity = (t.copy() for t in dropout_tables)
    clicks = next(c for c in activity.columns if c not in ("student", "week"))
    st, act, where = None, None, {}
    if case == "empty_students":
        st = _raw(tmp_path, "s.csv", b"")
        where = dict(source=st)
    elif case == "header_only_students":
        st = _raw(tmp_path, "s.csv", ",".join(students.columns) + "\n")
        where = dict(source=st, word="no data rows")
    elif case == "binary_students":
        st = _raw(tmp_path, "s.csv", BINARY)
        where = dict(source=st)
    elif case == "bad_outcome":
        st = _csv(tmp_path, "s.csv", _with(students, "final_result", 5, "maybe"))
        where = dict(source=st, column="final_result", row=6)
    elif case == "nan_week":
        act = _csv(tmp_path, "a.csv", _with(activity, "week", 7, None))
        where = dict(source=act, column="week", row=8)
    elif case == "inf_clicks":
        act = _csv(tmp_path, "a.csv", _with(activity, clicks, 3, float("inf")))
        where = dict(source=act, column=clicks, row=4)
    elif case == "negative_clicks":
        act = _csv(tmp_path, "a.csv", _with(activity, clicks, 10, -5))
        where = dict(source=act, column=clicks, row=11)
    elif case == "date_in_clicks":
        act = _csv(tmp_path, "a.csv", _with(activity, clicks, 2, "2024-02-01"))
        where = dict(source=act, column=clicks, row=3)
    elif case == "huge_week":
        act = _csv(tmp_path, "a.csv", _with(activity, "week", 12, 1e15))
        where = dict(source=act, column="week", row=13)
    elif case == "unknown_id_column":
        st = _csv(tmp_path, "s.csv", students)
        where = dict(source=st, column="learner")
    elif case == "duplicated_activity_header":
        act = _csv(tmp_path, "a.csv", activity.rename(columns={clicks: "week"}))
        where = dict(source=act, column="week")
    elif case == "missing_activity_file":
        act = tmp_path / "in" / "nope.csv"
        where = dict(source=act, word="not found")
    else:
        st = _csv(tmp_path, "s.csv", _with(students, "student", 4, students.student[3]))
        where = dict(source=st, column="student", row=5)
    st = st if st is not None else _csv(tmp_path, "s.csv", students)
    act = act if act is not None else _csv(tmp_path, "a.csv", activity)
    kw = dict(id_column="learner") if case == "unknown_id_column" else {}
    model = DropoutPredictor("gru", max_steps=1, hidden_size=4)
    expect_error(lambda: model.finetune(str(st), activity=str(act), progress=False, **kw), tmp_path, **where)
    assert model.model is None

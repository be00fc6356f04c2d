"""Issue 4, item 1: interaction logs from every source, the DKT three-line reader, validation, and the
windows that decide what training sees and what evaluation scores."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from edu_flash import DataError, MissingColumnError, UnknownLabelError
from edu_flash.path import data as D
from edu_flash.path.sample import sample_logs


def _dkt_file(path, students):
    lines = []
    for skills, flags in students:
        lines += [str(len(skills)), ",".join(map(str, skills)) + ",", ",".join(map(str, flags)) + ","]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_read_dkt_three_line_format(tmp_path):
    p = _dkt_file(tmp_path / "train.csv", [([3, 3, 5], [0, 1, 1]), ([5], [1]), ([7, 3], [1, 0])])
    assert D.is_dkt_file(p) and not D.is_dkt_file(tmp_path / "missing.csv")
    t = D.read_dkt(p)
    assert t.source == str(p)
    assert t.df["item"].tolist() == ["3", "3", "5", "5", "7", "3"] and t.df["skill"].tolist() == t.df["item"].tolist()
    assert t.df["correct"].tolist() == [0, 1, 1, 1, 1, 0] and t.df["order"].tolist() == [0, 1, 2, 0, 0, 1]
    logs, vocab = D.read_logs(t, D.Columns())
    assert logs.dropped_students == 1 and len(logs.students) == 2  # the one-response student is dropped
    assert D.items_are_skills(vocab)


@pytest.mark.parametrize("lines, match", [
    (["3", "1,2,", "0,1,1,"], "count says 3"),
    (["2", "1,2,", "0,2,"], "not 0 or 1"),
    (["2", "1,2,"], "3 lines per student"),
])
def test_read_dkt_errors_name_the_line(tmp_path, lines, match):
    p = tmp_path / "bad.csv"
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=match) as e:
        D.read_dkt(p)
    assert str(p) in str(e.value)


def test_every_table_source_gives_the_same_sequences(tmp_path):
    from edu_flash.core.data import read_table

    df = sample_logs(12, seed=3)
    df.to_csv(tmp_path / "l.csv", index=False)
    df.to_json(tmp_path / "l.jsonl", orient="records", lines=True)
    df.to_parquet(tmp_path / "l.parquet")
    ref, _ = D.read_logs(read_table(df), D.Columns())
    for src in [tmp_path / "l.csv", tmp_path / "l.jsonl", tmp_path / "l.parquet", df.to_dict("records")]:
        logs, _ = D.read_logs(read_table(src), D.Columns())
        assert logs.students == ref.students
        assert all((a == b).all() for a, b in zip(logs.items, ref.items))
        assert all((a == b).all() for a, b in zip(logs.correct, ref.correct))


def test_rows_out_of_time_order_are_sorted_and_counted():
    df = sample_logs(5, seed=4)
    shuffled = df.sample(frac=1.0, random_state=0).reset_index(drop=True)
    a, vocab = D.read_logs(read(df), D.Columns())
    b, _ = D.read_logs(read(shuffled), D.Columns(), vocab=vocab)
    assert a.sorted_rows == 0 and b.sorted_rows > 0
    order = {s: i for i, s in enumerate(a.students)}
    for s, it, c in zip(b.students, b.items, b.correct):
        assert (it == a.items[order[s]]).all() and (c == a.correct[order[s]]).all()


def read(df):
    from edu_flash.core.data import read_table

    return read_table(df)


def test_multi_skill_items_build_a_q_matrix():
    df = pd.DataFrame({"student": ["a"] * 3, "item": ["x", "y", "x"], "skill": ["k1_k2", "k2", "k1_k2"],
                       "correct": [1, 0, 1]})
    logs, vocab = D.read_logs(read(df), D.Columns())
    assert vocab["skills"] == ["k1", "k2"] and vocab["q"] == [[1, 2], [2]]
    assert D.q_matrix(vocab).tolist() == [[0, 0], [1, 2], [2, 0]]


@pytest.mark.parametrize("bad, match", [
    ({"correct": [1, 2, 0]}, "correct must be 0/1"),
    ({"correct": [1, None, 0]}, "correct must be 0/1"),
    ({"item": ["x", None, "y"]}, "missing"),
    ({"time": [1, "soon", 3]}, "neither a number nor a date"),
])
def test_bad_values_name_column_and_row(bad, match):
    df = pd.DataFrame({"student": ["a"] * 3, "item": ["x", "y", "x"], "correct": [1, 0, 1], "time": [1, 2, 3]})
    df = df.assign(**bad)
    with pytest.raises(DataError, match=match) as e:
        D.read_logs(read(df), D.Columns())
    assert e.value.row == 2


def test_missing_columns_list_the_ones_that_exist():
    df = pd.DataFrame({"user": ["a", "a"], "item": ["x", "y"], "correct": [1, 0]})
    with pytest.raises(MissingColumnError, match=r"student_column") as e:
        D.read_logs(read(df), D.Columns())
    assert "'user'" in str(e.value)
    logs, _ = D.read_logs(read(df), D.Columns(student="user"))
    assert logs.students == ["a"]


def test_true_false_and_string_flags_are_accepted():
    df = pd.DataFrame({"student": ["a"] * 4, "item": ["x"] * 4, "correct": ["true", "0", 1.0, "False"]})
    logs, _ = D.read_logs(read(df), D.Columns())
    assert logs.correct[0].tolist() == [1, 0, 1, 0]


def test_unknown_items_raise_or_are_skipped():
    train = pd.DataFrame({"student": ["a"] * 3, "item": ["x", "y", "x"], "correct": [1, 0, 1]})
    _, vocab = D.read_logs(read(train), D.Columns())
    new = pd.DataFrame({"student": ["b"] * 3, "item": ["x", "z", "y"], "correct": [1, 0, 1]})
    with pytest.raises(UnknownLabelError, match="'z'") as e:
        D.read_logs(read(new), D.Columns(), vocab=vocab)
    assert e.value.row == 2
    logs, _ = D.read_logs(read(new), D.Columns(), vocab=vocab, unknown="skip")
    assert logs.items[0].tolist() == [1, 2] and logs.extra["unknown_skipped"] == 1


@pytest.mark.parametrize("n", [1, 2, 3, 50, 199, 200, 201, 350, 1003])
@pytest.mark.parametrize("window, stride", [(200, 100), (200, 1), (10, 9), (10, 50), (3, 1)])
def test_evaluation_scores_every_response_after_the_first_exactly_once(n, window, stride):
    scored = []
    for a, e, f in D.eval_windows(n, window, stride):
        assert e - a <= window and a <= f - 1 < e  # each window holds context before what it scores
        scored += range(f, e)
    assert scored == list(range(1, n))


def test_training_windows_cover_sequences_without_overlap():
    logs = D.Logs(["a", "b"], [np.arange(1, 451), np.arange(1, 3)], [np.ones(450, np.float32), np.ones(2, np.float32)],
                  "mem")
    w = D.train_windows(logs, 200)
    assert [len(x[0]) for x in w] == [200, 200, 50, 2]
    assert np.concatenate([x[0] for x in w[:3]]).tolist() == list(range(1, 451))


def test_student_split_is_by_student_and_seeded():
    logs, _ = D.read_logs(read(sample_logs(40, seed=5)), D.Columns())
    tr, va = D.split_students(logs, 0.1, seed=0)
    assert len(va.students) == 4 and not set(tr.students) & set(va.students)
    assert D.split_students(logs, 0.1, seed=0)[1].students == va.students
    assert D.split_students(logs, 0.0, seed=0)[1] is None


def test_importing_the_task_loads_no_engine():
    import subprocess
    import sys

    code = ("import sys, edu_flash.path, edu_flash; edu_flash.PathRecommender; "
            "print([m for m in ('torch', 'pandas', 'sklearn', 'numpy', 'transformers') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"

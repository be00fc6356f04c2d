"""Issue 2, item 8: bad input raises the library's own errors, naming file, column and row, before any
training starts and before anything is written."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from edu_flash import (CheckpointError, ConfigError, DataError, EduFlashError, EssayScorer, MissingColumnError,
                       NotFittedError, UnknownLabelError)


def test_error_hierarchy():
    for cls in (ConfigError, DataError, MissingColumnError, UnknownLabelError, NotFittedError, CheckpointError):
        assert issubclass(cls, EduFlashError)
    assert issubclass(MissingColumnError, DataError) and issubclass(MissingColumnError, KeyError)
    assert issubclass(UnknownLabelError, DataError)
    assert issubclass(DataError, ValueError) and issubclass(ConfigError, ValueError)


@pytest.fixture()
def good(essays):
    return essays.iloc[:24].reset_index(drop=True).assign(essay=lambda d: d.essay.str.replace("\n", " "))


@pytest.fixture()
def fresh(tiny_encoder):
    """A neural scorer whose finetune would train (so a late error would leave a run folder behind)."""
    return EssayScorer(backbone=str(tiny_encoder), max_length=32, batch_size=8, max_steps=1, precision="32")


def _fails_before_training(scorer, data, tmp_path, exc=DataError, **kw):
    run, out = tmp_path / "run", tmp_path / "model"
    with pytest.raises(exc) as ei:
        scorer.finetune(data, run_dir=run, progress=False, **kw).save_pretrained(out)
    assert not run.exists(), "a run folder was created before the error"
    assert not out.exists()
    assert scorer.model is None
    return ei.value


def test_missing_column_lists_existing_columns_and_names_the_file(fresh, good, tmp_path):
    p = tmp_path / "essays.csv"
    good.to_csv(p, index=False)
    e = _fails_before_training(fresh, str(p), tmp_path, MissingColumnError, text_column="text",
                               prompt_column="prompt")
    msg = str(e)
    assert str(p) in msg and "'text'" in msg
    for c in ("essay", "score", "prompt", "group"):
        assert f"'{c}'" in msg
    assert "text_column" in msg and e.column == "text" and e.source == str(p)


def test_missing_score_and_subgroup_columns(fresh, good, tmp_path):
    e = _fails_before_training(fresh, good.drop(columns="score"), tmp_path, MissingColumnError, text_column="essay")
    assert "'score'" in str(e) and "score_column" in str(e)
    e = _fails_before_training(fresh, good, tmp_path, MissingColumnError, text_column="essay",
                               subgroup_columns=["gender"])
    assert "'gender'" in str(e)


def test_empty_essay_names_file_column_row_and_line(fresh, good, tmp_path):
    good.loc[4, "essay"] = "   "
    p = tmp_path / "essays.tsv"
    good.to_csv(p, index=False, sep="\t")
    e = _fails_before_training(fresh, str(p), tmp_path, text_column="essay")
    assert (e.source, e.column, e.row, e.line) == (str(p), "essay", 5, 6)
    assert str(p) in str(e) and "'essay'" in str(e) and "row 5 (line 6)" in str(e) and "empty" in str(e)


def test_missing_essay_cell_in_csv(fresh, good, tmp_path):
    good.loc[2, "essay"] = None
    p = tmp_path / "essays.csv"
    good.to_csv(p, index=False)
    e = _fails_before_training(fresh, str(p), tmp_path, text_column="essay")
    assert e.row == 3 and e.line == 4 and "missing" in str(e)


def test_non_text_essay_in_jsonl(fresh, good, tmp_path):
    p = tmp_path / "essays.jsonl"
    rows = good.to_dict("records")
    rows[6]["essay"] = 1234
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    e = _fails_before_training(fresh, str(p), tmp_path, text_column="essay")
    assert e.source == str(p) and e.column == "essay" and e.row == 7 and e.line == 7
    assert "not text" in str(e) and "1234" in str(e)


def test_non_text_essay_in_records(fresh, good, tmp_path):
    rows = good.to_dict("records")
    rows[0]["essay"] = ["a", "list"]
    e = _fails_before_training(fresh, rows, tmp_path, text_column="essay")
    assert e.row == 1 and "list" in str(e) and "records" in str(e)


def test_nan_score(fresh, good, tmp_path):
    good["score"] = good["score"].astype(float)
    good.loc[9, "score"] = float("nan")
    p = tmp_path / "essays.csv"
    good.to_csv(p, index=False)
    e = _fails_before_training(fresh, str(p), tmp_path, text_column="essay")
    assert (e.source, e.column, e.row, e.line) == (str(p), "score", 10, 11)
    assert "nan" in str(e).lower() and "row 10 (line 11)" in str(e)


def test_non_numeric_score(fresh, good, tmp_path):
    good["score"] = good["score"].astype(object)
    good.loc[11, "score"] = "four"
    p = tmp_path / "essays.csv"
    good.to_csv(p, index=False)
    e = _fails_before_training(fresh, str(p), tmp_path, text_column="essay")
    assert (e.column, e.row, e.line) == ("score", 12, 13)
    assert str(p) in str(e) and "'four'" in str(e) and "not a number" in str(e)


def test_numeric_strings_are_fine_but_booleans_are_not(good):
    from edu_flash.core.data import Table, check_numeric

    t = Table(pd.DataFrame({"s": ["3", 2.0, 1]}), "x", -1)
    assert check_numeric(t, "s") == [3.0, 2.0, 1.0]
    with pytest.raises(DataError, match="row 2"):
        check_numeric(Table(pd.DataFrame({"s": [1, True]}), "x", -1), "s")


def test_line_number_with_multiline_essays(fresh, tmp_path):
    df = pd.DataFrame({"essay": ["First para.\n\nSecond para.", "One\nTwo\nThree", "fine", "also fine"],
                       "score": [1, 2, "bad", 3]})
    p = tmp_path / "multi.csv"
    df.to_csv(p, index=False)
    lines = p.read_text().splitlines()
    true_line = next(i + 1 for i, ln in enumerate(lines) if ln.startswith("fine,"))
    e = _fails_before_training(fresh, str(p), tmp_path, text_column="essay")
    assert e.row == 3 and e.line == true_line


def test_unknown_prompt_in_validation_data_fails_before_training(fresh, good, tmp_path):
    val = good.copy()
    val.loc[4, "essay"] = ""
    e = _fails_before_training(fresh, good, tmp_path, text_column="essay", prompt_column="prompt", val=val)
    assert e.row == 5 and "val" in str(e)
    val = good.copy()
    val.loc[0, "prompt"] = "7"
    e = _fails_before_training(fresh, good, tmp_path, UnknownLabelError, text_column="essay", prompt_column="prompt",
                               val=val)
    assert e.row == 1 and "'7'" in str(e)


def test_unknown_prompt_at_predict_names_the_row(trained):
    s = trained.scorer
    df = trained.test.iloc[:5].copy()
    df.loc[3, "prompt"] = "9"
    with pytest.raises(UnknownLabelError) as ei:
        s.predict(df)
    e = ei.value
    assert e.row == 4 and e.column == "prompt"
    assert "'9'" in str(e) and "row 4" in str(e) and "['1', '2', '3']" in str(e)
    with pytest.raises(UnknownLabelError, match="'42'"):
        s.predict("An essay.", prompt=42)
    with pytest.raises(UnknownLabelError, match="row 4"):
        s.evaluate(df)


def test_score_off_the_grid_at_evaluate(trained):
    df = trained.test.iloc[:5].copy()
    df["score"] = df["score"].astype(float)
    df.loc[2, "score"] = 2.5  # an inferred whole-point grid; outside an inferred range only warns (issue 12)
    with pytest.raises(DataError, match="row 3"):
        trained.scorer.evaluate(df)


@pytest.mark.parametrize("make", ["missing", "folder", "corrupt_parquet", "bad_jsonl", "unsupported_type",
                                  "bad_record"])
def test_unreadable_inputs(fresh, tmp_path, make):
    if make == "missing":
        data, word = str(tmp_path / "nope.csv"), "not found"
    elif make == "folder":
        (tmp_path / "dir.csv").mkdir()
        data, word = str(tmp_path / "dir.csv"), "folder"
    elif make == "corrupt_parquet":
        (tmp_path / "x.parquet").write_bytes(b"PAR1 this is not parquet")
        data, word = str(tmp_path / "x.parquet"), "parquet"
    elif make == "bad_jsonl":
        (tmp_path / "x.jsonl").write_text('{"essay": "a", "score": 1}\n{"essay": broken\n')
        data, word = str(tmp_path / "x.jsonl"), "jsonl"
    elif make == "unsupported_type":
        data, word = 42, "unsupported"
    else:
        data, word = [{"essay": "a", "score": 1}, "not a record"], "row 2"
    e = _fails_before_training(fresh, data, tmp_path, text_column="essay")
    assert word in str(e)
    if isinstance(data, str):
        assert data in str(e)


def test_nothing_is_created_when_the_model_folder_fails_to_load(tmp_path):
    with pytest.raises(CheckpointError):
        EssayScorer.from_pretrained(tmp_path / "nothing-here")
    assert list(tmp_path.iterdir()) == []


def test_validation_score_out_of_range_fails_before_training(fresh, good, tmp_path):
    val = good.copy()
    val.loc[1, "score"] = 99
    e = _fails_before_training(fresh, good, tmp_path, text_column="essay", prompt_column="prompt", val=val,
                               score_ranges={"1": (1, 6), "2": (0, 3), "3": (2, 12)})
    assert e.row == 2 and "range" in str(e) and "val" in str(e)


# ---------------------------------------------------------------- issue 17: raw errors -> library errors
def _dkt(tmp_path, name="train.csv", n=12):
    rng = __import__("numpy").random.default_rng(0)
    lines = []
    for _ in range(n):
        k = int(rng.integers(3, 9))
        lines += [str(k), ",".join(str(x) for x in rng.integers(0, 5, k)), ",".join(str(x) for x in rng.integers(0, 2, k))]
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n")
    return p, lines


def test_dkt_file_errors_keep_their_line_number(tmp_path):
    from edu_flash import PathRecommender

    p, lines = _dkt(tmp_path)
    lines[10] = "nope"  # the 4th student's count line
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as ei:
        PathRecommender("pfa").finetune(p)
    assert "line 10" in str(ei.value) and str(p) in str(ei.value)


def test_dkt_file_with_invalid_utf8_on_a_later_line(tmp_path):
    from edu_flash import PathRecommender

    p, lines = _dkt(tmp_path)
    lines[1] = lines[1].replace("1", "Brüche", 1)  # a UTF-8 skill name: the file is UTF-8
    data = ("\n".join(lines[:9]) + "\n").encode() + b"3\n1,\xe9\xff,2\n0,1,1\n" + ("\n".join(lines[12:]) + "\n").encode()
    p.write_bytes(data)
    with pytest.raises(DataError) as ei:
        PathRecommender("pfa").finetune(p)
    assert str(p) in str(ei.value) and "line 11" in str(ei.value) and "UTF-8" in str(ei.value)
    p.write_bytes(data.replace("Brüche".encode(), b"1"))  # all ASCII but one byte: read as cp1252, no raw error
    assert "\u00e9\u00ff" in PathRecommender("pfa").finetune(p).state["vocab"]["skills"]


def test_unreadable_log_file_and_image_folder(tmp_path, unreadable):
    from edu_flash import DiagramDiffusion, PathRecommender

    p, _ = _dkt(tmp_path)
    unreadable(p)
    with pytest.raises(DataError, match="cannot read") as ei:
        PathRecommender("pfa").finetune(p)
    assert str(p) in str(ei.value)
    from PIL import Image

    for c in ("circle", "square"):
        (tmp_path / "imgs" / c).mkdir(parents=True)
        for i in range(2):
            Image.new("L", (16, 16), 255 * i).save(tmp_path / "imgs" / c / f"{i}.png")
    unreadable(tmp_path / "imgs" / "square")
    with pytest.raises(DataError, match="cannot list") as ei:
        DiagramDiffusion(image_size=16, block_channels=[8, 16]).finetune(tmp_path / "imgs", run_dir=tmp_path / "r")
    assert str(tmp_path / "imgs" / "square") in str(ei.value) and not (tmp_path / "r").exists()


def test_kt_time_inf_and_an_odd_row_are_named(tmp_path):
    from edu_flash import PathRecommender

    df = pd.DataFrame({"student": [s for s in "abcd" for _ in range(15)], "item": list("xyz") * 20,
                       "correct": [1, 0] * 30, "time": [float(i) for i in range(60)]})
    bad = df.astype({"time": object})
    bad.loc[40, "time"] = "yesterday"
    with pytest.raises(DataError) as ei:
        PathRecommender("pfa").finetune(bad)
    assert ei.value.row == 41 and "'yesterday'" in str(ei.value)
    df.loc[7, "time"] = float("inf")
    df.to_csv(tmp_path / "logs.csv", index=False)
    with pytest.raises(DataError) as ei:
        PathRecommender("pfa").finetune(tmp_path / "logs.csv")
    assert (ei.value.row, ei.value.line, ei.value.column) == (8, 9, "time") and "finite" in str(ei.value)


def test_header_only_students_file_says_it_has_no_rows(tmp_path):
    from edu_flash import DropoutPredictor

    d = DropoutPredictor.builtin_data(120).train
    d.students.iloc[:0].to_csv(tmp_path / "students.csv", index=False)
    with pytest.raises(DataError) as ei:
        DropoutPredictor("logreg").finetune(str(tmp_path / "students.csv"), activity=d.activity)
    assert "one class" not in str(ei.value) and "no data rows" in str(ei.value)


def test_duplicated_dataframe_columns_in_every_task():
    from edu_flash import DropoutPredictor, PathRecommender

    df = pd.DataFrame([["a", "x", 1, 1]] * 4, columns=["student", "item", "correct", "correct"])
    with pytest.raises(DataError, match="'correct' appears 2 times"):
        PathRecommender("pfa").finetune(df)
    with pytest.raises(DataError, match="appears 2 times"):
        EssayScorer("tfidf-ridge").finetune(pd.DataFrame([["t", 1, 2]] * 4, columns=["text", "score", "score"]))
    d = DropoutPredictor.builtin_data(120).train
    st = d.students.copy()
    st.insert(2, "dup", 0)
    st = st.rename(columns={"dup": st.columns[1]})
    with pytest.raises(DataError, match="appears 2 times"):
        DropoutPredictor("logreg").finetune(st, activity=d.activity)


def test_hyperparameter_type_errors_read_plainly():
    with pytest.raises(ConfigError) as ei:
        EssayScorer("tfidf-ridge", lr="fast")
    assert "lr must be a number, got 'fast'" in str(ei.value) and "<class" not in str(ei.value)
    with pytest.raises(ConfigError, match="max_steps must be a whole number or None"):
        EssayScorer("tfidf-ridge", max_steps="many")


def test_path_recommender_unknown_argument_lists_hyperparameters(tmp_path):
    from edu_flash import PathRecommender

    p, _ = _dkt(tmp_path)
    with pytest.raises(ConfigError) as ei:
        PathRecommender("pfa").finetune(p, lrr=0.1)
    assert "'lrr'" in str(ei.value) and "'lr'" in str(ei.value) and "pfa_c" in str(ei.value)


def test_numpy_scalars_read_as_plain_values_in_every_message():
    import numpy as np

    from edu_flash import ProblemGenerator

    rows = ProblemGenerator.builtin_data(40).train
    df = pd.DataFrame({"problem": [r["question"] for r in rows], "solution": [r["answer"] for r in rows],
                       "difficulty": np.full(len(rows), 3, dtype=np.int64)})
    df.loc[3, "difficulty"] = 9
    with pytest.raises(DataError) as ei:
        ProblemGenerator(n_layer=1, n_embd=32, n_head=2, vocab_size=300).finetune(df)
    assert "difficulty 9 is not a level" in str(ei.value) and "np." not in str(ei.value)
    e = DataError(f"value {np.float64(0.5)!r}, {np.str_('a')!r}, {np.int64(2)!r} and np.sum stays", source="x")
    assert str(e) == "x: value 0.5, 'a', 2 and np.sum stays"
    assert str(ConfigError(f"got {np.bool_(True)!r}")) == "got True"

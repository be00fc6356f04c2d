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


def test_score_out_of_range_at_evaluate(trained):
    df = trained.test.iloc[:5].copy()
    df["score"] = df["score"].astype(int)
    df.loc[2, "score"] = 50
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
    e = _fails_before_training(fresh, good, tmp_path, text_column="essay", prompt_column="prompt", val=val)
    assert e.row == 2 and "range" in str(e) and "val" in str(e)

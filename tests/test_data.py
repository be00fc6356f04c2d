"""Issue 2, item 3: finetune from every input kind with column mapping; per-prompt score scaling."""
from __future__ import annotations

import csv

import numpy as np
import pandas as pd
import pytest

from edu_flash import DataError, EssayScorer
from edu_flash.core.data import read_table

STRAY = 'My teacher said "computers are tools and I agree with half of it'  # an unclosed quote


@pytest.fixture(scope="module")
def small(essays):
    """60 essays on one line each (TSV cannot hold newlines), user column names, two stray quotes."""
    df = essays.iloc[:60].reset_index(drop=True).copy()
    df["essay"] = df["essay"].str.replace(r"\s*\n+\s*", " ", regex=True)
    df.loc[3, "essay"] = STRAY + " " + df.loc[3, "essay"]
    df.loc[7, "essay"] = df.loc[7, "essay"] + ' and that is "all'
    df.loc[11, "essay"] = '"Computers" help. ' + df.loc[11, "essay"]  # starts with a quote, ends without one
    return df.rename(columns={"essay": "essay_text", "score": "holistic", "prompt": "prompt_id", "group": "ell"})


COLS = dict(text_column="essay_text", score_column="holistic", prompt_column="prompt_id", subgroup_columns=["ell"])


def _write(kind: str, df: pd.DataFrame, folder):
    if kind == "csv":
        p = folder / "essays.csv"
        df.to_csv(p, index=False)
    elif kind == "tsv":
        p = folder / "essays.tsv"
        df.to_csv(p, index=False, sep="\t", quoting=csv.QUOTE_NONE, escapechar=None)
    elif kind == "jsonl":
        p = folder / "essays.jsonl"
        df.to_json(p, orient="records", lines=True, force_ascii=False)
    elif kind == "parquet":
        p = folder / "essays.parquet"
        df.to_parquet(p, index=False)
    elif kind == "dataframe":
        return df
    elif kind == "dataset":
        import datasets

        return datasets.Dataset.from_pandas(df, preserve_index=False)
    elif kind == "datasetdict":
        import datasets

        return datasets.DatasetDict({"train": datasets.Dataset.from_pandas(df, preserve_index=False)})
    elif kind == "records":
        return df.to_dict("records")
    else:
        raise AssertionError(kind)
    return str(p)


KINDS = ["csv", "tsv", "jsonl", "parquet", "dataframe", "dataset", "datasetdict", "records"]


@pytest.mark.parametrize("kind", KINDS)
def test_read_table_gives_the_same_rows_for_every_kind(kind, small, tmp_path):
    table = read_table(_write(kind, small, tmp_path))
    df = table.df
    assert list(df.columns) == list(small.columns)
    assert df["essay_text"].tolist() == small["essay_text"].tolist()  # stray quotes kept, nothing swallowed
    assert [float(v) for v in df["holistic"]] == [float(v) for v in small["holistic"]]
    assert [str(v) for v in df["prompt_id"]] == small["prompt_id"].tolist()
    assert len(table) == 60


def test_tsv_stray_quote_does_not_swallow_rows(small, tmp_path):
    path = _write("tsv", small, tmp_path)
    text = open(path, encoding="utf-8").read()
    assert STRAY in text and text.count("\n") == 61
    df = read_table(path).df
    assert df.loc[3, "essay_text"].startswith(STRAY)
    assert df.loc[7, "essay_text"].endswith('"all')


@pytest.fixture(scope="module")
def reference(small, tiny_encoder, tmp_path_factory):
    """The DataFrame-trained scorer every other kind must reproduce exactly."""
    from conftest import reset_accelerate

    reset_accelerate()
    s = _scorer(tiny_encoder).finetune(small, run_dir=tmp_path_factory.mktemp("ref") / "run", **COLS)
    reset_accelerate()
    return s


def _scorer(enc):
    return EssayScorer(backbone=str(enc), max_length=32, batch_size=16, max_steps=2, lr=1e-3, precision="32")


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "dataframe"])
def test_finetune_from_each_kind_matches_dataframe(kind, small, tiny_encoder, reference, tmp_path):
    s = _scorer(tiny_encoder)
    out = s.finetune(_write(kind, small, tmp_path), run_dir=tmp_path / "run", **COLS)
    assert out is s
    assert s.state["score_ranges"] == reference.state["score_ranges"]
    assert s.state["columns"]["text"] == "essay_text" and s.state["columns"]["prompt"] == "prompt_id"
    probe = small.iloc[:12]
    assert s.predict(probe, rounded=False) == reference.predict(probe, rounded=False)


def test_score_ranges_are_per_prompt_from_training_data(reference, small):
    expect = {str(p): [int(g.min()), int(g.max())] for p, g in small.groupby("prompt_id")["holistic"]}
    assert reference.state["score_ranges"] == expect
    assert len({tuple(r) for r in expect.values()}) == 3  # the prompts really have different ranges


def test_targets_are_scaled_per_prompt(small):
    s = EssayScorer(backbone="tfidf-ridge")
    prep = s._prepare(read_table(small), None, **COLS)
    ranges = s.state["score_ranges"]
    for t, score, p in zip(prep.targets, small["holistic"], prep.prompts):
        lo, hi = ranges[p]
        assert t == pytest.approx((score - lo) / (hi - lo))
    assert min(prep.targets) == 0.0 and max(prep.targets) == 1.0


def test_predictions_are_integers_inside_each_prompts_range(trained):
    s, test = trained.scorer, trained.test
    ranges = s.state["score_ranges"]
    assert ranges == {"1": [1, 6], "2": [0, 3], "3": [2, 12]}
    preds = s.predict(test)
    raw = s.predict(test, rounded=False)
    assert len(preds) == len(test)
    for v, r, p in zip(preds, raw, test["prompt"]):
        lo, hi = ranges[p]
        assert isinstance(v, float) and v.is_integer() and lo <= v <= hi
        assert lo <= r <= hi
        assert v == min(max(round(r), lo), hi)


def test_unscaling_uses_each_prompts_range(trained):
    """The encoder sees only the text: the same essay under prompts 2 (0-3) and 3 (2-12) must map to the
    same point of each range."""
    s = trained.scorer
    texts = trained.test["essay"].tolist()[:6]
    p2 = np.array(s.predict(texts, prompt="2", rounded=False))
    p3 = np.array(s.predict(texts, prompt="3", rounded=False))
    np.testing.assert_allclose(p2 / 3.0, (p3 - 2.0) / 10.0, atol=1e-6)
    assert not np.allclose(p2, p3)


def test_explicit_score_ranges_are_respected(small, tiny_encoder, tmp_path):
    given = {1: (0, 10), "2": (0, 5), "3": (0, 20)}
    s = _scorer(tiny_encoder).finetune(small, score_ranges=given, run_dir=tmp_path / "run", **COLS)
    assert s.state["score_ranges"] == {"1": [0, 10], "2": [0, 5], "3": [0, 20]}
    prep = s._prepare(read_table(small), None, score_ranges=given, **COLS)
    first = small.iloc[0]
    lo, hi = s.state["score_ranges"][first["prompt_id"]]
    assert prep.targets[0] == pytest.approx((first["holistic"] - lo) / (hi - lo))
    preds = s.predict(small.iloc[:20])
    for v, p in zip(preds, small["prompt_id"][:20]):
        lo, hi = s.state["score_ranges"][p]
        assert v.is_integer() and lo <= v <= hi


def test_explicit_range_for_a_prompt_with_one_score_value(small, tmp_path):
    one = small[small.prompt_id == "2"].copy()
    one["holistic"] = 2
    with pytest.raises(DataError, match="score_ranges"):
        EssayScorer(backbone="tfidf-ridge").finetune(one, run_dir=tmp_path / "run", **COLS)
    s = EssayScorer(backbone="tfidf-ridge")
    prep = s._prepare(read_table(one), None, score_ranges={"2": (0, 3)}, **COLS)
    assert s.state["score_ranges"] == {"2": [0, 3]}
    assert prep.targets == pytest.approx([2 / 3] * len(one))


def test_score_outside_given_range_names_the_row(small, tmp_path):
    with pytest.raises(DataError) as ei:
        EssayScorer(backbone="tfidf-ridge").finetune(small, score_ranges={"3": (2, 5)}, run_dir=tmp_path / "run",
                                                     **COLS)
    e = ei.value
    bad = next(i for i, (s, p) in enumerate(zip(small.holistic, small.prompt_id)) if p == "3" and s > 5)
    assert e.row == bad + 1 and e.column == "holistic"
    assert f"row {bad + 1}" in str(e) and "range 2-5" in str(e)
    assert not (tmp_path / "run").exists()


def test_no_prompt_column_means_one_implicit_prompt(essays, tiny_encoder, tmp_path):
    df = essays[essays.prompt == "1"].iloc[:40]
    s = _scorer(tiny_encoder).finetune(df[["essay", "score"]], text_column="essay", run_dir=tmp_path / "run")
    assert list(s.state["score_ranges"]) == ["all"]
    v = s.predict("Computers help people learn.")
    lo, hi = s.state["score_ranges"]["all"]
    assert isinstance(v, float) and lo <= v <= hi


def test_single_prompt_model_predicts_without_prompt(essays, tiny_encoder, tmp_path):
    """Trained with a prompt column but on one prompt: predict(str) needs no prompt=."""
    df = essays[essays.prompt == "3"].iloc[:40]
    s = _scorer(tiny_encoder).finetune(df, text_column="essay", prompt_column="prompt", run_dir=tmp_path / "run")
    v = s.predict("Computers help people learn.")
    assert 2 <= v <= 12 and v == s.predict("Computers help people learn.", prompt="3")


def test_datasetdict_uses_the_right_split(small, tmp_path):
    import datasets

    ds = datasets.Dataset.from_pandas(small, preserve_index=False)
    dd = datasets.DatasetDict({"train": ds.select(range(40)), "validation": ds.select(range(40, 50)),
                               "test": ds.select(range(50, 60))})
    assert len(read_table(dd)) == 40
    assert len(read_table(dd, split="validation")) == 10
    with pytest.raises(DataError, match="splits"):
        read_table(datasets.DatasetDict({"train": ds}), split="test")


def test_csv_in_other_encoding_is_read(tmp_path):
    p = tmp_path / "latin.csv"
    p.write_bytes("essay,score\nCaf\xe9 culture is good for students,3\nNa\xefve,2\n".encode("cp1252"))
    df = read_table(str(p)).df
    assert df["essay"].tolist() == ["Café culture is good for students", "Naïve"]


# ---------------------------------------------------------------- issues 16 / 17: reading hostile files
def _err(data, **kw) -> DataError:
    with pytest.raises(DataError) as ei:
        read_table(data, **kw)
    return ei.value


def test_header_only_and_empty_files_are_data_errors(tmp_path, essays):
    (tmp_path / "h.csv").write_text("essay,score,prompt\n")
    e = _err(str(tmp_path / "h.csv"))
    assert "no data rows (only a header)" in str(e) and e.source == str(tmp_path / "h.csv")
    (tmp_path / "e.csv").write_text("")
    assert "empty" in str(_err(str(tmp_path / "e.csv")))
    # and finetune says so before training, instead of an IndexError deep in transformers
    with pytest.raises(DataError, match="no training rows"):
        EssayScorer("tfidf-ridge").finetune(essays.iloc[:0], text_column="essay")


def test_duplicated_column_names_are_refused(tmp_path):
    df = pd.DataFrame([[1, 2, 3]], columns=["a", "b", "a"])
    e = _err(df)
    assert e.column == "a" and "appears 2 times" in str(e)
    (tmp_path / "d.csv").write_text("essay,score,score\nhello,1,2\n")  # pandas would rename it to score.1
    e = _err(str(tmp_path / "d.csv"))
    assert e.column == "score" and str(tmp_path / "d.csv") in str(e)
    (tmp_path / "ok.csv").write_text("x,x.1\n1,2\n")  # a real column named x.1 is fine
    assert list(read_table(str(tmp_path / "ok.csv")).df.columns) == ["x", "x.1"]


def test_unreadable_file_is_a_data_error(tmp_path, unreadable):
    p = tmp_path / "locked.csv"
    p.write_text("essay,score\nhello,1\n")
    unreadable(p)
    e = _err(str(p))
    assert "cannot read" in str(e) and e.source == str(p)


def test_invalid_utf8_on_a_later_line_names_the_line(tmp_path):
    p = tmp_path / "u.csv"
    p.write_bytes("essay,score\nCafé crème,1\nfine,2\n".encode() + b"bad \xff byte,3\n")
    e = _err(str(p))
    assert e.line == 4 and "UTF-8" in str(e) and "line 4" in str(e)
    p = tmp_path / "cp1252.csv"  # a file that is all cp1252 is still read (no UTF-8 text in it at all)
    p.write_bytes("essay,score\nCafé crème,1\n".encode("cp1252"))
    assert read_table(str(p)).df.essay[0] == "Café crème"


def test_broken_jsonl_names_its_line_not_a_byte_position(tmp_path):
    p = tmp_path / "x.jsonl"
    good = '{"essay": "a", "score": 1}\n'
    p.write_text(good * 3 + "\n" + good + '{"essay": "b", score: 2}\n' + good)
    e = _err(str(p))
    assert e.line == 6 and "line 6" in str(e) and "position" not in str(e)
    p.write_text(good + "[1, 2]\n")
    assert _err(str(p)).line == 2
    p.write_text(good + "\n" + '{"essay": "c", "score": 2}\n')  # blank lines are skipped, rows keep their lines
    t = read_table(str(p))
    assert len(t) == 2 and t.where(1)["line"] == 3


def test_csv_with_an_essay_over_the_csv_field_limit(tmp_path, essays):
    long = ("word " * 40000).strip()  # 200k characters, over Python csv's 131,072 default limit
    df = pd.DataFrame({"essay": [long, "line one\nline two", "short"], "score": [1, 2, 3]})
    df.to_csv(tmp_path / "long.csv", index=False)
    t = read_table(str(tmp_path / "long.csv"))
    assert t.df.essay[0] == long and t.where(2)["line"] == 5
    import csv as _csv

    assert _csv.field_size_limit() == 131072  # restored


def test_missing_column_names_the_file_once(tmp_path, essays):
    p = tmp_path / "e.csv"
    essays.iloc[:5].to_csv(p, index=False)
    with pytest.raises(DataError) as ei:
        EssayScorer("tfidf-ridge").finetune(str(p), text_column="text")
    assert str(ei.value).count(str(p)) == 1


def test_numpy_values_in_messages_read_as_plain_numbers():
    from edu_flash.core.data import Table, check_text

    with pytest.raises(DataError) as ei:
        check_text(Table(pd.DataFrame({"t": np.array([2], dtype=np.int64)}, dtype=object), "x", -1), "t")
    assert "np.int64" not in str(ei.value) and "2" in str(ei.value)


def test_time_column_error_names_the_odd_row():
    from edu_flash.core.data import Table, check_time

    t = Table(pd.DataFrame({"time": [*range(40), "yesterday", *range(41, 60)]}), "logs.csv", 1)
    with pytest.raises(DataError) as ei:
        check_time(t, "time")
    assert ei.value.row == 41 and "'yesterday'" in str(ei.value)
    with pytest.raises(DataError, match="row 2.*not a finite number"):
        check_time(Table(pd.DataFrame({"time": [1.0, float("inf"), 3.0]}), "logs.csv", 1), "time")
    dates = check_time(Table(pd.DataFrame({"time": ["2024-01-02", "2024-01-01 10:00"]}), "x", 1), "time")
    assert dates[0] > dates[1]


def test_absurd_magnitudes_can_be_refused():
    from edu_flash.core.data import Table, check_numeric

    with pytest.raises(DataError, match="row 2.*implausibly large"):
        check_numeric(Table(pd.DataFrame({"s": [1, 1e300]}), "x", -1), "s", max_abs=1e6, what="score")

"""What `finetune(devices=N)` hands to its worker processes: files (Parquet, Arrow, JSON), never a
pickle, and back in the worker exactly what the caller passed — the same kind of object, and the
same table (values, column types, source name, line numbers) once `read_table` has read it.

In-process and fast: the multi-process runs are in test_launch.py.
"""
from __future__ import annotations

import datetime as dt
import decimal
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import has_pickle
from edu_flash import ConfigError
from edu_flash.core.data import Table, read_table
from edu_flash.core.handoff import Writer, dumps, loads, unpack


def _round_trip(value, folder: Path, where: str = "data"):
    """As the launcher does it: pack into the folder, through strict JSON text, unpack."""
    text = dumps(Writer(folder).pack(value, where))
    assert "NaN" not in text and "Infinity" not in text
    return unpack(loads(text), folder)


def _essays() -> pd.DataFrame:
    return pd.DataFrame({
        "essay": ["First essay.", "Second, with \"quotes\"\nand a newline.", "Third", "Fourth"],
        "score": [1.5, np.nan, 3.0, 4.0],
        "prompt": [1, "2", None, 2.0],                      # mixed types stay Python objects
        "group": pd.Categorical(["ell", "non", "ell", "non"]),
        "n_words": pd.array([2, None, 1, 1], dtype="Int64"),
        "submitted": pd.to_datetime(["2024-01-01", None, "2024-01-03 10:00", "2024-01-04"], format="ISO8601"),
        "flag": [True, False, True, False],
    })


FORMATS = {
    "DataFrame": lambda df: df,
    "list of records": lambda df: [{k: v for k, v in r.items() if not (k == "score" and v != v)}
                                   for r in df.to_dict("records")],  # a missing key in row 2
    "dict of columns": lambda df: {c: df[c].tolist() for c in df.columns},
    "Dataset": lambda df: __import__("datasets").Dataset.from_pandas(df.drop(columns=["prompt"])),
    "DatasetDict": lambda df: __import__("datasets").DatasetDict(
        {"train": __import__("datasets").Dataset.from_pandas(df.drop(columns=["prompt"])),
         "validation": __import__("datasets").Dataset.from_pandas(df.drop(columns=["prompt"]).iloc[:2])}),
    "Table": lambda df: Table(df, "essays.csv", header_lines=1, row_lines=[2, 3, 5, 6]),
}


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("split", ["train", "validation"])
def test_every_table_format_reaches_the_worker_as_the_same_table(fmt, split, tmp_path):
    orig = FORMATS[fmt](_essays())
    back = _round_trip(orig, tmp_path)
    assert type(back) is type(orig)
    a, b = read_table(orig, name="train", split=split), read_table(back, name="train", split=split)
    pd.testing.assert_frame_equal(a.df, b.df, check_exact=True)
    assert [type(v) for v in a.df["essay"]] == [type(v) for v in b.df["essay"]]
    if "prompt" in a.df:
        assert [type(v) for v in a.df["prompt"]] == [type(v) for v in b.df["prompt"]]
    assert (a.source, a.header_lines, a.row_lines) == (b.source, b.header_lines, b.row_lines)


def test_paths_stay_paths_for_the_worker_to_read(tmp_path):
    assert _round_trip("data/essays.csv", tmp_path) == "data/essays.csv"
    back = _round_trip(Path("data/essays.csv"), tmp_path)
    assert isinstance(back, Path) and str(back) == "data/essays.csv"


def test_python_values_in_cells_and_arguments_round_trip(tmp_path):
    from PIL import Image

    palette = Image.new("P", (3, 2), 5)
    palette.putpalette([i % 256 for i in range(768)])
    cells = [Image.new("RGB", (4, 3), (10, 20, 30)), Image.new("L", (2, 2), 7), Image.new("F", (2, 2), 1.25),
             palette, np.arange(6, dtype=np.float32).reshape(2, 3), {"bytes": b"\x00\x89PNG", "path": None},
             (1, [2.5, "x"]), decimal.Decimal("1.10"), dt.date(2024, 2, 29), dt.datetime(2024, 1, 1, 3, 4, 5),
             pd.Timestamp("2024-01-01 12:00", tz="Europe/Paris"), pd.NaT, pd.NA, None, float("nan"),
             float("inf"), dt.timedelta(days=1, seconds=3), np.datetime64("2024-01-01"), True, 7, "text"]
    df = pd.DataFrame({"v": pd.Series(cells, dtype=object)})
    kwargs = {"score_range": (1, 6), "ranges": {"1": (0.5, 5.0), 2: [1, 2]}, "weights": np.array([0.5, 2.0]),
              "columns": ["a", "b"], "limit": float("-inf"), "folder": Path("x/y")}
    back_df = _round_trip(df, tmp_path)
    back_kw = {k: _round_trip(v, tmp_path, k) for k, v in kwargs.items()}
    for x, y in zip(cells, back_df["v"]):
        assert type(x) is type(y) or isinstance(x, Image.Image), (x, y)
        if isinstance(x, Image.Image):
            assert (x.mode, x.size, x.tobytes()) == (y.mode, y.size, y.tobytes())
        elif isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and np.array_equal(x, y)
        elif isinstance(x, float) and math.isnan(x):
            assert math.isnan(y)
        elif x is pd.NaT or x is pd.NA:
            assert y is x
        else:
            assert x == y
    assert back_kw["score_range"] == (1, 6) and back_kw["ranges"] == {"1": (0.5, 5.0), 2: [1, 2]}
    assert np.array_equal(back_kw["weights"], kwargs["weights"]) and back_kw["columns"] == ["a", "b"]
    assert back_kw["limit"] == float("-inf") and back_kw["folder"] == Path("x/y")


def test_frames_keep_odd_column_names_and_their_index(tmp_path):
    df = pd.DataFrame([[1, "a", 2.0]], columns=["x", "x", 3], index=pd.Index(["s1"], name="student"))
    back = _round_trip(df, tmp_path)
    pd.testing.assert_frame_equal(df, back)
    multi = pd.DataFrame({"v": [1, 2]}, index=pd.MultiIndex.from_tuples([("a", 1), ("b", 2)], names=["s", "w"]))
    pd.testing.assert_frame_equal(multi, _round_trip(multi, tmp_path))
    empty = pd.DataFrame(index=range(3))
    assert _round_trip(empty, tmp_path).shape == (3, 0)


def test_task_data_structures_reach_the_worker_unchanged(tmp_path):
    """The structures tasks turn their own inputs into before training: a DKT file and an image
    folder (read into Tables), and a DropoutData's tables."""
    from edu_flash.diagrams import write_image_folder
    from edu_flash.diagrams.data import folder_table
    from edu_flash.dropout import sample_dropout_data
    from edu_flash.path.data import read_dkt

    dkt = tmp_path / "logs.txt"
    dkt.write_text("3\n1,2,1\n1,0,1\n2\n2,3\n0,1\n")
    images = folder_table(write_image_folder(tmp_path / "imgs", 2, 8))
    data = sample_dropout_data(30, seed=0)
    for i, orig in enumerate((read_dkt(dkt), images, data.students, data.activity, data.assessments)):
        (tmp_path / f"h{i}").mkdir()
        back = _round_trip(orig, tmp_path / f"h{i}")
        a, b = read_table(orig), read_table(back)
        pd.testing.assert_frame_equal(a.df, b.df, check_exact=True)
        assert (a.source, a.header_lines, a.row_lines) == (b.source, b.header_lines, b.row_lines)


@pytest.mark.parametrize("value, where", [
    (pd.DataFrame({"essay": ["a", "b"], "extra": ["x", object()]}), "data, column 'extra', row 2"),
    (np.array([object()], dtype=object), "weights"),
    ({"first": lambda x: x}, "weights['first']"),
])
def test_values_without_a_pickle_free_form_are_refused_naming_where(value, where, tmp_path):
    with pytest.raises(ConfigError, match="without pickle") as e:
        Writer(tmp_path).pack(value, "data" if isinstance(value, pd.DataFrame) else "weights")
    assert where in str(e.value)


def test_the_handoff_folder_holds_no_pickle(tmp_path):
    from edu_flash.diagrams import sample_diagrams

    w = Writer(tmp_path)
    job = {"data": w.pack(sample_diagrams(2, 8), "data"), "val": w.pack(_essays(), "val"),
           "kwargs": {"ds": w.pack(FORMATS["DatasetDict"](_essays()), "ds")}}
    (tmp_path / "job.json").write_text(json.dumps(job))
    assert len(list(tmp_path.iterdir())) == 4
    assert has_pickle(tmp_path) == []

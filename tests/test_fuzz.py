"""Issue 16 "Done when": per task, a fuzz test feeds malformed inputs (empty, header-only, binary, wrong
types, NaN/inf, out-of-range, datetime where numbers are expected, unknown names, duplicated columns,
broken lines) and asserts a library error naming the file / column / row, with nothing written.

Each case builds its input inside the test's own folder (the working folder, where a default run
folder would go) and lists what the error must name; the folder must look the same afterwards.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from edu_flash import EduFlashError, NotFittedError

BINARY = bytes(range(256)) * 8 + b"\x00\xff\xfe" * 100


def _files(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*")}


def expect_error(call, root: Path, *, source=None, column=None, row=None, line=None, word=None):
    """call() must raise a library error naming what is given, and write nothing under root."""
    before = _files(root)
    with pytest.raises(EduFlashError) as ei:
        call()
    e, msg = ei.value, str(ei.value)
    assert not isinstance(e, NotFittedError), msg
    assert "Traceback" not in msg and len(msg) < 2000, msg
    if source is not None:
        assert str(source) in msg, f"file {source} not named: {msg}"
    if column is not None:
        assert f"column {column!r}" in msg or f"column {column!r}" in msg.replace('"', "'") or repr(column) in msg, \
            f"column {column!r} not named: {msg}"
    if row is not None:
        assert f"row {row}" in msg, f"row {row} not named: {msg}"
    if line is not None:
        assert f"line {line}" in msg, f"line {line} not named: {msg}"
    if word is not None:
        assert word in msg, f"{word!r} not in: {msg}"
    assert _files(root) == before, "something was written before the error"
    return e


def _csv(root: Path, name: str, df: pd.DataFrame) -> Path:
    p = root / "in" / name
    p.parent.mkdir(exist_ok=True)
    df.to_csv(p, index=False)
    return p


def _raw(root: Path, name: str, content: bytes | str) -> Path:
    p = root / "in" / name
    p.parent.mkdir(exist_ok=True)
    p.write_bytes(content if isinstance(content, bytes) else content.encode())
    return p


def _with(df: pd.DataFrame, col: str, i: int, value) -> pd.DataFrame:
    df = df.copy()
    df[col] = df[col].astype(object)
    df.at[i, col] = value
    return df


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


# ------------------------------------------------------------------------------------------ ProblemGenerator
PROBLEM_CASES = ["empty", "header_only", "binary", "numeric_question", "null_answer", "no_final_answer",
                 "infinite_question", "difficulty_out_of_range", "difficulty_is_a_date", "unknown_column",
                 "duplicated_header", "broken_line", "not_objects"]


@pytest.mark.parametrize("case", PROBLEM_CASES)
def test_fuzz_problem_generator(case, tmp_path):
    from edu_flash import ProblemGenerator

    rows = ProblemGenerator.builtin_data(40).train
    kw, where = {}, {}
    lines = [json.dumps(r) for r in rows]
    generic = pd.DataFrame({"problem": [r["question"] for r in rows], "solution": [r["answer"] for r in rows],
                            "difficulty": 3})
    if case == "empty":
        data = _raw(tmp_path, "p.jsonl", b"")
        where = dict(source=data)
    elif case == "header_only":
        data = _raw(tmp_path, "p.csv", "question,answer\n")
        where = dict(source=data, word="no data rows")
    elif case == "binary":
        data = _raw(tmp_path, "p.jsonl", BINARY)
        where = dict(source=data)
    elif case in ("numeric_question", "null_answer", "no_final_answer", "infinite_question"):
        i = {"numeric_question": 3, "null_answer": 5, "no_final_answer": 8, "infinite_question": 2}[case]
        r = dict(rows[i])
        r.update({"numeric_question": {"question": 17}, "null_answer": {"answer": None},
                  "no_final_answer": {"answer": "I think it is seven."},
                  "infinite_question": {"question": float("inf")}}[case])
        lines[i] = json.dumps(r)
        data = _raw(tmp_path, "p.jsonl", "\n".join(lines) + "\n")
        col = "answer" if case in ("null_answer", "no_final_answer") else "question"
        where = dict(source=data, column=col, row=i + 1)
    elif case == "difficulty_out_of_range":
        data = _csv(tmp_path, "p.csv", _with(generic, "difficulty", 6, 9))
        where = dict(source=data, column="difficulty", row=7)
    elif case == "difficulty_is_a_date":
        data = _csv(tmp_path, "p.csv", _with(generic, "difficulty", 4, "2024-03-01"))
        where = dict(source=data, column="difficulty", row=5)
    elif case == "unknown_column":
        data = _raw(tmp_path, "p.jsonl", "\n".join(lines) + "\n")
        kw = dict(problem_column="prompt")
        where = dict(source=data, column="prompt")
    elif case == "duplicated_header":
        data = _csv(tmp_path, "p.csv", generic.rename(columns={"difficulty": "solution"}))
        where = dict(source=data, column="solution")
    elif case == "broken_line":
        lines[9] = lines[9].replace('"answer"', "answer", 1)
        data = _raw(tmp_path, "p.jsonl", "\n".join(lines) + "\n")
        where = dict(source=data, line=10)
    else:
        data = _raw(tmp_path, "p.json", json.dumps([[r["question"], r["answer"]] for r in rows]))
        where = dict(source=data)
    gen = ProblemGenerator(n_layer=1, n_embd=32, n_head=2, vocab_size=300, max_length=64, max_steps=1,
                           precision="32")
    expect_error(lambda: gen.finetune(data, progress=False, **kw), tmp_path, **where)
    assert gen.model is None


# ------------------------------------------------------------------------------------------ DiagramDiffusion
DIAGRAM_CASES = ["empty_folder", "header_only", "binary_table", "text_file_as_image", "nan_label", "number_as_image",
                 "truncated_png", "date_as_image", "unknown_column", "duplicated_header", "nan_array",
                 "out_of_range_array", "missing_image_file"]


@pytest.mark.parametrize("case", DIAGRAM_CASES)
def test_fuzz_diagram_diffusion(case, tmp_path):
    from PIL import Image

    from edu_flash import DiagramDiffusion

    img_dir = tmp_path / "in" / "imgs"
    img_dir.mkdir(parents=True)
    paths = []
    for i in range(8):
        p = img_dir / f"{i}.png"
        Image.new("L", (16, 16), 30 * i).save(p)
        paths.append(str(p))
    df = pd.DataFrame({"image": paths, "label": ["a", "b"] * 4})
    kw, where = {}, {}
    if case == "empty_folder":
        data = tmp_path / "in" / "nothing"
        data.mkdir()
        where = dict(source=data, word="no images")
    elif case == "header_only":
        data = _raw(tmp_path, "t.csv", "image,label\n")
        where = dict(source=data, word="no data rows")
    elif case == "binary_table":
        data = _raw(tmp_path, "t.csv", BINARY)
        where = dict(source=data)
    elif case == "text_file_as_image":
        _raw(tmp_path, "notes.png", "this is not a picture")
        data = _csv(tmp_path, "t.csv", _with(df, "image", 3, str(tmp_path / "in" / "notes.png")))
        where = dict(source=data, column="image", row=4)
    elif case == "nan_label":
        data = _csv(tmp_path, "t.csv", _with(df, "label", 5, None))
        where = dict(source=data, column="label", row=6)
    elif case == "number_as_image":
        data = [dict(r) for r in df.to_dict("records")]
        data[2]["image"] = 42
        where = dict(column="image", row=3)
    elif case == "truncated_png":
        Path(paths[1]).write_bytes(Path(paths[1]).read_bytes()[:40])
        data = _csv(tmp_path, "t.csv", df)
        where = dict(source=data, column="image", row=2)
    elif case == "date_as_image":
        data = df.assign(image=pd.to_datetime(["2024-01-01"] * 8))
        where = dict(column="image", row=1)
    elif case == "unknown_column":
        data = _csv(tmp_path, "t.csv", df)
        kw = dict(label_column="class")
        where = dict(source=data, column="class")
    elif case == "duplicated_header":
        data = _csv(tmp_path, "t.csv", df.rename(columns={"label": "image"}))
        where = dict(source=data, column="image")
    elif case in ("nan_array", "out_of_range_array"):
        arrays = [np.full((16, 16), 0.5, dtype=np.float32) for _ in range(8)]
        arrays[4] = arrays[4].copy()
        arrays[4][3, 3] = np.nan if case == "nan_array" else 1e9
        data = [{"image": a, "label": "a" if i % 2 else "b"} for i, a in enumerate(arrays)]
        where = dict(column="image", row=5)
    else:
        data = _csv(tmp_path, "t.csv", _with(df, "image", 6, str(img_dir / "gone.png")))
        where = dict(source=data, column="image", row=7)
    model = DiagramDiffusion(image_size=16, block_channels=(8, 16), max_steps=1, reference_epochs=1, card_samples=0)
    expect_error(lambda: model.finetune(data, progress=False, **kw), tmp_path, **where)
    assert model.model is None


# ------------------------------------------------------------------------------------------ evaluate / predict
@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """One small trained model per task, on its built-in data."""
    import edu_flash

    setups = {"EssayScorer": ("tfidf-ridge", dict(ngram_max=1), 120), "PathRecommender": ("pfa", {}, 40),
              "DropoutPredictor": ("logreg", {}, 120),
              "ProblemGenerator": ("gpt2-scratch", dict(n_layer=1, n_embd=32, n_head=2, vocab_size=300, max_length=96,
                                                        max_new_tokens=40, max_steps=2, precision="32"), 60),
              "DiagramDiffusion": ("unet2d", dict(image_size=16, block_channels=(8, 16), max_steps=2,
                                                  reference_epochs=1, card_samples=0, sample_steps=1), 2)}
    out = {}
    for name, (backbone, hp, n) in setups.items():
        cls = getattr(edu_flash, name)
        s = cls.builtin_data(n, seed=0)
        m = cls(backbone, **{**s.hparams, **hp})
        m.finetune(s.train, run_dir=tmp_path_factory.mktemp(name) / "run", progress=False, **s.finetune_args)
        out[name] = (m, s)
    return out


def _table_of(name: str, s) -> pd.DataFrame:
    if name == "DropoutPredictor":
        return s.test.students.reset_index(drop=True)
    data = s.test
    return data.reset_index(drop=True) if isinstance(data, pd.DataFrame) else pd.DataFrame(list(data))


KEY = {"EssayScorer": ("score", "lots"), "PathRecommender": ("correct", "yes?"), "DropoutPredictor":
       ("final_result", "maybe"), "ProblemGenerator": ("question", None), "DiagramDiffusion": ("label", None)}


@pytest.mark.parametrize("case", ["empty", "header_only", "binary", "bad_value", "unknown_column"])
@pytest.mark.parametrize("name", list(KEY))
def test_fuzz_evaluate(name, case, fitted, tmp_path):
    model, s = fitted[name]
    df = _table_of(name, s)
    col, bad = KEY[name]
    if name == "DiagramDiffusion":  # images as files, so the table can be a csv
        from edu_flash.diagrams.data import to_pil

        paths = []
        for i, im in enumerate(df["image"]):
            p = tmp_path / "in" / f"{i}.png"
            p.parent.mkdir(exist_ok=True)
            (im if hasattr(im, "save") else to_pil(np.asarray(im)[None] / 127.5 - 1)).save(p)
            paths.append(str(p))
        df = df.assign(image=paths)
    kw, where = {}, {}
    extra = {}
    if case == "empty":
        data = _raw(tmp_path, "t.csv", b"")
        where = dict(source=data)
    elif case == "header_only":
        data = _raw(tmp_path, "t.csv", ",".join(map(str, df.columns)) + "\n")
        where = dict(source=data, word="no data rows")
    elif case == "binary":
        data = _raw(tmp_path, "t.csv", BINARY)
        where = dict(source=data)
    elif case == "bad_value":
        data = _csv(tmp_path, "t.csv", _with(df, col, 1, bad))
        where = dict(source=data, column=col, row=2)
    else:
        data = _csv(tmp_path, "t.csv", df)
        arg = {"EssayScorer": "score_column", "PathRecommender": "item_column", "DropoutPredictor": "label_column",
               "ProblemGenerator": "problem_column", "DiagramDiffusion": "label_column"}[name]
        kw = {arg: "no_such_column"}
        where = dict(source=data, column="no_such_column")
    if name == "DropoutPredictor":
        extra = {k: str(_csv(tmp_path, f"{k}.csv", getattr(s.test, k))) for k in ("activity", "assessments")
                 if getattr(s.test, k) is not None}
    expect_error(lambda: model.evaluate(str(data), **extra, **kw), tmp_path, **where)

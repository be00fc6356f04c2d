"""Fuzz tests (issue 16) for ProblemGenerator and DiagramDiffusion training inputs: see test_fuzz.py."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest



from fuzz_helpers import BINARY, _csv, _raw, _with, expect_error


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

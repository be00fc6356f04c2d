"""Fuzz tests (issue 16) for evaluate / predict of every task: see test_fuzz.py."""
from __future__ import annotations


import numpy as np
import pandas as pd
import pytest



from fuzz_helpers import BINARY, _csv, _raw, _with, expect_error


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

"""Issue 12 with the trainer's ONNX features: `predict(runtime="onnxruntime")` and `export()` give
scores on the rubric's grid (half points, halves upward) and one score per trait, as `predict` does."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edu_flash import ConfigError, EssayScorer

from conftest import TINY, reset_accelerate
from test_essay_grids import half_points
from test_essay_traits import TRAITS, with_traits

pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'edu-flash[onnx]')")
pytest.importorskip("onnx", reason="onnx is not installed (pip install 'edu-flash[onnx]')")
pytest.importorskip("onnxscript", reason="onnxscript is not installed (pip install 'edu-flash[onnx]')")
ROOT = Path(__file__).resolve().parent.parent
COLS = dict(text_column="essay", prompt_column="prompt")


def _train(df, tiny_encoder, run_dir, **kw):
    reset_accelerate()
    return EssayScorer(backbone=str(tiny_encoder), max_epochs=1, **TINY).finetune(
        df.iloc[:64], run_dir=run_dir, loggers=None, progress=False, **COLS, **kw)


def _card_snippet(task, essay: str, prompt: str) -> str:
    section = next(s["markdown"] for s in task.card.sections if s["title"] == "Exported model (ONNX)")
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    return re.sub(r'essays, prompt = \[.*?\], ".*?"', lambda _: f"essays, prompt = [{essay!r}], {prompt!r}", code)


def _run(code: str, cwd: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_half_point_grid_on_onnxruntime_and_in_the_exported_snippet(essays, tiny_encoder, tmp_path):
    halves = half_points(essays)
    s = _train(halves, tiny_encoder, tmp_path / "run")
    test = halves.iloc[200:230]
    on_ort = s.predict(test, runtime="onnxruntime", **COLS)
    assert on_ort == s.predict(test, **COLS)  # the same grid rounding on either runtime
    assert all(v * 2 == round(v * 2) and 1 <= v <= 5 for v in on_ort)
    raw = s.predict(test, rounded=False, runtime="onnxruntime", **COLS)
    assert all(s.score_grids()["score"][str(p)].round(r) == v for r, v, p in zip(raw, on_ort, test["prompt"]))
    s.export(tmp_path / "essay.onnx")
    meta = json.loads((tmp_path / "essay.onnx.json").read_text())
    assert meta["traits"] == ["score"] and meta["grids"]["score"]["1"] == [1.0, 5.0, 0.5]
    for i in range(3):
        essay, prompt = test["essay"].iloc[i], str(test["prompt"].iloc[i])
        printed = _run(_card_snippet(s, essay, prompt), tmp_path)
        assert float(printed.strip().strip("[]")) == s.predict(essay, prompt=prompt)


def test_several_traits_on_onnxruntime_and_in_the_exported_snippet(essays, tiny_encoder, tmp_path):
    data = with_traits(essays)
    s = _train(data, tiny_encoder, tmp_path / "run", score_column=TRAITS)
    test = data.iloc[200:220]
    on_ort = s.predict(test, runtime="onnxruntime")
    assert on_ort == s.predict(test) and all(list(d) == TRAITS for d in on_ort)
    raw_ort, raw = s.predict(test, rounded=False, runtime="onnxruntime"), s.predict(test, rounded=False)
    np.testing.assert_allclose([list(d.values()) for d in raw_ort], [list(d.values()) for d in raw], atol=1e-4)
    s.export(tmp_path / "traits.onnx")
    meta = json.loads((tmp_path / "traits.onnx.json").read_text())
    assert meta["traits"] == TRAITS and meta["output"]["shape"] == ["batch", "traits"]
    essay, prompt = test["essay"].iloc[0], str(test["prompt"].iloc[0])
    printed = _run(_card_snippet(s, essay, prompt) + "\nprint(json.dumps({k: float(v[0]) for k, v in scores.items()}))",
                   tmp_path)
    assert json.loads(printed.strip().splitlines()[-1]) == s.predict(essay, prompt=prompt)


def test_onnxruntime_is_refused_for_scikit_learn_backbones(essays):
    s = EssayScorer(backbone="tfidf-ridge").finetune(essays.iloc[:60], **COLS)
    with pytest.raises(ConfigError, match="scikit-learn"):
        s.predict(essays.iloc[60:62], runtime="onnxruntime", **COLS)
    with pytest.raises(ConfigError, match="runtime must be"):
        s.predict(essays.iloc[60:62], runtime="tensorrt", **COLS)

"""Issue 15, item 4: `task.export("model.onnx")` for the torch backbones of EssayScorer,
PathRecommender and DropoutPredictor, with dynamic batch and length axes: onnxruntime on the file
matches the task's `predict` to 1e-4 on the same inputs, and the snippet the card gives runs."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edu_flash import ConfigError, DropoutPredictor, EssayScorer, NotFittedError, PathRecommender

from conftest import reset_accelerate

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'edu-flash[onnx]')")
pytest.importorskip("onnx", reason="onnx is not installed (pip install 'edu-flash[onnx]')")
pytest.importorskip("onnxscript", reason="onnxscript is not installed (pip install 'edu-flash[onnx]')")
ROOT = Path(__file__).resolve().parent.parent


def _snippet(task) -> str:
    section = next(s["markdown"] for s in task.card.sections if s["title"] == "Exported model (ONNX)")
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def _run(code: str, cwd: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_essay_scorer_export_matches_predict(trained, tmp_path):
    s = trained.scorer
    s.export(tmp_path / "essay.onnx")
    meta = json.loads((tmp_path / "essay.onnx.json").read_text())
    assert meta["inputs"]["input_ids"]["shape"] == ["batch", "length"] and meta["max_abs_diff_vs_torch"] < 1e-5
    assert (tmp_path / "essay.onnx.tokenizer.json").exists()
    test = trained.test.iloc[:7]  # different lengths in one padded batch: dynamic batch and length axes
    enc = s.tokenizer(test["essay"].tolist(), truncation=True, max_length=s.hparams.max_length, padding=True,
                      return_tensors="np")
    sess = ort.InferenceSession(str(tmp_path / "essay.onnx"))
    scaled = sess.run(None, {"input_ids": enc["input_ids"].astype(np.int64),
                             "attention_mask": enc["attention_mask"].astype(np.int64)})[0]
    ranges = s.state["score_ranges"]
    via_onnx = [ranges[str(p)][0] + min(max(v, 0.0), 1.0) * (ranges[str(p)][1] - ranges[str(p)][0])
                for v, p in zip(scaled, test["prompt"])]
    want = s.predict(test, rounded=False, text_column="essay", prompt_column="prompt")
    assert np.max(np.abs(np.array(via_onnx) - np.array(want))) < 1e-4
    # the card says how to run it; its snippet (tokenizers + onnxruntime only) gives predict's score
    code = _snippet(s)
    essay, prompt = test["essay"].iloc[0], str(test["prompt"].iloc[0])
    code = re.sub(r'essays, prompt = \[.*?\], ".*?"', lambda _: f"essays, prompt = [{essay!r}], {prompt!r}", code)
    printed = _run(code, tmp_path)
    assert float(printed.strip().strip("[]")) == s.predict(essay, prompt=prompt)


def test_export_leaves_every_module_in_the_mode_it_was_in(trained, tmp_path):
    """export() runs the network in eval mode, then puts each module back as it was (a user
    exporting mid-experiment keeps their train/eval settings)."""
    m = trained.scorer.model
    was = {mod: mod.training for mod in m.modules()}
    try:
        m.train(True)
        m.encoder.eval()
        trained.scorer.export(tmp_path / "essay.onnx")
        assert m.training and not m.encoder.training
    finally:
        for mod, training in was.items():
            mod.train(training)


@pytest.mark.parametrize("backbone", ["dkt", "sakt", "simplekt"])
def test_path_recommender_export_matches_predict(backbone, tmp_path):
    data = PathRecommender.builtin_data(seed=0)
    reset_accelerate()
    kt = PathRecommender(backbone, **{**data.hparams, "max_epochs": 1}).finetune(
        data.train, data.val, run_dir=tmp_path / "run", loggers=None, progress=False)
    kt.export(tmp_path / "kt.onnx")
    meta = json.loads((tmp_path / "kt.onnx.json").read_text())
    index = {item: i + 1 for i, item in enumerate(meta["items"])}
    df = data.test
    hists = [list(zip(g["item"], g["correct"]))[:n] for (_, g), n in zip(df.groupby("student", sort=False), (9, 4, 0))]
    w = meta["window"] - 1
    L = max(1, max(len(h[-w:]) for h in hists))
    items = np.zeros((3, L), np.int64)
    resp = np.zeros((3, L), np.float32)
    for b, h in enumerate(hists):
        items[b, :len(h[-w:])] = [index[i] for i, _ in h[-w:]]
        resp[b, :len(h[-w:])] = [c for _, c in h[-w:]]
    sess = ort.InferenceSession(str(tmp_path / "kt.onnx"))
    p = sess.run(None, {"items": items, "resp": resp, "lengths": np.array([len(h[-w:]) for h in hists]),
                        "cand": np.arange(1, len(meta["items"]) + 1, dtype=np.int64)})[0]
    for b, h in enumerate(hists):  # including a student with no history at all
        want = kt.predict(h)["p_correct"]
        assert np.max(np.abs(p[b] - np.array([want[i] for i in meta["items"]]))) < 1e-4
    code = _snippet(kt)
    code = re.sub(r"history = \[.*?\)\]", lambda _: f"history = {hists[0]!r}", code)
    code += "print(json.dumps(p_correct, default=float))"
    got = json.loads(_run(code, tmp_path))
    want = kt.predict(hists[0])["p_correct"]
    assert max(abs(got[str(k)] - v) for k, v in want.items()) < 1e-4


def test_dropout_predictor_export_matches_predict(tmp_path):
    data = DropoutPredictor.builtin_data(seed=0)
    reset_accelerate()
    m = DropoutPredictor("gru", **data.hparams).finetune(data.train, data.val, run_dir=tmp_path / "run",
                                                        loggers=None, progress=False, **data.finetune_args)
    m.export(tmp_path / "risk.onnx")
    sess = ort.InferenceSession(str(tmp_path / "risk.onnx"))
    for week in (3, 8):  # a different number of weeks each time: the dynamic axis
        ids, feed = m.onnx_inputs(data.test, week=week)
        risk = sess.run(None, feed)[0]
        assert risk.shape == (len(ids), week + 1)
        pred = m.predict(data.test, week=week, top_k=0)
        active = pred[pred["status"] == "active"]
        assert list(active["student"]) == ids
        assert np.max(np.abs(active["risk"].to_numpy() - risk[:, -1])) < 1e-4
    folder = m.save_pretrained(tmp_path / "model")
    code = ("from edu_flash import DropoutPredictor\n"
            "data = DropoutPredictor.builtin_data(seed=0).test\n" + _snippet(m).replace("path/to/model", str(folder))
            + "\nprint(json.dumps([float(x) for x in risk]))")
    got = json.loads(_run(code, tmp_path))
    pred = m.predict(data.test, week=6, top_k=0)
    assert np.max(np.abs(np.array(got) - pred[pred["status"] == "active"]["risk"].to_numpy())) < 1e-4
    assert "Exported model (ONNX)" in (folder / "README.md").read_text()


def test_export_refuses_what_it_cannot_export(essays, tmp_path, trained):
    with pytest.raises(NotFittedError):
        EssayScorer(backbone="tfidf-ridge").export(tmp_path / "x.onnx")
    ridge = EssayScorer(backbone="tfidf-ridge").finetune(essays.iloc[:60], text_column="essay")
    with pytest.raises(ConfigError, match="scikit-learn"):
        ridge.export(tmp_path / "x.onnx")
    with pytest.raises(ConfigError, match=r"ending in \.onnx"):
        trained.scorer.export(tmp_path / "x.pt")
    assert not list(tmp_path.iterdir())


def test_predict_on_onnxruntime(tiny_encoder, essays, tmp_path):
    from conftest import TINY

    cols = dict(text_column="essay", prompt_column="prompt")
    reset_accelerate()
    s = EssayScorer(backbone=str(tiny_encoder), max_epochs=1, **TINY).finetune(
        essays.iloc[:64], run_dir=tmp_path / "a", loggers=None, progress=False, **cols)
    test = essays.iloc[200:220]
    on_torch = s.predict(test, rounded=False, **cols)
    on_ort = s.predict(test, rounded=False, runtime="onnxruntime", **cols)
    assert np.max(np.abs(np.array(on_torch) - np.array(on_ort))) < 1e-4
    assert s.predict(test, runtime="onnxruntime", **cols) == s.predict(test, **cols)
    graph = s._runtime_module[1]
    reset_accelerate()
    s.finetune(essays.iloc[64:128], run_dir=tmp_path / "b", loggers=None, progress=False, **cols)  # new weights
    again = s.predict(test, rounded=False, runtime="onnxruntime", **cols)
    assert s._runtime_module[1] is not graph  # re-exported, not the stale graph
    assert np.max(np.abs(np.array(again) - np.array(s.predict(test, rounded=False, **cols)))) < 1e-4
    with pytest.raises(ConfigError, match="fp32 graph"):
        s.predict(test, runtime="onnxruntime", precision="bf16-mixed", **cols)
    with pytest.raises(ConfigError, match="runtime must be"):
        s.predict(test, runtime="tensorrt", **cols)

"""The tfidf-ridge scikit-learn backbone goes through the same finetune / predict / evaluate / save / load /
card API as the neural backbones (issue 2, items 2-6)."""
from __future__ import annotations

import json

import pytest
from huggingface_hub import ModelCard

from edu_flash import ConfigError, EssayScorer
from edu_flash.core.task import Task

from conftest import has_pickle

pytest.importorskip("edu_flash.essay.baseline", reason="tfidf-ridge backbone (edu_flash/essay/baseline.py) not there yet")


@pytest.fixture(scope="module")
def ridge(essays):
    train, test = essays.iloc[:180], essays.iloc[180:240].reset_index(drop=True)
    s = EssayScorer(backbone="tfidf-ridge")
    assert s.finetune(train, text_column="essay", prompt_column="prompt", subgroup_columns="group") is s
    return s, test


def test_ridge_predicts_integers_in_each_prompts_range(ridge):
    s, test = ridge
    v = s.predict("Computers help people learn because they can find information.", prompt="1")
    assert isinstance(v, float) and v.is_integer() and 1 <= v <= 6
    preds = s.predict(test)
    assert len(preds) == len(test)
    for p, q in zip(preds, test["prompt"]):
        lo, hi = s.state["score_ranges"][q]
        assert p.is_integer() and lo <= p <= hi
    assert s.predict(test["essay"].tolist()[:5], prompt="2") == s.predict(test[["essay"]].iloc[:5], prompt="2")


def test_ridge_learns_something(ridge):
    s, test = ridge
    m = s.evaluate(test)
    for k in ("qwk", "qwk_avg", "qwk_per_prompt", "rmse", "pearson", "subgroups"):
        assert k in m
    assert m["pearson"] > 0.7 and m["qwk"] > 0.6


def test_ridge_save_load_identical_no_pickle(ridge, tmp_path):
    s, test = ridge
    s.evaluate(test, name="ridge-test")
    folder = s.save_pretrained(tmp_path / "ridge")
    assert {"config.json", "model.safetensors", "README.md"} <= {p.name for p in folder.iterdir()}
    assert has_pickle(folder) == []
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["engine"] == "sklearn" and cfg["backbone"] == "tfidf-ridge"
    loaded = EssayScorer.from_pretrained(folder)
    assert type(Task.from_pretrained(folder)) is EssayScorer
    assert loaded.predict(test, rounded=False) == s.predict(test, rounded=False)
    assert loaded.predict("A new essay about plants and sunlight.", prompt="2") == \
        s.predict("A new essay about plants and sunlight.", prompt="2")
    card = ModelCard.load(folder / "README.md")
    assert card.data.library_name == "edu-flash"
    assert any(r.metric_type == "qwk" and r.dataset_name == "ridge-test" for r in card.data.eval_results)
    assert "scikit-learn" in (folder / "README.md").read_text()


def test_ridge_trains_in_one_process_only(essays, tmp_path):
    with pytest.raises(ConfigError, match="devices=1"):
        EssayScorer(backbone="tfidf-ridge").finetune(essays.iloc[:30], text_column="essay", devices=2)


def test_ridge_writes_no_run_folder(essays, tmp_path):
    EssayScorer(backbone="tfidf-ridge").finetune(essays.iloc[:60], text_column="essay", prompt_column="prompt",
                                                 run_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()

"""Issue 2, item 6: the README.md model card: HF-compatible front matter, model-index, the sections."""
from __future__ import annotations

import socket

import pytest
from huggingface_hub import ModelCard

from edu_flash import ConfigError, EssayScorer
from edu_flash.core import card as cardlib

SECTIONS = ["## Intended use", "## Out-of-scope use", "## Training data", "## Evaluation",
            "## Limitations and bias", "## Training procedure", "## How to use"]


@pytest.fixture()
def no_network(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("the model card tried to use the network")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture(scope="module")
def card_folder(trained, tmp_path_factory):
    s = trained.scorer
    s.evaluate(trained.val, name="essays-val")
    metrics = s.evaluate(trained.test, name="essays-test")  # the last evaluation
    folder = s.save_pretrained(tmp_path_factory.mktemp("card") / "essay-card")
    return folder, metrics


def _results(card: ModelCard) -> dict:
    out = {}
    for r in card.data.eval_results or []:
        out[(r.dataset_name, r.metric_type)] = r.metric_value
    return out


def test_readme_parses_as_a_hugging_face_card(card_folder):
    folder, metrics = card_folder
    card = ModelCard.load(folder / "README.md")
    d = card.data.to_dict()
    assert d["library_name"] == "edu-flash"
    assert "edu-flash" in d["tags"] and "essay-scoring" in d["tags"]
    assert "model-index" in d
    res = _results(card)
    assert res[("essays-test", "qwk")] == pytest.approx(metrics["qwk"], abs=1e-6)
    assert res[("essays-test", "qwk_avg")] == pytest.approx(metrics["qwk_avg"], abs=1e-6)
    assert res[("essays-test", "rmse")] == pytest.approx(metrics["rmse"], abs=1e-6)
    assert ("essays-val", "qwk") in res


def test_card_has_every_section_and_the_run_facts(card_folder, trained):
    folder, metrics = card_folder
    text = (folder / "README.md").read_text()
    pos = [text.index(h) for h in SECTIONS]
    assert pos == sorted(pos)
    body = text.split("\n---\n", 1)[1]
    assert "high-stakes" in body.lower() and "human" in body.lower()
    # evaluation overall, per prompt and per subgroup
    assert "QWK per prompt" in body and "By subgroup: group" in body and "smd" in body
    assert f"{metrics['qwk']:.4g}" in body
    # training data and procedure: hyperparameters, hardware, precision, strategy, wall time
    assert "essays:** 160" in body and "validation essays:** 40" in body
    for word in ("precision", "strategy", "hardware", "wall time", "max_length", "optimizer steps"):
        assert word in body, word
    # how to use, with this folder and class
    assert f'EssayScorer.from_pretrained("{folder}")' in body


def test_re_evaluating_replaces_the_entry_and_card_survives_reload(card_folder, trained, tmp_path):
    folder, _ = card_folder
    loaded = EssayScorer.from_pretrained(folder)
    names = [e["dataset"] for e in loaded.card.evaluations]
    assert {"essays-val", "essays-test"} <= set(names) and len(names) == len(set(names))
    assert loaded.card.evaluations == trained.scorer.card.evaluations[:len(names)]
    m = loaded.evaluate(trained.test.iloc[:20], name="essays-test")
    assert sorted(e["dataset"] for e in loaded.card.evaluations) == sorted(names)  # replaced, not added
    card = ModelCard.load(loaded.save_pretrained(tmp_path / "again") / "README.md")
    assert _results(card)[("essays-test", "qwk")] == pytest.approx(m["qwk"], abs=1e-6)


def test_card_rendering_never_touches_the_network(trained, no_network, tmp_path):
    text = trained.scorer.model_card(folder=str(tmp_path / "m"))
    assert "could not be rendered" not in text
    assert ModelCard(text).data.library_name == "edu-flash"


def test_untrained_card_renders():
    text = EssayScorer(backbone="tfidf-ridge").model_card()
    assert "_Not trained yet._" in text and "No evaluation recorded" in text
    assert ModelCard(text).data.library_name == "edu-flash"


def test_local_backbone_path_is_not_claimed_as_a_hub_base_model(card_folder, trained):
    folder, _ = card_folder
    card = ModelCard.load(folder / "README.md")
    assert getattr(card.data, "base_model", None) in (None, [])  # a tmp folder is not a hub id
    assert trained.scorer.card.base_model == str(trained.scorer.backbone)


def test_card_data_round_trips_through_dict():
    data = cardlib.CardData(task="t", backbone="b", datasets=["d"], hyperparameters={"lr": 1.0})
    data.add_evaluation("x", {"qwk": 0.5}, {"tab": [{"a": 1}]})
    again = cardlib.CardData.from_dict({**data.to_dict(), "unknown_future_field": 1})
    assert again == data
    assert cardlib.md_table([{"a": 1, "b": float("nan")}]).splitlines()[-1] == "| 1 | n/a |"


# ---------------------------------------------------------------- issue 16: cards that fit the model
@pytest.fixture()
def essay_csv(essays, tmp_path):
    p = tmp_path / "my_essays.csv"
    essays.iloc[:120].to_csv(p, index=False)
    return p


def _ridge():
    return EssayScorer("tfidf-ridge", ngram_max=1)


def test_card_names_the_training_file_or_the_given_dataset_name(essays, essay_csv):
    s = _ridge().finetune(str(essay_csv), text_column="essay", prompt_column="prompt")
    assert s.card.datasets == ["my_essays.csv"] and s.card.training_data["source"] == "my_essays.csv"
    s = _ridge().finetune(essays.iloc[:120], text_column="essay", prompt_column="prompt", dataset_name="ASAP fold 0")
    text = s.model_card()
    assert s.card.datasets == ["ASAP fold 0"] and "**source:** ASAP fold 0" in text
    s = _ridge().finetune(essays.iloc[:120], text_column="essay", prompt_column="prompt")
    assert "train (DataFrame)" not in s.model_card() and "dataset_name=" in s.model_card()
    with pytest.raises(ConfigError, match="dataset_name"):
        _ridge().finetune(essays.iloc[:120], text_column="essay", dataset_name="  ")


def test_card_hyperparameters_come_from_the_task_hook(essays):
    s = _ridge()
    s._card_hparams = lambda: {"ngram_max": 1, "chosen alpha": 3.0}
    s.finetune(essays.iloc[:120], text_column="essay", prompt_column="prompt")
    assert s.card.hyperparameters == {"ngram_max": 1, "chosen alpha": 3.0}
    assert "| chosen alpha | 3 |" in s.model_card()
    from edu_flash.core.task import Task

    assert Task._card_hparams(_ridge()) == _ridge().hparams.to_dict()  # the default: all of them
    assert "lr" not in _ridge()._card_hparams()  # EssayScorer's tfidf-ridge lists only its own settings


def test_wall_time_covers_the_whole_finetune(essays, monkeypatch):
    import time

    s = _ridge()
    slow = type(s)._prepare

    def prepare(self, *a, **k):  # data checks and feature building count, not only the model fit
        time.sleep(0.6)
        return slow(self, *a, **k)

    monkeypatch.setattr(type(s), "_prepare", prepare)
    t0 = time.perf_counter()
    s.finetune(essays.iloc[:120], text_column="essay", prompt_column="prompt")
    took = time.perf_counter() - t0
    assert 0.6 <= s.card.procedure["wall time (s)"] <= took + 0.05


def test_card_without_results_says_so_and_validates(essays, tmp_path):
    from edu_flash.core.cardcheck import check_card

    folder = _ridge().finetune(essays.iloc[:120], text_column="essay", prompt_column="prompt").save_pretrained(
        tmp_path / "m")
    assert check_card(folder / "README.md") == {"results": 0, "metrics": []}
    (tmp_path / "README.md").write_text("---\nlibrary_name: edu-flash\n---\n# claims nothing, says nothing\n")
    with pytest.raises(Exception, match="no model-index results"):
        check_card(tmp_path / "README.md")

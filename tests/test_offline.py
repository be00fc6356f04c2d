"""Issue 16 "Offline by default": a name that is neither a registered backbone nor an existing folder
fails at once with "unknown backbone" and the closest registered name; only an explicit hub id
(owner/name) is looked up on the hub, and then the error says the hub could not be reached. The same
for model folders (`from_pretrained`, `edu-flash predict`, `edu-flash card`)."""
from __future__ import annotations

import socket
import time

import pytest

from edu_flash import (CheckpointError, ConfigError, DiagramDiffusion, DropoutPredictor, EssayScorer,
                       PathRecommender, ProblemGenerator, Task)
from edu_flash.cli import main


@pytest.fixture()
def no_network(monkeypatch):
    calls = []

    def refuse(*a, **k):
        calls.append(a)
        raise OSError("network is switched off in this test")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    return calls


@pytest.mark.parametrize("cls,typo,meant", [
    (EssayScorer, "all-MiniLM-L6-v3", "all-MiniLM-L6-v2"), (EssayScorer, "Tfidf-Ridge", "tfidf-ridge"),
    (ProblemGenerator, "gpt2-scrach", "gpt2-scratch"), (ProblemGenerator, "gpt-2", "gpt2"),
    (PathRecommender, "sakt2", "sakt"), (DropoutPredictor, "gmb", "gbm"), (DiagramDiffusion, "unet2", "unet2d")])
def test_a_misspelt_backbone_fails_at_once_with_the_closest_name(cls, typo, meant, no_network):
    t0 = time.perf_counter()
    with pytest.raises(ConfigError) as ei:
        cls(typo)
    msg = str(ei.value)
    assert time.perf_counter() - t0 < 1 and not no_network
    assert "unknown backbone" in msg and f"did you mean {meant!r}" in msg
    for name in cls.available_backbones():
        assert repr(name) in msg


def test_a_folder_backbone_is_fine_but_a_missing_one_is_not(tiny_encoder, tmp_path):
    EssayScorer(str(tiny_encoder))
    with pytest.raises(ConfigError, match="unknown backbone"):
        EssayScorer(str(tmp_path / "no-such-encoder"))
    with pytest.raises(ConfigError, match="not a registered backbone"):
        PathRecommender(str(tiny_encoder))  # tasks without Hugging Face backbones take registered names only


def test_an_explicit_hub_id_says_the_hub_could_not_be_reached(essays, tmp_path, no_network):
    scorer = EssayScorer("someone/some-encoder")  # accepted: the user asked for the hub
    t0 = time.perf_counter()
    with pytest.raises(ConfigError) as ei:
        scorer.finetune(essays.iloc[:40], text_column="essay", run_dir=tmp_path / "run")
    assert time.perf_counter() - t0 < 5
    assert "someone/some-encoder" in str(ei.value) and "could not be reached" in str(ei.value)
    assert not (tmp_path / "run").exists()
    with pytest.raises(ConfigError, match="could not be reached"):  # a registered backbone that lives on the hub
        EssayScorer("bert-base-uncased").finetune(essays.iloc[:40], text_column="essay")


def test_a_mistyped_model_folder_fails_at_once(essays, tmp_path, monkeypatch, no_network, capsys):
    monkeypatch.chdir(tmp_path)
    EssayScorer("tfidf-ridge", ngram_max=1).finetune(essays.iloc[:60], text_column="essay",
                                                     prompt_column="prompt").save_pretrained("runs/essay")
    for call in (lambda: EssayScorer.from_pretrained("runs/esay"), lambda: Task.from_pretrained("runs/esay")):
        with pytest.raises(CheckpointError, match=r"'runs/esay' does not exist; did you mean 'runs/essay'"):
            call()
    t0 = time.perf_counter()
    assert main(["predict", "runs/esay", "An essay."]) == 2
    assert main(["card", "runs/esay", "--validate"]) == 2
    assert time.perf_counter() - t0 < 5
    err = capsys.readouterr().err
    assert "runs/esay" in err and "Traceback" not in err and len(err.strip().splitlines()) == 2
    with pytest.raises(CheckpointError, match="could not be reached"):
        Task.from_pretrained("owner/model")  # no local folder 'owner': an explicit hub id
    assert not no_network or all("huggingface" in str(c) for c in no_network)


def test_a_saved_model_loads_after_its_backbone_folder_is_gone(essays, tiny_encoder, tmp_path):
    import shutil

    enc = tmp_path / "enc"
    shutil.copytree(tiny_encoder, enc)
    s = EssayScorer(str(enc), max_length=32, max_steps=1, batch_size=8, precision="32")
    s.finetune(essays.iloc[:16], text_column="essay", run_dir=tmp_path / "run", progress=False)
    folder = s.save_pretrained(tmp_path / "m")
    shutil.rmtree(enc)
    assert EssayScorer.from_pretrained(folder).predict("An essay.") == s.predict("An essay.")


def test_a_folder_of_another_task_says_which_task_it_holds(essays, tmp_path):
    folder = EssayScorer("tfidf-ridge", ngram_max=1).finetune(essays.iloc[:60], text_column="essay").save_pretrained(
        tmp_path / "m")
    with pytest.raises(CheckpointError) as ei:
        DropoutPredictor.from_pretrained(folder)
    assert "holds an EssayScorer model (task 'essay_scoring'), not a DropoutPredictor" in str(ei.value)
    with pytest.raises(CheckpointError, match="not an EssayScorer"):
        import json

        cfg = json.loads((folder / "config.json").read_text())
        cfg["task"] = "path_recommendation"
        (folder / "config.json").write_text(json.dumps(cfg))
        EssayScorer.from_pretrained(folder)

"""Issue 2, item 6: save_pretrained / from_pretrained: files, identical predictions, no pickle, atomic writes."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

import edu_flash
from edu_flash import CheckpointError, EssayScorer
from edu_flash.core.task import Task

from conftest import has_pickle


def _snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _leftovers(parent: Path, name: str) -> list[str]:
    return [p.name for p in parent.iterdir() if p.name.startswith(f".{name}.")]


@pytest.fixture(scope="module")
def saved(trained, tmp_path_factory):
    folder = tmp_path_factory.mktemp("saved") / "essay-tiny"
    out = trained.scorer.save_pretrained(folder)
    assert Path(out) == folder
    return folder


def test_save_writes_the_expected_files(saved):
    names = {p.name for p in saved.iterdir()}
    assert {"config.json", "model.safetensors", "README.md", "tokenizer.json", "tokenizer_config.json"} <= names
    cfg = json.loads((saved / "config.json").read_text())
    assert cfg["weights"]["format"] == "torch"
    assert cfg["state"]["score_ranges"] == {"1": [1, 6], "2": [0, 3], "3": [2, 12]}
    assert cfg["state"]["columns"]["text"] == "essay"
    assert cfg["edu_flash_version"] == edu_flash.__version__


def test_no_pickle_anywhere(saved, trained):
    assert has_pickle(saved) == []
    assert has_pickle(trained.run_dir) == []  # training checkpoints too
    from safetensors import safe_open

    with safe_open(str(saved / "model.safetensors"), "pt") as f:
        keys = list(f.keys())
    assert any(k.startswith("encoder.") for k in keys) and "head.weight" in keys


def test_from_pretrained_gives_identical_predictions(saved, trained):
    s = trained.scorer
    loaded = EssayScorer.from_pretrained(saved)
    assert loaded is not s and loaded.model is not s.model
    texts = trained.test
    assert loaded.predict(texts, rounded=False) == s.predict(texts, rounded=False)
    assert loaded.predict(texts) == s.predict(texts)
    assert loaded.predict("A short new essay about computers.", prompt="3") == \
        s.predict("A short new essay about computers.", prompt="3")
    assert loaded.state == json.loads(json.dumps(s.state))
    assert not loaded.model.training


def test_base_class_from_pretrained_finds_the_task(saved):
    obj = Task.from_pretrained(saved)
    assert type(obj) is EssayScorer


def test_load_is_offline_and_does_not_need_the_original_backbone(saved, tmp_path, trained):
    """The folder is self-contained: it loads after the backbone folder it was trained from is gone."""
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(saved, copy)
    moved = tmp_path / "moved-backbone"
    enc = Path(trained.scorer.backbone)
    shutil.move(str(enc), moved)
    try:
        loaded = EssayScorer.from_pretrained(copy)
        assert loaded.predict(trained.test.iloc[:4], rounded=False) == \
            trained.scorer.predict(trained.test.iloc[:4], rounded=False)
    finally:
        shutil.move(str(moved), enc)


def test_save_overwrites_atomically_and_leaves_nothing_behind(trained, tmp_path):
    folder = tmp_path / "m"
    trained.scorer.save_pretrained(folder)
    (folder / "stale.txt").write_text("from an older save")
    trained.scorer.save_pretrained(folder)
    assert not (folder / "stale.txt").exists()  # replaced as a whole, not merged
    assert _leftovers(tmp_path, "m") == []


def _boom(*a, **k):
    raise RuntimeError("disk full (simulated)")


def test_failed_save_leaves_no_folder(trained, tmp_path, monkeypatch):
    target = tmp_path / "new-model"
    real = EssayScorer._save_weights

    def half_then_fail(self, folder):
        real(self, folder)  # weights are on disk in the temp folder when it fails
        _boom()

    monkeypatch.setattr(EssayScorer, "_save_weights", half_then_fail)
    with pytest.raises(RuntimeError, match="simulated"):
        trained.scorer.save_pretrained(target)
    assert not target.exists()
    assert _leftovers(tmp_path, "new-model") == []
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("where", ["weights", "card"])
def test_failed_save_keeps_the_existing_folder_untouched(trained, tmp_path, monkeypatch, where):
    target = tmp_path / "good"
    trained.scorer.save_pretrained(target)
    before = _snapshot(target)
    if where == "weights":
        monkeypatch.setattr(EssayScorer, "_save_weights", _boom)
    else:  # fails after config.json and the weights are written, while writing README.md
        monkeypatch.setattr(EssayScorer, "model_card", _boom)
    with pytest.raises(RuntimeError, match="simulated"):
        trained.scorer.save_pretrained(target)
    assert _snapshot(target) == before
    assert _leftovers(tmp_path, "good") == []
    assert EssayScorer.from_pretrained(target).predict(trained.test.iloc[:3]) == trained.scorer.predict(
        trained.test.iloc[:3])


def test_card_rendering_failure_never_fails_a_save(trained, tmp_path, monkeypatch):
    import edu_flash.core.card as cardlib

    monkeypatch.setattr(cardlib, "_render", _boom)
    folder = trained.scorer.save_pretrained(tmp_path / "m")
    readme = (folder / "README.md").read_text()
    assert readme.startswith("---\nlibrary_name: edu-flash\n---")
    assert "could not be rendered" in readme
    assert (folder / "model.safetensors").exists()


def test_from_pretrained_errors(tmp_path, saved):
    with pytest.raises(CheckpointError, match="does not exist"):
        EssayScorer.from_pretrained(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="config.json"):
        EssayScorer.from_pretrained(tmp_path / "empty")
    import shutil

    newer = tmp_path / "newer"
    shutil.copytree(saved, newer)
    cfg = json.loads((newer / "config.json").read_text())
    cfg["config_version"] = 999
    (newer / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="newer"):
        EssayScorer.from_pretrained(newer)
    cfg["config_version"], cfg["task"], cfg["task_class"] = 1, "dropout_prediction", "DropoutPredictor"
    (newer / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="DropoutPredictor"):
        EssayScorer.from_pretrained(newer)


def test_continue_training_a_loaded_model(saved, trained, tmp_path):
    """A loaded folder fine-tunes further (from its weights, not from scratch)."""
    import torch

    loaded = EssayScorer.from_pretrained(saved, max_steps=2, max_epochs=1)
    start = {k: v.clone() for k, v in loaded.model.state_dict().items()}
    loaded.finetune(trained.train.iloc[:32], run_dir=tmp_path / "run", progress=False)
    after = loaded.model.state_dict()
    assert loaded.last_train_report.steps == 2
    changed = [k for k in start if not torch.equal(start[k], after[k])]
    assert changed and "head.weight" in changed
    # the loaded model started from the saved weights: a tiny update, not a re-initialisation
    assert float((after["head.weight"] - start["head.weight"]).abs().max()) < 0.05

"""Issue 2, item 2: registered backbones; typed, validated hyperparameters that round-trip."""
from __future__ import annotations

import json

import pytest

from edu_flash import ConfigError, EssayScorer
from edu_flash.core.hparams import TrainHParams
from edu_flash.essay import EssayHParams


def test_available_backbones_lists_registered_names():
    names = EssayScorer.available_backbones()
    assert "tfidf-ridge" in names
    assert "all-MiniLM-L6-v2" in names
    assert EssayScorer.backbones["tfidf-ridge"].engine == "sklearn"
    classical = {"tfidf-ridge", "minilm-hybrid"}  # fit in-process (the hybrid's encoder is only run, not trained)
    assert all(EssayScorer.backbones[n].engine == ("sklearn" if n in classical else "torch") for n in names)


def test_defaults_are_typed_dataclass():
    s = EssayScorer()
    assert isinstance(s.hparams, EssayHParams) and isinstance(s.hparams, TrainHParams)
    assert s.backbone == EssayScorer.default_backbone
    assert s.model is None  # the constructor only stores hyperparameters
    assert s.hparams.max_length == 512 and s.hparams.precision in {"32", "bf16-mixed"}


@pytest.mark.parametrize("kw, words", [
    ({"max_epochs": "3"}, ["max_epochs", "whole number"]),   # wrong type, in words
    ({"lr": "fast"}, ["lr"]),
    ({"group_by_length": "yes"}, ["group_by_length"]),
    ({"max_length": True}, ["max_length"]),                  # bool is not an int
    ({"precision": "fp64"}, ["precision", "bf16-mixed"]),     # not a choice; lists the choices
    ({"pooling": "max"}, ["pooling", "mean", "cls"]),
    ({"scheduler": "step"}, ["scheduler", "cosine"]),
    ({"max_epochs": 0}, ["max_epochs", "minimum"]),          # out of range
    ({"dropout": 1.5}, ["dropout", "maximum"]),
    ({"lr": -1e-3}, ["lr", "minimum"]),
    ({"batch_size": 0}, ["batch_size"]),
    ({"batch_size": "big"}, ["batch_size", "auto"]),
    ({"max_steps": 0}, ["max_steps"]),
    ({"checkpoint_every": 0}, ["checkpoint_every"]),
    ({"ngram_max": 9}, ["ngram_max"]),
])
def test_bad_hparams_raise_config_error(kw, words):
    with pytest.raises(ConfigError) as ei:
        EssayScorer(backbone="tfidf-ridge", **kw)
    msg = str(ei.value)
    for w in words:
        assert w in msg, msg
    assert isinstance(ei.value, ValueError)


def test_unknown_hparam_lists_valid_names():
    with pytest.raises(ConfigError) as ei:
        EssayScorer(max_epoch=3)
    msg = str(ei.value)
    assert "max_epoch" in msg and "max_epochs" in msg and "max_length" in msg


def test_unknown_hparam_in_replace_and_from_dict():
    hp = EssayHParams()
    with pytest.raises(ConfigError, match="valid"):
        hp.replace(learning_rate=1e-3)
    with pytest.raises(ConfigError, match="valid"):
        EssayHParams.from_dict({"learning_rate": 1e-3})
    # replace validates too
    with pytest.raises(ConfigError):
        hp.replace(max_length=2)


def test_float_that_is_an_int_is_accepted_and_stored_as_int():
    s = EssayScorer(max_epochs=3.0, max_length=64.0)
    assert s.hparams.max_epochs == 3 and isinstance(s.hparams.max_epochs, int)
    with pytest.raises(ConfigError):
        EssayScorer(max_epochs=2.5)


def test_hparams_dict_round_trip_and_get_params():
    s = EssayScorer(backbone="tfidf-ridge", max_length=77, lr=3e-4, precision="32", pooling="cls",
                    max_features=None, ridge_alpha=2.5)
    d = s.hparams.to_dict()
    assert json.loads(json.dumps(d)) == d  # plain JSON
    assert EssayHParams.from_dict(d) == s.hparams
    p = s.get_params()
    assert p["backbone"] == "tfidf-ridge" and p["max_length"] == 77 and p["ridge_alpha"] == 2.5
    assert EssayScorer(**p).get_params() == p


def test_finetune_kwargs_override_hparams_and_validate(tmp_path, essays):
    s = EssayScorer(backbone="tfidf-ridge")
    with pytest.raises(ConfigError):
        s.finetune(essays, text_column="essay", lr=-1.0, run_dir=tmp_path / "run")
    with pytest.raises(ConfigError):
        s.finetune(essays, text_column="essay", devices=0, run_dir=tmp_path / "run")
    with pytest.raises(ConfigError):
        s.finetune(essays, text_column="essay", strategy="horovod", run_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()
    assert s.hparams.lr == EssayHParams().lr  # a failed call changes nothing


def test_finetune_unknown_keyword_is_config_error(tmp_path, essays):
    s = EssayScorer(backbone="tfidf-ridge")
    with pytest.raises(ConfigError) as ei:
        s.finetune(essays, text_column="essay", max_epoch=2, run_dir=tmp_path / "run")
    assert "max_epoch" in str(ei.value)


def test_hparams_written_to_config_json_and_round_trip(trained, tmp_path):
    s = trained.scorer
    folder = s.save_pretrained(tmp_path / "model")
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["hparams"] == s.hparams.to_dict()
    assert cfg["hparams"]["max_length"] == 64 and cfg["hparams"]["max_epochs"] == 2
    assert cfg["hparams"]["precision"] == "32"
    assert cfg["task"] == "essay_scoring" and cfg["task_class"] == "EssayScorer"
    assert isinstance(cfg["config_version"], int) and cfg["edu_flash_version"]
    loaded = EssayScorer.from_pretrained(folder)
    assert loaded.hparams == s.hparams
    assert loaded.get_params() == s.get_params()
    # overrides at load time are validated too
    assert EssayScorer.from_pretrained(folder, predict_batch_size=4).hparams.predict_batch_size == 4
    with pytest.raises(ConfigError):
        EssayScorer.from_pretrained(folder, predict_batch_size=0)

"""Issue 17, "Raw errors where a library error belongs": a tampered model folder, for every task and
backbone family, ends in a CheckpointError that names the folder and what is wrong (never a raw
KeyError, RecursionError, UnicodeDecodeError, size-mismatch RuntimeError or SafetensorError), and
no pickle is ever opened.
"""
from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest

from edu_flash import CheckpointError, DiagramDiffusion, DropoutPredictor, EssayScorer, PathRecommender, \
    ProblemGenerator
from edu_flash.core.task import Task

from conftest import reset_accelerate

QUICK = dict(precision="32", max_steps=2)
# name -> (task class, backbone, built-in data size, hyperparameters): one folder per weights format
MODELS = {
    "essay-tfidf": (EssayScorer, "tfidf-ridge", 60, {}),
    "dropout-gbm": (DropoutPredictor, "gbm", 120, {}),
    "dropout-logreg": (DropoutPredictor, "logreg", 120, {}),
    "dropout-gru": (DropoutPredictor, "gru", 120, dict(QUICK, hidden_size=8)),
    "path-dkt": (PathRecommender, "dkt", 30, dict(QUICK, d_model=16)),
    "path-pfa": (PathRecommender, "pfa", 30, {}),
    "problems-template": (ProblemGenerator, "template", 60, {}),
    "problems": (ProblemGenerator, "gpt2-scratch", 16, dict(QUICK, n_layer=1, n_embd=32, n_head=2, vocab_size=300,
                                                  max_length=96, batch_size=8)),
    "diagrams": (DiagramDiffusion, None, 4, dict(QUICK, image_size=16, block_channels=(8, 16), batch_size=16,
                                                 reference_epochs=1, card_samples=0, sample_steps=2)),
}


@pytest.fixture(scope="module")
def folders(tmp_path_factory, trained) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    out = {"essay-neural": trained.scorer.save_pretrained(root / "essay-neural")}
    for name, (cls, backbone, n, hp) in MODELS.items():
        reset_accelerate()
        s = cls.builtin_data(n, seed=0)
        obj = cls(backbone=backbone, **hp).finetune(s.train, s.val, run_dir=root / f"run-{name}", progress=False,
                                                    **s.finetune_args)
        out[name] = obj.save_pretrained(root / name)
    reset_accelerate()
    return out
CLASSICAL = {"essay-tfidf", "dropout-gbm", "dropout-logreg", "path-pfa"}


def _config(folder: Path, edit) -> None:
    cfg = json.loads((folder / "config.json").read_text())
    edit(cfg)
    (folder / "config.json").write_text(json.dumps(cfg))


def _drop(key):
    return lambda cfg: cfg.pop(key)


def _set(key, value):
    return lambda cfg: cfg.__setitem__(key, value)


def _weights_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.safetensors"))


def _rewrite_tensors(folder: Path, change) -> None:
    from safetensors.numpy import load_file, save_file

    p = folder / "model.safetensors"
    save_file(change(load_file(str(p))), str(p))


def _grow(arrays: dict) -> dict:
    import numpy as np

    return {k: np.zeros((v.shape[0] + 1, *v.shape[1:]), dtype=v.dtype) if v.ndim else v for k, v in arrays.items()}


def _torch_pickle(path: Path) -> None:
    import torch

    torch.save({"weight": torch.zeros(2)}, str(path))


# case -> (tamper(folder), what the message must say)
CASES = {
    "no config.json": (lambda f: (f / "config.json").unlink(), "has no config.json"),
    "config.json garbage bytes": (lambda f: (f / "config.json").write_bytes(b"\xff\xfe\x00\x9c garbage"),
                                  "not UTF-8"),
    "config.json not JSON": (lambda f: (f / "config.json").write_text('{"task": '), "not valid JSON"),
    "config.json nested 100000 deep": (lambda f: (f / "config.json").write_text("[" * 100_000 + "]" * 100_000),
                                       "nests deeper"),
    "config.json nested 500 deep in weights": (
        lambda f: _config(f, lambda c: c["weights"].__setitem__("x", json.loads("[" * 500 + "]" * 500))),
        "nests deeper"),
    "config.json a list": (lambda f: (f / "config.json").write_text("[1, 2]"), "must hold a JSON object"),
    "no 'weights'": (lambda f: _config(f, _drop("weights")), "lacks 'weights'"),
    "no 'task'": (lambda f: _config(f, _drop("task")), "lacks 'task'"),
    "no 'hparams'": (lambda f: _config(f, _drop("hparams")), "lacks 'hparams'"),
    "no 'backbone'": (lambda f: _config(f, _drop("backbone")), "lacks 'backbone'"),
    "no config_version": (lambda f: _config(f, _drop("config_version")), "config_version"),
    "'hparams' a string": (lambda f: _config(f, _set("hparams", "fast")), "'hparams' must be an object"),
    "'state' a list": (lambda f: _config(f, _set("state", [1])), "'state' must be an object"),
    "unknown hyperparameter": (lambda f: _config(f, lambda c: c["hparams"].__setitem__("bogus", 1)),
                               "unknown hyperparameter"),
    "empty 'weights'": (lambda f: _config(f, _set("weights", {})), "lacks the entry"),
    "unknown task": (lambda f: _config(f, _set("task", "nonsense")), "'nonsense'"),
    "model.safetensors missing": (lambda f: (f / "model.safetensors").unlink(), "model.safetensors is missing"),
    "model.safetensors a pickle": (lambda f: (f / "model.safetensors").write_bytes(pickle.dumps({"w": [1.0]}, 2)),
                                   "model.safetensors is a pickle"),
    "model.safetensors a torch.save file": (lambda f: _torch_pickle(f / "model.safetensors"),
                                            "model.safetensors is a zip archive"),
    "model.safetensors truncated": (
        lambda f: (f / "model.safetensors").write_bytes((f / "model.safetensors").read_bytes()[:100]),
        "model.safetensors is not a valid safetensors file"),
    "model.safetensors header too large": (lambda f: (f / "model.safetensors").write_bytes(b"\xff" * 64),
                                           "model.safetensors is not a valid safetensors file"),
    "every weights file a pickle": (lambda f: [p.write_bytes(pickle.dumps([1], 4)) for p in _weights_files(f)],
                                    "is a pickle"),
    "tensors of another size": (lambda f: _rewrite_tensors(f, _grow), "does not hold the tensors"),
    "tensors renamed": (lambda f: _rewrite_tensors(f, lambda a: {f"x.{k}": v for k, v in a.items()}),
                        "does not hold the tensors"),
    "tensors of another size, manifest gone": (lambda f: (_rewrite_tensors(f, _grow), _config(f, _drop("tensors"))),
                                               "cannot load the model"),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("model", ["essay-neural", *MODELS])
def test_a_tampered_folder_is_a_checkpoint_error(model, case, folders, tmp_path):
    if case.endswith("manifest gone") and model in CLASSICAL:
        pytest.skip("folders saved before config.json recorded tensor shapes: only torch's strict load checks them")
    folder = Path(shutil.copytree(folders[model], tmp_path / "model"))
    tamper, says = CASES[case]
    tamper(folder)
    for load in (type_of(model).from_pretrained, Task.from_pretrained):
        with pytest.raises(CheckpointError) as e:
            load(folder)
        assert str(folder) in str(e.value) and says in str(e.value), str(e.value)


def type_of(model: str) -> type:
    return EssayScorer if model.startswith("essay") else MODELS[model][0]


@pytest.mark.parametrize("model", ["essay-neural", "problems"])
def test_a_broken_tokenizer_is_a_checkpoint_error(model, folders, tmp_path):
    folder = Path(shutil.copytree(folders[model], tmp_path / "model"))
    (folder / "tokenizer.json").write_text('{"version": "1.0", "model": 42}')
    with pytest.raises(CheckpointError, match="cannot load the model") as e:
        Task.from_pretrained(folder)
    assert str(folder) in str(e.value)


def test_the_untampered_folders_load(folders):
    """The matrix above is meaningful only if every folder loads before it is tampered with."""
    for name, folder in folders.items():
        assert type(Task.from_pretrained(folder)) is type_of(name)

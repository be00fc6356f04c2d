"""Issue 15, item 1: experiment trackers through accelerate's `log_with`, read back from real local
backends: TensorBoard event files, an MLflow file store in a temporary folder, W&B in offline mode.
Each backend's test is skipped, with the reason, when its package is not installed."""
from __future__ import annotations

import csv
import glob
import json
import struct
from pathlib import Path

import pytest

from edu_flash import ConfigError, EssayScorer

from conftest import TINY, reset_accelerate

COLS = dict(text_column="essay", score_column="score", prompt_column="prompt")


def _need(module: str, extra: str):
    return pytest.importorskip(module, reason=f"{module} is not installed (pip install 'edu-flash[{extra}]')")


@pytest.fixture(scope="module")
def tracked(tmp_path_factory, tiny_encoder, essays):
    """One EssayScorer run (2 epochs, validation each epoch) logged to every tracker installed."""
    from edu_flash.core.tracking import installed

    root = tmp_path_factory.mktemp("tracked")
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", (root / "mlruns").as_uri())
    mp.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # mlflow >= 3.7 refuses the file store without it
    mp.setenv("WANDB_MODE", "offline")
    mp.setenv("WANDB_SILENT", "true")
    mp.delenv("WANDB_DIR", raising=False)
    loggers = ["csv"] + [n for n in ("tensorboard", "mlflow", "wandb") if installed(n)]
    reset_accelerate()
    s = EssayScorer(backbone=str(tiny_encoder), max_epochs=2, **TINY)
    s.finetune(essays.iloc[:96], val=essays.iloc[96:128], run_dir=root / "run", progress=False, loggers=loggers,
               **COLS)
    reset_accelerate()
    yield s, root / "run", root / "mlruns", s.model_card()
    mp.undo()


def _expected(s):
    r = s.last_train_report
    return r, [h["qwk_avg"] for h in r.history]


def test_csv_log_is_kept(tracked):
    s, run, _, _ = tracked
    r, val = _expected(s)
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [int(x["step"]) for x in rows if x["metric"] == "train_loss"] == list(range(1, r.steps + 1))
    assert [float(x["value"]) for x in rows if x["metric"] == "val_qwk_avg"] == pytest.approx(val)


def test_tensorboard_event_files_read_back(tracked):
    _need("tensorboard", "tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    s, run, _, card = tracked
    r, val = _expected(s)
    ea = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0, "tensors": 0})
    ea.Reload()
    assert [e.step for e in ea.Scalars("train_loss")] == list(range(1, r.steps + 1))
    assert [e.value for e in ea.Scalars("val_qwk_avg")] == pytest.approx(val, abs=1e-6)
    text = tensor_util.make_ndarray(ea.Tensors("model_card/text_summary")[0].tensor_proto).item().decode()
    assert text == card and "Automated essay scoring" in text
    import yaml

    hp = yaml.safe_load(Path(glob.glob(str(run / "tensorboard" / "*" / "hparams.yml"))[0]).read_text())
    assert hp["lr"] == TINY["lr"] and hp["max_epochs"] == 2 and hp["backbone"] == s.backbone
    assert hp["task"] == "essay_scoring"


def test_mlflow_file_store_read_back(tracked):
    _need("mlflow", "mlflow")
    from mlflow.tracking import MlflowClient

    s, run, store, card = tracked
    r, val = _expected(s)
    client = MlflowClient(tracking_uri=store.as_uri())
    exp = client.get_experiment_by_name("edu-flash-essay_scoring")
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    rid = runs[0].info.run_id
    losses = client.get_metric_history(rid, "train_loss")
    assert sorted(m.step for m in losses) == list(range(1, r.steps + 1))
    assert [m.value for m in sorted(client.get_metric_history(rid, "val_qwk_avg"), key=lambda m: m.step)] == \
        pytest.approx(val)
    params = runs[0].data.params
    assert float(params["lr"]) == TINY["lr"] and params["max_epochs"] == "2" and params["task"] == "essay_scoring"
    path = client.download_artifacts(rid, "model_card/README.md", str(run.parent / "dl"))
    assert Path(path).read_text() == card


def _wandb_records(path: Path):
    """The records of an offline W&B run file (LevelDB-style log of protobuf Records), read back."""
    from wandb.proto import wandb_internal_pb2 as pb

    data, out, chunk = path.read_bytes(), [], b""
    assert data[:4] == b":W&B"
    pos, block = 7, 32768
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block trailer too short for a header is padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # FULL or LAST
            rec = pb.Record()
            rec.ParseFromString(chunk)
            out.append(rec)
            chunk = b""
        elif kind == 0:
            break
    return out


def test_wandb_offline_run_read_back(tracked):
    _need("wandb", "wandb")
    s, run, _, card = tracked
    r, val = _expected(s)
    [run_dir] = glob.glob(str(run / "wandb" / "offline-run-*"))
    records = _wandb_records(next(Path(run_dir).glob("run-*.wandb")))
    history, config = [], {}
    for rec in records:
        kind = rec.WhichOneof("record_type")
        if kind == "history":
            history.append({i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in rec.history.item})
        elif kind == "config":
            config.update({i.key: json.loads(i.value_json) for i in rec.config.update})
    assert [h["_step"] for h in history if "train_loss" in h] == list(range(1, r.steps + 1))
    assert [h["val_qwk_avg"] for h in history if "val_qwk_avg" in h] == pytest.approx(val)
    assert config["lr"] == TINY["lr"] and config["task"] == "essay_scoring"
    assert (Path(run_dir) / "files" / "model_card.md").read_text() == card


def test_no_loggers_writes_no_log(tiny_encoder, essays, tmp_path):
    reset_accelerate()
    s = EssayScorer(backbone=str(tiny_encoder), max_steps=2, **TINY)
    s.finetune(essays.iloc[:32], run_dir=tmp_path / "run", progress=False, loggers=None, **COLS)
    assert not (tmp_path / "run" / "metrics.csv").exists() and not (tmp_path / "run" / "tensorboard").exists()


def test_missing_tracker_package_is_a_config_error_before_training(tiny_encoder, essays, tmp_path, monkeypatch):
    import edu_flash.core.tracking as T

    monkeypatch.setattr(T, "installed", lambda name: name != "mlflow")
    s = EssayScorer(backbone=str(tiny_encoder), **TINY)
    with pytest.raises(ConfigError, match=r"edu-flash\[mlflow\]"):
        s.finetune(essays.iloc[:32], run_dir=tmp_path / "run", loggers=["csv", "mlflow"], **COLS)
    with pytest.raises(ConfigError, match="unknown logger 'tensorbord'"):
        s.finetune(essays.iloc[:32], run_dir=tmp_path / "run", loggers="tensorbord", **COLS)
    assert s.model is None and not (tmp_path / "run").exists()


def test_a_classical_fit_sends_hyperparameters_and_card(essays, tmp_path, monkeypatch):
    _need("mlflow", "mlflow")
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    s = EssayScorer(backbone="tfidf-ridge").finetune(essays.iloc[:120], run_dir=tmp_path / "run", loggers=["mlflow"],
                                                     **COLS)
    client = MlflowClient(tracking_uri=(tmp_path / "mlruns").as_uri())
    [run] = client.search_runs([client.get_experiment_by_name("edu-flash-essay_scoring").experiment_id])
    assert run.data.params["backbone"] == "tfidf-ridge" and run.data.params["ngram_max"] == "2"
    path = client.download_artifacts(run.info.run_id, "model_card/README.md", str(tmp_path / "dl"))
    assert Path(path).read_text() == s.model_card()

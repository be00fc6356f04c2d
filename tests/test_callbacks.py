"""Issue 15, item 2: callbacks (hooks, state, stopping), the built-ins (learning-rate monitor, device
stats, best model on a metric of the user's choice) and `monitor` / `mode` chosen by the user; and
item 1/2 under devices=2: callbacks run in the workers, rank 0 alone logs."""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest
import torch

from edu_flash import ConfigError, EssayScorer
from edu_flash.callbacks import Callback, DeviceStatsMonitor, LearningRateMonitor, ModelCheckpoint

from conftest import TINY, reset_accelerate
from test_trainer import _fit, _hp, _toy_job

sys.path.insert(0, str(Path(__file__).parent))
from callback_helpers import Recorder, StopAtStep  # noqa: E402

COLS = dict(text_column="essay", score_column="score", prompt_column="prompt")


def _rows(run: Path, metric: str):
    return [r for r in csv.DictReader((run / "metrics.csv").open()) if r["metric"] == metric]


def test_hooks_are_called_in_order_with_their_state(tmp_path):
    rec = Recorder()
    job = _toy_job(validate=lambda m: {"score": 1.0}, monitor="score")
    r = _fit(_hp(max_epochs=2, keep_checkpoints=True), job, tmp_path / "run", callbacks=[rec])
    kinds = [e[0] for e in rec.events]
    assert kinds == ["train_start"] + (["step_end"] * 4 + ["validation_end", "checkpoint"]) * 2 + ["train_end"]
    steps = [e for e in rec.events if e[0] == "step_end"]
    assert [e[1] for e in steps] == list(range(1, 9)) and all(e[3] > 0 and e[4] == 0.05 for e in steps)
    vals = [e for e in rec.events if e[0] == "validation_end"]
    assert [(e[1], e[2], e[3]) for e in vals] == [(4, 1, {"score": 1.0}), (8, 2, {"score": 1.0})]
    ck = [e[2] for e in rec.events if e[0] == "checkpoint"]
    assert [p.name for p in ck] == ["step-00000004", "step-00000008"] and ck[-1].exists()  # only the newest kept
    assert rec.events[0] == ("train_start", 0, 0, 8) and rec.events[-1] == ("train_end", 8, True)
    assert r.steps == 8 and r.stop_reason is None


def test_a_callback_stops_training_and_a_resume_does_not_restart_it(tmp_path):
    job = _toy_job()
    r = _fit(_hp(max_epochs=3, keep_checkpoints=True), job, tmp_path / "run", callbacks=[StopAtStep(6)])
    assert r.steps == 6 and r.stopped_early and r.stop_reason == "step 6 reached"
    again = _fit(_hp(max_epochs=3), _toy_job(), tmp_path / "run", resume=True)
    assert again.steps == 6  # the stopped run is finished; resuming it trains no further

    class StopAfterValidation(Callback):
        def on_validation_end(self, state):
            state.stop("enough")

    r = _fit(_hp(max_epochs=3), _toy_job(validate=lambda m: {"score": 1.0}, monitor="score"), tmp_path / "b",
             callbacks=[StopAfterValidation()])
    assert r.steps == 4 and r.epochs == 1 and r.stop_reason == "enough"


def test_learning_rate_monitor_logs_every_group(tmp_path):
    lrm = LearningRateMonitor(log_momentum=True)
    job = _toy_job()
    _fit(_hp(max_epochs=2, scheduler="linear", warmup_ratio=0.25), job, tmp_path / "run", callbacks=[lrm])
    lrs = [h["lr-group0"] for h in lrm.history]
    assert len(lrs) == 8 and lrs[1] == pytest.approx(0.05) and lrs[-1] == 0.0 and lrs[0] == pytest.approx(0.025)
    assert [h["lr-group1"] for h in lrm.history] == lrs and all(h["momentum-group0"] == 0.9 for h in lrm.history)
    assert [float(x["value"]) for x in _rows(tmp_path / "run", "lr-group1")] == pytest.approx(lrs)


def test_device_stats_monitor_logs_throughput_and_memory(tmp_path):
    dev = DeviceStatsMonitor(every_n_steps=2)
    _fit(_hp(max_epochs=2), _toy_job(), tmp_path / "run", callbacks=[dev])
    assert [h["step"] for h in dev.history] == [2, 4, 6, 8]
    assert all(h["device/steps_per_s"] > 0 and h["device/examples_per_s"] == pytest.approx(8 * h["device/steps_per_s"])
               for h in dev.history)
    assert all(h["device/peak_rss_mb"] > 10 for h in dev.history)
    assert len(_rows(tmp_path / "run", "device/peak_rss_mb")) == 4


def test_bad_callbacks_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="takes instances"):
        _fit(_hp(), _toy_job(), tmp_path / "a", callbacks=[LearningRateMonitor])
    with pytest.raises(ConfigError, match="none of the hooks"):
        _fit(_hp(), _toy_job(), tmp_path / "a", callbacks=[object()])


# ------------------------------------------------------------------------------- monitor / mode of the user's choice
SCRIPT = {"qwk_avg": [0.2, 0.6, 0.4, 0.3], "rmse": [1.0, 0.9, 0.5, 0.7]}  # best QWK: epoch 2, best RMSE: epoch 3


@pytest.fixture(scope="module")
def rmse_run(tmp_path_factory, tiny_encoder, essays):
    """An EssayScorer told to follow validation RMSE (lower is better) instead of its QWK, with a
    ModelCheckpoint on the same metric and snapshots of the weights at every validation. The
    validation metrics are scripted so that the two metrics disagree on the best epoch."""
    run = tmp_path_factory.mktemp("rmse") / "run"
    snaps = []

    class Snap(Callback):
        def on_validation_end(self, state):
            snaps.append({k: v.detach().clone() for k, v in state.model.state_dict().items()})

    best = ModelCheckpoint(monitor="val_rmse")
    reset_accelerate()
    s = EssayScorer(backbone=str(tiny_encoder), max_epochs=4, patience=None, **TINY)
    s._metrics = lambda *a, **k: {m: v[len(snaps)] for m, v in SCRIPT.items()}
    s.finetune(essays.iloc[:96], val=essays.iloc[96:128], run_dir=run, progress=False, monitor="rmse", mode="min",
               callbacks=[best, Snap()], **COLS)
    reset_accelerate()
    return s, run, snaps, best


def test_user_chosen_monitor_and_mode_pick_the_returned_weights(rmse_run):
    s, _, snaps, _ = rmse_run
    r = s.last_train_report
    assert [h["rmse"] for h in r.history] == SCRIPT["rmse"]
    assert r.monitor == "rmse" and r.best_metric == 0.5
    final = s.model.state_dict()
    assert all(torch.equal(final[k], snaps[2][k]) for k in final)  # epoch 3, not QWK's epoch 2
    assert not all(torch.equal(final[k], snaps[1][k]) for k in final)
    assert s.card.procedure["best validation rmse"] == 0.5
    assert s.hparams.monitor == "rmse" and s.hparams.mode == "min"


def test_model_checkpoint_keeps_the_best_weights_on_disk(rmse_run):
    from safetensors.torch import load_file

    s, run, snaps, best = rmse_run
    assert best.monitor == "rmse" and best.mode == "min"  # mode follows the run's for the same metric
    assert best.best_value == 0.5 and best.best_epoch == 3
    info = json.loads((run / "best" / "best.json").read_text())
    assert info["value"] == 0.5 and info["step"] == best.best_step == 3 * 6 and info["metrics"]["qwk_avg"] == 0.4
    weights = load_file(str(run / "best" / "model.safetensors"))
    assert all(torch.equal(weights[k], snaps[2][k]) for k in weights)


def test_model_checkpoint_on_another_metric_and_mode(tmp_path):
    values = iter([0.3, 0.1, 0.2])
    job = _toy_job(validate=lambda m: {"score": 1.0, "loss": next(values)}, monitor="score")
    cb = ModelCheckpoint(monitor="loss", dirpath=str(tmp_path / "best"))
    _fit(_hp(max_epochs=3, patience=None), job, tmp_path / "run", callbacks=[cb])
    assert cb.mode == "min" and cb.best_value == 0.1 and cb.best_epoch == 2  # a loss: lower is better
    assert json.loads((tmp_path / "best" / "best.json").read_text())["step"] == 8


def test_unknown_monitor_and_monitor_without_validation_are_config_errors(tiny_encoder, essays, tmp_path):
    from edu_flash.essay.sample import SCORE_RANGES

    s = EssayScorer(backbone=str(tiny_encoder), max_steps=2, **TINY)
    with pytest.raises(ConfigError, match=r"monitor='kappa' is not a validation metric.*qwk_avg"):
        s.finetune(essays.iloc[:32], val=essays.iloc[32:48], monitor="kappa", run_dir=tmp_path / "a",
                   score_ranges=SCORE_RANGES, **COLS)
    with pytest.raises(ConfigError, match="needs validation data"):
        s.finetune(essays.iloc[:32], monitor="rmse", run_dir=tmp_path / "b", **COLS)
    with pytest.raises(ConfigError, match="mode"):
        EssayScorer(backbone=str(tiny_encoder), mode="lowest")


# ------------------------------------------------------------------------------- devices=2
def test_callbacks_and_loggers_under_two_processes(tmp_path):
    """Callbacks are rebuilt in each worker from JSON and stop every rank together; only rank 0 logs."""
    from dist_helpers import HP, tiny_encoder

    from edu_flash.essay.sample import sample_essays

    df = sample_essays(64, seed=2)
    enc = tiny_encoder(tmp_path / "enc", df.essay)
    s = EssayScorer(backbone=str(enc), **{**HP, "max_epochs": 2})
    s.finetune(df, devices=2, run_dir=tmp_path / "run", progress=False, loggers=["csv"],
               callbacks=[StopAtStep(3, out_dir=str(tmp_path / "seen"))], **COLS)
    seen = [json.loads((tmp_path / "seen" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [(x["rank"], x["world"], x["step"]) for x in seen] == [(0, 2, 3), (1, 2, 3)]
    assert s.last_train_report.steps == 3 and s.last_train_report.stop_reason == "step 3 reached"
    assert [int(x["step"]) for x in _rows(tmp_path / "run", "train_loss")] == [1, 2, 3]  # one writer


def test_callbacks_that_workers_cannot_import_are_refused_before_spawning(tiny_encoder, essays, tmp_path):
    class Local(Callback):
        def on_step_end(self, state):
            pass

    s = EssayScorer(backbone=str(tiny_encoder), **TINY)
    with pytest.raises(ConfigError, match="cannot import it"):
        s.finetune(essays.iloc[:32], devices=2, callbacks=[Local()], run_dir=tmp_path / "run", **COLS)
    with pytest.raises(ConfigError, match="not JSON"):
        s.finetune(essays.iloc[:32], devices=2, callbacks=[StopAtStep(object())], run_dir=tmp_path / "run", **COLS)
    assert not (tmp_path / "run").exists()

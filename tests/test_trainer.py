"""Issue 2, item 7: the shared trainer: gradient accumulation, early stopping, logs, bf16 (exact resume: test_trainer_resume.py)."""
from __future__ import annotations

import csv
import math

import pytest
import torch

from edu_flash.essay.sample import SCORE_RANGES
from torch import nn

from edu_flash import ConfigError, EssayScorer
from edu_flash.core import checkpoint
from edu_flash.core.trainer import Trainer, batch_plan

from conftest import reset_accelerate
from trainer_helpers import _fit, _hp, _same_weights, _toy_job


# ------------------------------------------------------------------------------------------- accumulation
@pytest.mark.parametrize("clip", [None, 0.05])
def test_grad_accumulation_equals_the_larger_batch(tmp_path, clip):
    """2 micro-batches of 4 with grad_accum=2 take the same optimizer steps as batches of 8 (clipping is
    applied to the accumulated gradient, once per step)."""
    big = _toy_job()
    r1 = _fit(_hp(batch_size=8, grad_accum=1, clip_norm=clip, max_epochs=2), big, tmp_path / "a")
    acc = _toy_job()
    r2 = _fit(_hp(batch_size=4, grad_accum=2, clip_norm=clip, max_epochs=2), acc, tmp_path / "b")
    assert r1.steps == r2.steps == 8
    for (k, a), b in zip(big.model.state_dict().items(), acc.model.state_dict().values()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5, msg=k)
    # and it is not trivially equal to plain batches of 4 (which take twice the steps)
    plain = _toy_job()
    r3 = _fit(_hp(batch_size=4, grad_accum=1, clip_norm=clip, max_epochs=2), plain, tmp_path / "c")
    assert r3.steps == 16 and _same_weights(plain.model, big.model)


def test_gradients_are_clipped_once_per_optimizer_step(tmp_path, monkeypatch):
    from accelerate import Accelerator

    calls, real = [], Accelerator.clip_grad_norm_

    def spy(self, parameters, max_norm, *a, **k):
        parameters = list(parameters)
        norm = real(self, parameters, max_norm, *a, **k)
        after = torch.norm(torch.stack([p.grad.norm() for p in parameters if p.grad is not None]))
        calls.append((max_norm, float(norm), float(after)))
        return norm

    monkeypatch.setattr(Accelerator, "clip_grad_norm_", spy)
    r = _fit(_hp(batch_size=4, grad_accum=2, clip_norm=0.05, max_epochs=1), _toy_job(), tmp_path / "run")
    assert len(calls) == r.steps == 4
    assert all(m == 0.05 and before > 0.05 and after == pytest.approx(0.05, rel=1e-3) for m, before, after in calls)
    calls.clear()
    _fit(_hp(batch_size=4, clip_norm=None, max_epochs=1), _toy_job(), tmp_path / "run2")
    assert calls == []


def test_grad_accumulation_step_count_with_a_partial_last_group(tmp_path):
    job = _toy_job(n=36)  # 9 micro-batches of 4 -> 5 optimizer steps per epoch
    r = _fit(_hp(batch_size=4, grad_accum=2, max_epochs=2), job, tmp_path / "run")
    assert r.steps == 10 and r.epochs == 2


def test_batch_plan_is_deterministic_and_covers_every_example():
    lengths = [(i * 37) % 50 + 1 for i in range(103)]
    a = batch_plan(103, 8, seed=1, epoch=0, lengths=lengths)
    assert a == batch_plan(103, 8, seed=1, epoch=0, lengths=lengths)
    assert a != batch_plan(103, 8, seed=1, epoch=1, lengths=lengths)
    assert sorted(i for b in a for i in b) == list(range(103))
    # grouped by length: inside a batch the lengths are close (sorted within mega-batches)
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in a) / len(a)
    rand = batch_plan(103, 8, seed=1, epoch=0, lengths=None)
    spread_rand = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in rand) / len(rand)
    assert spread < spread_rand / 3


# ------------------------------------------------------------------------------------------- early stopping
@pytest.mark.parametrize("mode, values, best_epoch", [
    ("max", [0.5, 0.7, 0.6, 0.4, 0.9, 0.95], 2),
    ("min", [0.5, 0.3, 0.4, 0.35, 0.1, 0.05], 2),
])
def test_early_stopping_stops_and_restores_the_best(tmp_path, mode, values, best_epoch):
    snaps = []

    def validate(model):
        snaps.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        return {"score": values[len(snaps) - 1], "other": 1.0}

    job = _toy_job(validate=validate, monitor="score", mode=mode)
    r = _fit(_hp(max_epochs=6, patience=2), job, tmp_path / "run")
    assert r.stopped_early and r.epochs == 4 and len(snaps) == 4
    assert r.best_metric == values[best_epoch - 1]
    final = job.model.state_dict()
    assert all(torch.equal(final[k], snaps[best_epoch - 1][k]) for k in final)
    assert not all(torch.equal(final[k], snaps[-1][k]) for k in final)
    assert [h["score"] for h in r.history] == values[:4]


def test_no_patience_runs_every_epoch(tmp_path):
    calls = []
    job = _toy_job(validate=lambda m: calls.append(1) or {"score": -len(calls)}, monitor="score")
    r = _fit(_hp(max_epochs=4, patience=None), job, tmp_path / "run")
    assert not r.stopped_early and r.epochs == 4 and len(calls) == 4


def test_essay_scorer_early_stopping_restores_best(essays, tiny_encoder, tmp_path):
    s = EssayScorer(backbone=str(tiny_encoder), max_length=32, batch_size=16, max_epochs=6, patience=1,
                    lr=1e-3, precision="32")
    script, snaps = [0.2, 0.5, 0.1, 0.9], []

    def scripted(human, machine, prompts, groups=None, **kw):  # kw: the grids validation is scored on
        snaps.append({k: v.detach().clone() for k, v in s.model.state_dict().items()})
        return {"qwk_avg": script[len(snaps) - 1], "qwk": 0.0}

    s._metrics = scripted
    s.finetune(essays.iloc[:48], val=essays.iloc[200:216], text_column="essay", prompt_column="prompt",
               score_ranges=SCORE_RANGES, run_dir=tmp_path / "run", progress=False)
    r = s.last_train_report
    assert r.stopped_early and r.epochs == 3 and r.best_metric == 0.5 and r.monitor == "qwk_avg"
    final = s.model.state_dict()
    assert all(torch.equal(final[k], snaps[1][k]) for k in final)
    assert s.card.procedure["stopped early"] is True
    assert s.card.procedure["best validation qwk_avg"] == 0.5


# ------------------------------------------------------------------------------------------- logs, precision
def test_metrics_csv_is_written(trained):
    path = trained.run_dir / "metrics.csv"
    rows = list(csv.DictReader(path.open()))
    assert rows and set(rows[0]) == {"step", "epoch", "metric", "value"}
    r = trained.scorer.last_train_report
    losses = [r_ for r_ in rows if r_["metric"] == "train_loss"]
    assert [int(x["step"]) for x in losses] == list(range(1, r.steps + 1))
    assert all(math.isfinite(float(x["value"])) for x in losses)
    assert any(x["metric"] == "lr" for x in rows)
    # AdamW on a linear warmup/decay schedule: rises to hp.lr, ends at 0
    lrs = [float(x["value"]) for x in rows if x["metric"] == "lr"]
    peak = lrs.index(max(lrs))
    assert max(lrs) == pytest.approx(trained.scorer.hparams.lr) and 0 < peak < len(lrs) - 1
    assert lrs[:peak + 1] == sorted(lrs[:peak + 1]) and lrs[peak:] == sorted(lrs[peak:], reverse=True)
    assert lrs[-1] == 0.0
    val = [x for x in rows if x["metric"] == "val_qwk_avg"]
    assert len(val) == r.epochs == 2
    assert [float(x["value"]) for x in val] == pytest.approx([h["qwk_avg"] for h in r.history])


def test_progress_bar(tmp_path, capfd):
    reset_accelerate()
    Trainer(_hp(max_epochs=1), run_dir=tmp_path / "run", progress=True).fit(_toy_job())
    err = capfd.readouterr().err
    assert "train" in err and "4/4" in err


def test_bf16_mixed_trains(essays, tiny_encoder, tmp_path, monkeypatch):
    monkeypatch.setenv("EDU_FLASH_NATIVE_BF16", "1")   # bf16 itself, even on a CPU that would fall back
    s = EssayScorer(backbone=str(tiny_encoder), max_length=48, batch_size=8, max_steps=4, lr=1e-3,
                    precision="bf16-mixed")
    reset_accelerate()
    s.finetune(essays.iloc[:48], text_column="essay", prompt_column="prompt", run_dir=tmp_path / "run",
               progress=False)
    r = s.last_train_report
    assert r.precision == "bf16-mixed" and r.steps == 4 and math.isfinite(r.final_train_loss)
    assert all(p.dtype == torch.float32 for p in s.model.parameters())  # master weights stay fp32
    from edu_flash.essay.model import build_pretrained

    init, _ = build_pretrained(str(tiny_encoder), dropout=0.1, attention_dropout=0.0, pooling="mean")
    assert _same_weights(init, s.model)  # it learned something
    preds = s.predict(essays.iloc[200:216], rounded=False)
    assert all(math.isfinite(v) for v in preds)
    # the returned model is plain fp32 (no autocast wrapper left on forward): save/load reproduces it
    loaded = EssayScorer.from_pretrained(s.save_pretrained(tmp_path / "m"))
    assert loaded.predict(essays.iloc[200:216], rounded=False) == preds


@pytest.mark.skipif(torch.cuda.is_available(), reason="CPU-only check")
def test_fp16_on_cpu_is_a_config_error_before_training(essays, tiny_encoder, tmp_path):
    s = EssayScorer(backbone=str(tiny_encoder), max_length=32, max_steps=1, precision="16-mixed")
    with pytest.raises(ConfigError, match="bf16-mixed"):
        s.finetune(essays.iloc[:16], text_column="essay", prompt_column="prompt", run_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_failed_finetune_leaves_scorer_untrained(essays, tiny_encoder, tmp_path):
    from edu_flash import NotFittedError

    s = EssayScorer(backbone=str(tiny_encoder), max_length=32, max_steps=1, precision="16-mixed")
    with pytest.raises(ConfigError):
        s.finetune(essays.iloc[:16], text_column="essay", prompt_column="prompt", run_dir=tmp_path / "run")
    with pytest.raises(NotFittedError):
        s.predict("An essay.", prompt="1")


def test_two_finetunes_with_different_precision_in_one_process(essays, tiny_encoder, tmp_path, monkeypatch):
    monkeypatch.setenv("EDU_FLASH_NATIVE_BF16", "1")
    data = essays.iloc[:32]
    kw = dict(backbone=str(tiny_encoder), max_length=32, batch_size=16, max_steps=1)
    reset_accelerate()
    EssayScorer(precision="bf16-mixed", **kw).finetune(data, text_column="essay", prompt_column="prompt",
                                                       run_dir=tmp_path / "a", progress=False)
    # no reset here: this is what a user's notebook does
    s = EssayScorer(precision="32", **kw).finetune(data, text_column="essay", prompt_column="prompt",
                                                   run_dir=tmp_path / "b", progress=False)
    assert s.last_train_report.precision == "32"


# ------------------------------------------------------------------------------------------- job-owned state
def _ema_job():
    """A toy job that keeps an exponential moving average of its weights, as diffusion tasks do."""
    job = _toy_job(n=40)
    ema = {k: v.detach().clone() for k, v in job.model.state_dict().items()}
    calls = []

    def after_step(model):
        calls.append(1)
        for k, v in model.state_dict().items():
            ema[k].mul_(0.9).add_(v.detach(), alpha=0.1)

    job.after_step = after_step
    job.state_tensors = lambda: {f"ema.{k}": v for k, v in ema.items()}
    job.load_state_tensors = lambda d: [ema[k[4:]].copy_(v) for k, v in d.items()]
    return job, ema, calls


def test_after_step_runs_once_per_optimizer_step_and_its_state_resumes_exactly(tmp_path):
    job, ema_full, calls = _ema_job()
    report = _fit(_hp(max_epochs=3, grad_accum=2), job, tmp_path / "full")
    assert len(calls) == report.steps == 9  # 5 batches of 8 -> 3 optimizer steps an epoch with accumulation 2

    job1, _, _ = _ema_job()
    _fit(_hp(max_epochs=3, grad_accum=2, max_steps=4, checkpoint_every=1, keep_checkpoints=True), job1,
         tmp_path / "part")
    job2, ema_resumed, calls2 = _ema_job()
    _fit(_hp(max_epochs=3, grad_accum=2, checkpoint_every=1), job2, tmp_path / "part", resume=True)
    assert len(calls2) == 5
    assert all(torch.equal(ema_full[k], ema_resumed[k]) for k in ema_full)
    assert _same_weights(job.model, job2.model) == []


def test_checkpoint_of_a_model_with_tied_weights(tmp_path):
    """GPT-2-style tied embeddings share memory; the checkpoint must still save and resume."""
    job = _toy_job(n=16)
    tied = nn.Sequential(nn.Linear(4, 4, bias=False), nn.Linear(4, 4, bias=False), nn.Linear(4, 1))
    tied[1].weight = tied[0].weight
    job.model = tied
    _fit(_hp(max_epochs=1, keep_checkpoints=True), job, tmp_path / "run")
    ck = checkpoint.latest(tmp_path / "run")
    assert ck is not None and (ck / "model.safetensors").exists()


def test_progress_default_without_a_stderr(tmp_path, monkeypatch):
    """pythonw and some services run with sys.stderr None: the default progress setting is off, no crash."""
    import sys

    monkeypatch.setattr(sys, "stderr", None)
    assert Trainer(_hp(), run_dir=tmp_path / "run").progress is False

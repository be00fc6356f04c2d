"""Exact resume: after a crash, after max_steps, with another CPU thread count; broken checkpoints."""
from __future__ import annotations

import shutil

import pytest
import torch

from edu_flash import EssayScorer
from edu_flash.core import checkpoint

from conftest import has_pickle, reset_accelerate
from trainer_helpers import _fit, _hp, _same_weights, _toy_job


# ------------------------------------------------------------------------------------------- exact resume
def _resume_scorer(enc, **kw):
    return EssayScorer(backbone=str(enc), max_length=48, batch_size=8, max_epochs=2, lr=1e-3, precision="32",
                       checkpoint_every=3, dropout=0.2, **kw)


class _Crash(Exception):
    pass


def test_exact_resume_after_a_crash(essays, tiny_encoder, tmp_path, monkeypatch):
    """Crash mid-epoch 2 (linear warmup/decay schedule, dropout on); resume=True in a fresh scorer must end
    bit-identical to the uninterrupted run: model, optimizer, scheduler, RNG and data position restored."""
    import edu_flash.essay.model as M

    train, val = essays.iloc[:64], essays.iloc[200:224]
    cols = dict(text_column="essay", prompt_column="prompt", progress=False)
    full = _resume_scorer(tiny_encoder).finetune(train, val=val, run_dir=tmp_path / "full", **cols)
    assert full.last_train_report.steps == 16

    real, calls = M.collate, []

    def crashing(examples, pad):
        if "target" in examples[0]:
            calls.append(1)
            if len(calls) == 12:  # 11 steps done; checkpoints at 3, 6, 8 (epoch end), 9
                raise _Crash()
        return real(examples, pad)

    monkeypatch.setattr(M, "collate", crashing)
    reset_accelerate()
    with pytest.raises(_Crash):
        _resume_scorer(tiny_encoder).finetune(train, val=val, run_dir=tmp_path / "run", **cols)
    monkeypatch.setattr(M, "collate", real)
    last = checkpoint.latest(tmp_path / "run")
    assert last is not None and last.name == "step-00000009"
    # only the newest checkpoint is kept: all an exact resume needs
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == ["step-00000009"]
    assert has_pickle(tmp_path / "run") == []

    reset_accelerate()
    resumed = _resume_scorer(tiny_encoder).finetune(train, val=val, run_dir=tmp_path / "run", resume=True, **cols)
    r = resumed.last_train_report
    assert r.resumed_from and r.resumed_from.endswith("step-00000009")
    assert r.steps == 16 and r.epochs == 2
    assert r.history == full.last_train_report.history
    assert _same_weights(full.model, resumed.model) == []
    assert resumed.predict(val, rounded=False) == full.predict(val, rounded=False)


def test_exact_resume_after_max_steps(essays, tiny_encoder, tmp_path):
    """Stop with max_steps partway (constant schedule, so the stop does not change the learning rates),
    then finish the run with resume=True in a new scorer."""
    train = essays.iloc[:64]
    kw = dict(scheduler="constant", warmup_ratio=0.0)
    cols = dict(text_column="essay", prompt_column="prompt", progress=False)
    full = _resume_scorer(tiny_encoder, **kw).finetune(train, run_dir=tmp_path / "full", **cols)
    reset_accelerate()
    part = _resume_scorer(tiny_encoder, max_steps=5, keep_checkpoints=True, **kw).finetune(train, run_dir=tmp_path / "run", **cols)
    assert part.last_train_report.steps == 5
    assert _same_weights(full.model, part.model)  # really stopped early
    reset_accelerate()
    rest = _resume_scorer(tiny_encoder, **kw).finetune(train, run_dir=tmp_path / "run", resume=True, **cols)
    assert rest.last_train_report.resumed_from.endswith("step-00000005")
    assert rest.last_train_report.steps == 16
    assert _same_weights(full.model, rest.model) == []


@pytest.fixture
def two_torch_threads(monkeypatch):
    """The automatic thread choice (no OMP_NUM_THREADS / EDU_FLASH_THREADS) starting from torch's 2."""
    from edu_flash.core import threads

    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", threads.ENV):
        monkeypatch.delenv(k, raising=False)
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    yield threads
    torch.set_num_threads(old)


def test_exact_resume_keeps_the_checkpoints_thread_count(essays, tiny_encoder, tmp_path, monkeypatch,
                                                         two_torch_threads):
    """On CPU the thread count changes the weights' last bits. A run started on 2 free cores and resumed
    when only 1 is free (the automatic choice would now pick 1) trains on with the checkpoint's 2 threads
    and ends bit-identical to the uninterrupted run; a count the user sets is kept, with a warning."""
    train = essays.iloc[:32]
    kw = dict(scheduler="constant", warmup_ratio=0.0)
    cols = dict(text_column="essay", prompt_column="prompt", progress=False)
    monkeypatch.setattr(two_torch_threads, "free_cores", lambda: 2)
    full = _resume_scorer(tiny_encoder, **kw).finetune(train, run_dir=tmp_path / "full", **cols)
    assert full.card.procedure["CPU threads"] == 2
    reset_accelerate()
    _resume_scorer(tiny_encoder, max_steps=3, keep_checkpoints=True, **kw).finetune(train, run_dir=tmp_path / "run", **cols)
    shutil.copytree(tmp_path / "run", tmp_path / "run-b")
    monkeypatch.setattr(two_torch_threads, "free_cores", lambda: 1)  # the machine got busy
    reset_accelerate()
    one = _resume_scorer(tiny_encoder, **kw).finetune(train, run_dir=tmp_path / "one", threads=1, **cols)
    assert _same_weights(full.model, one.model), "1 and 2 threads give the same weights: this test cannot fail"
    reset_accelerate()
    rest = _resume_scorer(tiny_encoder, **kw).finetune(train, run_dir=tmp_path / "run", resume=True, **cols)
    assert rest.last_train_report.resumed_from.endswith("step-00000003")
    assert rest.card.procedure["CPU threads"].startswith("2 (the checkpoint's")
    assert torch.get_num_threads() == 2  # restored after training
    assert _same_weights(full.model, rest.model) == []
    reset_accelerate()
    with pytest.warns(UserWarning, match="trained with 2 CPU threads and this run uses 1"):
        _resume_scorer(tiny_encoder, **kw).finetune(train, run_dir=tmp_path / "run-b", resume=True, threads=1, **cols)


def test_resume_without_a_checkpoint_starts_fresh(tmp_path):
    a, b = _toy_job(), _toy_job()
    _fit(_hp(max_epochs=2), a, tmp_path / "a")
    r = _fit(_hp(max_epochs=2), b, tmp_path / "b", resume=True)
    assert r.resumed_from is None and _same_weights(a.model, b.model) == []


def test_corrupt_checkpoint_is_a_checkpoint_error(tmp_path):
    from edu_flash import CheckpointError

    _fit(_hp(max_epochs=1, checkpoint_every=1, keep_checkpoints=True), _toy_job(), tmp_path / "run")
    last = checkpoint.latest(tmp_path / "run")
    (last / "optimizer.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match=last.name):
        _fit(_hp(max_epochs=2, checkpoint_every=1), _toy_job(), tmp_path / "run", resume=True)

"""Fault tolerance: a training process killed with SIGKILL mid-epoch resumes (resume=True) to
exactly the weights of an uninterrupted run, and a worker that dies in a multi-process run makes
the caller raise DistributedError promptly, leaving no half-written model folder behind.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from dist_helpers import COLS, DIE_ENV, HP, ProbeScorer, tiny_encoder  # noqa: E402

from edu_flash import DistributedError  # noqa: E402
from edu_flash.essay.task import EssayScorer  # noqa: E402

# Dropout on, so exact resume also needs every RNG state restored; 64 essays / 8 = 8 steps an epoch.
RESUME_HP = {**HP, "max_epochs": 2, "dropout": 0.1, "checkpoint_every": 3}
KILL_AT = 11  # loss call 11 = epoch 2, batch 3; the newest checkpoint then is step 9, mid-epoch 2

_KILLED_SCRIPT = """
import os, signal, sys
import pandas as pd
from edu_flash.essay.task import EssayScorer
data, enc, run, kill_at = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
hp = {hp!r}
original = EssayScorer._train_job
def train_job(self, prep):
    job = original(self, prep)
    inner, calls = job.loss, [0]
    def loss(model, batch):
        calls[0] += 1
        if calls[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return inner(model, batch)
    job.loss = loss
    return job
EssayScorer._train_job = train_job
EssayScorer(backbone=enc, **hp).finetune(pd.read_json(data, lines=True, dtype=False), run_dir=run,
                                         progress=False, **{cols!r})
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from edu_flash.essay.sample import sample_essays

    root = tmp_path_factory.mktemp("ft")
    df = sample_essays(64, seed=2)
    return df, tiny_encoder(root / "enc", df.essay)


def test_sigkill_mid_epoch_then_resume_gives_the_uninterrupted_weights(setup, tmp_path):
    df, enc = setup
    data = tmp_path / "essays.jsonl"
    df.to_json(data, orient="records", lines=True)
    script = tmp_path / "train.py"
    script.write_text(_KILLED_SCRIPT.format(hp=RESUME_HP, cols=COLS))
    run = tmp_path / "run"
    r = subprocess.run([sys.executable, str(script), str(data), str(enc), str(run), str(KILL_AT)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == -signal.SIGKILL, r.stderr[-2000:]
    steps = sorted(p.name for p in (run / "checkpoints").iterdir() if p.name.startswith("step-"))
    assert steps[-1] == "step-00000009"  # mid-epoch 2: resume must restart inside an epoch

    import pandas as pd

    data_df = pd.read_json(data, lines=True, dtype=False)
    resumed = EssayScorer(backbone=str(enc), **RESUME_HP)
    resumed.finetune(data_df, run_dir=run, resume=True, progress=False, **COLS)
    assert resumed.last_train_report.resumed_from.endswith("step-00000009")
    straight = EssayScorer(backbone=str(enc), **RESUME_HP)
    straight.finetune(data_df, run_dir=tmp_path / "straight", progress=False, **COLS)
    assert resumed.last_train_report.steps == straight.last_train_report.steps == 16
    a, b = resumed.model.state_dict(), straight.model.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed weights differ from the uninterrupted run"


def test_a_dying_worker_raises_distributed_error_without_hanging(setup, tmp_path, monkeypatch):
    df, enc = setup
    monkeypatch.setenv(DIE_ENV, "1:2")  # rank 1 calls os._exit(13) at its second step
    s = ProbeScorer(backbone=str(enc), **HP)
    t0 = time.monotonic()
    with pytest.raises(DistributedError, match="rank 1"):
        s.finetune(df, devices=2, run_dir=tmp_path / "run", progress=False, **COLS)
    assert time.monotonic() - t0 < 60
    assert s.model is None  # the caller did not get a half-trained model
    run = tmp_path / "run"
    leftovers = [p.name for p in run.iterdir() if p.name not in ("checkpoints", "metrics.csv", "tensorboard", ".lock")]
    assert leftovers == [], leftovers  # no hand-over folder, no half-written model folder
    ckpts = run / "checkpoints"
    assert not ckpts.exists() or all((p / "trainer_state.json").exists() for p in ckpts.iterdir()
                                     if not p.name.startswith("."))
    # no worker is left behind
    import psutil

    kids = [c for c in psutil.Process(os.getpid()).children(recursive=True) if c.is_running()
            and c.status() != psutil.STATUS_ZOMBIE and "edu_flash.core.worker" in " ".join(c.cmdline())]
    assert kids == []

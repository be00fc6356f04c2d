"""Issue 15, item 7: `finetune(profile=True)`: a torch.profiler trace of a few steps and a summary of
where step time goes (data/collation, forward, backward, optimizer) and steps per second."""
from __future__ import annotations

import json
import time

import pytest

from edu_flash import ConfigError, PathRecommender

from conftest import reset_accelerate
from test_trainer import _fit, _hp, _toy_job


def test_profile_writes_a_trace_and_a_summary(tmp_path):
    data = PathRecommender.builtin_data(seed=0)
    kt = PathRecommender("dkt", **{**data.hparams, "max_epochs": 2})
    reset_accelerate()
    kt.finetune(data.train, data.val, run_dir=tmp_path / "run", progress=False, profile=True)
    r = kt.last_train_report
    prof = tmp_path / "run" / "profile"
    summary = json.loads((prof / "summary.json").read_text())
    assert summary["share"] == pytest.approx(r.profile["share"]) and summary["steps_per_s"] == r.profile["steps_per_s"]
    assert summary["steps"] == r.steps and summary["steps_per_s"] > 0
    assert set(summary["share"]) == {"data", "forward", "backward", "optimizer", "other"}
    assert sum(summary["share"].values()) == pytest.approx(1.0)
    assert summary["share"]["forward"] > 0.05 and summary["share"]["backward"] > 0.05
    assert summary["seconds"]["validation"] > 0  # timed apart, not step time
    [trace] = prof.glob("rank0.*.pt.trace.json")
    events = json.loads(trace.read_text())["traceEvents"]
    names = {e.get("name") for e in events}
    assert {"edu_flash/data", "edu_flash/forward", "edu_flash/backward", "edu_flash/optimizer"} <= names
    assert sum(e.get("name") == "edu_flash/forward" for e in events) == 3  # the 3 active steps of the schedule
    md = (prof / "summary.md").read_text()
    assert "steps/s" in md and "| forward |" in md and "aten::" in md


def test_a_slow_collate_shows_up_as_the_data_share(tmp_path):
    job = _toy_job()
    inner = job.collate

    def slow_collate(examples):
        time.sleep(0.02)
        return inner(examples)

    job.collate = slow_collate
    r = _fit(_hp(max_epochs=2), job, tmp_path / "run", profile={"wait": 0, "warmup": 1, "active": 2})
    assert r.profile["share"]["data"] > 0.6
    assert r.profile["seconds"]["data"] == pytest.approx(8 * 0.02, rel=0.5)
    assert "data pipeline" in (tmp_path / "run" / "profile" / "summary.md").read_text()


def test_no_profile_no_folder_and_bad_settings(tmp_path):
    r = _fit(_hp(), _toy_job(), tmp_path / "run")
    assert r.profile is None and not (tmp_path / "run" / "profile").exists()
    with pytest.raises(ConfigError, match="wait, warmup, active"):
        _fit(_hp(), _toy_job(), tmp_path / "run", profile={"steps": 3})
    with pytest.raises(ConfigError, match="profile must be"):
        _fit(_hp(), _toy_job(), tmp_path / "run", profile="yes")

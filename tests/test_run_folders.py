"""Issue 17, "Nothing left behind, nothing lost", and issue 16's run-folder size: runs started without
run_dir get their own runs/<task>/version_N, resume=True finds the newest one with a checkpoint, a
second run on a folder in use is refused, a resumed metrics.csv has no repeated steps, what a killed
checkpoint write left is cleaned, checkpoints hold only what resume needs and are deleted when a
run ends normally (unless keep_checkpoints=True), and the run folder is printed.
"""
from __future__ import annotations

import csv
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from edu_flash import ConfigError, PathRecommender
from edu_flash.core import checkpoint

from conftest import reset_accelerate

ROOT = Path("runs") / "path_recommendation"
# 21 training students / batch 4 = 6 steps an epoch; a checkpoint after every step
HP = dict(d_model=16, precision="32", max_epochs=2, batch_size=4, checkpoint_every=1)

_KILL = r"""
import os, signal, sys
import safetensors.torch
import edu_flash.core.trainer as T
from edu_flash import PathRecommender
import json
where, at, run_dir, resume, hp = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4] == "1", json.loads(sys.argv[5])
calls = [0]
die = lambda: os.kill(os.getpid(), signal.SIGKILL)
if where == "step":  # killed while training, after `at` batches
    real, inside = T._to_device, [False]
    def to_device(batch, device):  # recursive: count the outer call only, one per batch
        if inside[0]:
            return real(batch, device)
        calls[0] += 1
        if calls[0] == at:
            die()
        inside[0] = True
        try:
            return real(batch, device)
        finally:
            inside[0] = False
    T._to_device = to_device
else:  # killed while writing checkpoint number `at`, its weights half-written
    real = safetensors.torch.save_file
    def save_file(tensors, filename, *a, **k):
        if ".step-" in filename and filename.endswith("optimizer.safetensors"):
            calls[0] += 1
            if calls[0] == at:
                die()
        return real(tensors, filename, *a, **k)
    safetensors.torch.save_file = save_file
s = PathRecommender.builtin_data(30, seed=0)
PathRecommender("dkt", **hp).finetune(s.train, s.val, progress=False, resume=resume,
                                          run_dir=None if run_dir == "-" else run_dir)
"""


@pytest.fixture(scope="module")
def data():
    return PathRecommender.builtin_data(30, seed=0)


def _run(data, **kw):
    reset_accelerate()
    m = PathRecommender("dkt", **{**HP, **kw.pop("hp", {})})
    m.finetune(data.train, data.val, progress=kw.pop("progress", False), **kw)
    return m.last_train_report


def _killed(tmp_path, where: str, at: int, run_dir="-", resume=False, **hp) -> None:
    import json

    script = tmp_path / "kill.py"
    script.write_text(_KILL)
    r = subprocess.run([sys.executable, str(script), where, str(at), str(run_dir), "1" if resume else "0",
                        json.dumps({**HP, **hp})],
                       capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == -signal.SIGKILL, r.stderr[-2000:]


def _rows(run_dir) -> list[dict]:
    with open(Path(run_dir) / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_runs_without_run_dir_get_their_own_version_folders(data):
    a, b = _run(data), _run(data)
    assert (a.run_dir, b.run_dir) == (str(ROOT / "version_0"), str(ROOT / "version_1"))
    for r in (a, b):  # each log holds its own run's steps, once each
        steps = [int(x["step"]) for x in _rows(r.run_dir) if x["metric"] == "train_loss"]
        assert steps == list(range(1, r.steps + 1))


def test_resume_without_run_dir_continues_the_newest_run_with_a_checkpoint(data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _killed(tmp_path, "step", 9)          # version_0: killed in epoch 2, last checkpoint at step 8
    _run(data)                            # version_1: ended normally, so it has no checkpoint left
    assert checkpoint.latest(ROOT / "version_0").name == "step-00000008"
    assert checkpoint.latest(ROOT / "version_1") is None
    r = _run(data, resume=True)
    assert r.run_dir == str(ROOT / "version_0") and r.resumed_from.endswith("step-00000008")
    assert r.steps == 12
    assert sorted(p.name for p in ROOT.iterdir()) == ["version_0", "version_1"]  # no new version


def test_resumed_metrics_log_has_every_step_once(data, tmp_path):
    """The killed run logged steps 9 and 10... after its last checkpoint (step 8); they are trained
    again after the resume and must not appear twice."""
    run = tmp_path / "run"
    _killed(tmp_path, "step", 11, run, checkpoint_every=4)  # checkpoints at 4, 6 (epoch end), 8
    before = [int(x["step"]) for x in _rows(run) if x["metric"] == "train_loss"]
    assert max(before) == 10  # steps 9 and 10 were logged after the last checkpoint
    assert _run(data, run_dir=run, resume=True, hp=dict(checkpoint_every=4)).resumed_from.endswith("step-00000008")
    straight = _run(data, run_dir=tmp_path / "straight", hp=dict(checkpoint_every=4))
    rows = _rows(run)
    assert not [k for k, n in Counter((x["step"], x["metric"]) for x in rows).items() if n > 1]
    key = [(x["step"], x["epoch"], x["metric"]) for x in rows]
    assert key == [(x["step"], x["epoch"], x["metric"]) for x in _rows(straight.run_dir)]


def test_a_second_run_on_a_folder_in_use_is_refused(data, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import filelock, sys, time\n"
                               f"lock = filelock.FileLock({str(run / '.lock')!r}); lock.acquire(); print('held', flush=True)\n"
                               "time.sleep(120)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ConfigError, match="in use by another training run"):
            _run(data, run_dir=run)
        assert sorted(p.name for p in run.iterdir()) == [".lock"]  # the refused run wrote nothing
    finally:
        holder.kill()
        holder.wait()
    assert _run(data, run_dir=run).steps == 12  # the lock dies with its holder


def test_a_checkpoint_write_killed_halfway_is_cleaned_by_the_next_run(data, tmp_path):
    run = tmp_path / "run"
    _killed(tmp_path, "checkpoint", 5, run)  # dies writing step 5; step 4 is the newest complete one
    ckpts = run / "checkpoints"
    assert [p.name for p in ckpts.iterdir() if p.name.startswith(".step-00000005.tmp-")]
    r = _run(data, run_dir=run, resume=True, hp=dict(keep_checkpoints=True))
    assert r.resumed_from.endswith("step-00000004") and r.steps == 12
    assert sorted(p.name for p in ckpts.iterdir()) == ["step-00000012"]  # nothing hidden left behind


def test_checkpoints_are_deleted_when_a_run_ends_unless_kept(data, tmp_path):
    r = _run(data, run_dir=tmp_path / "a")
    assert not (tmp_path / "a" / "checkpoints").exists()
    assert (tmp_path / "a" / "metrics.csv").exists()
    r = _run(data, run_dir=tmp_path / "b", hp=dict(keep_checkpoints=True))
    kept = sorted((tmp_path / "b" / "checkpoints").iterdir())
    assert [p.name for p in kept] == [f"step-{r.steps:08d}"]  # only the newest: all resume needs
    # extending a finished run, the reason to keep its checkpoint
    more = _run(data, run_dir=tmp_path / "b", resume=True, hp=dict(max_epochs=3))
    assert more.resumed_from.endswith(f"step-{r.steps:08d}") and more.steps == 18


def test_best_weights_equal_to_the_last_are_not_written_twice(tmp_path):
    import torch
    from safetensors.torch import load_file
    from torch import nn

    model = nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters())
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    prog = {"step": 1, "best": 0.5}
    same = checkpoint.save(tmp_path, step=1, model_state=state, optimizer=opt, scheduler=sched, progress=prog,
                           best_state={k: v.clone() for k, v in state.items()})
    assert not (same / "best.safetensors").exists()
    other = {k: v + 1 for k, v in state.items()}
    newer = checkpoint.save(tmp_path, step=2, model_state=state, optimizer=opt, scheduler=sched,
                            progress={**prog, "step": 2}, best_state=other)
    assert (newer / "best.safetensors").exists() and not same.exists()  # one checkpoint kept
    _, best = checkpoint.load(newer, model=model, optimizer=opt, scheduler=sched)
    assert all(torch.equal(best[k], other[k]) for k in other)
    # with the best file omitted, resume gets the checkpoint's own weights as the best ones
    checkpoint.save(tmp_path, step=3, model_state=state, optimizer=opt, scheduler=sched,
                    progress={**prog, "step": 3}, best_state=state)
    _, best = checkpoint.load(tmp_path / "checkpoints" / "step-00000003", model=model, optimizer=opt,
                              scheduler=sched)
    assert all(torch.equal(best[k], state[k]) for k in state)
    assert load_file(str(tmp_path / "checkpoints" / "step-00000003" / "model.safetensors")).keys() == state.keys()


def test_the_run_folder_is_printed(data, capfd):
    _run(data, progress=None)
    assert f"run folder {ROOT / 'version_0'}" in capfd.readouterr().err


def test_devices_n_without_run_dir_trains_in_a_new_version_folder(data, monkeypatch):
    """The parent picks the version before starting workers, so every rank writes to the same one."""
    import edu_flash.core.launch as launch

    seen = {}

    class Spawned(Exception):
        pass

    def fake_spawn(task, data, val, **kw):
        seen.update(kw)
        raise Spawned

    monkeypatch.setattr(launch, "spawn_finetune", fake_spawn)
    with pytest.raises(Spawned):
        PathRecommender("dkt", **HP).finetune(data.train, data.val, devices=2, progress=False)
    assert seen["run_dir"] == ROOT / "version_0" and seen["run_dir"].is_dir()


_TORCHRUN = r"""
import os
from edu_flash import PathRecommender
s = PathRecommender.builtin_data(30, seed=0)
m = PathRecommender("dkt", d_model=16, precision="32", max_epochs=1, batch_size=4)
m.finetune(s.train, s.val, progress=False)
print("rank", os.environ["RANK"], m.last_train_report.run_dir, flush=True)
"""


def test_under_torchrun_every_rank_uses_the_same_new_version(tmp_path):
    """Rank 0 picks the version and tells the others (they must write to and resume from one folder)."""
    import os

    (tmp_path / "runs" / "path_recommendation" / "version_0").mkdir(parents=True)  # an earlier run
    script = tmp_path / "train.py"
    script.write_text(_TORCHRUN)
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                        str(script)], env={**os.environ, "OMP_NUM_THREADS": "1"}, cwd=tmp_path,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    seen = sorted(line.split()[1:] for line in r.stdout.splitlines() if line.startswith("rank "))
    assert seen == [["0", str(ROOT / "version_1")], ["1", str(ROOT / "version_1")]]
    assert sorted(p.name for p in (tmp_path / ROOT).iterdir()) == ["version_0", "version_1"]

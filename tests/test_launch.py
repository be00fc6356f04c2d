"""`finetune(devices=2)` as users call it (gloo, 2 CPU processes, tiny models).

- from a script without a main guard, a guarded one, `python -c`, stdin and a REPL: the caller's
  `__main__` runs once, never in the workers;
- a stalled rank (SIGSTOP) or a rank that never reaches a collective fails the run within the
  `timeout` hyperparameter, naming the rank, instead of blocking for 30 minutes;
- a caller killed mid-run takes its workers with it, and the next run removes its hand-over folder;
- every torch task trains with devices=2 on one of its data formats (the in-process check that
  every format arrives unchanged is test_handoff.py).
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from dist_helpers import COLS, EVENTS_ENV, HANG_ENV, HP, STOP_ENV, ProbeScorer, tiny_encoder  # noqa: E402

from edu_flash import DistributedError  # noqa: E402
from edu_flash.core.launch import _new_handoff, clean_stale_handoffs  # noqa: E402

HELPERS = str(Path(__file__).parent)
TIMEOUT = 10.0  # seconds: small, yet far above a heartbeat period (1 s) on a loaded 2-core machine


def _env(**extra) -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).parent.parent), *filter(None, [os.environ.get("PYTHONPATH")])]), **extra}


def _workers_alive() -> list:
    import psutil

    return [c for c in psutil.Process(os.getpid()).children(recursive=True)
            if c.is_running() and c.status() != psutil.STATUS_ZOMBIE and "edu_flash.core.worker" in " ".join(c.cmdline())]


@pytest.fixture(scope="module")
def essays(tmp_path_factory):
    from edu_flash.essay.sample import sample_essays

    root = tmp_path_factory.mktemp("launch")
    df = sample_essays(32, seed=3)
    return df, tiny_encoder(root / "enc", df.essay)


# ------------------------------------------------------------------------------ calling contexts
_USER_CODE = """\
print("MAIN RAN", flush=True)
from edu_flash.path import PathRecommender
from edu_flash.path.sample import sample_logs

model = PathRecommender("dkt", d_model=8, n_heads=2, window=20, max_steps=2, batch_size=8)
model.finetune(sample_logs(24, seed=1), devices=2, run_dir="run", progress=False)
print("TRAINED", model.last_train_report.world_size, len(model.predict([("q101", 1)])) > 0, flush=True)
"""
_GUARDED = "def main():\n" + "".join(f"    {line}\n" for line in _USER_CODE.splitlines()) + \
    "\n\nif __name__ == \"__main__\":\n    main()\n"


@pytest.mark.parametrize("context", ["script", "guarded script", "python -c", "stdin", "REPL"])
def test_devices_2_works_from_every_calling_context(context, tmp_path):
    if context in ("script", "guarded script"):
        (tmp_path / "train.py").write_text(_USER_CODE if context == "script" else _GUARDED)
        cmd, stdin = [sys.executable, "train.py"], None
    elif context == "python -c":
        cmd, stdin = [sys.executable, "-c", _USER_CODE], None
    else:
        cmd, stdin = [sys.executable, "-" if context == "stdin" else "-i"], _USER_CODE
    r = subprocess.run(cmd, input=stdin, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("MAIN RAN") == 1, r.stdout  # the caller's code never re-runs in a worker
    assert "TRAINED 2 True" in r.stdout
    assert not list((tmp_path / "run").glob(".handoff-*"))


def test_a_task_class_defined_in_main_is_refused_before_anything_starts(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(f"import sys; sys.path.insert(0, {HELPERS!r})\n" + """
import torch.multiprocessing, subprocess
from edu_flash import ConfigError
from edu_flash.path import PathRecommender
from edu_flash.path.sample import sample_logs

def no_start(*a, **k):
    raise AssertionError("a worker was started")
subprocess.Popen = no_start

class MyRecommender(PathRecommender):
    pass

try:
    MyRecommender("dkt", max_steps=1).finetune(sample_logs(8, seed=0), devices=2, run_dir="run", progress=False)
except ConfigError as e:
    print("REFUSED:", e)
""")
    r = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=_env(), capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "REFUSED: MyRecommender is defined in __main__" in r.stdout and "importable module" in r.stdout
    assert not list((tmp_path / "run").glob(".handoff-*"))


# ------------------------------------------------------------------------------ stalls and timeouts
def _failing_run(essays, tmp_path, monkeypatch, env: str, fault: str):
    df, enc = essays
    events = tmp_path / "events"
    events.mkdir()
    monkeypatch.setenv(env, fault)
    monkeypatch.setenv(EVENTS_ENV, str(events))
    s = ProbeScorer(backbone=str(enc), **{**HP, "timeout": TIMEOUT})
    with pytest.raises(DistributedError) as e:
        s.finetune(df, devices=2, run_dir=tmp_path / "run", progress=False, **COLS)
    done = time.time()
    (event,) = [json.loads(p.read_text()) for p in events.iterdir()]
    assert s.model is None
    assert _workers_alive() == []
    assert not list((tmp_path / "run").glob(".handoff-*"))
    return str(e.value), done - event["time"]


def test_a_stopped_worker_is_reported_within_the_timeout(essays, tmp_path, monkeypatch):
    """SIGSTOP on rank 1 mid-training: before, the caller blocked for 30 minutes and then blamed
    the out-of-memory killer."""
    msg, waited = _failing_run(essays, tmp_path, monkeypatch, STOP_ENV, "1:2")
    m = re.search(r"worker rank 1 stopped responding for (\d+) s", msg)
    assert m, msg
    assert TIMEOUT - 2 <= int(m.group(1)) <= TIMEOUT + 4, msg
    assert "SIGSTOP" in msg and "out-of-memory" not in msg
    assert TIMEOUT - 2 <= waited < TIMEOUT + 4, waited  # reported within the timeout of the stop (+ one poll)


def test_a_worker_that_never_reaches_a_collective_times_out(essays, tmp_path, monkeypatch):
    """Rank 1 is alive (its heartbeat goes on) but stuck outside the collective rank 0 waits in:
    the collective timeout ends the run and the error says who never joined."""
    msg, waited = _failing_run(essays, tmp_path, monkeypatch, HANG_ENV, "1:2")
    assert re.search(r"worker rank 0 waited 10 s in a collective operation for rank\(s\) 1, .*never joined", msg), msg
    assert waited < TIMEOUT + 10, waited


# ------------------------------------------------------------------------------ a killed caller
_KILLED_CALLER = """
import sys
sys.path.insert(0, {helpers!r})
import pandas as pd
from dist_helpers import COLS, HP, ProbeScorer
s = ProbeScorer(backbone=sys.argv[2], **HP)
s.finetune(pd.read_json(sys.argv[1], lines=True, dtype=False), devices=2, run_dir=sys.argv[3], progress=False, **COLS)
"""


def _gone(pid: int) -> bool:
    """No such process, or all its threads have exited (a zombie waiting to be reaped)."""
    import glob

    states = []
    for stat in glob.glob(f"/proc/{pid}/task/*/stat"):
        try:
            text = Path(stat).read_text()
        except OSError:
            continue
        states.append(text[text.rindex(")") + 2])
    return all(s == "Z" for s in states)


def test_a_killed_caller_takes_its_workers_along_and_the_next_run_cleans_up(essays, tmp_path):
    df, enc = essays
    data, run, events = tmp_path / "essays.jsonl", tmp_path / "run", tmp_path / "events"
    df.to_json(data, orient="records", lines=True)
    events.mkdir()
    script = tmp_path / "caller.py"
    script.write_text(_KILLED_CALLER.format(helpers=HELPERS))
    caller = subprocess.Popen([sys.executable, str(script), str(data), str(enc), str(run)], cwd=tmp_path,
                              env=_env(**{HANG_ENV: "0:1,1:1", EVENTS_ENV: str(events)}),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Both ranks hang in their first step (heartbeats going): then the caller is killed.
    deadline = time.time() + 240
    while len(list(events.iterdir())) < 2 and time.time() < deadline and caller.poll() is None:
        time.sleep(0.5)
    pids = [json.loads(p.read_text())["pid"] for p in events.iterdir()]
    assert len(pids) == 2, "the workers never started"
    caller.send_signal(signal.SIGKILL)
    caller.wait()
    end = time.time() + 20
    while time.time() < end and not all(_gone(p) for p in pids):
        time.sleep(0.2)
    assert all(_gone(p) for p in pids), "a worker outlived its caller"
    left = list(run.glob(".handoff-*"))
    assert len(left) == 1  # the killed caller could not clean up ...
    from edu_flash.essay.task import EssayScorer

    EssayScorer(backbone=str(enc), **{**HP, "max_steps": 1}).finetune(df, run_dir=run, progress=False, **COLS)
    assert not left[0].exists()  # ... the next run in that run_dir did


def test_only_abandoned_handoff_folders_are_removed(tmp_path):
    live, fd = _new_handoff(tmp_path)
    old = tmp_path / ".handoff-from-an-older-release"
    old.mkdir()
    young = tmp_path / ".handoff-being-created"
    young.mkdir()
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    assert clean_stale_handoffs(tmp_path) == [old]
    assert live.exists() and young.exists()
    os.close(fd)  # its owner is gone
    assert clean_stale_handoffs(tmp_path) == [live]

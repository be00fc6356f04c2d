"""Run folders: where a training run keeps its metrics, logs and resume checkpoints.

- Without `run_dir`, every run gets its own `runs/<task>/version_N` (the layout Lightning and
  TensorBoard users expect); `resume=True` continues the newest version that holds a checkpoint.
- A run holds a lock on its folder while it trains: a second run pointed at the same folder is
  refused at once instead of interleaving its metrics.csv rows and pruning the first run's checkpoints.
- On start, what a killed run left in `checkpoints/` is settled (core.io); on resume, metrics.csv
  is cut back to the checkpoint's step (core.logger.truncate), so steps trained again are not logged twice.
- When a run ends normally its checkpoints are deleted unless `keep_checkpoints=True`: they exist
  to resume a run that did not end.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import sys
from pathlib import Path

from . import checkpoint
from .errors import ConfigError
from .io import settle_all

log = logging.getLogger("edu_flash.runs")
_VERSION = re.compile(r"^version_(\d+)$")
LOCK_NAME = ".lock"


def default_root(task_name: str) -> Path:
    return Path("runs") / task_name


def versions(root: Path) -> list[Path]:
    """`root/version_N` folders, oldest first."""
    if not root.is_dir():
        return []
    found = [(int(m[1]), p) for p in root.iterdir() if p.is_dir() and (m := _VERSION.match(p.name))]
    return [p for _, p in sorted(found)]


def choose(root: str | Path, resume: bool) -> Path:
    """The folder of a run started without run_dir: the newest resumable version when resuming,
    else a new `version_N` (created here, so two runs starting together never share one)."""
    root = Path(root)
    if resume:
        for p in reversed(versions(root)):
            if checkpoint.latest(p) is not None:
                return p
        log.info("resume=True: no checkpoint under %s; starting a new run", root)
    root.mkdir(parents=True, exist_ok=True)
    n = max((int(_VERSION.match(p.name)[1]) for p in versions(root)), default=-1) + 1
    while True:
        try:
            (root / f"version_{n}").mkdir()
            return root / f"version_{n}"
        except FileExistsError:
            n += 1


def choose_on_every_rank(root: str | Path, resume: bool) -> Path:
    """`choose`, made once by rank 0 and shared with every rank when a launcher (torchrun) started
    this process, so all ranks write to, and resume from, the same version."""
    from .launch import under_launcher

    if not under_launcher():
        return choose(root, resume)
    import torch
    from accelerate import PartialState
    from accelerate.utils import broadcast_object_list

    state = PartialState(cpu=not torch.cuda.is_available())  # the process group the trainer uses too
    chosen = [str(choose(root, resume)) if state.is_main_process else None]
    broadcast_object_list(chosen, from_process=0)
    return Path(chosen[0])


def is_main() -> bool:
    """Rank 0, or a process that no launcher started (RANK is set by torchrun and by core.launch)."""
    return int(os.environ.get("RANK", "0") or 0) == 0


class RunLock:
    """An exclusive lock on a run folder for the length of a run (released when the process dies)."""

    def __init__(self, run_dir: Path):
        from filelock import FileLock, Timeout

        run_dir.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(str(run_dir / LOCK_NAME), timeout=0)
        try:
            self._lock.acquire()
        except Timeout:
            raise ConfigError(f"run folder {run_dir} is in use by another training run; wait for it to end, "
                              "or give this run another run_dir (without run_dir each run gets its own "
                              "runs/<task>/version_N)") from None

    def release(self) -> None:
        self._lock.release()


def start(run_dir: Path, *, announce: bool) -> RunLock:
    """Lock the folder and settle what a killed run left in it (main process only)."""
    lock = RunLock(run_dir)
    settle_all(run_dir / "checkpoints")
    if announce:
        print(f"edu-flash: run folder {run_dir} (metrics.csv, logs; checkpoints/ while it trains)", file=sys.stderr)
    log.info("run folder %s", run_dir)
    return lock


def finish(run_dir: Path, *, keep_checkpoints: bool) -> None:
    """A run that ended normally needs no resume point: delete its checkpoints unless asked to keep them."""
    if not keep_checkpoints:
        shutil.rmtree(Path(run_dir) / "checkpoints", ignore_errors=True)

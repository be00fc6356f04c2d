"""The CSV metrics log in the run folder (`metrics.csv`: step, epoch, metric, value), always
available without any tracker package; the other trackers are core.tracking's."""
from __future__ import annotations

import csv
from pathlib import Path


class MetricsLogger:
    def __init__(self, run_dir: Path, enabled: bool = True):
        self.enabled = enabled
        if not enabled:
            return
        run_dir.mkdir(parents=True, exist_ok=True)
        self.path = run_dir / "metrics.csv"
        new = not self.path.exists()
        self._fh = open(self.path, "a", newline="", encoding="utf-8")
        self._w = csv.writer(self._fh)
        if new:
            self._w.writerow(["step", "epoch", "metric", "value"])

    def log(self, metrics: dict, *, step: int, epoch: int) -> None:
        if not self.enabled:
            return
        for k, v in metrics.items():
            if isinstance(v, (int, float)):
                self._w.writerow([step, epoch, k, v])
        self._fh.flush()

    def close(self) -> None:
        if self.enabled and not self._fh.closed:
            self._fh.close()


def truncate(run_dir: Path, step: int) -> None:
    """Drop metrics.csv rows after `step` (logged after the checkpoint a run resumes from)."""
    path = Path(run_dir) / "metrics.csv"
    if not path.exists():
        return
    with open(path, "r+b") as f:
        f.readline()  # header
        while True:
            at, line = f.tell(), f.readline()
            if not line:
                return
            head = line.split(b",", 1)[0]
            if head.isdigit() and int(head) > step:
                f.truncate(at)
                return

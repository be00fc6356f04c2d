"""Metrics go to a CSV file in the run folder, and to TensorBoard when it is installed."""
from __future__ import annotations

import csv
from pathlib import Path


class MetricsLogger:
    def __init__(self, run_dir: Path, enabled: bool = True):
        self.enabled = enabled
        self._tb = None
        if not enabled:
            return
        run_dir.mkdir(parents=True, exist_ok=True)
        self.path = run_dir / "metrics.csv"
        new = not self.path.exists()
        self._fh = open(self.path, "a", newline="", encoding="utf-8")
        self._w = csv.writer(self._fh)
        if new:
            self._w.writerow(["step", "epoch", "metric", "value"])
        try:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(log_dir=str(run_dir / "tensorboard"))
        except Exception:  # tensorboard is optional
            self._tb = None

    def log(self, metrics: dict, *, step: int, epoch: int) -> None:
        if not self.enabled:
            return
        for k, v in metrics.items():
            if isinstance(v, (int, float)):
                self._w.writerow([step, epoch, k, v])
                if self._tb is not None:
                    self._tb.add_scalar(k, v, step)
        self._fh.flush()

    def close(self) -> None:
        if self.enabled:
            self._fh.close()
            if self._tb is not None:
                self._tb.close()

"""`compare`: train several backbones of one task on the same data and rank them.

Every backbone goes through the task's own `finetune` and `evaluate`, so the leaderboard holds the
task's real metrics, measured the same way for all, beside cost: wall time, parameters, peak memory.
"""
from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

from .core.callbacks import lower_is_better  # noqa: F401 - smaller is better for these names; else descending
from .core.errors import ConfigError


def _task_class(task):
    from .core.registry import get_task
    from .core.task import Task

    if isinstance(task, type) and issubclass(task, Task):
        return task
    if isinstance(task, Task):
        return type(task)
    return get_task(str(task))


def _scalars(metrics: dict) -> dict:
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _folder_name(backbone: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(str(backbone)).name or str(backbone))


def compare(task, backbones: list[str] | None = None, train=None, test=None, *, val=None, metric: str | None = None,
            greater_is_better: bool | None = None, hparams: dict | None = None,
            backbone_hparams: dict[str, dict] | None = None, finetune_args: dict | None = None,
            evaluate_args: dict | None = None, run_dir: str | os.PathLike = "runs/compare",
            save_dir: str | os.PathLike | None = None, plot: str | os.PathLike | None = None, devices: int = 1,
            progress: bool | None = False, on_error: str = "raise"):
    """Leaderboard (pandas DataFrame, best first) of `backbones` trained on `train`, scored on `test`.

    task: a task class, instance or name. backbones: registered names or model folders (default: all
    the task registers). metric: the evaluate() key to rank by (default: the task card's first
    headline metric). hparams apply to every backbone, backbone_hparams[name] on top. finetune_args /
    evaluate_args: the task's data keywords. save_dir: each trained model is saved to
    save_dir/<backbone> (column `model_dir`). plot: a PNG of the metric and the wall time.
    on_error="record" keeps going when a backbone fails and puts the message in column `error`.
    """
    import pandas as pd

    from .core.measure import PeakMemory

    cls = _task_class(task)
    backbones = list(backbones or cls.available_backbones())
    if not backbones:
        raise ConfigError(f"{cls.__name__}: no backbones to compare")
    if train is None or test is None:
        raise ConfigError("compare needs train= and test= data")
    if on_error not in ("raise", "record"):
        raise ConfigError(f"on_error must be 'raise' or 'record', got {on_error!r}")
    unknown = sorted(set(backbone_hparams or {}) - set(backbones))
    if unknown:
        raise ConfigError(f"backbone_hparams names backbones not being compared: {unknown}")
    if metric is None:
        text = cls.card_text
        metric = text.headline_metrics[0] if text and text.headline_metrics else None
    # every task built up front, so bad hyperparameters fail before any backbone trains
    tasks = [cls(b, **{**(hparams or {}), **(backbone_hparams or {}).get(b, {})}) for b in backbones]

    rows = []
    for b, obj in zip(backbones, tasks):
        row: dict[str, Any] = {"backbone": b}
        try:
            with PeakMemory() as mem:
                t0 = time.perf_counter()
                obj.finetune(train, val, run_dir=Path(run_dir) / _folder_name(b), devices=devices,
                             progress=progress, **(finetune_args or {}))
                t1 = time.perf_counter()
                scores = obj.evaluate(test, **(evaluate_args or {}))
                t2 = time.perf_counter()
            row.update(_scalars(scores))
            row.update(train_s=round(t1 - t0, 2), eval_s=round(t2 - t1, 2), parameters=obj.num_parameters(),
                       peak_rss_mb=round(mem.rss_mb, 1))
            if mem.gpu_mb is not None:
                row["peak_gpu_mb"] = round(mem.gpu_mb, 1)
            if save_dir is not None:
                row["model_dir"] = str(obj.save_pretrained(Path(save_dir) / _folder_name(b)))
        except Exception as e:  # noqa: BLE001 - recorded on request, re-raised otherwise
            if on_error == "raise":
                raise
            row["error"] = f"{type(e).__name__}: {e}"
        rows.append(row)

    board = pd.DataFrame(rows)
    if metric is not None and metric not in board.columns and "error" not in board.columns:
        raise ConfigError(f"metric {metric!r} is not among {cls.__name__}.evaluate()'s results: "
                          f"{sorted(c for c in board.columns if c not in ('backbone',))}")
    if metric is not None and metric in board.columns:
        desc = (not lower_is_better(metric)) if greater_is_better is None else greater_is_better
        board = board.sort_values(metric, ascending=not desc, na_position="last", kind="stable")
    board = board.reset_index(drop=True)
    board.attrs.update(task=cls.__name__, metric=metric)
    if plot is not None:
        plot_leaderboard(board, plot, metric=metric, title=f"{cls.__name__}: backbones compared")
    return board


def plot_leaderboard(board, path: str | os.PathLike, *, metric: str | None, title: str = "") -> Path:
    """Two bar panels: the ranking metric and the training wall time, one bar per backbone."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ConfigError("plotting needs matplotlib: pip install 'edu-flash[plot]'") from e
    ok = board[board["train_s"].notna()] if "train_s" in board else board.iloc[0:0]
    names = [str(b).split("/")[-1] for b in ok["backbone"]]
    panels = [(metric, metric)] if metric in ok else []
    panels.append(("train_s", "training wall time (s)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 0.5 * len(names) + 1.8), squeeze=False)
    for ax, (col, label) in zip(axes[0], panels):
        ax.barh(names[::-1], ok[col].to_numpy()[::-1], color="#4c72b0")
        ax.set_xlabel(label)
        for y, v in enumerate(ok[col].to_numpy()[::-1]):
            ax.text(v, y, f" {v:.3g}", va="center", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)
    return path

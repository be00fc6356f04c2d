"""The learning-rate range test (Smith 2017, "Cyclical Learning Rates for Training Neural
Networks", section 3.3): train a copy of the model for a bounded number of steps while the
learning rate grows exponentially from `min_lr` to `max_lr`, record the loss at each step, and
suggest a rate inside the longest fall of the smoothed loss (fastai's "valley" rule).

It runs through the shared trainer (one training loop), on a deep copy of the task, with a
callback that records the loss and stops once it diverges; no checkpoint or log is written. The
caller's weights and the python / numpy / torch RNG states are as they were before.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

from .callbacks import Callback
from .errors import ConfigError


@dataclass
class LRFindResult:
    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    suggestion: float | None
    min_lr: float
    max_lr: float
    num_steps: int
    diverged: bool = False
    notes: list[str] = field(default_factory=list)

    def table(self):
        """One row per step: lr, loss, smoothed_loss (a pandas DataFrame)."""
        import pandas as pd

        return pd.DataFrame({"lr": self.lrs, "loss": self.losses, "smoothed_loss": self.smoothed})

    def plot(self, path=None, ax=None):
        """Smoothed loss against the learning rate (log scale), the suggestion marked. Saved as a PNG
        when `path` is given; returns the matplotlib Axes."""
        try:
            import matplotlib

            if ax is None and path is not None:
                matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            raise ConfigError("plotting needs matplotlib: pip install 'edu-flash[plot]'") from None
        fig = None
        if ax is None:
            fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(self.lrs, self.losses, color="0.75", lw=1, label="loss")
        ax.plot(self.lrs, self.smoothed, lw=2, label="smoothed loss")
        if self.suggestion is not None:
            ax.axvline(self.suggestion, color="red", ls="--", label=f"suggested lr {self.suggestion:.2e}")
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("training loss")
        ax.set_title("Learning-rate range test")
        ax.legend()
        if path is not None:
            (fig or ax.figure).savefig(path, dpi=120, bbox_inches="tight")
            if fig is not None:
                plt.close(fig)
        return ax

    def card_line(self) -> str:
        return (f"{self.suggestion:.3g}, suggested by lr_find (range test from {self.min_lr:g} to {self.max_lr:g} "
                f"over up to {self.num_steps} steps; valley of the smoothed loss)")

    def __repr__(self) -> str:
        sug = f"{self.suggestion:.3g}" if self.suggestion is not None else None
        return (f"LRFindResult(suggestion={sug}, steps={len(self.lrs)}, diverged={self.diverged}, "
                f"lr range {self.min_lr:g}..{self.max_lr:g})")


class _Recorder(Callback):
    def __init__(self, lr_at, beta: float, diverge: float):
        self.lr_at, self.beta, self.diverge = lr_at, beta, diverge
        self.lrs, self.losses, self.smoothed = [], [], []
        self.avg, self.best, self.diverged = 0.0, math.inf, False

    def on_step_end(self, state):
        loss = float(state.train_loss)
        if state.world_size > 1:  # every rank records the same (global mean) loss
            import torch

            acc = state.accelerator
            loss = float(acc.reduce(torch.tensor([loss], device=acc.device), "mean").item())
        i = len(self.lrs)
        self.avg = self.beta * self.avg + (1 - self.beta) * loss
        smooth = self.avg / (1 - self.beta ** (i + 1))
        self.lrs.append(self.lr_at(state.step - 1))
        self.losses.append(loss)
        self.smoothed.append(smooth)
        self.best = min(self.best, smooth)
        if not math.isfinite(smooth) or (i > 0 and smooth > self.diverge * self.best):
            self.diverged = True
            state.stop("lr_find: the loss diverged")


def suggest(lrs: list[float], smoothed: list[float]) -> float | None:
    """fastai's "valley" rule (2021): the longest run of the smoothed loss that keeps falling (a
    longest decreasing subsequence), and the rate two thirds of the way down it. On per-batch
    losses as noisy as a small text model's, the steepest point of the curve is mostly noise;
    the valley is not."""
    n = len(smoothed)
    if n < 3 or not all(math.isfinite(x) for x in smoothed[: n // 2]):
        return None
    run = [1] * n
    start = end = 0
    for i in range(1, n):
        for j in range(i):
            if smoothed[i] < smoothed[j] and run[i] < run[j] + 1:
                run[i] = run[j] + 1
        if run[end] < run[i]:
            end = i
            start = end - run[end]
    if end - start < 3:
        return None
    third = (end - start) / 3
    return float(lrs[start + int(third) + int(third / 2)])


def range_test(task, prepared, hp, *, run_dir, min_lr: float = 1e-7, max_lr: float = 1.0, num_steps: int = 100,
               beta: float | None = None, diverge: float = 4.0) -> LRFindResult:
    """Run the range test on a copy of `task` for data it has prepared (`_prepare`'s result).
    beta: the loss's exponential smoothing (None: 1 - 5 / num_steps, at most 0.98: a window of
    about a fifth of the run); the test stops when the smoothed loss passes `diverge` x its best."""
    from .checkpoint import rng_state, set_rng_state
    from .trainer import Trainer

    if not (0 < min_lr < max_lr):
        raise ConfigError(f"lr_find needs 0 < min_lr < max_lr, got {min_lr} and {max_lr}")
    if not isinstance(num_steps, int) or num_steps < 5:
        raise ConfigError(f"lr_find needs num_steps >= 5, got {num_steps!r}")
    rng = rng_state()
    try:
        clone = copy.deepcopy(task)
        job = clone._train_job(prepared)
        job.validate, job.monitor = None, None
        ratio = max_lr / min_lr
        lr_at = lambda i: min_lr * ratio ** (i / (num_steps - 1))  # noqa: E731
        rec = _Recorder(lr_at, min(0.98, 1 - 5 / num_steps) if beta is None else beta, diverge)
        probe = hp.replace(lr=min_lr, max_steps=num_steps, max_epochs=num_steps, patience=None, warmup_ratio=0.0,
                           checkpoint_every=None, monitor=None, mode=None)

        def schedule(optimizer, total):
            import torch

            return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: ratio ** (min(s, num_steps - 1) /
                                                                                    (num_steps - 1)))

        Trainer(probe, run_dir=run_dir, log=False, progress=False, callbacks=[rec], schedule=schedule).fit(job)
    finally:
        set_rng_state(*rng)
    sug = suggest(rec.lrs, rec.smoothed)
    notes = [] if sug is not None else ["too few steps before the loss diverged to suggest a rate"]
    return LRFindResult(rec.lrs, rec.losses, rec.smoothed, sug, min_lr, max_lr, num_steps, rec.diverged, notes)


def auto_lr(task, prepared, hp, *, run_dir, **settings) -> LRFindResult:
    """`lr="auto"`: the range test, or a ConfigError when it gives no suggestion."""
    found = range_test(task, prepared, hp, run_dir=run_dir, **settings)
    if found.suggestion is None:
        raise ConfigError(f"lr='auto': the learning-rate range test gave no suggestion ({'; '.join(found.notes)}); "
                          "run task.lr_find(...) to look at the curve, or give lr= a number")
    task.last_lr_find = found
    return found

"""Callbacks: user code the shared trainer calls at fixed points of a run, with a `TrainState`.

    on_train_start      before the first step (after a resume: at the resumed step)
    on_step_end         after every optimizer step
    on_validation_end   after each validation (state.metrics holds its results)
    on_checkpoint       after a checkpoint is written (state.checkpoint_path)
    on_train_end        after the last step, with the returned (best) weights in state.model

A callback stops the run with `state.stop("why")`: the trainer finishes the step (and, after
on_step_end, the validation and checkpoint that follow), then returns. In a run of N processes
every rank calls the callbacks with its own state; `state.is_main` is True on rank 0 only, which
is where the built-ins log and write, and one rank asking to stop stops them all.

Callbacks reach the worker processes of `finetune(devices=N)` as JSON (their class's import path
and constructor arguments), never pickled: a callback class must live in an importable module
and take JSON-able arguments; what it records in memory stays in the worker processes.
"""
from __future__ import annotations

import importlib
import json
import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .errors import ConfigError

# metric names where smaller is better (compare's ranking, tune's direction, a monitor's default mode)
_LOWER = re.compile(r"rmse|mae|mse|loss|perplexity|frechet|fid|brier|ece|abroca|error|nll", re.I)


def lower_is_better(metric: str) -> bool:
    return bool(_LOWER.search(metric))


def default_mode(metric: str) -> str:
    """'min' for losses and errors, else 'max' (a guess the user overrides with mode=)."""
    return "min" if lower_is_better(metric) else "max"


def metric_name(name: str) -> str:
    """Validation metrics are logged as val_<name>; monitor names may be given either way."""
    return name[4:] if name.startswith("val_") else name


@dataclass
class TrainState:
    """What a callback sees. Read-only for callbacks, except `stop()` and `log()`."""

    step: int = 0
    epoch: int = 0                  # the epoch in progress (0-based); after validation: epochs done
    total_steps: int = 0
    max_epochs: int = 0
    train_loss: float | None = None  # mean loss of the last optimizer step's micro-batches (this rank)
    lr: float | None = None
    metrics: dict = field(default_factory=dict)  # the last validation's results
    history: list = field(default_factory=list)  # every validation so far
    monitor: str | None = None
    mode: str = "max"
    best: float | None = None        # the trainer's best value of `monitor`
    examples: int = 0                # examples seen this run (all ranks)
    elapsed_s: float = 0.0           # wall time since training started (this process)
    resumed: bool = False
    checkpoint_path: Path | None = None
    run_dir: Path | None = None
    rank: int = 0
    world_size: int = 1
    model: Any = None                # the unwrapped model (sharded under FSDP)
    optimizer: Any = None
    scheduler: Any = None
    accelerator: Any = None
    should_stop: bool = False
    stop_reason: str | None = None
    _log: Callable[[dict], None] | None = None
    _state_dict: Callable[[], dict] | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def stop(self, reason: str = "stopped by a callback") -> None:
        self.should_stop, self.stop_reason = True, reason

    def log(self, metrics: dict) -> None:
        """Log numbers at the current step to the run's trackers (main process only)."""
        if self._log is not None:
            self._log(metrics)

    def full_state_dict(self) -> dict:
        """A CPU copy of the full weights (gathered from the shards under FSDP: call it on every rank)."""
        if self._state_dict is None:
            raise RuntimeError("this trainer state has no model")
        return self._state_dict()


class Callback:
    """Base class: override the hooks you need. Constructor arguments are recorded (as JSON) so the
    callback can be rebuilt in worker processes."""

    def __new__(cls, *args, **kwargs):
        obj = super().__new__(cls)
        obj._init_args = (args, kwargs)
        return obj

    def on_train_start(self, state: TrainState) -> None: ...
    def on_step_end(self, state: TrainState) -> None: ...
    def on_validation_end(self, state: TrainState) -> None: ...
    def on_checkpoint(self, state: TrainState) -> None: ...
    def on_train_end(self, state: TrainState) -> None: ...


EVENTS = ("on_train_start", "on_step_end", "on_validation_end", "on_checkpoint", "on_train_end")


def check(callbacks) -> list:
    """The callbacks as a list; anything without at least one hook is a ConfigError."""
    if callbacks is None:
        return []
    if not isinstance(callbacks, (list, tuple)):
        callbacks = [callbacks]
    for cb in callbacks:
        if isinstance(cb, type):
            raise ConfigError(f"callbacks takes instances; got the class {cb.__name__} (write {cb.__name__}())")
        if not any(callable(getattr(cb, e, None)) for e in EVENTS):
            raise ConfigError(f"callback {cb!r} has none of the hooks {list(EVENTS)}")
    return list(callbacks)


def dispatch(callbacks: list, event: str, state: TrainState) -> bool:
    for cb in callbacks:
        hook = getattr(cb, event, None)
        if hook is not None:
            hook(state)
    return state.should_stop


# ---------------------------------------------------------------------------------------- JSON transport
def to_specs(callbacks: list) -> list[dict]:
    """Callbacks as JSON for worker processes: import path + constructor arguments."""
    specs = []
    for cb in callbacks:
        cls = type(cb)
        where = f"{cls.__module__}:{cls.__qualname__}"
        if cls.__module__ in ("__main__", "__mp_main__") or "<locals>" in cls.__qualname__:
            raise ConfigError(f"callback {cls.__qualname__} is defined in {'a function' if '<locals>' in where else 'your script or notebook'}"
                              ": the worker processes of devices > 1 cannot import it. Move the class into a "
                              "module you import, or run under torchrun (then callbacks run in-process)")
        args, kwargs = getattr(cb, "_init_args", ((), {}))
        try:
            json.dumps([args, kwargs])
        except TypeError:
            raise ConfigError(f"callback {cls.__qualname__}'s constructor arguments are not JSON "
                              "(numbers, text, lists, dicts): it cannot be sent to worker processes") from None
        specs.append({"class": where, "args": list(args), "kwargs": kwargs})
    return specs


def from_specs(specs: list[dict]) -> list:
    out = []
    for s in specs or []:
        module, _, qualname = s["class"].partition(":")
        obj: Any = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
        out.append(obj(*s.get("args", []), **s.get("kwargs", {})))
    return out


# ---------------------------------------------------------------------------------------- built-ins
class LearningRateMonitor(Callback):
    """Logs every parameter group's learning rate (lr-group0, lr-group1, ...; and the Adam beta1 as
    momentum-groupN with log_momentum=True) every `every_n_steps` steps; also kept in `history`."""

    def __init__(self, every_n_steps: int = 1, log_momentum: bool = False):
        if every_n_steps < 1:
            raise ConfigError(f"every_n_steps must be >= 1, got {every_n_steps}")
        self.every_n_steps, self.log_momentum = every_n_steps, log_momentum
        self.history: list[dict] = []

    def on_step_end(self, state: TrainState) -> None:
        if state.step % self.every_n_steps:
            return
        row = {}
        for i, g in enumerate(state.optimizer.param_groups):
            row[f"lr-group{i}"] = float(g["lr"])
            if self.log_momentum:
                beta = g.get("betas", (g.get("momentum"),))[0]
                if beta is not None:
                    row[f"momentum-group{i}"] = float(beta)
        self.history.append({"step": state.step, **row})
        state.log(row)


def _rss_mb() -> tuple[float | None, float | None]:
    """(current, peak) resident memory of this process in MB."""
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak_mb = peak / 2**20 if sys.platform == "darwin" else peak / 1024
    try:
        with open("/proc/self/statm") as fh:
            cur = int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        cur = None
    return cur, peak_mb


class DeviceStatsMonitor(Callback):
    """Logs memory and throughput every `every_n_steps` steps: device/steps_per_s and
    device/examples_per_s over the interval, process RSS and peak RSS in MB (CPU), and allocated /
    peak allocated / reserved MB on a CUDA device. Also kept in `history`."""

    def __init__(self, every_n_steps: int = 10):
        if every_n_steps < 1:
            raise ConfigError(f"every_n_steps must be >= 1, got {every_n_steps}")
        self.every_n_steps = every_n_steps
        self.history: list[dict] = []
        self._last: tuple[float, int, int] | None = None

    def on_train_start(self, state: TrainState) -> None:
        self._last = (time.perf_counter(), state.step, state.examples)

    def on_step_end(self, state: TrainState) -> None:
        if state.step % self.every_n_steps:
            return
        now = time.perf_counter()
        t0, s0, e0 = self._last or (now, state.step, state.examples)
        dt = max(now - t0, 1e-9)
        row = {"device/steps_per_s": (state.step - s0) / dt, "device/examples_per_s": (state.examples - e0) / dt}
        cur, peak = _rss_mb()
        if cur is not None:
            row["device/rss_mb"] = cur
        row["device/peak_rss_mb"] = peak
        device = getattr(state.accelerator, "device", None)
        if device is not None and device.type == "cuda":
            import torch

            row["device/cuda_allocated_mb"] = torch.cuda.memory_allocated(device) / 2**20
            row["device/cuda_peak_allocated_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
            row["device/cuda_reserved_mb"] = torch.cuda.memory_reserved(device) / 2**20
        self._last = (now, state.step, state.examples)
        self.history.append({"step": state.step, **row})
        state.log(row)


class ModelCheckpoint(Callback):
    """Keeps the best weights on a validation metric of your choice on disk: whenever `monitor`
    improves (by `mode`), `<dirpath>/model.safetensors` is replaced and `<dirpath>/best.json` says
    which metric, value, step and epoch it holds. monitor=None follows the run's own monitor;
    dirpath=None is `<run folder>/best`. After a resume it carries on from the best on disk.

    The task itself returns the best weights on the run's `monitor` / `mode` hyperparameters; this
    callback is for a second metric, or for keeping the best on disk while a long run goes on."""

    def __init__(self, monitor: str | None = None, mode: str | None = None, dirpath: str | None = None):
        if mode not in (None, "min", "max"):
            raise ConfigError(f"mode must be 'min' or 'max', got {mode!r}")
        self.monitor = metric_name(monitor) if monitor else None
        self.mode, self.dirpath = mode, dirpath
        self.best_value: float | None = None
        self.best_step: int | None = None
        self.best_epoch: int | None = None
        self.path: Path | None = None

    def _setup(self, state: TrainState) -> None:
        if self.monitor is None:
            if state.monitor is None:
                raise ConfigError("ModelCheckpoint(monitor=None) follows the run's monitor, but this run has none "
                                  "(no validation data?): give monitor=")
            self.monitor = state.monitor
        if self.mode is None:
            self.mode = state.mode if self.monitor == state.monitor else default_mode(self.monitor)
        folder = Path(self.dirpath) if self.dirpath else Path(state.run_dir) / "best"
        self.path = folder / "model.safetensors"

    def on_train_start(self, state: TrainState) -> None:
        self._setup(state)
        info = self.path.parent / "best.json"
        if state.resumed and info.exists() and self.path.exists():
            d = json.loads(info.read_text())
            if d.get("monitor") == self.monitor:
                self.best_value, self.best_step, self.best_epoch = d["value"], d["step"], d["epoch"]

    def on_validation_end(self, state: TrainState) -> None:
        if self.path is None:
            self._setup(state)
        if self.monitor not in state.metrics:
            raise ConfigError(f"ModelCheckpoint: the validation gives no {self.monitor!r}; it gives "
                              f"{sorted(state.metrics)}")
        value = state.metrics[self.monitor]
        if value != value or (self.best_value is not None and
                              not (value > self.best_value if self.mode == "max" else value < self.best_value)):
            return
        self.best_value, self.best_step, self.best_epoch = float(value), state.step, state.epoch
        weights = state.full_state_dict()  # on every rank: FSDP gathers the shards
        if state.is_main:
            from safetensors.torch import save_file

            from .checkpoint import _unshared
            from .io import atomic_folder, write_json

            with atomic_folder(self.path.parent) as tmp:  # weights and best.json replaced together
                save_file(_unshared(weights), str(tmp / self.path.name))
                write_json(tmp / "best.json", {
                    "monitor": self.monitor, "mode": self.mode, "value": self.best_value, "step": state.step,
                    "epoch": state.epoch, "metrics": {k: v for k, v in state.metrics.items() if math.isfinite(v)}})

"""Experiment trackers for one training run: the CSV log in the run folder (core.logger) and
TensorBoard, MLflow, W&B (or any other tracker accelerate knows) through accelerate's tracker
integration (`Accelerator(log_with=...)`), so no tracker client is written here.

`loggers` (a `finetune` keyword) is one of
- "auto" (the default): the CSV log, plus TensorBoard when the `tensorboard` package is installed;
- None, False or []: no log at all;
- a name or a list of names: "csv", "tensorboard", "mlflow", "wandb", ...;
- a dict of name -> that tracker's settings, e.g. {"csv": {}, "wandb": {"entity": "me"},
  "mlflow": {"tracking_uri": "sqlite:///mlflow.db"}};
- accelerate `GeneralTracker` objects inside the list, used as they are.

Only the main process logs (accelerate's trackers run on the main process only; the CSV log is
opened there alone). Hyperparameters go to every tracker at the start, metrics at every step and
validation, and the model card when `finish(card=...)` is called after training.
"""
from __future__ import annotations

import importlib.util
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError
from .logger import MetricsLogger

log = logging.getLogger("edu_flash.tracking")

# tracker name -> the package it needs (and the pyproject extra that installs it, where there is one)
PACKAGES = {"tensorboard": "tensorboard", "mlflow": "mlflow", "wandb": "wandb", "comet_ml": "comet_ml",
            "aim": "aim", "clearml": "clearml", "dvclive": "dvclive", "swanlab": "swanlab", "trackio": "trackio"}
EXTRAS = ("tensorboard", "mlflow", "wandb")


def installed(name: str) -> bool:
    return importlib.util.find_spec(PACKAGES.get(name, name)) is not None


@dataclass
class LoggerSpec:
    """What `loggers=` asked for, checked before any data is read or any worker is started."""

    csv: bool = False
    trackers: dict[str, dict] = field(default_factory=dict)  # accelerate tracker name -> its settings
    custom: list = field(default_factory=list)                # GeneralTracker objects given by the user

    @property
    def names(self) -> list[str]:
        return (["csv"] if self.csv else []) + list(self.trackers) + [type(t).__name__ for t in self.custom]

    def to_json(self) -> dict:
        """The same choice as plain JSON (for worker processes, which get no pickled objects)."""
        if self.custom:
            raise ConfigError("tracker objects cannot be sent to worker processes (devices > 1): give trackers "
                              "by name, e.g. loggers={'wandb': {...}}, or run under torchrun")
        return {**({"csv": {}} if self.csv else {}), **self.trackers}


def resolve(loggers) -> LoggerSpec:
    """Parse and check `loggers`; a missing package is a ConfigError naming the extra to install."""
    if isinstance(loggers, LoggerSpec):
        return loggers
    if loggers is None or loggers is False:
        return LoggerSpec()
    if isinstance(loggers, str):
        if loggers == "auto":
            return LoggerSpec(csv=True, trackers={"tensorboard": {}} if installed("tensorboard") else {})
        loggers = [loggers]
    if isinstance(loggers, dict):
        items = list(loggers.items())
    elif isinstance(loggers, (list, tuple)):
        items = [(x, {}) if isinstance(x, str) else (None, x) for x in loggers]
    else:
        raise ConfigError(f"loggers must be 'auto', a name, a list or a dict of names, got {loggers!r}")
    spec = LoggerSpec()
    for name, settings in items:
        if name is None:
            from accelerate.tracking import GeneralTracker

            if not isinstance(settings, GeneralTracker):
                raise ConfigError(f"loggers: {settings!r} is neither a tracker name nor an accelerate GeneralTracker")
            spec.custom.append(settings)
            continue
        if not isinstance(settings, dict):
            raise ConfigError(f"loggers[{name!r}] must be a dict of settings, got {settings!r}")
        if name == "csv":
            spec.csv = True
            continue
        if name not in PACKAGES:
            raise ConfigError(f"unknown logger {name!r}; known: {['csv', *PACKAGES]}")
        if not installed(name):
            extra = f"pip install 'edu-flash[{name}]'" if name in EXTRAS else f"pip install {PACKAGES[name]}"
            raise ConfigError(f"loggers: {name!r} needs the {PACKAGES[name]} package, which is not installed "
                              f"({extra})")
        spec.trackers[name] = dict(settings)
    return spec


def _scalar_config(config: dict) -> dict:
    """Hyperparameters as the scalars every tracker takes (lists and dicts as JSON text)."""
    out = {}
    for k, v in config.items():
        out[k] = v if isinstance(v, (bool, int, float, str)) else json.dumps(v, default=str)
    return out


class Tracking:
    """The loggers of one run. `accelerator_kwargs()` goes into the Accelerator; then `start`,
    `log` (every step / validation), and `finish` once (with the model card when there is one)."""

    def __init__(self, spec: LoggerSpec, run_dir: Path, *, project: str, run_name: str):
        self.spec, self.run_dir, self.project = spec, Path(run_dir), project
        self.main = False
        self.csv = MetricsLogger(self.run_dir, enabled=False)
        self._mlflow_uri = None
        self.objects = [self._build(n, dict(s), run_name) for n, s in spec.trackers.items()] + list(spec.custom)
        self.acc = None
        self.started: list = []
        self.finished = False

    def _build(self, name: str, settings: dict, run_name: str):
        from accelerate.tracking import LOGGER_TYPE_TO_CLASS, MLflowTracker, TensorBoardTracker, WandBTracker

        if name == "tensorboard":  # event files in <run_dir>/tensorboard
            return TensorBoardTracker(settings.pop("run_name", "tensorboard"), str(self.run_dir), **settings)
        if name == "mlflow":
            self._mlflow_uri = settings.pop("tracking_uri", None)
            return MLflowTracker(experiment_name=settings.pop("experiment_name", self.project),
                                 run_name=settings.pop("run_name", run_name), **settings)
        if name == "wandb":
            if "dir" not in settings and not os.environ.get("WANDB_DIR"):
                settings["dir"] = str(self.run_dir)
            settings.setdefault("name", run_name)
            return WandBTracker(settings.pop("project", self.project), **settings)
        cls = LOGGER_TYPE_TO_CLASS[name]
        if cls.requires_logging_directory:
            return cls(settings.pop("project", self.project), str(self.run_dir), **settings)
        return cls(settings.pop("project", self.project), **settings)

    def accelerator_kwargs(self) -> dict:
        return {"log_with": self.objects} if self.objects else {}

    def start(self, acc, config: dict, *, main: bool) -> None:
        """Open the logs (on the main process) and record the hyperparameters in every tracker.
        acc=None: no training loop (a scikit-learn fit): the trackers are started directly."""
        self.acc, self.main = acc, main
        self.csv = MetricsLogger(self.run_dir, enabled=main and self.spec.csv)
        if not self.objects:
            return
        if main and self._mlflow_uri:
            import mlflow

            mlflow.set_tracking_uri(self._mlflow_uri)
        if acc is not None:
            acc.init_trackers(self.project, config=_scalar_config(config))
            self.started = list(acc.trackers)
            return
        for t in self.objects:
            t.start()
            self.started.append(t)
            t.store_init_configuration(_scalar_config(config))

    def log(self, metrics: dict, *, step: int, epoch: int) -> None:
        self.csv.log(metrics, step=step, epoch=epoch)
        if self.started and self.acc is not None:
            self.acc.log({k: v for k, v in metrics.items() if isinstance(v, (int, float))}, step=step)

    def finish(self, card: str | None = None, *, failed: bool = False) -> None:
        """Send the model card (markdown) to every tracker and close them; runs once."""
        if self.finished:
            return
        self.finished = True
        self.csv.close()
        if not self.main:
            return
        for t in self.started:
            try:
                if card:
                    _log_card(t, card)
            except Exception as e:  # a card that cannot be logged never fails a run
                log.warning("could not send the model card to %s: %s", t.name, e)
            try:
                _close(t, failed)
            except Exception as e:
                log.warning("closing the %s tracker failed: %s", t.name, e)

    close = finish


def _log_card(tracker, card: str) -> None:
    if tracker.name == "tensorboard":
        tracker.writer.add_text("model_card", card)
    elif tracker.name == "mlflow":
        import mlflow

        mlflow.log_text(card, "model_card/README.md")
    elif tracker.name == "wandb":
        path = Path(tracker.run.dir) / "model_card.md"
        path.write_text(card, encoding="utf-8")
        tracker.run.save(str(path), base_path=tracker.run.dir, policy="now")
    else:
        tracker.log({"model_card": card})


def _close(tracker, failed: bool) -> None:
    if failed and tracker.name == "mlflow":
        import mlflow

        mlflow.end_run(status="FAILED")
    elif failed and tracker.name == "wandb":
        tracker.run.finish(exit_code=1)
    else:
        tracker.finish()

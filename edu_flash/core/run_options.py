"""The `finetune` keywords that go to the shared trainer rather than to the task: `loggers`,
`callbacks` and `profile`, checked before any data is read, and carried to the worker processes of
`devices=N` as JSON (`to_json`; a worker's `finetune` takes that JSON back as is)."""
from __future__ import annotations

import logging
from dataclasses import dataclass

from . import callbacks as cb, profiling, tracking

log = logging.getLogger("edu_flash.task")


@dataclass
class RunOptions:
    loggers: tracking.LoggerSpec
    callbacks: list
    profile: dict | None
    explicit_loggers: bool

    @classmethod
    def check(cls, loggers="auto", callbacks=None, profile=False, *, engine: str = "torch",
              backbone: str = "", spawn: bool = False) -> "RunOptions":
        """spawn: worker processes will be started, so the options must go as JSON (checked now)."""
        if isinstance(callbacks, (list, tuple)) and callbacks and all(isinstance(c, dict) and "class" in c
                                                                      for c in callbacks):
            callbacks = cb.from_specs(callbacks)  # JSON from the parent process (devices=N)
        opts = cls(tracking.resolve(loggers), cb.check(callbacks), profiling.check(profile),
                   explicit_loggers=not (isinstance(loggers, str) and loggers == "auto"))
        if engine != "torch" and (opts.callbacks or opts.profile):
            log.warning("callbacks and profile apply to the shared torch trainer; backbone %r is fit by "
                        "scikit-learn, so they are not used", backbone)
        if spawn:
            opts.to_json()
        return opts

    def to_json(self) -> dict:
        return {"loggers": self.loggers.to_json(), "callbacks": cb.to_specs(self.callbacks),
                "profile": self.profile or False}

    def trainer_kwargs(self, task, run_dir) -> dict:
        return {"loggers": self.loggers, "callbacks": self.callbacks, "profile": self.profile,
                "project": f"edu-flash-{task.task_name}", "run_name": _run_name(task, run_dir),
                "config": {"task": task.task_name, "backbone": str(task.backbone)}}

    def trainer_for_classical(self, run_dir, task):
        """Explicitly asked-for trackers also record a scikit-learn fit: its hyperparameters now, the
        card when `close(card)` is called. None when there is nothing to record."""
        spec = tracking.LoggerSpec(trackers=self.loggers.trackers, custom=self.loggers.custom)
        if not self.explicit_loggers or not (spec.trackers or spec.custom):
            return None
        t = tracking.Tracking(spec, run_dir, project=f"edu-flash-{task.task_name}", run_name=_run_name(task, run_dir))
        t.start(None, {"task": task.task_name, "backbone": str(task.backbone), **task.hparams.to_dict()}, main=True)
        return t


def _run_name(task, run_dir) -> str:
    from pathlib import Path

    return f"{Path(str(task.backbone)).name}-{Path(run_dir).name}"

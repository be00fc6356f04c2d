"""edu-flash: ready-made educational AI tasks on one shared trainer.

Task classes are found through the registry on first use, so `import edu_flash` stays fast and
imports no transformers, diffusers or datasets.
"""
from __future__ import annotations

__version__ = "0.1.0"

from .core.errors import (CheckpointError, ConfigError, DataError, DistributedError, EduFlashError,  # noqa: E402
                          MissingColumnError, NotFittedError, UnknownLabelError)
from .core.task import Task  # noqa: E402


def tasks() -> dict[str, type]:
    """All registered task classes by task name."""
    from .core.registry import discover

    return discover()


def compare(task, backbones=None, train=None, test=None, **kwargs):
    """Train several backbones of one task on the same data; a leaderboard DataFrame, best first
    (see `edu_flash.leaderboard.compare` for every option)."""
    from .leaderboard import compare as _compare

    return _compare(task, backbones, train, test, **kwargs)


def tune(task, space, train, val=None, **kwargs):
    """Hyperparameter search on Optuna, pruned by the trainer's validation metric each epoch; a
    TuneResult with the study's table and the best trained task (see `edu_flash.tuning.tune`)."""
    from .tuning import tune as _tune

    return _tune(task, space, train, val, **kwargs)


def __getattr__(name: str):
    for cls in tasks().values():
        if cls.__name__ == name:
            return cls
    raise AttributeError(f"module 'edu_flash' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + [c.__name__ for c in tasks().values()])

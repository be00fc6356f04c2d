"""Where tasks and backbones are found: tasks register themselves by subclassing `Task`; their
backbones are a class attribute. Surfaces (CLI, compare, recipes) ask here instead of keeping lists.
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import Callable

TASKS: dict[str, type] = {}
_NOT_TASKS = {"core", "cli"}


@dataclass(frozen=True)
class Backbone:
    """A named model family a task can train.

    engine: "torch" (trained by the shared trainer) or "sklearn" (fit in-process).
    source: what the task builds it from: a hub id, a local folder, or a callable returning one
    (so an optional package that ships weights is looked up only when the backbone is used).
    """

    name: str
    engine: str = "torch"
    source: str | Callable[[], str] | None = None
    about: str = ""

    def resolve(self) -> str | None:
        return self.source() if callable(self.source) else self.source


def register_task(cls: type) -> None:
    name = getattr(cls, "task_name", None)
    if name:
        TASKS[name] = cls


def discover() -> dict[str, type]:
    """Import every task package under edu_flash (cheap: task modules import engines lazily)."""
    import edu_flash

    for mod in pkgutil.iter_modules(edu_flash.__path__):
        if mod.ispkg and mod.name not in _NOT_TASKS and not mod.name.startswith("_"):
            importlib.import_module(f"edu_flash.{mod.name}")
    return dict(TASKS)


def get_task(name: str) -> type:
    from .errors import ConfigError

    tasks = discover()
    for cls in tasks.values():
        if name in (cls.task_name, cls.__name__):
            return cls
    raise ConfigError(f"unknown task {name!r}; available: {sorted(c.__name__ for c in tasks.values())}")

"""Where tasks and backbones are found: tasks register themselves by subclassing `Task`; their
backbones are a class attribute. Surfaces (CLI, compare, recipes) ask here instead of keeping lists.

Offline by default: a backbone or model name is a registered name or an existing folder; only an
explicit hub id (`owner/name`, whose owner is not a local folder) is looked up on the Hugging Face
Hub, and when the hub cannot be reached the error says so at once instead of a retrying traceback.
"""
from __future__ import annotations

import importlib
import os
import pkgutil
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

TASKS: dict[str, type] = {}
_NOT_TASKS = {"core", "cli"}


@dataclass(frozen=True)
class Backbone:
    """A named model family a task can train.

    engine: "torch" (trained by the shared trainer), or "sklearn" / "python" (fit in-process by the task's
    `_fit_classical`: a scikit-learn model, or plain Python such as ProblemGenerator's templates).
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


ENTRY_POINT_GROUP = "edu_flash.tasks"
_plugins: dict[str, str] = {}  # entry point name -> the object it names, or why it failed to load
_plugins_loaded = False


def discover() -> dict[str, type]:
    """Import every task package under edu_flash (cheap: task modules import engines lazily), then
    the tasks other installed packages declare in the entry-point group `edu_flash.tasks`."""
    import edu_flash

    for mod in pkgutil.iter_modules(edu_flash.__path__):
        if mod.ispkg and mod.name not in _NOT_TASKS and not mod.name.startswith("_"):
            importlib.import_module(f"edu_flash.{mod.name}")
    _load_plugins()
    return dict(TASKS)


def _load_plugins() -> None:
    """Entry points (`[project.entry-points."edu_flash.tasks"] my_task = "my_pkg.task:MyTask"`, or a
    module whose Task subclasses register themselves), loaded once per process. A plugin that fails
    to import, or whose task name is taken by a built-in task, is skipped with a warning: one broken
    package must not break the CLI or the other tasks."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    import logging
    from importlib.metadata import entry_points

    log = logging.getLogger("edu_flash.registry")
    builtin = dict(TASKS)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
        except Exception as e:  # noqa: BLE001 - a plugin's own error, reported and skipped
            _plugins[ep.name] = f"failed: {type(e).__name__}: {e}"
            log.warning("edu-flash: task plugin %r (%s) could not be loaded: %s: %s", ep.name, ep.value,
                        type(e).__name__, e)
            continue
        _plugins[ep.name] = ep.value
        if isinstance(obj, type) and getattr(obj, "task_name", None) and obj.task_name not in TASKS:
            register_task(obj)
    for name, cls in builtin.items():  # a plugin may add tasks, never replace a built-in one
        if TASKS.get(name) is not cls:
            log.warning("edu-flash: a plugin's task %s uses the name %r of a built-in task; it is ignored",
                        TASKS[name].__qualname__, name)
            TASKS[name] = cls


def plugins() -> dict[str, str]:
    """The `edu_flash.tasks` entry points found: name -> the object it names, or why it failed."""
    discover()
    return dict(_plugins)


def get_task(name: str) -> type:
    from .errors import ConfigError

    tasks = discover()
    for cls in tasks.values():
        if name in (cls.task_name, cls.__name__):
            return cls
    raise ConfigError(f"unknown task {name!r}; available: {sorted(c.__name__ for c in tasks.values())}")


HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def is_hub_id(name: str) -> bool:
    """`owner/name`, not an existing path, and not a path under an existing local folder (`runs/esay`)."""
    name = str(name)
    return bool(HUB_ID.match(name)) and not os.path.exists(name) and not os.path.isdir(name.split("/")[0])


def closest(name: str, names) -> str | None:
    """The registered name a typo most likely meant (case-insensitive), or None."""
    names = list(names)
    lower = {n.lower(): n for n in names}
    import difflib

    hit = difflib.get_close_matches(str(name).lower(), list(lower), n=1, cutoff=0.6)
    return lower[hit[0]] if hit else None


def takes_hub_models(task_cls) -> bool:
    """A task whose registered backbones load from the hub also takes any Hugging Face folder or hub id."""
    return any(b.source is not None for b in task_cls.backbones.values())


def check_backbone(task_cls, name) -> None:
    """ConfigError at once for a name that is neither registered, nor a folder, nor an explicit hub id."""
    from .errors import ConfigError

    if not isinstance(name, str) or not name:
        raise ConfigError(f"backbone must be a registered name or a model folder, got {name!r}")
    if name in task_cls.backbones:
        return
    hf = takes_hub_models(task_cls)
    if hf and (os.path.isdir(name) or is_hub_id(name)):
        return
    guess = closest(name, task_cls.backbones)
    what = ("neither a registered backbone, nor an existing model folder, nor a hub id (owner/name)" if hf
            else "not a registered backbone")
    raise ConfigError(f"unknown backbone {name!r} for {task_cls.__name__}: {what}; available: "
                      f"{list(task_cls.backbones)}" + (f"; did you mean {guess!r}?" if guess else ""))


def check_hub_source(source: str, what: str) -> None:
    """Make sure a hub id can be loaded (from the local cache, or the hub) before any training starts."""
    from .errors import ConfigError

    if os.path.isdir(source):
        return
    if not is_hub_id(source):
        raise ConfigError(f"{what}: the folder {source!r} does not exist")
    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    if isinstance(try_to_load_from_cache(source, "config.json"), str):
        return  # in the local cache
    _hub_call(lambda: hf_hub_download(source, "config.json", etag_timeout=5), source, what, ConfigError)


def download_model(repo_id: str) -> Path:
    """A saved edu-flash model from the hub (only for an explicit hub id)."""
    from .errors import CheckpointError

    return Path(_hub_call(lambda: __import__("huggingface_hub").snapshot_download(repo_id, etag_timeout=5),
                          repo_id, f"model {repo_id!r}", CheckpointError))


def _probe_hub() -> None:
    """Raise at once when the hub's host cannot be reached: huggingface_hub would retry for ~25 s."""
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        raise ConnectionError("HF_HUB_OFFLINE is set")
    if any(os.environ.get(k) for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return  # only the proxy knows
    url = urlparse(constants.ENDPOINT)
    socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)), timeout=3).close()


def _hub_call(fn, repo_id: str, what: str, error: type):
    try:
        _probe_hub()
        return fn()
    except Exception as e:  # noqa: BLE001 - every hub failure becomes one clear line
        from huggingface_hub.errors import RepositoryNotFoundError

        local = f"there is no local folder {repo_id!r}"
        if isinstance(e, RepositoryNotFoundError):
            raise error(f"{what}: {local}, and the Hugging Face Hub has no such repository "
                        "(or it is private)") from None
        raise error(f"{what}: {local}, and the Hugging Face Hub could not be reached to fetch it "
                    f"({type(e).__name__}: {str(e)[:120]}). Download it where you are online, or pass a "
                    "local folder") from None

"""Atomic folder writes and JSON helpers: a crash never leaves a half-written model folder behind,
and a save killed at any point leaves a loadable folder (the old one or the new one).

An overwriting save goes through names beside the target that carry the writer's host and pid:
  1. write everything into `.<name>.tmp-<host>-<pid>-<random>`   (incomplete until renamed)
  2. rename it to `.<name>.new-<host>-<pid>`                       (complete)
  3. rename the old target to `.<name>.old-<host>-<pid>`
  4. rename the new folder to the target
  5. delete the old folder
A process killed between two steps leaves leftovers whose owner is dead: `recover` puts the newest
complete folder back at the target (new, else old), and `settle` (run by the next save, and by
the trainer for its checkpoints) removes what is left. Leftovers of a live process or of another
machine are never touched.
"""
from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import re
import shutil
import time
from pathlib import Path

# `.name.kind-host-pid[-random]`; older releases wrote `.name.old-pid` and `.name.tmp-random`.
_LEFTOVER = re.compile(r"^\.(?P<name>.+)\.(?P<kind>tmp|new|old)-(?:(?P<host>[0-9a-f]{8})-(?P<pid>\d+)(?:-.*)?"
                       r"|(?P<legacy_pid>\d+)|(?P<legacy>[A-Za-z0-9_]+))$")
_LEGACY_STALE_S = 3600.0  # an old-style temp folder with no owner recorded is stale after an hour


@functools.lru_cache(maxsize=None)
def _host() -> str:
    """This machine, as 8 hex digits (hashlib and socket imported here: `import edu_flash` stays fast)."""
    import hashlib
    import socket

    return hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]


def _tag() -> str:
    return f"{_host()}-{os.getpid()}"  # after a fork the pid changes


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    if os.name == "nt":  # os.kill(pid, 0) would send CTRL_C_EVENT there
        try:
            import psutil

            return psutil.pid_exists(pid)
        except ImportError:
            return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but belongs to someone else, or unknown: leave it alone
        return True
    return True


def _owner_gone(m: re.Match, path: Path) -> bool:
    if m["host"] is not None:
        return m["host"] == _host() and not _alive(int(m["pid"]))
    if m["legacy_pid"] is not None:
        return not _alive(int(m["legacy_pid"]))
    try:
        return time.time() - path.stat().st_mtime > _LEGACY_STALE_S
    except OSError:
        return False


def leftovers(target: str | os.PathLike, *, stale_only: bool = True) -> list[tuple[str, Path]]:
    """(kind, path) of the temp / new / old folders an interrupted save of `target` left beside it."""
    target = Path(target).absolute()
    if not target.parent.is_dir():
        return []
    out = []
    for p in target.parent.iterdir():
        m = _LEFTOVER.match(p.name)
        if m and m["name"] == target.name and (not stale_only or _owner_gone(m, p)):
            out.append((m["kind"], p))
    return out


def recover(target: str | os.PathLike, *, wait_s: float = 2.0) -> bool:
    """If `target` is missing because a save was interrupted mid-swap, put the newest complete
    folder back (the new one, else the old one). True when something was restored.

    A swap by a live process finishes within microseconds: wait for it rather than race it.
    """
    target = Path(target).absolute()
    deadline = time.monotonic() + wait_s
    while not target.exists():
        found = leftovers(target, stale_only=False)
        stale = {p for _, p in leftovers(target)}
        done = sorted((p for k, p in found if k == "new" and p in stale), key=_mtime, reverse=True) \
            + sorted((p for k, p in found if k == "old" and p in stale), key=_mtime, reverse=True)
        if done:
            try:
                os.replace(done[0], target)
                return True
            except OSError:  # someone else restored it first
                continue
        if not any(k in ("new", "old") for k, _ in found) or time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return False


def settle(target: str | os.PathLike) -> None:
    """Restore an interrupted save of `target`, then delete its stale leftovers."""
    target = Path(target).absolute()
    recover(target, wait_s=0.0)
    for kind, p in leftovers(target):
        if kind == "tmp" or target.exists():  # never delete the last complete copy
            shutil.rmtree(p, ignore_errors=True)


def settle_all(folder: str | os.PathLike) -> None:
    """`settle` every target in `folder` that has leftovers (e.g. a run's checkpoints/)."""
    folder = Path(folder)
    if folder.is_dir():
        for name in {m["name"] for m in map(_LEFTOVER.match, (p.name for p in folder.iterdir())) if m}:
            settle(folder / name)


def _new_dir(prefix: Path) -> Path:
    """A fresh folder named prefix + random, with the permissions of any folder the user makes
    (tempfile.mkdtemp's would be 0700, and the renamed model folder unreadable to anyone else)."""
    while True:
        p = prefix.with_name(prefix.name + os.urandom(4).hex())
        try:
            p.mkdir()
            return p
        except FileExistsError:
            continue


def _mtime(p: Path) -> float:
    try:
        return p.stat().st_mtime
    except OSError:
        return 0.0


@contextlib.contextmanager
def atomic_folder(target: str | os.PathLike):
    """Yield a temp folder beside `target`; on success it replaces `target` (steps in the module doc).

    On any exception the temp folder is removed and an existing `target` is left untouched; a
    process killed at any step leaves the old or the new folder, restored by `recover`.
    """
    target = Path(target).absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    settle(target)
    tag = _tag()
    tmp = _new_dir(target.with_name(f".{target.name}.tmp-{tag}-"))
    new, old = target.with_name(f".{target.name}.new-{tag}"), target.with_name(f".{target.name}.old-{tag}")
    try:
        yield tmp
        os.replace(tmp, new)
        if target.exists():
            os.replace(target, old)
        os.replace(new, target)
    except BaseException:
        if not target.exists() and old.exists():  # failed mid-swap: the old folder goes back
            os.replace(old, target)
        for p in (tmp, new):
            shutil.rmtree(p, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _jsonable(o):
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if hasattr(o, "item") and callable(o.item) and getattr(o, "ndim", 1) == 0:  # numpy / torch scalars
        return _jsonable(o.item())
    return o


def write_json(path: str | os.PathLike, obj) -> None:
    Path(path).write_text(json.dumps(_jsonable(obj), indent=2, sort_keys=False) + "\n", encoding="utf-8")


def read_json(path: str | os.PathLike):
    return json.loads(Path(path).read_text(encoding="utf-8"))


def isatty(stream) -> bool:
    """Whether a progress bar can draw on `stream`: False for None (pythonw) or a closed stream."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False

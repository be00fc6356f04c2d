"""`finetune(devices=N)` from a plain Python process: a script (with or without a main guard),
`python -c`, stdin, a notebook or a REPL.

The caller stays the driver. It writes what the workers need into a hand-over folder in run_dir
(job.json, the data as Parquet/Arrow files — core.handoff — and its current weights as a saved
model; no pickle anywhere) and starts N fresh interpreters on `python -m edu_flash.core.worker`,
so the caller's `__main__` is never imported again. Each worker trains as one rank (gloo on CPU,
nccl on GPU; accelerate reads RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT from the
environment) and rank 0 saves the result, which the caller loads with `_load_weights`.

Nothing waits forever: every rank beats a heartbeat file and the collectives time out after the
`timeout` hyperparameter, so a rank that stops (SIGSTOP, a hung call) becomes
`DistributedError("worker rank 1 stopped responding for N s")` within `timeout` seconds, and a
rank that dies becomes a `DistributedError` naming it and how it died (or the worker's own
edu-flash error). The other workers are then stopped and the hand-over folder removed; one left by
a caller that was killed is removed by the next run in that run_dir.

Under torchrun / accelerate launch / srun + torchrun, WORLD_SIZE is already set: nothing is spawned
and the calling process trains as its rank (`under_launcher()`).
"""
from __future__ import annotations

import codecs
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from . import errors
from .errors import ConfigError, DistributedError
from .io import isatty, read_json, write_json

log = logging.getLogger("edu_flash.launch")

POLL_S = 0.2
STALE_UNLOCKED_S = 60.0  # a hand-over folder without its lock file (an older release, or a crash while
                         # creating it) counts as abandoned after this long


def under_launcher() -> bool:
    """True when an external launcher (torchrun, accelerate launch) made this process one rank."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1") or 1) > 1
    except ValueError:
        return False


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------------ hand-over folders
def hold_handoff(folder: Path):
    """A shared lock on folder/.lock for as long as this process lives: the folder is in use."""
    try:
        import fcntl
    except ImportError:  # no flock (Windows): age alone decides what is stale
        return None
    fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_SH)
    return fd


def _new_handoff(run_dir: Path) -> tuple[Path, int | None]:
    """A fresh hand-over folder whose `.lock` is held from the moment it exists (locked under another
    name, then renamed), so a cleaner running alongside never sees it unlocked."""
    folder = Path(tempfile.mkdtemp(prefix=".handoff-", dir=run_dir))
    try:
        import fcntl
    except ImportError:
        return folder, None
    fd = os.open(folder / ".lock.new", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_SH)
    os.replace(folder / ".lock.new", folder / ".lock")
    return folder, fd


def _abandoned(folder: Path) -> bool:
    lock = folder / ".lock"
    try:
        import fcntl
    except ImportError:
        return time.time() - folder.stat().st_mtime > 24 * 3600
    if not lock.exists():
        return time.time() - folder.stat().st_mtime > STALE_UNLOCKED_S
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # only possible when no caller or worker holds it
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def clean_stale_handoffs(run_dir) -> list[Path]:
    """Remove the hand-over folders of earlier `devices=N` runs whose caller and workers are gone
    (killed before they could clean up); folders of runs still going are left alone."""
    removed = []
    for folder in Path(run_dir).glob(".handoff-*"):
        try:
            if folder.is_dir() and _abandoned(folder):
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
        except OSError:  # vanished meanwhile, or not ours to read
            continue
    if removed:
        log.info("removed %d hand-over folder(s) left by killed runs in %s", len(removed), run_dir)
    return removed


# ------------------------------------------------------------------------------ the caller's side
def _class_path(cls) -> str:
    if cls.__module__ == "__main__" or "<locals>" in cls.__qualname__:
        where = "in __main__ (a script, notebook or REPL)" if cls.__module__ == "__main__" else "inside a function"
        raise ConfigError(f"{cls.__name__} is defined {where}: worker processes rebuild the task by importing its "
                          "class and never run the caller's code, so define the class in an importable module "
                          "(or train with devices=1)")
    return f"{cls.__module__}:{cls.__qualname__}"


def _worker_env(handoff: Path, devices: int, rank: int, port: int) -> dict:
    import edu_flash

    root = str(Path(edu_flash.__file__).resolve().parent.parent)  # this edu_flash, whatever the cwd holds
    path = os.pathsep.join([root, *filter(None, [os.environ.get("PYTHONPATH")])])
    return {**os.environ, "PYTHONPATH": path, "PYTHONSAFEPATH": "1", "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port), "WORLD_SIZE": str(devices), "RANK": str(rank), "LOCAL_RANK": str(rank),
            "LOCAL_WORLD_SIZE": str(devices), "PYTHONUNBUFFERED": "1"}


class _Relay(threading.Thread):
    """Copies a worker's stdout/stderr into the caller's streams (so a notebook shows them) and
    keeps the tail for error messages."""

    def __init__(self, pipe, out):
        super().__init__(daemon=True)
        self.pipe, self.out, self.tail = pipe, out, ""
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def run(self):
        fd = self.pipe.fileno()
        while chunk := os.read(fd, 65536):
            text = self.decoder.decode(chunk)
            self.tail = (self.tail + text)[-4000:]
            try:
                self.out.write(text)
                self.out.flush()
            except (OSError, ValueError, AttributeError):  # the caller's stream was closed, or is None (pythonw)
                pass


class _Workers:
    """N worker processes, their heartbeats, and what became of them."""

    def __init__(self, handoff: Path, devices: int, timeout: float):
        self.handoff, self.timeout = handoff, timeout
        port, self.procs, self.relays = _free_port(), [], []
        executable = sys.executable
        if not executable:
            raise ConfigError("devices=N needs a Python executable to start worker processes (sys.executable is "
                              "empty in this embedded interpreter); use torchrun instead")
        self.started = time.monotonic()
        for rank in range(devices):
            p = subprocess.Popen([executable, "-m", "edu_flash.core.worker", str(handoff), str(rank)],
                                 env=_worker_env(handoff, devices, rank, port), cwd=os.getcwd(),
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            self.procs.append(p)
            for pipe, out in ((p.stdout, sys.stdout), (p.stderr, sys.stderr)):
                self.relays.append(_Relay(pipe, out))
                self.relays[-1].start()
        self.beats = [None] * devices
        self.last_beat = [self.started] * devices
        self.killed: set[int] = set()

    def _read_beats(self) -> None:
        now = time.monotonic()
        for r in range(len(self.procs)):
            try:
                beat = (self.handoff / f"heartbeat-rank{r}").read_text()
            except OSError:
                continue
            if beat and beat != self.beats[r]:
                self.beats[r], self.last_beat[r] = beat, now

    def silent_for(self, rank: int) -> float:
        return time.monotonic() - self.last_beat[rank]

    def wait(self) -> None:
        """Until every worker has exited 0; raises DistributedError (or the worker's own edu-flash
        error) when one fails, dies or stops responding for `timeout` seconds."""
        while True:
            self._read_beats()
            codes = [p.poll() for p in self.procs]
            if all(c == 0 for c in codes):
                return
            failed = [r for r, c in enumerate(codes) if c not in (None, 0)]
            stalled = [r for r, c in enumerate(codes) if c is None and self.silent_for(r) > self.timeout]
            if stalled:
                raise self._stop(stalled_rank=stalled[0])
            if failed:
                self._settle()
                raise self._stop()
            time.sleep(POLL_S)

    def _settle(self, grace: float = 3.0) -> None:
        """A peer that failed because of another rank's failure writes its error within moments."""
        end = time.monotonic() + grace
        while time.monotonic() < end and any(p.poll() is None for p in self.procs):
            self._read_beats()
            time.sleep(POLL_S)

    def shutdown(self) -> None:
        """Kill the workers still running, reap them all, and drain their output."""
        for r, p in enumerate(self.procs):
            if p.poll() is None:
                p.kill()  # SIGKILL also ends a stopped process
                self.killed.add(r)
        for p in self.procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        for p in self.procs:
            if p.stdin:
                p.stdin.close()
        for t in self.relays:
            t.join(timeout=5)

    def _stop(self, stalled_rank: int | None = None) -> Exception:
        silent = {r: self.silent_for(r) for r in range(len(self.procs)) if self.procs[r].poll() is None}
        states = {r: _process_state(self.procs[r].pid) for r in silent}
        self.shutdown()
        return self.cause(stalled_rank, silent, states)

    def cause(self, stalled_rank, silent: dict, states: dict) -> Exception:
        """The root cause, in this order: a worker's own edu-flash error; a rank that stopped
        responding (peers waiting on it fail with timeouts or broken connections); a rank that died
        without raising (signal, os._exit, the out-of-memory killer); a rank that raised."""
        reports = {}
        for f in sorted(self.handoff.glob("error-rank*.json")):
            try:
                info = read_json(f)
            except (OSError, ValueError):  # killed while writing it
                continue
            reports[info["rank"]] = info
            cls = getattr(errors, info.get("type", ""), None)
            if (info.get("module", "").startswith("edu_flash") and isinstance(cls, type)
                    and issubclass(cls, errors.EduFlashError) and cls is not DistributedError):
                return cls(f"{info['message']} (in worker rank {info['rank']})")
        beat_gap = max(3 * _beat_s(self.timeout), 5.0)
        quiet = [r for r, s in silent.items() if s > beat_gap]
        if stalled_rank is not None or quiet:
            r = stalled_rank if stalled_rank is not None else max(quiet, key=silent.get)
            return DistributedError(f"worker rank {r} stopped responding for {silent[r]:.0f} s (no heartbeat; "
                                    f"timeout={self.timeout:g} s){_STATE_HINTS.get(states.get(r), '')}; "
                                    "the other workers were stopped")
        codes = {r: p.returncode for r, p in enumerate(self.procs) if r not in self.killed}
        died = [(r, c) for r, c in codes.items() if c not in (0, 1) and r not in reports]
        if died:
            rank, code = died[0]
            if code < 0:
                how = f"signal {signal.Signals(-code).name}"
                if code == -signal.SIGKILL:
                    how += " — often the kernel's out-of-memory killer: try a smaller batch_size"
            else:
                how = f"exit code {code}"
            return DistributedError(f"worker rank {rank} died ({how}); the other workers were stopped"
                                    + _tail(self.relays[2 * rank + 1].tail))
        if reports:  # the first to raise; the others usually saw its broken connection
            info = min(reports.values(), key=lambda i: (i.get("time", 0), i["rank"]))
            waited_for = [str(r) for r in silent if r != info["rank"]]
            if waited_for and _TIMED_OUT.search(info["message"]):
                return DistributedError(
                    f"worker rank {info['rank']} waited {self.timeout:g} s in a collective operation for rank(s) "
                    f"{', '.join(waited_for)}, which kept running but never joined it (timeout={self.timeout:g} s); "
                    f"the workers were stopped.\n{info['type']}: {info['message']}"
                    + _tail(self.relays[2 * int(waited_for[0]) + 1].tail))
            return DistributedError(f"worker rank {info['rank']} failed with {info['type']}: {info['message']}; "
                                    f"the other workers were stopped.\n{info['traceback']}")
        rank = min(codes, default=0)
        return DistributedError(f"worker rank {rank} exited with code {codes.get(rank)} before it could report an "
                                "error" + _tail(self.relays[2 * rank + 1].tail))


_TIMED_OUT = re.compile(r"timed out|timeout", re.I)
_STATE_HINTS = {"T": " — its process is stopped (SIGSTOP, Ctrl-Z or a debugger)",
                "t": " — its process is stopped by a debugger",
                "D": " — its process is blocked in the kernel (uninterruptible I/O, e.g. a hung network disk)"}


def _process_state(pid: int) -> str | None:
    """Linux's one-letter process state (R, S, D, T, Z ...), or None where /proc is absent."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2]
    except (OSError, ValueError, IndexError):
        return None


def _tail(text: str) -> str:
    text = "\n".join(line.rsplit("\r", 1)[-1] for line in text.strip().splitlines())  # progress bars: last state
    return f"\nits last output:\n{text[-2000:]}" if text else ""


def _beat_s(timeout: float) -> float:
    """Heartbeat period: once a second, faster for short timeouts."""
    return min(1.0, timeout / 10)


def spawn_finetune(task, data, val, *, hp, devices: int, strategy: str, resume: bool, run_dir,
                   progress: bool | None, max_memory, data_kwargs: dict, train_options: dict | None = None,
                   threads: int | None = None):
    """Train `task` in `devices` worker processes; load the result into `task` and return it."""
    import torch

    from .handoff import Writer
    from .trainer import TrainReport, check_config

    check_config(hp, strategy, max_memory)
    if torch.cuda.is_available() and devices > torch.cuda.device_count():
        raise ConfigError(f"devices={devices} but this machine has {torch.cuda.device_count()} GPU(s)")
    if not torch.cuda.is_available() and devices > (os.cpu_count() or 1):
        log.warning("devices=%d CPU processes on %d cores: expect slow training", devices, os.cpu_count() or 1)
    task_class = _class_path(type(task))
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    handoff, lock = _new_handoff(run_dir)
    try:
        w = Writer(handoff)
        args = {"data": w.pack(data, "data"), "val": w.pack(val, "val"),
                "kwargs": {k: w.pack(v, k) for k, v in data_kwargs.items()}}
        init = str(task.save_pretrained(handoff / "init")) if task.model is not None else None
        write_json(handoff / "job.json", {
            "task_class": task_class, "backbone": task.backbone, "hparams": hp.to_dict(), "state": task.state,
            "card": task.card.to_dict(), "init": init, "args": args, "devices": devices, "strategy": strategy,
            "resume": resume, "run_dir": str(run_dir), "max_memory": max_memory,
            "train_options": train_options or {},  # loggers / callbacks / profile as JSON (core.run_options)
            "progress": isatty(sys.stderr) if progress is None else progress,
            "sys_path": [p for p in sys.path if isinstance(p, str)],
            "threads": threads, "beat_s": _beat_s(hp.timeout)})  # threads: each worker's share (core.threads)
        workers = _Workers(handoff, devices, hp.timeout)
        try:
            workers.wait()
        finally:  # on a failure, or KeyboardInterrupt in a notebook, this takes the workers down too
            workers.shutdown()
        folder = handoff / "model"
        if not (folder / "config.json").exists():
            raise DistributedError("the workers finished but rank 0 handed back no model")
        cfg = read_json(folder / "config.json")
        from .card import CardData

        task.state = cfg.get("state", {})
        task.card = CardData.from_dict(cfg.get("card"))
        task._load_weights(folder, cfg)
        task.last_train_report = TrainReport(**read_json(handoff / "report.json"))
        return task
    finally:
        if lock is not None:
            os.close(lock)
        shutil.rmtree(handoff, ignore_errors=True)

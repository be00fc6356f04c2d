"""`finetune(devices=N)` from a plain Python process (a script or a notebook).

The caller stays the driver: it starts N worker processes with torch.multiprocessing (gloo on CPU,
nccl on GPU; accelerate reads RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT from the environment),
each worker runs the ordinary in-process `Task.finetune` as one rank, and rank 0 hands the trained
weights back through the task's own `save_pretrained` into a temporary folder that the caller
loads with `_load_weights` (safetensors + JSON, no pickle in files). A worker that fails or dies
stops the others and becomes a `DistributedError` (or the worker's own edu-flash error) in the
caller; the temporary folder is always removed, so no half-written model is left behind.

Under torchrun / accelerate launch / srun + torchrun, WORLD_SIZE is already set: nothing is spawned
and the calling process trains as its rank (`under_launcher()`).
"""
from __future__ import annotations

import copy
import dataclasses
import logging
import os
import shutil
import signal
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import errors
from .errors import ConfigError, DistributedError
from .io import read_json, write_json

log = logging.getLogger("edu_flash.launch")

_MAIN_GUARD_HINT = ("If you started this from a script, put the training code under "
                    "`if __name__ == \"__main__\":` (worker processes re-import the script).")


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


@dataclass
class _Payload:
    """Everything a worker needs to rebuild the task and train it as one rank."""

    cls: type
    backbone: str
    hparams: dict
    state: dict
    card: dict
    init: str | None  # a saved folder holding the caller's current weights, if it had any
    data: Any
    val: Any
    data_kwargs: dict
    devices: int
    strategy: str
    resume: bool
    run_dir: str
    progress: bool | None
    max_memory: Any
    handoff: str
    port: int
    train_options: dict  # loggers / callbacks / profile as JSON (core.run_options), passed to finetune as is


def spawn_finetune(task, data, val, *, hp, devices: int, strategy: str, resume: bool, run_dir,
                   progress: bool | None, max_memory, data_kwargs: dict, train_options: dict | None = None):
    """Train `task` in `devices` worker processes; load the result into `task` and return it."""
    import torch
    import torch.multiprocessing as mp
    from torch.multiprocessing.spawn import ProcessException

    from .trainer import TrainReport, check_config

    check_config(hp, strategy, max_memory)
    if torch.cuda.is_available() and devices > torch.cuda.device_count():
        raise ConfigError(f"devices={devices} but this machine has {torch.cuda.device_count()} GPU(s)")
    if not torch.cuda.is_available() and devices > (os.cpu_count() or 1):
        log.warning("devices=%d CPU processes on %d cores: expect slow training", devices, os.cpu_count() or 1)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    handoff = Path(tempfile.mkdtemp(prefix=".handoff-", dir=run_dir))
    try:
        init = None
        if task.model is not None:  # continue from the caller's weights
            init = str(task.save_pretrained(handoff / "init"))
        payload = _Payload(type(task), task.backbone, hp.to_dict(), task.state, task.card.to_dict(), init, data,
                           val, data_kwargs, devices, strategy, resume, str(run_dir), progress, max_memory,
                           str(handoff), _free_port(), train_options or {})
        ctx = mp.start_processes(_worker, args=(payload,), nprocs=devices, join=False, start_method="spawn")
        try:
            while not ctx.join():
                pass
        except ProcessException as e:
            raise _worker_error(e, handoff, ctx.processes) from None
        except BaseException:  # KeyboardInterrupt in a notebook: take the workers down too
            for p in ctx.processes:
                if p.is_alive():
                    p.kill()
            raise
        folder = handoff / "model"
        cfg = read_json(folder / "config.json")
        from .card import CardData

        task.state = cfg.get("state", {})
        task.card = CardData.from_dict(cfg.get("card"))
        task._load_weights(folder, cfg)
        task.last_train_report = TrainReport(**read_json(handoff / "report.json"))
        return task
    finally:
        shutil.rmtree(handoff, ignore_errors=True)


def _worker_error(e, handoff: Path, processes) -> Exception:
    """The caller's view of a failed worker: its own edu-flash error type if it raised one; else
    the worker that died without raising (a signal, os._exit, the out-of-memory killer), which is
    the root cause even when a peer saw the broken connection and raised first."""
    for f in sorted(handoff.glob("error-rank*.json")):
        info = read_json(f)
        cls = getattr(errors, info.get("type", ""), None)
        if isinstance(cls, type) and issubclass(cls, errors.EduFlashError) and cls is not DistributedError:
            return cls(f"{info['message']} (in worker rank {info['rank']})")
    died = [(i, p.exitcode) for i, p in enumerate(processes) if p.exitcode not in (None, 0, 1, -signal.SIGTERM)]
    if died:
        rank, code = died[0]
        how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
        oom = " — often the kernel's out-of-memory killer: try a smaller batch_size" if code == -signal.SIGKILL else ""
        return DistributedError(f"worker rank {rank} died ({how}{oom}); the other workers were stopped")
    from torch.multiprocessing import ProcessExitedException

    rank = getattr(e, "error_index", "?")
    if isinstance(e, ProcessExitedException) and e.exit_code == 1:  # exited before torch's wrapper ran
        return DistributedError(f"worker rank {rank} exited while starting. {_MAIN_GUARD_HINT}")
    return DistributedError(f"worker rank {rank} failed; the other workers were stopped.\n{str(e).strip()}")


def _worker(local_rank: int, p: _Payload) -> None:
    """One rank: rebuild the task, train in-process, rank 0 saves the result for the caller."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(p.port), WORLD_SIZE=str(p.devices),
                      RANK=str(local_rank), LOCAL_RANK=str(local_rank), LOCAL_WORLD_SIZE=str(p.devices))
    import torch

    if not torch.cuda.is_available():  # share the cores instead of oversubscribing them
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // p.devices))
    handoff = Path(p.handoff)
    try:
        from .card import CardData

        task = p.cls.from_pretrained(p.init) if p.init else p.cls(backbone=p.backbone)
        task.hparams = p.cls.hparams_cls.from_dict(p.hparams)
        task.state, task.card = copy.deepcopy(p.state), CardData.from_dict(p.card)
        task.finetune(p.data, p.val, devices=p.devices, strategy=p.strategy, resume=p.resume, run_dir=p.run_dir,
                      progress=p.progress, max_memory=p.max_memory, **p.train_options, **p.data_kwargs)
        if local_rank == 0:
            task.save_pretrained(handoff / "model")
            write_json(handoff / "report.json", dataclasses.asdict(task.last_train_report))
    except errors.EduFlashError as e:
        write_json(handoff / f"error-rank{local_rank}.json",
                   {"type": type(e).__name__, "message": str(e), "rank": local_rank})
        raise
    finally:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()

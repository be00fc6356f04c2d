"""essay_speed.py's training rows: edu-flash `finetune`, Hugging Face `Trainer` (defaults, and bf16 +
group_by_length) and a bare reference loop, on the same essays and steps. Each returns the wall and
process CPU time of the training call alone, the steps and the final loss (see essay_speed.py)."""
from __future__ import annotations

import csv
import dataclasses
import math
import statistics
import time
from pathlib import Path

from asap import ASAP_RANGES


def scaled(df):
    return [(s - ASAP_RANGES[p][0]) / (ASAP_RANGES[p][1] - ASAP_RANGES[p][0]) for s, p in zip(df["score"], df["prompt"])]


def train_edu(train_df, args, run_dir: Path):
    import edu_flash.core.trainer as T
    from edu_flash import EssayScorer

    timing = {}
    real_fit = T.Trainer.fit

    def timed_fit(self, job, **kw):
        t, c = time.perf_counter(), time.process_time()
        try:
            return real_fit(self, job, **kw)
        finally:
            timing["fit_s"], timing["cpu_s"] = time.perf_counter() - t, time.process_time() - c

    import edu_flash.core.checkpoint as C

    real_save = C.save
    timing["checkpoint_s"] = 0.0

    def timed_save(*a, **kw):  # the epoch-end checkpoints the trainer writes by default
        t = time.perf_counter()
        try:
            return real_save(*a, **kw)
        finally:
            timing["checkpoint_s"] += time.perf_counter() - t

    T.Trainer.fit, C.save = timed_fit, timed_save
    try:
        t0 = time.perf_counter()
        s = EssayScorer(backbone="all-MiniLM-L6-v2", max_length=args.max_length, batch_size=args.batch_size,
                        max_epochs=args.epochs, seed=args.seed)
        s.finetune(train_df, text_column="essay", score_column="score", prompt_column="prompt",
                   score_ranges=ASAP_RANGES, run_dir=run_dir, progress=False)
        total = time.perf_counter() - t0
    finally:
        T.Trainer.fit, C.save = real_fit, real_save
    rep = s.last_train_report
    steps_per_epoch = math.ceil(len(train_df) / args.batch_size)
    losses = [float(r["value"]) for r in csv.DictReader(open(run_dir / "metrics.csv")) if r["metric"] == "train_loss"]
    return s, {"train_s": timing["fit_s"], "end_to_end_s": total, "steps": rep.steps,
               "checkpoint_s": timing["checkpoint_s"], "cpu_s": timing["cpu_s"],
               "essays_per_s": len(train_df) * rep.epochs / timing["fit_s"],
               "final_loss": statistics.mean(losses[-steps_per_epoch:])}


def train_hf(train_df, args, out_dir: Path, *, best: bool):
    import torch
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, Trainer, TrainingArguments

    from edu_flash.essay.task import _minilm_folder

    src = _minilm_folder()
    torch.manual_seed(args.seed)
    tok = AutoTokenizer.from_pretrained(src)
    model = AutoModelForSequenceClassification.from_pretrained(src, num_labels=1, problem_type="regression")
    ds = Dataset.from_dict({"text": train_df["essay"].tolist(), "label": scaled(train_df)})
    ds = ds.map(lambda b: tok(b["text"], truncation=True, max_length=args.max_length), batched=True,
                remove_columns=["text"])
    steps_per_epoch = math.ceil(len(train_df) / args.batch_size)
    extra = {}
    if best:  # transformers 5 renamed `group_by_length=True` to `train_sampling_strategy="group_by_length"`
        fields = {f.name for f in dataclasses.fields(TrainingArguments)}
        from edu_flash.core.precision import native_bf16   # emulated bf16 would be ~9x slower, not "best"

        extra = {"bf16": native_bf16("cpu"), **({"group_by_length": True} if "group_by_length" in fields
                                  else {"train_sampling_strategy": "group_by_length"})}
    targs = TrainingArguments(output_dir=str(out_dir), per_device_train_batch_size=args.batch_size,
                              num_train_epochs=args.epochs, use_cpu=not torch.cuda.is_available(),
                              disable_tqdm=True, logging_steps=steps_per_epoch, seed=args.seed, **extra)
    trainer = Trainer(model=model, args=targs, train_dataset=ds, processing_class=tok)
    t, c = time.perf_counter(), time.process_time()
    out = trainer.train()
    dt, cpu = time.perf_counter() - t, time.process_time() - c
    logged = [r["loss"] for r in trainer.state.log_history if "loss" in r]
    return {"train_s": dt, "end_to_end_s": None, "steps": out.global_step, "cpu_s": cpu,
            "essays_per_s": len(train_df) * args.epochs / dt, "final_loss": logged[-1] if logged else None}


def train_bare(train_df, args):
    """Reference: a bare loop with bf16 autocast (fp32 where bf16 is not native, as edu-flash),
    length-grouped batches (edu-flash's batch_plan), attention dropout 0, and EssayScorer's model and default hyperparameters; no checkpoints, no logs."""
    import torch
    import torch.nn.functional as F

    from edu_flash.core.precision import autocast
    from edu_flash.core.trainer import batch_plan
    from edu_flash.essay.model import build_pretrained
    from edu_flash.essay.task import EssayHParams, _minilm_folder

    hp = EssayHParams()
    torch.manual_seed(args.seed)
    model, tok = build_pretrained(_minilm_folder(), dropout=hp.dropout, attention_dropout=0.0, pooling="mean")
    ids = tok(train_df["essay"].tolist(), truncation=True, max_length=args.max_length)["input_ids"]
    y_all = scaled(train_df)
    lengths = [len(x) for x in ids]
    from bare_loop import adamw_linear

    total = math.ceil(len(ids) / args.batch_size) * args.epochs
    opt, sched = adamw_linear(model, hp, total)
    model.train()
    losses = []
    t, c = time.perf_counter(), time.process_time()
    for epoch in range(args.epochs):
        for b in batch_plan(len(ids), args.batch_size, seed=args.seed, epoch=epoch, lengths=lengths):
            n = max(lengths[i] for i in b)
            x = torch.zeros((len(b), n), dtype=torch.long)
            m = torch.zeros((len(b), n), dtype=torch.long)
            for r, i in enumerate(b):
                x[r, :lengths[i]] = torch.tensor(ids[i])
                m[r, :lengths[i]] = 1
            with autocast("bf16-mixed", "cpu"):
                loss = F.mse_loss(model(x, m).float(), torch.tensor([y_all[i] for i in b]))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), hp.clip_norm)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            losses.append(loss.item())
    dt, cpu = time.perf_counter() - t, time.process_time() - c
    spe = math.ceil(len(ids) / args.batch_size)
    return {"train_s": dt, "end_to_end_s": None, "steps": total, "cpu_s": cpu, "essays_per_s": len(ids) * args.epochs / dt,
            "final_loss": statistics.mean(losses[-spe:])}

"""Knowledge tracing with real item ids (many items per skill), issue 13's "Also": do `dkt` and
`simplekt` use item ids together with skills, and does a file whose items number in the thousands
train within the time budget of the same file with items collapsed to their skills?

Data: the built-in student simulator (`edu_flash.path.sample.sample_logs`) with many skills and many
items per skill, each item with its own difficulty around its skill's (the signal an item id carries);
the same logs with every item replaced by its skill are the "skills only" file. Same students, same
answers, same epochs (no early stopping), 80/20 split by student, one thread.

    python benchmarks/kt_items.py --threads 1
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--students", type=int, default=3000)
    p.add_argument("--skills", type=int, default=40)
    p.add_argument("--items-per-skill", type=int, default=100)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--backbones", default="dkt,simplekt,pfa")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from edu_flash import PathRecommender
    from edu_flash.path.sample import sample_logs

    print(f"{time.strftime('%Y-%m-%d %H:%M')}; load average at start {os.getloadavg()[0]:.1f}", flush=True)
    logs = sample_logs(args.students, n_skills=args.skills, items_per_skill=args.items_per_skill, min_len=30,
                       max_len=80, two_skill_items=0, seed=0)
    skills_only = logs.assign(item=logs.skill)
    ids = sorted(logs.student.unique())
    cut = ids[int(0.8 * len(ids))]
    files = {"item ids": logs, "skills only": skills_only}
    print(f"{len(logs)} responses, {logs.student.nunique()} students, {logs.item.nunique()} items, "
          f"{logs.skill.nunique()} skills", flush=True)
    configs = []
    for b in args.backbones.split(","):
        configs += [(b, "item ids", {}), (b, "skills only", {})]
        if b == "dkt":
            configs.append((b, "item ids", {"item_bias": False}))
    with tempfile.TemporaryDirectory() as run_dir:   # untimed warm-up: the first fit pays torch's one-time costs
        PathRecommender("dkt", max_epochs=1, val_fraction=0.0, patience=None, plan_models=[]).finetune(
            skills_only[skills_only.student < ids[100]], run_dir=run_dir, progress=False)
    rows = []
    for backbone, kind, extra in configs:
        df = files[kind]
        train, test = df[df.student < cut], df[df.student >= cut]
        hp = {} if backbone in ("pfa", "bkt") else {"max_epochs": args.epochs, "patience": None, "val_fraction": 0.0,
                                                    "window": 100, **extra}
        rec = PathRecommender(backbone, **hp)
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as run_dir:
            rec.finetune(train, run_dir=run_dir, progress=False)
        sec = time.perf_counter() - t0
        m = rec.evaluate(test, unknown="skip")   # test items never seen in training: skipped, counted
        arch = rec.state.get("arch", {})
        rows.append({"backbone": backbone, "file": kind, "items": len(rec.state["vocab"]["items"]),
                     "item terms": {"dkt": lambda: bool(arch.get("item_bias")), "pfa": lambda: rec.model.item_terms,
                                    "simplekt": lambda: "Rasch (always)"}.get(backbone, lambda: "-")(),
                     "settings": json.dumps(extra) if extra else "", "auc": round(m["auc"], 4),
                     "skipped": m["skipped_unknown"],
                     "train_s": round(sec, 1), "s_per_epoch": round(sec / args.epochs, 1) if "max_epochs" in hp else None})
        print(json.dumps(rows[-1]), flush=True)
    print("\n| backbone | file | items | item terms | settings | test AUC | test rows skipped | train s | s / epoch |"
          "\n|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['backbone']} | {r['file']} | {r['items']} | {r['item terms']} | {r['settings']} | {r['auc']} | "
              f"{r['skipped']} | {r['train_s']} | {r['s_per_epoch'] or ''} |")
    print(f"load average at end {os.getloadavg()[0]:.1f}")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()

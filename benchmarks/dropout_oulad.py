"""DropoutPredictor on OULAD: ROC-AUC by course week for each backbone, student-disjoint.

    python benchmarks/dropout_oulad.py --data ../shared/datasets/oulad --threads 1

Two settings (the shared OULAD copy has weekly clicks for 3 of its 22 presentations only):
  clicks     the 3 presentations with clicks (AAA-2013J, AAA-2014J, BBB-2013B; 2,515 registrations),
             static + assessment + click features; 5-fold cross-validation over *people* (id_student),
             so no student is on both sides; each fold's training part gives 15% of its people as
             validation (GRU early stopping, flag threshold).
  no-clicks  all 22 presentations (32,593 registrations), static + assessment features only; one
             80/20 split over people (validation as above).
Backbones: gbm, logreg, gru (one model for every week, `pool_weeks=True`), and the reference
"gbm (per week)": a HistGradientBoosting trained separately at each week on the same features.
Population at week w: registered by week w and not unregistered by week w.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path


def run_setting(data, folds, args, label):
    import pandas as pd

    from edu_flash.dropout import DropoutPredictor

    weeks = list(range(args.first_week, args.last_week + 1))
    tables = []
    for i, (train, test) in enumerate(folds):
        train, val = train.split(0.15, seed=100 + i)
        common = dict(target=args.target, max_week=args.last_week, seed=i, torch_threads=args.threads)
        kw = {"val": val, "progress": False, "run_dir": Path(args.out) / "runs" / label / f"fold{i}"}
        for backbones, pool in ((args.backbones, True), (["gbm"] if args.per_week_gbm else [], False)):
            if not backbones:
                continue
            t0 = time.perf_counter()
            t = DropoutPredictor(backbone=backbones[0], pool_weeks=pool, **common).early_warning(
                test, weeks, train=train, backbones=backbones, png=None, train_kwargs=kw)
            t["fold"] = i
            tables.append(t)
            print(f"[{label}] fold {i}: {', '.join(sorted(set(t['backbone'])))} in {time.perf_counter() - t0:.0f}s",
                  flush=True)
    return pd.concat(tables, ignore_index=True)


def summarise(table):
    auc = table.pivot_table(index="week", columns="backbone", values="roc_auc", aggfunc="mean")
    pr = table.pivot_table(index="week", columns="backbone", values="pr_auc", aggfunc="mean")
    return auc, pr


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/datasets/oulad")
    ap.add_argument("--settings", nargs="+", default=["clicks", "no-clicks"], choices=["clicks", "no-clicks"])
    ap.add_argument("--backbones", nargs="+", default=["gbm", "logreg", "gru"])
    ap.add_argument("--no-per-week-gbm", dest="per_week_gbm", action="store_false")
    ap.add_argument("--target", default="withdrawn", choices=["withdrawn", "at_risk"])
    ap.add_argument("--first-week", type=int, default=1)
    ap.add_argument("--last-week", type=int, default=20)
    ap.add_argument("--folds", type=int, default=5, help="cross-validation folds for the clicks setting")
    ap.add_argument("--out", default="runs/dropout_oulad")
    ap.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP and torch threads (1: fastest on shared cores)")
    args = ap.parse_args(argv)
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # before numpy/sklearn/torch load
        os.environ[k] = str(args.threads)

    import numpy as np

    from edu_flash.dropout import load_oulad
    from edu_flash.dropout.evaluation import plot_by_week

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_all = time.perf_counter()
    report = {"threads": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}}
    for setting in args.settings:
        t0 = time.perf_counter()
        data = load_oulad(args.data, activity="auto" if setting == "clicks" else "none")
        for n in data.notes:
            print(f"[{setting}] note: {n}")
        if setting == "clicks":  # k folds over people
            people = np.array(sorted(set(data.students["group"])))
            rng = np.random.default_rng(0)
            fold_of = dict(zip(rng.permutation(people), np.arange(len(people)) % args.folds))
            f = data.students["group"].map(fold_of).to_numpy()
            ids = data.students["student"].to_numpy()
            folds = [(data.subset(ids[f != k]), data.subset(ids[f == k])) for k in range(args.folds)]
        else:
            folds = [data.split(0.2, seed=0)]
        print(f"[{setting}] {len(data.students)} registrations, {len(folds)} split(s), target={args.target}", flush=True)
        table = run_setting(data, folds, args, setting)
        table.to_csv(out / f"{setting}_by_week.csv", index=False)
        auc, pr = summarise(table)
        plot_by_week(auc.reset_index().melt(id_vars="week", var_name="backbone", value_name="roc_auc"),
                     out / f"{setting}_auc_by_week.png", f"OULAD {setting}: ROC-AUC by week ({args.target})")
        ref = auc["gbm (per week)"] if "gbm (per week)" in auc else auc.get("gbm")
        best = auc.drop(columns=[c for c in auc if c == "gbm (per week)"]).max(axis=1)
        wins = int((best >= ref + 0.01).sum()) if ref is not None else None
        print(f"\n[{setting}] ROC-AUC by week (mean over splits)\n{auc.round(3).to_string()}")
        print(f"\n[{setting}] PR-AUC by week\n{pr.round(3).to_string()}")
        print(f"[{setting}] weeks where the best pooled backbone >= per-week gbm + 0.01: {wins} of {len(auc)}")
        report[setting] = {"registrations": len(data.students), "splits": len(folds),
                           "mean_auc": auc.mean().round(4).to_dict(), "wins_vs_per_week_gbm": wins,
                           "wall_s": round(time.perf_counter() - t0, 1)}
        print(f"[{setting}] wall time {report[setting]['wall_s']}s", flush=True)
    report["wall_s"] = round(time.perf_counter() - t_all, 1)
    (out / "summary.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

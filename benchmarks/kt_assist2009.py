"""Knowledge tracing on ASSISTments 2009 (Piech et al.'s DKT split): next-response AUC/ACC per backbone,
with peer implementations from PyPI trained on the same split and scored the same way, in one run.

Protocol (the same for every model):
* train on `builder_train.csv`; 10% of its students (seeded) are held out for early stopping
  (PathRecommender's `val_fraction=0.1`; the peers get exactly the same students); training
  sequences are cut into windows of 200;
* test on `builder_test.csv`: every response after a student's first is scored exactly once, with
  sliding windows of 200 moved by 100 where only the new part is scored (PFA uses the full history);
* time = wall time of training (including per-epoch validation), as measured here.

The DKT files have no problem ids, so items are the 123 skills (PathRecommender's card says so).
Peers (`pip install juno-dkt EduKTM`; skipped if not importable) train with their own model code and
training loops, one epoch per call so the same early stopping applies; we only encode windows as their
one-hot inputs and read their outputs at the next skill.

    python benchmarks/kt_assist2009.py --data ../shared/datasets/assist2009
    python benchmarks/kt_assist2009.py --data ../shared/datasets/assist2009 --backbones dkt --peers none

Simulated practice paths (`--paths`, the bar of issue 13), staged so each piece can run alone and
models are reused from `--models` (delete a folder to retrain it):

    python benchmarks/kt_assist2009.py --paths --stage models --threads 1    # recommender + simulators
    python benchmarks/kt_assist2009.py --paths --stage paths --threads 1     # the policy comparison

The recommender is `--recommender` (default DKT) trained on all of `builder_train.csv`; the three
simulated students (DKT, PFA, BKT) are trained on half of the `builder_test.csv` students (seeded),
and the practice paths start from the other half: the three groups of students are disjoint.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from kt_peers import EduKTMDKT, Juno, cpu_s, run_peer


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="../shared/datasets/assist2009")
    p.add_argument("--backbones", default="dkt,sakt,simplekt,pfa")
    p.add_argument("--peers", default="juno-dkt,eduktm-dkt", help="comma list, or 'none'")
    p.add_argument("--max-epochs", type=int, default=None, help="default: PathRecommender's (12)")
    p.add_argument("--peer-max-epochs", type=int, default=15)
    p.add_argument("--patience", type=int, default=3, help="early stopping, ours and the peers'")
    p.add_argument("--hparams", default="{}", help='JSON overrides per backbone, e.g. {"dkt": {"lr": 0.001}}')
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default=None, help="write results as JSON here")
    p.add_argument("--paths", action="store_true", help="run the simulated-paths benchmark instead")
    p.add_argument("--stage", default="all", choices=["models", "paths", "all"])
    p.add_argument("--models", default="runs/kt_assist2009", help="where the path benchmark keeps its models")
    p.add_argument("--recommender", default="dkt")
    p.add_argument("--simulators", default="dkt,pfa,bkt")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--n-goal", type=int, default=3)
    p.add_argument("--history-len", type=int, default=20)
    p.add_argument("--max-students", type=int, default=500)
    p.add_argument("--goals", default="next", choices=["next", "random"])
    p.add_argument("--rollouts", type=int, default=1, help="simulated runs per path student, averaged per student")
    p.add_argument("--policy", default="{}", help='JSON planner settings, e.g. {"plan_depth": 1}')
    p.add_argument("--cross", action="store_true", help="also plan with each simulated student's own model "
                   "(its oracle) and with all three together, and score those plans under every simulated student")
    p.add_argument("--halves", action="store_true", help="also score the variants on two seeded halves of the "
                   "path students: a selection half (to choose a default on) and a report half")
    p.add_argument("--halves-seed", type=int, default=1)
    p.add_argument("--variants", default="[]", help="JSON list of other planner settings, each run as the "
                   "recommender only and compared with the same baselines (same students, goals and draws)")
    return p.parse_args(argv)


def run_backbone(name, train_path, test_path, args, overrides):
    from edu_flash import PathRecommender

    hp = {"patience": args.patience, **({"max_epochs": args.max_epochs} if args.max_epochs else {}), **overrides}
    rec = PathRecommender(name, **hp)
    t0, c0 = time.perf_counter(), cpu_s()
    with tempfile.TemporaryDirectory() as run_dir:
        rec.finetune(train_path, run_dir=run_dir, progress=False)
    train_s, train_cpu = time.perf_counter() - t0, cpu_s() - c0
    rep = rec.last_train_report
    m = rec.evaluate(test_path, name="builder_test.csv", unknown="skip")
    return {"model": f"edu-flash {name}", "auc": m["auc"], "acc": m["acc"], "rmse": m["rmse"],
            "responses": m["responses"], "train_s": round(train_s, 1), "train_cpu_s": round(train_cpu, 1),
            "epochs": rep.epochs if rep else None, "best_val_auc": rep.best_metric if rep else None,
            "hparams": {k: v for k, v in rec.hparams.to_dict().items() if v is not None}}, rec


def skill_mean(train_logs, test_logs, n_items):
    """Reference: each skill's training correct rate as the prediction."""
    from sklearn.metrics import roc_auc_score

    s, c = np.zeros(n_items + 1), np.zeros(n_items + 1)
    for i, r in zip(train_logs.items, train_logs.correct):
        np.add.at(s, i, r)
        np.add.at(c, i, 1)
    rate = np.where(c > 0, s / np.maximum(c, 1), s.sum() / c.sum())
    y = np.concatenate([r[1:] for r in test_logs.correct])
    p = np.concatenate([rate[i[1:]] for i in test_logs.items])
    return {"model": "per-skill mean (reference)", "auc": float(roc_auc_score(y, p)),
            "acc": float(((p >= .5) == (y == 1)).mean()), "responses": int(len(y))}


# ------------------------------------------------------------------------------ simulated paths
def run_paths(args):
    """The policy comparison of issue 13 (see the module docstring), staged and resumable."""

    from edu_flash import PathRecommender
    from edu_flash.path.stats import fmt
    from edu_flash.path.study import path_study, sample_outputs, split_students, train_simulators

    data, models = Path(args.data), Path(args.models)
    print(f"{time.strftime('%Y-%m-%d %H:%M')}; {os.cpu_count()} cores; load average at start "
          f"{os.getloadavg()[0]:.1f}", flush=True)
    folder = models / f"rec-{args.recommender}"
    t0 = time.perf_counter()
    if (folder / "config.json").exists():
        rec = PathRecommender.from_pretrained(folder)
    else:
        rec = PathRecommender(args.recommender, patience=args.patience, **json.loads(args.hparams).get(
            args.recommender, {}))
        rec.finetune(data / "builder_train.csv", run_dir=models / "run-rec", progress=False)
        rec.save_pretrained(folder)
        print(f"recommender {args.recommender} trained in {time.perf_counter() - t0:.0f} s", flush=True)
    sims = args.simulators.split(",")
    if args.stage in ("models", "all"):
        sim_df, _ = split_students(rec, data / "builder_test.csv", 0.5, 0)
        t0 = time.perf_counter()
        train_simulators(PathRecommender, sim_df, sims, models_dir=models, run_dir=models / "runs")
        print(f"simulators ready in {time.perf_counter() - t0:.0f} s", flush=True)
    if args.stage == "models":
        return
    set_policy(rec, json.loads(args.policy), data / "builder_train.csv")
    out, path_df, students = path_study(rec, data / "builder_test.csv", simulators=sims, models_dir=models,
                                        steps=args.steps, n_goal=args.n_goal, history_len=args.history_len,
                                        max_students=args.max_students, goals=args.goals, rollouts=args.rollouts,
                                        name="builder_test.csv, path students")
    print(f"\n{out['students']} path students, {out['simulator_students']} simulator students, {out['steps']} "
          f"steps, {out['goal_skills_per_student']} goal skills ({out['goals']}), {out['rollouts']} rollout(s) per "
          f"student; planner {out['planner']}; "
          f"{out['seconds']} s\n")
    print("| simulated student | policy | mean gain [95% CI] | recommender minus this [95% CI] | correct | "
          "goal skills practised | longest repeat |\n|---|---|---|---|---|---|---|")
    for name, r in out["simulators"].items():
        for p, x in r["policies"].items():
            d = r["recommender_minus"].get(p)
            print(f"| {name} | {p} | {fmt(x['gain'])} | {fmt(d) if d else ''} | {x['correct_rate']:.3f} | "
                  f"{x['distinct_goal_skills']:.2f} | {x['longest_run']:.2f} |")
    print()
    for name, r in out["simulators"].items():
        print(f"{name} ({r['about']}): share of the oracle's gain over random {fmt(r['oracle_share'], 3)}; "
              f"bar met: {r['bar_met']}")
    variants(rec, json.loads(args.variants), out, path_df, students, data, args)
    if args.cross:
        cross_oracles(rec, out, path_df, students, args)
    print(f"\nload average at end {os.getloadavg()[0]:.1f}")
    if args.out:
        out["per_student"] = {k: {p: np.asarray(g).tolist() for p, g in v.items()} for k, v in out["per_student"].items()}
        Path(args.out).write_text(json.dumps(out, indent=1, default=float))
    print("\n" + sample_outputs(rec, path_df, n=2))


def set_policy(rec, settings: dict, train_path):
    """Planner settings on a loaded recommender; fits missing planning companions on its training file."""
    from edu_flash.core.data import read_table
    from edu_flash.path import data as D

    rec.hparams = rec.hparams.replace(**settings)
    missing = set(rec.hparams.plan_models) - set(rec.planners) - {rec.backbone}
    rec.planners = {k: v for k, v in rec.planners.items() if k in rec.hparams.plan_models}
    if missing:
        rec._prepare(read_table(D.as_table(str(train_path), "train"), name="train"), None)
        rec._fit_planners()


def variants(rec, settings: list, out, path_df, students, data, args):
    """Each variant's recommender on the same students, goals and random draws as `out`'s baselines.
    With --halves, each variant (and the default) is also scored on two halves of the path students
    (seeded): choose on the selection half, report the other."""
    from edu_flash.path.paths import planner

    if not settings:
        return
    base, planners = rec.hparams, dict(rec.planners)
    runs = [("default", None)]
    for v in settings:
        set_policy(rec, {**{k: getattr(base, k) for k in PLAN_KEYS}, **v}, data / "builder_train.csv")
        print(f"variant {json.dumps(v)}: planner {vars(planner(rec))}", flush=True)
        o = rec.evaluate_paths(path_df, students, policies=[], steps=args.steps, n_goal=args.n_goal,
                               history_len=args.history_len, max_students=args.max_students, goals=args.goals,
                               rollouts=args.rollouts)
        runs.append((json.dumps(v), {k: p["recommender"] for k, p in o["per_student"].items()}))
        out.setdefault("variants", []).append({"settings": v, "per_student": {k: g.tolist() for k, g in runs[-1][1].items()}})
    rec.hparams, rec.planners = base, planners
    n = len(next(iter(out["per_student"].values()))["random"])
    order = np.random.default_rng(args.halves_seed).permutation(n)
    parts = {"all path students": np.arange(n)}
    if args.halves:
        parts.update({"selection half": np.sort(order[:n // 2]), "report half": np.sort(order[n // 2:])})
    for part, idx in parts.items():
        print(f"\n{part} ({len(idx)} students)\n\n| planner | simulated student | gain [95% CI] | minus random | "
              "minus easiest-first | minus round-robin | minus weakest-first | share of oracle |\n|---|---|---|---|---|---|---|---|")
        for name, per in runs:
            for sim, b in out["per_student"].items():
                print(variant_row(name, sim, (b["recommender"] if per is None else per[sim])[idx],
                                  {p: g[idx] for p, g in b.items()}), flush=True)
        print("\nthe selection criterion, worst of the bar's mean differences (minus random, minus round-robin, "
              "every simulated student): " + "; ".join(f"{name} {worst_bar_difference(out['per_student'], per, idx):+.4f}"
                                                       for name, per in runs))


def worst_bar_difference(base: dict, per: dict | None, idx) -> float:
    """min over simulated students and the bar's baselines of the recommender's mean paired difference."""
    return min(float(((b["recommender"] if per is None else per[k])[idx] - b[p][idx]).mean())
               for k, b in base.items() for p in ("random", "round-robin"))


PLAN_KEYS = ("plan_depth", "plan_beam", "mastered", "plan_spacing", "plan_models", "plan_rule")


def variant_row(name: str, sim: str, g, b: dict) -> str:
    from edu_flash.path.stats import fmt, mean_interval, share_interval

    share = share_interval(g - b["random"], b["oracle"] - b["random"])
    diffs = " | ".join(fmt(mean_interval(g - b[p])) for p in ("random", "easiest-first", "round-robin", "weakest-first"))
    return f"| {name} | {sim} | {fmt(mean_interval(g))} | {diffs} | {fmt(share, 3)} |"


def cross_oracles(rec, out, path_df, students, args):
    """Why the simulators cannot all be pleased (edu_flash.path.study.cross_oracles, the card's table)."""
    from edu_flash.path.study import agreement_text, cross_markdown, cross_oracles as cross, family_agreement

    table = cross(rec, path_df, students, out, steps=args.steps, n_goal=args.n_goal, history_len=args.history_len,
                  max_students=args.max_students, goals=args.goals, rollouts=args.rollouts)
    print("\n" + cross_markdown(table), flush=True)
    out["cross"], out["family_agreement"] = table, family_agreement(rec, students)
    print("\n" + agreement_text(out["family_agreement"]), flush=True)


def main(argv=None):
    args = parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.paths:
        return run_paths(args)
    from edu_flash.path.data import Columns, read_dkt, read_logs, split_students

    data = Path(args.data)
    train_path, test_path = data / "builder_train.csv", data / "builder_test.csv"
    overrides = json.loads(args.hparams)
    results = []
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; load average at start {os.getloadavg()[0]:.1f}", flush=True)
    logs, vocab = read_logs(read_dkt(train_path), Columns())
    test_logs, _ = read_logs(read_dkt(test_path), Columns(), vocab=vocab, unknown="skip")
    print(f"test responses on skills never seen in training, skipped by every model: "
          f"{test_logs.extra['unknown_skipped']}", flush=True)
    results.append(skill_mean(logs, test_logs, len(vocab["items"])))
    print(json.dumps(results[-1]), flush=True)
    for name in [b for b in args.backbones.split(",") if b]:
        r, _ = run_backbone(name, train_path, test_path, args, overrides.get(name, {}))
        results.append(r)
        print(json.dumps(r), flush=True)
    peers = {"juno-dkt": ("juno_dkt", Juno), "eduktm-dkt": ("EduKTM", EduKTMDKT)}
    for name in [p for p in args.peers.split(",") if p and p != "none"]:
        mod, cls = peers[name]
        try:
            __import__(mod)
        except ImportError as e:
            print(f"{name}: not installed ({e}); skipped (pip install juno-dkt EduKTM)", flush=True)
            continue
        train, val = split_students(logs, 0.1, 0)  # the same held-out students as PathRecommender (seed 0)
        results.append(run_peer(cls, train, val, test_logs, len(vocab["skills"]), args))
        print(json.dumps(results[-1]), flush=True)
    print("\n| model | test AUC | test ACC | epochs | train time (s) | train CPU time (s) |\n|---|---|---|---|---|---|")
    for r in results:
        cell = lambda k: "" if r.get(k) is None else r[k]
        print(f"| {r['model']} | {r['auc']:.4f} | {r['acc']:.4f} | {cell('epochs')} | {cell('train_s')} | "
              f"{cell('train_cpu_s')} |")
    print(f"load average at end {os.getloadavg()[0]:.1f}")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

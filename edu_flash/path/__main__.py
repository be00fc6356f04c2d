"""Demo on the built-in simulated students: `python -m edu_flash.path [--out runs/path-demo]`.

Trains DKT, evaluates next-response AUC, predicts mastery, recommends, plans a path, checks the
recommender's paths against the baselines under PFA and BKT students (fitted on the held-out
students, whose start histories the paths then use: a demo, not the benchmark's disjoint split), and
saves the model folder with its card. About a minute on 2 CPU cores.
"""
from __future__ import annotations

import argparse
import json


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="runs/path-demo")
    p.add_argument("--students", type=int, default=400)
    p.add_argument("--epochs", type=int, default=15)
    args = p.parse_args(argv)

    from edu_flash.path import PathRecommender
    from edu_flash.path.sample import sample_logs

    logs = sample_logs(args.students, seed=0)
    cut = sorted(logs.student.unique())[int(0.8 * logs.student.nunique())]
    train, test = logs[logs.student < cut], logs[logs.student >= cut]
    print(f"{len(train)} training interactions from {train.student.nunique()} simulated students")
    rec = PathRecommender("dkt", d_model=64, window=100, max_epochs=args.epochs)
    rec.finetune(train, run_dir=f"{args.out}-run")
    print("evaluation:", json.dumps(rec.evaluate(test, name="simulated students (held out)")))
    history = [("q101", 1), ("q102", 1), ("q103", 0), ("q201", 0)]
    print("mastery:", {k: round(v, 3) for k, v in rec.predict(history)["mastery"].items()})
    for r in rec.recommend(history, k=3, goal_skills=["k2", "k3"]):
        print("recommend:", r)
    print(rec.plan_path(history, goal_skills=["k2", "k3"], steps=6))
    students = {b: PathRecommender(b, plan_models=[]).finetune(test) for b in ("pfa", "bkt")}  # unseen students
    paths = rec.evaluate_paths(test, students, steps=8, max_students=50, history_len=10,
                               name="simulated students (held out)")
    for sim, r in paths["simulators"].items():
        for name, x in r["policies"].items():
            g = x["gain"]
            print(f"paths under {sim}, {name}: mastery gain {g['mean']:+.4f} [{g['low']:+.4f}, {g['high']:+.4f}]")
    print("saved:", rec.save_pretrained(args.out))


if __name__ == "__main__":
    main()

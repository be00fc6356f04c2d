"""Demo on the built-in simulated students: `python -m edu_flash.path [--out runs/path-demo]`.

Trains DKT, evaluates next-response AUC, predicts mastery, recommends, plans a path, checks the
recommender's paths against a separately trained PFA model acting as the student, and saves the
model folder with its card. About a minute on 2 CPU cores.
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
    for r in rec.recommend(history, k=3):
        print("recommend:", r)
    plan = rec.plan_path(history, goal_skills=["k2", "k3"], steps=6)
    print(f"path: start mastery {plan['start_mastery']:.3f}")
    for s in plan["steps"]:
        print(f"  step {s['step']}: {s['item']} P(correct) {s['p_correct']:.2f} -> mastery {s['expected_mastery']:.3f}")
    student = PathRecommender("pfa").finetune(train)
    paths = rec.evaluate_paths(test, student, steps=8, max_students=50, name="simulated students (held out)")
    for name, r in paths["policies"].items():
        print(f"paths, {name}: mastery gain {r['mastery_gain']:+.4f} (se {r['gain_se']:.4f})")
    print("saved:", rec.save_pretrained(args.out))


if __name__ == "__main__":
    main()

"""PathRecommender on built-in simulated students: knowledge tracing, mastery, next-item
recommendations and a study path.   python examples/path_recommendation.py"""
import argparse

from edu_flash import PathRecommender

ap = argparse.ArgumentParser()
ap.add_argument("--out", default="runs/path-example")
ap.add_argument("--n", type=int, default=400, help="simulated students")
ap.add_argument("--epochs", type=int, default=15)
args = ap.parse_args()

data = PathRecommender.builtin_data(args.n, seed=0)
rec = PathRecommender("dkt", d_model=64, window=100, max_epochs=args.epochs)
rec.finetune(data.train, data.val, run_dir=f"{args.out}-run", progress=False)
print("next-response prediction:", {k: round(v, 3) for k, v in rec.evaluate(data.test).items()
                                    if k in ("auc", "acc", "rmse")})
history = [("q101", 1), ("q102", 1), ("q103", 0), ("q201", 0)]  # (item, correct) in time order
print("mastery:", {k: round(v, 2) for k, v in rec.predict(history)["mastery"].items()})
for r in rec.recommend(history, k=3, goal_skills=["k2", "k3"]):
    print("recommend:", r)
plan = rec.plan_path(history, goal_skills=["k2", "k3"], steps=5)
print(plan)                                   # step, item, skills, P(correct), expected goal mastery
plan.plot(f"{args.out}-path.png")             # expected mastery per goal skill along the path
print("saved:", rec.save_pretrained(args.out))

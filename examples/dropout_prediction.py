"""DropoutPredictor on built-in synthetic students: train, evaluate at week 8, explain the riskiest
students, save with a card.   python examples/dropout_prediction.py [--out runs/dropout-example]"""
import argparse

from edu_flash import DropoutPredictor

ap = argparse.ArgumentParser()
ap.add_argument("--out", default="runs/dropout-example")
ap.add_argument("--n", type=int, default=600, help="synthetic registrations")
args = ap.parse_args()

data = DropoutPredictor.builtin_data(args.n, seed=0)  # train / val / test, split by student
model = DropoutPredictor().finetune(data.train, data.val, run_dir=f"{args.out}-run", progress=False)
m = model.evaluate(data.test, week=8, name="synthetic students (test)")
print(f"week 8: ROC-AUC {m['roc_auc']:.3f}, PR-AUC {m['pr_auc']:.3f}, precision@{m['k']} {m['precision_at_k']:.2f}")
risk = model.predict(data.test, week=8).dropna(subset=["risk"]).sort_values("risk", ascending=False)
print(risk.head(5)[["student", "risk", "flagged", "top_features"]].to_string(index=False))
print("saved:", model.save_pretrained(args.out))

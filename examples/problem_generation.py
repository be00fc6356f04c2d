"""ProblemGenerator on built-in procedural word problems: lift them into templates (the default
backbone, seconds on a CPU), then generate practice problems whose every step has been checked and
that pass the usability checks.
    python examples/problem_generation.py [--out runs/problems-example]"""
import argparse

from edu_flash import ProblemGenerator

ap = argparse.ArgumentParser()
ap.add_argument("--out", default="runs/problems-example")
ap.add_argument("--n", type=int, help="training problems (default: the built-in data's own)")
args = ap.parse_args()

data = ProblemGenerator.builtin_data(args.n, seed=0)
gen = ProblemGenerator(data.backbone, **data.hparams)
gen.finetune(data.train, data.val, run_dir=f"{args.out}-run", progress=False, **data.finetune_args)
m = gen.evaluate(data.test, **data.evaluate_args)
print({k: round(m[k], 3) for k in ("usable_rate", "verified_valid_rate", "template_rate", "difficulty_spearman")})
for p in gen.generate(topic="baking", difficulty=3, n=3, seed=0):
    print(f"\n[{p['topic']}, difficulty {p['difficulty']}] {p['problem']}\n{p['solution']}\nanswer: {p['answer']}")
print("\ngeneration report:", gen.last_generation)
print("saved:", gen.save_pretrained(args.out))

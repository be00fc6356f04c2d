"""DiagramDiffusion on built-in rendered diagrams: train a class-conditional diffusion model, sample
a grid per class and score the samples with the reference classifier.
    python examples/diagram_generation.py [--out runs/diagrams-example]"""
import argparse

from edu_flash import DiagramDiffusion
from edu_flash.diagrams import save_grid

ap = argparse.ArgumentParser()
ap.add_argument("--out", default="runs/diagrams-example")
ap.add_argument("--n", type=int, help="training diagrams per class (default: the built-in data's own)")
args = ap.parse_args()

data = DiagramDiffusion.builtin_data(args.n, seed=0)
model = DiagramDiffusion(data.backbone, **data.hparams)
model.finetune(data.train, data.val, run_dir=f"{args.out}-run", progress=False, **data.finetune_args)
m = model.evaluate(data.test, **data.evaluate_args)
print({k: round(v, 3) for k, v in m.items() if isinstance(v, float)})
images = model.generate(None, n=4, seed=0)  # 4 of every class
print("grid:", save_grid(images, f"{args.out}-samples.png", ncols=4))
print("saved:", model.save_pretrained(args.out))

"""Compare backbones of one task on the same data: a leaderboard (task metrics, wall time,
parameters, peak memory) and a plot.   python examples/compare_backbones.py [--task DropoutPredictor]"""
import argparse

import edu_flash

ap = argparse.ArgumentParser()
ap.add_argument("--task", default="EssayScorer", help="any task class name, e.g. DropoutPredictor")
ap.add_argument("--backbones", nargs="+", help="default: the demo backbone and every one that needs no download")
ap.add_argument("--n", type=int, help="size of the built-in data")
ap.add_argument("--out", default="runs/compare-example")
args = ap.parse_args()

cls = getattr(edu_flash, args.task)
data = cls.builtin_data(args.n, seed=0)
demo = data.backbone or cls.default_backbone
offline = [b for b, spec in cls.backbones.items() if spec.engine == "sklearn" or spec.source is None]
backbones = args.backbones or list(dict.fromkeys([demo, *offline]))
board = edu_flash.compare(cls, backbones, data.train, data.test, val=data.val, finetune_args=data.finetune_args,
                          evaluate_args=data.evaluate_args,
                          backbone_hparams={demo: data.hparams} if demo in backbones else None,
                          run_dir=f"{args.out}/runs", plot=f"{args.out}/leaderboard.png")
cols = ["backbone", board.attrs["metric"], "train_s", "eval_s", "parameters", "peak_rss_mb"]
print(board[[c for c in cols if c in board]].to_string(index=False))
print(f"plot: {args.out}/leaderboard.png")

"""DiagramDiffusion on the built-in diagrams: conditional accuracy and Fréchet distance against
training steps, within a stated budget.

Trains the default model (32 px, grayscale, UNet2DModel with block channels 32/64/64, EMA, label
dropout 0.1) on the built-in renderer's diagrams and, after each stage, evaluates on a held-out set
of real diagrams (another seed): DDIM sampling with guidance, conditional accuracy and Fréchet
distance in the reference classifier's feature space, beside the real-vs-real floor.

Stages continue one model with successive `finetune(max_steps=...)` calls: the weights and the EMA
carry on, the optimizer state and learning-rate warm-up restart at each stage (a 2% warm-up).

    python benchmarks/diagrams.py --stages 75,150,300 --per-class 100 --eval-per-class 20 --steps 10 --threads 1
    python benchmarks/diagrams.py --stages 1000,4000,10000 --batch-size 128   # a GPU run
"""
from __future__ import annotations

import argparse
import json
import os
import time


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--stages", default="100,200,400,800", help="cumulative optimizer steps at which to evaluate")
    p.add_argument("--per-class", type=int, default=100, help="training diagrams per class")
    p.add_argument("--eval-per-class", type=int, default=40, help="held-out real diagrams per class")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=20, help="DDIM steps when evaluating")
    p.add_argument("--guidance", type=float, default=2.0)
    p.add_argument("--precision", default="32")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (1 is faster on a busy machine)")
    p.add_argument("--guidance-sweep", default="0,1,4", help="extra guidance scales evaluated at the end")
    p.add_argument("--out", default="runs/bench-diagrams")
    a = p.parse_args(argv)

    import torch

    from edu_flash.diagrams import DiagramDiffusion, sample_diagrams, save_grid

    if a.threads:
        torch.set_num_threads(a.threads)
    stages = [int(s) for s in a.stages.split(",")]
    train = sample_diagrams(a.per_class, a.image_size, seed=0)
    test = sample_diagrams(a.eval_per_class, a.image_size, seed=1)
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU, {os.cpu_count()} cores"
    print(f"device: {device}; torch {torch.__version__}; threads {torch.get_num_threads()}")
    print(f"train {len(train)} images, eval {len(test)} real images; DDIM {a.steps} steps, guidance {a.guidance}")
    model = DiagramDiffusion(image_size=a.image_size, batch_size=a.batch_size, max_epochs=10**6,
                             precision=a.precision)
    rows, done, t_train = [], 0, 0.0
    for target in stages:
        t0 = time.perf_counter()
        model.finetune(train, max_steps=target - done, run_dir=f"{a.out}/run", progress=False)
        t_train += time.perf_counter() - t0
        done = target
        t0 = time.perf_counter()
        m = model.evaluate(test, steps=a.steps, guidance=a.guidance, seed=0, name="built-in diagrams (seed 1)")
        row = {"steps": done, "train_s": round(t_train, 1), "eval_s": round(time.perf_counter() - t0, 1),
               "loss": round(model.last_train_report.final_train_loss, 4),
               "cond_acc": round(m["conditional_accuracy"], 3), "fd": round(m["frechet_distance"], 3),
               "fd_floor": round(m["frechet_distance_real_floor"], 3),
               "ref_acc_real": round(m["reference_accuracy_real"], 3)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    # guidance sweep at the final model
    for g in [float(v) for v in a.guidance_sweep.split(",") if v]:
        m = model.evaluate(test, steps=a.steps, guidance=g, seed=0, name="built-in diagrams (seed 1)")
        print(json.dumps({"steps": done, "guidance": g, "cond_acc": round(m["conditional_accuracy"], 3),
                          "fd": round(m["frechet_distance"], 3)}), flush=True)
    model.evaluate(test, steps=a.steps, guidance=a.guidance, seed=0, name="built-in diagrams (seed 1)")
    folder = model.save_pretrained(f"{a.out}/model")
    save_grid(model.generate(None, 8, steps=a.steps, guidance=a.guidance, seed=0), f"{a.out}/grid.png", ncols=8)
    print(f"model saved to {folder}; sample grid {a.out}/grid.png")
    print("| steps | train time (s) | train loss | conditional accuracy | Fréchet distance | real-vs-real floor |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['steps']} | {r['train_s']} | {r['loss']} | {r['cond_acc']} | {r['fd']} | {r['fd_floor']} |")


if __name__ == "__main__":
    main()

"""DiagramDiffusion on the built-in diagrams: conditional accuracy and Fréchet distance against
training steps, within a stated budget.

Trains the default model (32 px, grayscale, UNet2DModel with block channels 32/64/64, v-prediction,
EMA, label dropout 0.1) on the built-in renderer's diagrams (`DiagramDiffusion.builtin_data`) and, after
each stage, evaluates on its held-out test split (real diagrams rendered with another seed): DDIM
sampling with guidance, conditional accuracy and Fréchet distance in the reference classifier's feature
space, beside the real-vs-real floor. A sample grid (one row per class) is saved after every stage.

Stages are one uninterrupted run: each `finetune(max_steps=stage, resume=True)` continues from the
trainer's last checkpoint (weights, optimizer, schedule, RNG and EMA), so the numbers at a stage are
those of a run stopped there. `--raw` also evaluates the raw (non-EMA) weights at each stage.

    python benchmarks/diagrams.py --stages 250,500,1000,2000,3000 --threads 1
    python benchmarks/diagrams.py --stages 200 --set prediction_type=epsilon --threads 1   # the old objective
    python benchmarks/diagrams.py --stages 1000,4000,10000 --batch-size 128   # a GPU run
"""
from __future__ import annotations

import argparse
import json
import os
import time


def _value(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return text


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--stages", default="100,200,400,800", help="cumulative optimizer steps at which to evaluate")
    p.add_argument("--per-class", type=int, default=100, help="training diagrams per class")
    p.add_argument("--eval-per-class", type=int, default=40,
                   help="held-out real diagrams per class (0: builtin_data's test split)")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=20, help="DDIM steps when evaluating")
    p.add_argument("--guidance", type=float, default=1.0)
    p.add_argument("--precision", default="32")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="any other DiagramHParams field (JSON value), e.g. --set lr=2e-3 --set ema_power=0.75")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (1 is faster on a busy machine)")
    p.add_argument("--guidance-sweep", default="0,2,4", help="extra guidance scales evaluated at the end")
    p.add_argument("--raw", action="store_true", help="also evaluate the raw (non-EMA) weights at each stage")
    p.add_argument("--out", default="runs/bench-diagrams")
    a = p.parse_args(argv)

    import shutil

    import torch

    from edu_flash.diagrams import DiagramDiffusion, sample_diagrams, save_grid

    if a.threads:
        torch.set_num_threads(a.threads)
    stages = [int(s) for s in a.stages.split(",")]
    extra = {k: _value(v) for k, v in (s.split("=", 1) for s in a.set)}
    splits = DiagramDiffusion.builtin_data(a.per_class, seed=0, image_size=a.image_size)
    # builtin_data's test split is rendered with seed 2; more of the same stream when asked for more images
    test = sample_diagrams(a.eval_per_class, a.image_size, seed=2) if a.eval_per_class else splits.test
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU, {os.cpu_count()} cores"
    print(f"device: {device}; torch {torch.__version__}; threads {torch.get_num_threads()}")
    model = DiagramDiffusion(image_size=a.image_size, batch_size=a.batch_size, max_epochs=10**6,
                             precision=a.precision, **extra)
    print(f"train {len(splits.train)} images, eval {len(test)} real images; DDIM {a.steps} steps, "
          f"guidance {a.guidance}; hyperparameters {json.dumps(model.get_params(), default=str)}")
    shutil.rmtree(f"{a.out}/run", ignore_errors=True)  # stages resume from this run's checkpoints only
    rows, done, t_train = [], 0, 0.0
    name = "built-in diagrams (test split)"
    for target in stages:
        t0 = time.perf_counter()
        model.finetune(splits.train, max_steps=target, resume=True, run_dir=f"{a.out}/run", progress=False)
        assert model.last_train_report.steps == target, model.last_train_report.steps
        t_train += time.perf_counter() - t0
        done = target
        t0 = time.perf_counter()
        m = model.evaluate(test, steps=a.steps, guidance=a.guidance, seed=0, name=name)
        row = {"steps": done, "train_s": round(t_train, 1), "eval_s": round(time.perf_counter() - t0, 1),
               "loss": round(model.last_train_report.final_train_loss, 4),
               "cond_acc": round(m["conditional_accuracy"], 3), "fd": round(m["frechet_distance"], 3),
               "fd_floor": round(m["frechet_distance_real_floor"], 3),
               "ref_acc_real": round(m["reference_accuracy_real"], 3)}
        if a.raw:
            ema, model.ema_model = model.ema_model, None  # generate() falls back to the raw weights
            m = model.evaluate(test, steps=a.steps, guidance=a.guidance, seed=0, name=name + ", raw weights")
            model.ema_model = ema
            row.update(raw_cond_acc=round(m["conditional_accuracy"], 3), raw_fd=round(m["frechet_distance"], 3))
        rows.append(row)
        print(json.dumps(row), flush=True)
        save_grid(model.generate(None, 8, steps=a.steps, guidance=a.guidance, seed=0),
                  f"{a.out}/grid-{done:06d}.png", ncols=8)
    for g in [float(v) for v in a.guidance_sweep.split(",") if v]:  # guidance sweep at the final model
        m = model.evaluate(test, steps=a.steps, guidance=g, seed=0, name=name)
        print(json.dumps({"steps": done, "guidance": g, "cond_acc": round(m["conditional_accuracy"], 3),
                          "fd": round(m["frechet_distance"], 3)}), flush=True)
    model.evaluate(test, steps=a.steps, guidance=a.guidance, seed=0, name=name)
    folder = model.save_pretrained(f"{a.out}/model")
    save_grid(model.generate(None, 8, steps=a.steps, guidance=a.guidance, seed=0), f"{a.out}/grid.png", ncols=8)
    print(f"model saved to {folder}; sample grid {a.out}/grid.png (rows: {', '.join(model.classes)})")
    raw = " raw conditional accuracy | raw Fréchet distance |" if a.raw else ""
    print(f"| steps | train time (s) | train loss | conditional accuracy | Fréchet distance | real-vs-real floor |{raw}")
    print("|---" * (6 + 2 * a.raw) + "|")
    for r in rows:
        extra = f" {r['raw_cond_acc']} | {r['raw_fd']} |" if a.raw else ""
        print(f"| {r['steps']} | {r['train_s']} | {r['loss']} | {r['cond_acc']} | {r['fd']} | {r['fd_floor']} |{extra}")

if __name__ == "__main__":
    main()

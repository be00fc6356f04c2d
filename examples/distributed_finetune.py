"""Data-parallel fine-tuning with torchrun: each process trains as one rank of the same job.

    torchrun --standalone --nproc_per_node=2 examples/distributed_finetune.py            # 2 CPU processes (gloo)
    torchrun --standalone --nproc_per_node=4 examples/distributed_finetune.py --strategy fsdp   # 4 GPUs

Without torchrun, `finetune(..., devices=2)` starts the worker processes itself. The built-in
essays are used; all-MiniLM-L6-v2 when its package is installed, else a small BERT built from a
config (so it runs offline).
"""
import argparse
import os
import tempfile

from edu_flash import EssayScorer

ap = argparse.ArgumentParser()
ap.add_argument("--out", default="runs/essay-ddp")
ap.add_argument("--strategy", default="ddp", choices=["ddp", "fsdp"])
ap.add_argument("--epochs", type=int, default=1)
ap.add_argument("--essays", type=int, default=300, help="built-in essays")
args = ap.parse_args()

rank = int(os.environ.get("RANK", "0"))
data = EssayScorer.builtin_data(args.essays, seed=0)
backbone = data.backbone
if backbone == "tfidf-ridge":  # a classical model trains in one process: use a small transformer instead
    from edu_flash.core.tiny import make_tiny_encoder

    # deterministic, so every rank builds the same one (DDP also broadcasts rank 0's weights)
    backbone = str(make_tiny_encoder(tempfile.mkdtemp() + "/tiny-bert", data.train.essay, hidden=64, layers=2))
scorer = EssayScorer(backbone, max_length=128, batch_size=8, max_epochs=args.epochs, lr=1e-4, precision="32")
scorer.finetune(data.train, data.val, strategy=args.strategy, run_dir=f"{args.out}-run", progress=rank == 0,
                **data.finetune_args)
if rank == 0:  # every rank holds the same weights; one writes them
    print("test:", {k: round(v, 3) for k, v in scorer.evaluate(data.test).items() if k in ("qwk_avg", "rmse")})
    print("saved:", scorer.save_pretrained(args.out))

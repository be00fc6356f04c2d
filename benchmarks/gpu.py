"""GPU benchmark of the shared trainer: fp32 vs bf16-mixed throughput and model FLOPs utilisation
(MFU) for a BERT-base-sized encoder built from its config (no download), and the batch-size
finder checked against real CUDA out-of-memory.

What is measured.
* Throughput: the edu-flash `Trainer` itself trains `EncoderRegressor` (the EssayScorer model:
  BERT-base, 110M parameters, mean pooling, regression head) on synthetic full-length sequences.
  Each step is timestamped (after a CUDA synchronise) inside the loss; the first `--warmup` steps
  are dropped and examples/s and tokens/s come from the remaining steps.
* MFU: achieved FLOP/s over the GPU's dense peak for the math used (fp32: plain FP32 peak, since
  PyTorch does not use TF32 for matmuls by default; bf16-mixed: BF16 tensor-core peak). Training
  FLOPs per token = 6 * N + 12 * layers * hidden * seq (N: non-embedding parameters; the second
  term is attention scores and values, forward and backward), as in the PaLM paper's appendix B.
  The peak comes from a small table of known GPUs or `--peak-tflops`.
* Batch-size finder: `batch_size="auto"` at the longest length (bf16-mixed), then a real step at
  the found batch (must fit) and at 1.25x it (expected to run out of memory: if it does not, the
  finder left that much headroom).

Run on a machine with a CUDA GPU; record the printed table in BENCHMARKS.md with the GPU named:

    python benchmarks/gpu.py                       # seq 512, batch 32, 30 timed steps
    python benchmarks/gpu.py --seq-len 128 --batch-size 128 --json results.json

On a machine without a CUDA GPU it prints why and exits with status 2: nothing is measured.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from collections.abc import Sequence

# Dense peak TFLOP/s (no sparsity) by a substring of torch.cuda.get_device_name(): (bf16, fp32).
PEAKS = {"H200": (989.4, 66.9), "H100 NVL": (835.0, 60.0), "H100 PCIe": (756.5, 51.2), "H100": (989.4, 66.9),
         "A100": (312.0, 19.5), "L40S": (362.1, 91.6), "L4": (121.0, 30.3), "A10G": (70.0, 31.2),
         "A10": (125.0, 31.2), "RTX 4090": (165.2, 82.6), "RTX 3090": (71.0, 35.6)}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seq-len", type=int, default=512)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=30, help="timed optimizer steps per precision")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    p.add_argument("--precisions", nargs="+", default=["32", "bf16-mixed"])
    p.add_argument("--peak-tflops", type=float, nargs=2, metavar=("BF16", "FP32"),
                   help="dense peak TFLOP/s of this GPU, when it is not in the built-in table")
    p.add_argument("--skip-finder", action="store_true")
    p.add_argument("--json", help="also write the results here")
    return p.parse_args(argv)


class Synthetic(Sequence):
    """n identical full-length examples, without storing n of them."""

    def __init__(self, n: int, seq_len: int, vocab: int):
        import torch

        g = torch.Generator().manual_seed(0)
        self.n, self.ids = n, torch.randint(1000, vocab, (seq_len,), generator=g).tolist()

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return {"input_ids": self.ids, "target": 0.5}


def build(seq_len: int):
    """BERT-base from its config (hidden 768, 12 layers, 12 heads, FFN 3072), as EssayScorer builds it."""
    from transformers import BertConfig, BertModel

    from edu_flash.essay.model import EncoderRegressor, _drop_pooler

    cfg = BertConfig(max_position_embeddings=max(512, seq_len), attention_probs_dropout_prob=0.0)
    return EncoderRegressor(_drop_pooler(BertModel(cfg)), dropout=0.1), cfg


def flops_per_token(model, cfg, seq_len: int) -> float:
    emb = sum(p.numel() for n, p in model.named_parameters() if "embeddings" in n)
    n = sum(p.numel() for p in model.parameters()) - emb
    return 6 * n + 12 * cfg.num_hidden_layers * cfg.hidden_size * seq_len


def job_for(model, seq_len, vocab, n, stamps=None):
    import torch

    from edu_flash.core.trainer import TrainJob
    from edu_flash.essay.model import collate

    def loss(m, batch):
        if stamps is not None:
            torch.cuda.synchronize()
            stamps.append(time.perf_counter())
        return torch.nn.functional.mse_loss(m(batch["input_ids"], batch["attention_mask"]), batch["target"])

    return TrainJob(model=model, train=Synthetic(n, seq_len, vocab), collate=lambda ex: collate(ex, 0), loss=loss)


def throughput(args, precision: str, peaks) -> dict:
    import torch

    from edu_flash.core.hparams import TrainHParams
    from edu_flash.core.trainer import Trainer

    torch.manual_seed(0)
    model, cfg = build(args.seq_len)
    steps = args.warmup + args.steps
    stamps: list[float] = []
    job = job_for(model, args.seq_len, cfg.vocab_size, steps * args.batch_size, stamps)
    hp = TrainHParams(max_epochs=1, max_steps=steps, batch_size=args.batch_size, precision=precision, lr=1e-5,
                      patience=None, group_by_length=False)
    torch.cuda.reset_peak_memory_stats()
    with tempfile.TemporaryDirectory() as run_dir:
        report = Trainer(hp, run_dir=run_dir, log=False, progress=False).fit(job)
    timed = stamps[args.warmup:]
    sec_per_step = (timed[-1] - timed[0]) / (len(timed) - 1)
    ex_s = args.batch_size / sec_per_step
    tok_s = ex_s * args.seq_len
    achieved = tok_s * flops_per_token(model, cfg, args.seq_len)
    peak = peaks[0 if precision.startswith("bf16") else 1] if peaks else None
    return {"precision": precision, "batch": args.batch_size, "seq_len": args.seq_len, "steps_timed": len(timed) - 1,
            "examples_per_s": round(ex_s, 1), "tokens_per_s": round(tok_s), "achieved_tflops": round(achieved / 1e12, 1),
            "peak_tflops": peak, "mfu": round(achieved / (peak * 1e12), 3) if peak else None,
            "max_memory_gb": round(torch.cuda.max_memory_allocated() / 1e9, 1), "final_loss": report.final_train_loss}


def finder_check(args) -> dict:
    import torch

    from edu_flash.core.batch_size import _Prober, find_batch_size

    torch.manual_seed(0)
    model, cfg = build(args.seq_len)
    device = torch.device("cuda")
    job = job_for(model.to(device), args.seq_len, cfg.vocab_size, 10**6)
    t0 = time.perf_counter()
    found = find_batch_size(job, precision="bf16-mixed", device=device)
    took = time.perf_counter() - t0
    prober = _Prober(job, "bf16-mixed", device)
    over = math.ceil(found.batch_size * 1.25)
    return {"found_batch": found.batch_size, "probes": found.probes, "search_s": round(took, 1),
            "fits_at_found": prober.cuda_fits(found.batch_size, None),
            f"fits_at_1.25x ({over})": prober.cuda_fits(over, None),
            "gpu_memory_gb": round(torch.cuda.mem_get_info()[1] / 1e9, 1), "finder": found.card["batch size finder"]}


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print("benchmarks/gpu.py needs a CUDA GPU, and torch sees none here (torch.cuda.is_available() is "
              f"False; torch {torch.__version__}). Nothing was measured; run it on a GPU machine.", file=sys.stderr)
        return 2
    name = torch.cuda.get_device_name()
    peaks = tuple(args.peak_tflops) if args.peak_tflops else next((v for k, v in PEAKS.items() if k in name), None)
    print(f"# {name}, torch {torch.__version__}, CUDA {torch.version.cuda}; peak TFLOP/s (bf16, fp32): "
          f"{peaks or 'unknown: pass --peak-tflops for MFU'}\n")
    rows = [throughput(args, p, peaks) for p in args.precisions]
    cols = list(rows[0])
    print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r[c]) for c in cols) + " |")
    result = {"gpu": name, "torch": torch.__version__, "throughput": rows}
    if not args.skip_finder:
        result["batch_size_finder"] = finder_check(args)
        print("\nbatch-size finder (BERT-base, bf16-mixed, seq %d):" % args.seq_len)
        for k, v in result["batch_size_finder"].items():
            print(f"- {k}: {v}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""ProblemGenerator on GSM8K from scratch within a small CPU budget (or a larger run on a GPU).

    python benchmarks/problems_gsm8k.py --data ../shared/datasets/gsm8k --train-size 2000 --max-steps 300

Trains the default GPT-2-style backbone (built from config, tokenizer trained on the data) on a
GSM8K train subset, then reports held-out perplexity on the test split, the raw-draw verified-valid
rate, novelty, distinct-2, difficulty control, and a re-sampled generate() run's rejection rate.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/datasets/gsm8k")
    ap.add_argument("--train-size", type=int, default=2000)
    ap.add_argument("--test-size", type=int, default=300)
    ap.add_argument("--max-steps", type=int, default=300)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--n-layer", type=int, default=4)
    ap.add_argument("--n-embd", type=int, default=128)
    ap.add_argument("--max-length", type=int, default=320)
    ap.add_argument("--samples", type=int, default=40)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--precision", default="bf16-mixed")
    ap.add_argument("--out", default="runs/problems-gsm8k")
    a = ap.parse_args()

    import pandas as pd
    import torch

    from edu_flash import ProblemGenerator

    if a.threads:
        torch.set_num_threads(a.threads)
    data = Path(a.data)
    train = pd.read_json(data / "train.jsonl", lines=True).iloc[:a.train_size]
    test = pd.read_json(data / "test.jsonl", lines=True).iloc[:a.test_size]
    gen = ProblemGenerator(n_layer=a.n_layer, n_embd=a.n_embd, n_head=4, max_length=a.max_length,
                           batch_size=a.batch_size, max_steps=a.max_steps, max_epochs=100, lr=1e-3,
                           precision=a.precision, vocab_size=4000, max_new_tokens=a.max_length - 8)
    t0 = time.perf_counter()
    gen.finetune(train, run_dir=Path(a.out) / "run", progress=False)
    train_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    m = gen.evaluate(test, n_samples=a.samples, name="gsm8k-test")
    eval_s = time.perf_counter() - t1
    t2 = time.perf_counter()
    out = gen.generate(n=10, seed=1)
    gen_s = time.perf_counter() - t2
    gen.save_pretrained(Path(a.out) / "model")
    rep = gen.last_train_report
    result = {
        "train problems": len(train), "steps": rep.steps, "epochs": round(rep.steps * a.batch_size / len(train), 2),
        "train wall s": round(train_s, 1), "final train loss": round(rep.final_train_loss, 3),
        "params (M)": round(sum(p.numel() for p in gen.model.parameters()) / 1e6, 2),
        "test perplexity": round(m["perplexity"], 3), "raw draws": m["samples"], "parse rate": m["parse_rate"],
        "verified-valid rate (raw)": m["verified_valid_rate"], "novelty": m["novelty"],
        "distinct-2": round(m["distinct_2"], 3), "difficulty spearman": m["difficulty_spearman"],
        "eval wall s": round(eval_s, 1), "generate(n=10)": gen.last_generation, "generate wall s": round(gen_s, 1),
        "device": rep.hardware, "precision": rep.precision, "torch threads": torch.get_num_threads(),
    }
    print(json.dumps(result, indent=2, default=str))
    for p in out[:2]:
        print("\n--- example (verified) ---\n", p["problem"], "\n", p["solution"])


if __name__ == "__main__":
    main()

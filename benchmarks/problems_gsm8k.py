"""ProblemGenerator on GSM8K from scratch within a small CPU budget (or a larger run on a GPU).

    python benchmarks/problems_gsm8k.py --data ../shared/datasets/gsm8k --train-size 7473 --max-steps 1200 --threads 1

Trains the default GPT-2-style backbone (built from config, tokenizer trained on the data) on a
GSM8K train subset, then reports held-out perplexity on the test split, the raw-draw verified-valid
rate with and without calculator-assisted decoding (Cobbe et al. 2021: the exact evaluator writes
each `<<expr=` step's value), novelty, distinct-2, difficulty control, groundedness, and a re-sampled
generate() run's rejection rate (with the calculator).

    python benchmarks/problems_gsm8k.py --builtin --samples 70 --generate-n 20 --threads 1

trains instead on `ProblemGenerator.builtin_data()` (2,000 procedural problems) with its own
`hparams` (the ~1-minute demo setting) and evaluates on its test split.
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
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--generate-n", type=int, default=10)
    ap.add_argument("--builtin", action="store_true", help="built-in procedural data and its hparams")
    ap.add_argument("--out", default="runs/problems-gsm8k")
    a = ap.parse_args()

    import pandas as pd
    import torch

    from edu_flash import ProblemGenerator

    if a.threads:
        torch.set_num_threads(a.threads)
    val = None
    if a.builtin:
        d = ProblemGenerator.builtin_data()
        train, val, test, name = d.train, d.val, d.test, "builtin-test"
        gen = ProblemGenerator(**d.hparams)
    else:
        data, name = Path(a.data), "gsm8k-test"
        train = pd.read_json(data / "train.jsonl", lines=True).iloc[:a.train_size]
        test = pd.read_json(data / "test.jsonl", lines=True).iloc[:a.test_size]
        gen = ProblemGenerator(n_layer=a.n_layer, n_embd=a.n_embd, n_head=4, max_length=a.max_length,
                               batch_size=a.batch_size, max_steps=a.max_steps, max_epochs=100, lr=a.lr,
                               precision=a.precision, vocab_size=4000, max_new_tokens=a.max_length - 8,
                               temperature=a.temperature, calculator=True)
    t0 = time.perf_counter()
    gen.finetune(train, val=val, run_dir=Path(a.out) / "run", progress=False)
    train_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    m = gen.evaluate(test, n_samples=a.samples, name=name)
    eval_s = time.perf_counter() - t1
    t2 = time.perf_counter()
    out = gen.generate(n=a.generate_n, seed=1)
    gen_s = time.perf_counter() - t2
    gen.save_pretrained(Path(a.out) / "model")
    rep = gen.last_train_report
    result = {
        "train problems": len(train), "steps": rep.steps,
        "epochs": round(rep.steps * gen.hparams.batch_size / len(train), 2),
        "train wall s": round(train_s, 1), "final train loss": round(rep.final_train_loss, 3),
        "params (M)": round(sum(p.numel() for p in gen.model.parameters()) / 1e6, 2),
        "test perplexity": round(m["perplexity"], 3), "raw draws": m["samples"], "parse rate": m["parse_rate"],
        "verified-valid rate (raw, calculator)": m["verified_valid_rate_calculator"],
        "verified-valid rate (raw, no calculator)": m["verified_valid_rate_no_calculator"],
        "novelty": m["novelty"], "grounded rate (verified draws)": m["grounded_rate"],
        "distinct-2": round(m["distinct_2"], 3), "difficulty spearman": m["difficulty_spearman"],
        "eval wall s": round(eval_s, 1), f"generate(n={a.generate_n})": gen.last_generation,
        "generate wall s": round(gen_s, 1),
        "device": rep.hardware, "precision": rep.precision, "torch threads": torch.get_num_threads(),
    }
    print(json.dumps(result, indent=2, default=str))
    for p in out[:2]:
        print("\n--- example (verified) ---\n", p["problem"], "\n", p["solution"])


if __name__ == "__main__":
    main()

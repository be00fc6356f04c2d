"""What the EssayScorer card says, built from the model it describes: the settings its backbone
uses, truncation only for a backbone that truncates, a snippet that runs against the saved model,
and a few predictions drawn at random from the evaluation data."""
from __future__ import annotations

import dataclasses

from ..core.card import CardText
from ..core.hparams import TrainHParams

CARD_TEXT = CardText(
    title="Automated essay scoring",
    summary="Scores a student essay on its prompt's rubric (holistically, or on each trait of an analytic rubric), "
            "trained with edu-flash.",
    intended_use=("Formative feedback and a second reader: suggesting a score that a teacher or trained rater "
                  "reviews, prioritising essays for review, and research on automated scoring."),
    out_of_scope=("High-stakes grading without a human reader (admissions, certification, course grades); "
                  "prompts, genres, grade levels or languages it was not trained on; judging content accuracy "
                  "or detecting plagiarism or AI-written text."),
    limitations=("The model learns whatever the human scores reward, including surface cues such as length "
                 "and vocabulary, and can be gamed by long or keyword-stuffed essays. Agreement can differ "
                 "between student groups (see the subgroup tables, where evaluated: SMD is machine minus human "
                 "over the human SD; |SMD| > 0.15 is commonly flagged). Scores are rounded to the nearest point "
                 "of each prompt's score grid, halves upward, and never leave the range seen or given in training."),
    how_to_use="",  # built per model: _how_to_use
    hf_task_type="text-regression",
    tags=("essay-scoring", "education", "regression", "text-regression"),
    headline_metrics=("qwk_avg", "qwk", "rmse", "pearson"),
)

# The settings each kind of backbone reads; the card lists only these (plus what the fit chose).
TFIDF_HPARAMS = ("ngram_max", "min_df", "max_features", "ridge_alpha", "surface_features")
HYBRID_HPARAMS = ("ngram_max", "min_df", "max_features", "chunk_tokens", "precision", "predict_batch_size")
NEURAL_HPARAMS = tuple(f.name for f in dataclasses.fields(TrainHParams)) + (
    "max_length", "dropout", "attention_dropout", "pooling", "predict_batch_size")


def card_hparams(hparams: dict, names, chosen: dict | None = None) -> dict:
    out = {k: hparams[k] for k in names if k in hparams}
    out.update(chosen or {})
    return out


def task_hparams(task) -> dict:
    """The settings the task's backbone reads, plus what its fit chose (alphas, stacking weights)."""
    hp, chosen = task.hparams.to_dict(), {}
    if task.backbone == "minilm-hybrid":
        if task.model is not None:
            for p, c in task.model.chosen().items():
                chosen[f"prompt {p}: ridge alpha per view (GCV)"] = ", ".join(
                    f"{v} {_alphas(a)}" for v, a in c["alphas"].items())
                chosen[f"prompt {p}: stacking weight per view"] = ", ".join(
                    f"{v} {_alphas(w)}" for v, w in c["weights"].items())
        out = card_hparams(hp, HYBRID_HPARAMS, chosen)
        from ..core.precision import BF16, native_bf16

        if out.get("precision") in BF16 and not native_bf16("cpu"):   # the hybrid embeds on the CPU
            out["precision"] = f"32 ({out['precision']} asked; this CPU has no native bf16)"
        return out
    if task.backbone_spec().engine == "sklearn":
        if task.model is not None and task.hparams.ridge_alpha is None:
            chosen["ridge alpha chosen per prompt (GCV)"] = ", ".join(
                f"{p}: {_alphas(m['alpha'])}" for p, m in task.model.prompts.items())
        return card_hparams(hp, TFIDF_HPARAMS, chosen)
    return card_hparams(hp, NEURAL_HPARAMS)


def _alphas(a) -> str:
    return "/".join(f"{v:g}" for v in a) if isinstance(a, list) else f"{a:g}"


def limitations(truncates_at: int | None) -> str:
    text = CARD_TEXT.limitations
    if truncates_at:
        text += (f" Essays longer than {truncates_at} tokens are truncated: the model never reads the rest "
                 "of a long essay.")
    return text


def how_to_use(prompt: str, multi_trait: bool, has_prompt_column: bool) -> str:
    """A snippet that runs as written against the saved model: a prompt it knows ({folder} and {cls}
    are filled in when the card is rendered)."""
    import json

    arg = f", prompt={json.dumps(prompt)}" if has_prompt_column or prompt != "all" else ""
    what = "a dict of scores, one per trait" if multi_trait else "a score on the prompt's grid"
    return ("from edu_flash import {cls}\n\nscorer = {cls}.from_pretrained(\"{folder}\")\n"
            f"score = scorer.predict(\"Computers help people learn because they can find information fast.\"{arg})\n"
            f"print(score)  # {what}\n"
            "# scorer.evaluate(\"your_test.csv\") -> QWK overall and per prompt, RMSE, subgroup gaps")


def sample_rows(texts, prompts, human: dict, machine: dict, *, k: int = 5, seed: int = 0, width: int = 160) -> list:
    """k essays drawn at random (not chosen): an excerpt, the prompt, the human and the machine scores."""
    import numpy as np

    if not texts or k <= 0:
        return []
    rng = np.random.default_rng(seed)
    rows = []
    for i in sorted(rng.choice(len(texts), size=min(k, len(texts)), replace=False).tolist()):
        excerpt = " ".join(str(texts[i]).split())
        excerpt = (excerpt[:width] + " ...") if len(excerpt) > width else excerpt
        row = {"essay (start)": excerpt.replace("|", "/"), "prompt": prompts[i]}
        for t in human:
            name = "" if len(human) == 1 else f" {t}"
            row[f"human{name}"], row[f"model{name}"] = human[t][i], machine[t][i]
        rows.append(row)
    return rows


def five_fold_section(paths) -> str:
    """Markdown for the card: the 5-fold ASAP figures that `benchmarks/essay_asap.py --json` wrote,
    one row per backbone with the folds it finished, and how each file was measured."""
    import json
    from pathlib import Path

    from ..core.card import md_table

    rows, how = [], []
    for path in paths:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        meta = data.get("meta", {})
        if not data.get("results"):
            continue
        limit = (data.get("args") or {}).get("train_limit")
        for backbone, r in data["results"].items():
            folds = r["folds"]
            name = backbone.replace(" train+dev", " (trained on train + dev ids: a protocol variant)")
            row = {"backbone": name + (f" (train limit {limit})" if limit else ""), "folds": _folds(folds)}
            row.update({f"P{p}": q for p, q in r["qwk_per_prompt"].items()})
            row.update({"avg QWK": r["qwk_avg"], "wall s (these folds)": round(r["wall_s"])})
            rows.append(row)
        how.append(f"- `{meta.get('command', '?')}` ({meta.get('date', '?')}, {meta.get('cpus', '?')} CPUs, load "
                   f"average {_load(meta.get('load_before'))} before and {_load(meta.get('load_after'))} after)")
    rows.sort(key=lambda r: (r["folds"] != "5", -r["avg QWK"]))  # complete 5-fold figures first
    return ("Every backbone on the 5-fold protocol of Taghipour & Ng (2016): trained on each fold's train ids, "
            "scored on its test ids, QWK per prompt averaged over the folds a backbone finished, then over the "
            "8 prompts (the figure papers report).\n\n" + md_table(rows) + "\n\nMeasured with:\n\n"
            + "\n".join(how))


def _folds(folds) -> str:
    """'5', or which folds alone (a figure on fewer folds is not comparable with a 5-fold mean)."""
    if len(folds) >= 5:
        return "5"
    names = ", ".join(str(k) for k in sorted(folds, key=int))
    return f"fold{'s' if len(folds) > 1 else ''} {names} only; {5 - len(folds)} of 5 not run"


def _load(v) -> str:
    return "?" if not v else f"{v[0]:.1f}"

"""Novelty, diversity and difficulty-control measures for generated problems.

Near-duplicate detection keeps only 64-bit hashes of each training problem's word n-grams, so a
saved model can reject copies of its training set without shipping the training text (the
hashes are stored as a safetensors array).
"""
from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from typing import Iterable, Sequence

_WORD = re.compile(r"[a-z]+|\d+(?:\.\d+)?|[^\sa-z\d]", re.I)


def words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def ngram_hashes(text: str, n: int) -> set[int]:
    """Signed 64-bit hashes (stable across processes, unlike hash()) of the text's word n-grams."""
    w = words(text)
    grams = [" ".join(w[i:i + n]) for i in range(max(len(w) - n + 1, 1))] if w else []
    return {int.from_bytes(hashlib.blake2b(g.encode(), digest_size=8).digest(), "little", signed=True)
            for g in grams}


class NgramIndex:
    """Inverted index n-gram -> training problems; `overlap(text)` is the largest share of the text's
    n-grams found in any one training problem (1.0: a copy, ~0: nothing shared)."""

    def __init__(self, n: int = 4):
        self.n = n
        self.docs: list[list[int]] = []
        self.index: dict[int, list[int]] = defaultdict(list)

    def add(self, texts: Iterable[str]) -> "NgramIndex":
        for t in texts:
            self._add_hashes(sorted(ngram_hashes(t, self.n)))
        return self

    def _add_hashes(self, hashes: list[int]) -> None:
        doc = len(self.docs)
        self.docs.append(hashes)
        for h in hashes:
            self.index[h].append(doc)

    def overlap(self, text: str) -> float:
        grams = ngram_hashes(text, self.n)
        if not grams:
            return 0.0
        counts = Counter(d for g in grams for d in self.index.get(g, ()))
        return max(counts.values(), default=0) / len(grams)

    def to_arrays(self) -> dict:
        import numpy as np

        flat = [h for d in self.docs for h in d]
        lengths = [len(d) for d in self.docs]
        return {"ngram_hashes": np.asarray(flat, dtype=np.int64), "ngram_doc_lengths": np.asarray(lengths, np.int64)}

    @classmethod
    def from_arrays(cls, arrays: dict, n: int) -> "NgramIndex":
        idx, pos = cls(n), 0
        flat = arrays["ngram_hashes"].tolist()
        for k in arrays["ngram_doc_lengths"].tolist():
            idx._add_hashes(flat[pos:pos + k])
            pos += k
        return idx


def distinct_n(texts: Sequence[str], n: int = 2) -> float:
    """Unique word n-grams over all n-grams in the set (Li et al. 2016): 1.0 = no repetition."""
    grams = [tuple(w[i:i + n]) for t in texts for w in [words(t)] for i in range(len(w) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    import numpy as np

    if len(x) < 3 or len(set(x)) < 2 or len(set(y)) < 2:
        return float("nan")
    from scipy.stats import spearmanr

    return float(spearmanr(np.asarray(x, float), np.asarray(y, float))[0])


def generation_metrics(samples: list[dict]) -> dict:
    """samples: one judged draw per slot (generation.judge), before any filtering. Rates are over all
    draws (a draw that did not parse fails every check); novelty rates over parsed draws."""
    from .usability import CHECKS

    n = len(samples)
    parsed = [s for s in samples if s["parsed"]]

    def rate(key: str, rows=samples) -> float:
        return sum(bool(s.get(key)) for s in rows) / len(rows) if rows else float("nan")

    per_level = {}
    for d in sorted({s["difficulty"] for s in samples}):
        rows = [s for s in samples if s["difficulty"] == d]
        ps = [s for s in rows if s["parsed"]]
        per_level[d] = {"requested": d, "samples": len(rows), "verified_rate": rate("verified", rows),
                        "usable_rate": rate("usable", rows),
                        "mean_realised": sum(s["realised_difficulty"] for s in ps) / len(ps) if ps else float("nan")}
    out = {"samples": n, "parse_rate": len(parsed) / n if n else 0.0, "verified_valid_rate": rate("verified"),
           "usable_rate": rate("usable")}
    for c in CHECKS[1:]:
        out[f"{c}_rate"] = sum(bool(s.get("checks", {}).get(c)) for s in samples) / n if n else float("nan")
    out.update({
        "surface_novelty": rate("surface_novel", parsed), "structural_novelty": rate("structural_novel", parsed),
        "graph_novelty": rate("graph_novel", parsed), "story_novelty": rate("story_novel", parsed),
        "mean_train_overlap": sum(s["overlap"] for s in parsed) / len(parsed) if parsed else float("nan"),
        "distinct_2": distinct_n([s["problem"] for s in parsed], 2),
        "difficulty_spearman": spearman([s["difficulty"] for s in parsed], [s["realised_difficulty"] for s in parsed]),
        "difficulty_exact": (sum(s["difficulty"] == s["realised_difficulty"] for s in parsed) / len(parsed)
                             if parsed else float("nan")),
        "per_difficulty": per_level,
    })
    return out


def evaluate_task(task, data, *, n_samples: int, seed: int, name: str | None, columns: dict,
                  compare_calculator: bool, showcase: int) -> dict:
    """ProblemGenerator.evaluate (see there); records figures, per-level rates and a showcase in the card."""
    from ..core.data import read_table
    from . import formats as F
    from . import generation as G

    table = read_table(data, name=name or "eval", split="test")
    records, _ = task._records(table, **columns)
    metrics: dict = {}
    if task.uses_templates:
        from .bank import TemplateBank

        held = TemplateBank.build(records, seed=seed).report
        metrics.update(eval_problems=len(records), template_rate=task.model.report["template_rate"],
                       heldout_template_rate=held["template_rate"])
    else:
        from .model import perplexity

        known = [r for r in records if r["topic"] in task.state["topics"]] or records
        ppl = perplexity(task.model, task._encode(known), task.tokenizer.pad_token_id, task._kind(),
                         task.hparams.predict_batch_size)
        metrics.update(perplexity=ppl["perplexity"], eval_problems=len(known))
    topics = list(task.state["topics"])
    slots = [(topics[(i // len(F.LEVELS)) % len(topics)], F.LEVELS[i % len(F.LEVELS)]) for i in range(n_samples)]
    calc = bool(task.hparams.calculator)
    draws = task._draw(slots, seed, calculator=calc)
    g = generation_metrics(draws)
    metrics.update({k: v for k, v in g.items() if k != "per_difficulty"})
    if not task.uses_templates:
        metrics["calculator"] = calc
        rates = {calc: g["verified_valid_rate"]}
        if compare_calculator:
            other = task._draw(slots, seed, calculator=not calc)
            rates[not calc] = sum(d["verified"] for d in other) / max(len(other), 1)
        for on, rate in rates.items():
            metrics["verified_valid_rate_calculator" if on else "verified_valid_rate_no_calculator"] = rate
    shown = task.generate(n=showcase, seed=seed)
    metrics["showcase_returned"] = len(shown)
    scalars = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    tables = {"By requested difficulty (raw draws)": list(g["per_difficulty"].values())}
    task.card.add_evaluation(name or table.source, scalars, tables)
    how = (f"`generate(n={showcase}, seed={seed})` after this evaluation: topics and difficulties drawn from the "
           "training distribution, every problem it returned, in order, none chosen by hand.")
    task.card.add_section(f"{showcase} problems drawn at random from generate()",
                          G.samples_markdown(shown, task.last_generation, how))
    return metrics

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


_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def numbers(text: str) -> list[str]:
    """Number literals as written, thousands separators dropped ("1,200.50" -> "1200.50")."""
    return _NUMBER.findall(re.sub(r"(?<=\d),(?=\d{3}\b)", "", text))


def grounded(problem: str, solution: str) -> bool:
    """Do the numbers of the solution's first `<<expr=value>>` step all appear in the problem text?
    A cheap check that the solution works on the story's quantities rather than on invented ones
    (a verified solution can still compute something unrelated to the question). Numbers a story
    writes as words ("twice", "a dozen") count as missing, so human-written data scores below 1."""
    from .verify import STEP

    m = STEP.search(solution)
    if m is None:
        return False
    given = {str(float(x)) for x in numbers(problem)}
    return all(str(float(x)) in given for x in numbers(m.group(1)))


def generation_metrics(samples: list[dict], max_overlap: float) -> dict:
    """samples: one dict per raw draw (before any filtering) with requested/realised difficulty,
    `parsed`, `verified` and `overlap` (max n-gram overlap with the training set)."""
    n = len(samples)
    parsed = [s for s in samples if s["parsed"]]
    verified = [s for s in parsed if s["verified"]]
    novel = [s for s in parsed if s["overlap"] < max_overlap]
    per_level = {}
    for d in sorted({s["difficulty"] for s in samples}):
        ps = [s for s in parsed if s["difficulty"] == d]
        k = sum(s["difficulty"] == d for s in samples)
        per_level[d] = {"requested": d, "samples": k, "verified_rate": sum(s["verified"] for s in ps) / max(k, 1),
                        "mean_realised": sum(s["realised_difficulty"] for s in ps) / len(ps) if ps else float("nan")}
    return {
        "samples": n,
        "parse_rate": len(parsed) / n if n else 0.0,
        "verified_valid_rate": len(verified) / n if n else 0.0,
        "novelty": len(novel) / len(parsed) if parsed else 0.0,
        "grounded_rate": (sum(bool(s.get("grounded")) for s in verified) / len(verified)
                          if verified else float("nan")),
        "mean_train_overlap": sum(s["overlap"] for s in parsed) / len(parsed) if parsed else float("nan"),
        "distinct_2": distinct_n([s["problem"] for s in parsed], 2),
        "difficulty_spearman": spearman([s["difficulty"] for s in parsed], [s["realised_difficulty"] for s in parsed]),
        "difficulty_exact": (sum(s["difficulty"] == s["realised_difficulty"] for s in parsed) / len(parsed)
                             if parsed else float("nan")),
        "per_difficulty": per_level,
    }

"""How new is a generated problem? Surface and structural novelty, measured separately.

A problem with new numbers, names or objects on a training problem's story and arithmetic is a
*variant*: surface-novel (not a copy), structurally old. A problem is structurally *new* when its
story is new (its text, with numbers, names and swappable objects masked, shares less than
`max_overlap` of its word n-grams with every training problem) or its expression graph is new (the
shape of its steps, with stated numbers, earlier results and constants abstracted, matches no
training solution's).

Only hashes are kept (64-bit, stable across processes), so a saved model can judge novelty without
shipping its training text; they are stored as safetensors arrays.
"""
from __future__ import annotations

import hashlib
import re
from typing import Iterable

from . import quantities as Q
from .evaluation import NgramIndex
from .lexicon import OBJECT_WORDS, name_gender
from .verify import parse_number

_NUMBER = re.compile(r"\$?\d[\d,]*(?:\.\d+)?%?|\.\d+%?")
_CAPITALISED = re.compile(r"(?<=[a-z,;] )[A-Z][a-z]+")


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little", signed=True)


def story(problem: str) -> str:
    """The problem with its surface masked: numbers -> #, people's names -> @, objects -> their group."""
    t = _NUMBER.sub(" # ", problem)
    t = re.sub(r"\b[A-Z][a-z]+\b", lambda m: "@" if name_gender(m.group(0)) else m.group(0), t)
    t = _CAPITALISED.sub("@", t)  # names not in the lists, mid-sentence
    return re.sub(r"\b[a-z]+\b", lambda m: f"<{OBJECT_WORDS[m.group(0)][0]}>" if m.group(0) in OBJECT_WORDS
                  else m.group(0), t)


def _normal(problem: str) -> str:
    return " ".join(re.findall(r"[a-z0-9.]+", problem.lower()))


def graph_signature(problem: str, solution: str) -> int | None:
    """Hash of the solution's expression graph: each step's expression with stated numbers written
    Q1, Q2 ... (by first mention), earlier results R-1, R-2 ... (how many steps back), other
    numbers as their value. None for a solution without steps."""
    order: dict = {}
    for m in Q.mentions(problem):
        order.setdefault(m.value, f"Q{len(order) + 1}")
    results, shapes = [], []
    for expr, value in Q.steps(solution):
        def name(m: re.Match) -> str:
            v = parse_number(m.group(0))
            back = [len(results) - k for k, r in enumerate(results) if r == v]
            if back:
                return f"R-{back[-1]}"
            return order.get(v, m.group(0))
        shapes.append(re.sub(r"\s+", "", re.sub(r"\d+(?:\.\d+)?|\.\d+", name, expr)))
        results.append(value)
    return _hash("|".join(shapes)) if shapes else None


class NoveltyIndex:
    """Hashes of the training problems: exact texts, stories (n-gram index) and expression graphs."""

    def __init__(self, n: int = 4):
        self.stories = NgramIndex(n)
        self.texts: set[int] = set()
        self.graphs: set[int] = set()

    @property
    def n(self) -> int:
        return self.stories.n

    def add(self, records: Iterable[dict]) -> "NoveltyIndex":
        for r in records:
            self.stories.add([story(r["problem"])])
            self.texts.add(_hash(_normal(r["problem"])))
            g = graph_signature(r["problem"], r["solution"])
            if g is not None:
                self.graphs.add(g)
        return self

    def judge(self, problem: str, solution: str, max_overlap: float) -> dict:
        """{overlap, surface_novel, graph_novel, story_novel, structural_novel} for one problem."""
        overlap = self.stories.overlap(story(problem))
        g = graph_signature(problem, solution)
        graph_new = g is not None and g not in self.graphs
        story_new = overlap < max_overlap
        return {"overlap": overlap, "surface_novel": _hash(_normal(problem)) not in self.texts,
                "graph_novel": graph_new, "story_novel": story_new, "structural_novel": graph_new or story_new}

    def to_arrays(self) -> dict:
        import numpy as np

        return {**self.stories.to_arrays(), "text_hashes": np.asarray(sorted(self.texts), dtype=np.int64),
                "graph_hashes": np.asarray(sorted(self.graphs), dtype=np.int64)}

    @classmethod
    def from_arrays(cls, arrays: dict, n: int) -> "NoveltyIndex":
        idx = cls(n)
        idx.stories = NgramIndex.from_arrays(arrays, n)
        idx.texts = set(arrays.get("text_hashes", []).tolist()) if "text_hashes" in arrays else set()
        idx.graphs = set(arrays.get("graph_hashes", []).tolist()) if "graph_hashes" in arrays else set()
        return idx

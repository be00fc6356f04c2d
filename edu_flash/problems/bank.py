"""The template backbone's learned state: every training problem that lifts into a template whose
variants pass the checks, indexed by topic and difficulty, saved as JSON (text and structure) and
safetensors (the numbers), no pickle.

Building records why each problem that did not become a template failed, so a card can say what
share of the data the backbone covers and why the rest is missing.
"""
from __future__ import annotations

import json
import random
from collections import Counter
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..core.errors import CheckpointError
from . import formats as F
from .instantiate import Instantiator
from .templates import LiftError, lift
from .usability import check_problem
from .verify import ERRORS

VALIDATION_DRAWS = 3  # variants a template must produce, all passing every check, to be kept
MAX_TEMPLATES = 1_000_000
_INT64 = 2**63 - 1
_PIECE_KEYS = {"v", "p", "r", "n", "o"}


def _difficulty(t: dict) -> int:
    return min(max(len(t["steps"]), 1), F.LEVELS[-1])


class TemplateBank:
    def __init__(self, templates: list[dict], report: dict | None = None):
        self.templates = templates
        self.report = report or {}
        self._compiled: dict[int, Instantiator] = {}
        self.levels: dict[tuple[str, int], list[int]] = {}
        for j, t in enumerate(templates):
            self.levels.setdefault((t["topic"], _difficulty(t)), []).append(j)

    # ------------------------------------------------------------------ building
    @classmethod
    def build(cls, records: list[dict], *, seed: int = 0) -> "TemplateBank":
        """Lift every record; keep a template only if VALIDATION_DRAWS of its variants pass every check."""
        templates, reasons, examples = [], Counter(), {}
        for i, r in enumerate(records):
            try:
                t = lift(r["problem"], r["solution"], topic=r.get("topic"), source=i)
                inst = Instantiator(t)
                why = cls._validate(inst, random.Random(seed * 1_000_003 + i))
                if why is None and any(abs(Fraction(v)).numerator > _INT64 or Fraction(v).denominator > _INT64
                                       for v in [x["value"] for x in t["variables"]] + t["results"]):
                    why = "numbers too large to store"
            except LiftError as e:
                why = e.reason
            except ERRORS as e:  # a template whose arithmetic cannot be compiled
                why = f"cannot compile ({type(e).__name__})"
            if why is None:
                templates.append(t)
            else:
                reasons[why] += 1
                examples.setdefault(why, i)
        report = {"problems": len(records), "templates": len(templates),
                  "template_rate": len(templates) / max(len(records), 1),
                  "not_lifted": dict(reasons.most_common()), "first_example_row": examples}
        return cls(templates, report)

    def count_dropped(self, n: int) -> None:
        """Training problems left out before lifting (their solutions fail the verifier) count as not lifted."""
        if n:
            r = self.report
            r["problems"] += n
            r["template_rate"] = r["templates"] / r["problems"]
            reasons = Counter(r["not_lifted"])
            reasons["fails the verifier"] += n
            r["not_lifted"] = dict(reasons.most_common())

    @staticmethod
    def _validate(inst: Instantiator, rng: random.Random) -> str | None:
        if not inst.changeable:
            return "no quantity to re-choose"
        for _ in range(VALIDATION_DRAWS):
            s = inst.sample(rng)
            if s is None:
                return "no values fit the constraints"
            u = check_problem(s["problem"], s["solution"], s["answer"])
            if not u.usable:
                return f"a variant fails '{next(k for k, ok in u.checks.items() if not ok)}'"
        return None

    # ------------------------------------------------------------------ drawing
    def topics(self) -> Counter:
        return Counter(t["topic"] for t in self.templates)

    def difficulties(self) -> Counter:
        return Counter(_difficulty(t) for t in self.templates)

    def pool(self, topic: str, difficulty: int) -> list[int]:
        """Templates of the topic at the difficulty, else at the nearest difficulty the topic has."""
        exact = self.levels.get((topic, difficulty))
        if exact:
            return exact
        have = sorted({d for (t, d) in self.levels if t == topic}, key=lambda d: (abs(d - difficulty), d))
        return self.levels[(topic, have[0])] if have else []

    def instantiator(self, j: int) -> Instantiator:
        if j not in self._compiled:
            self._compiled[j] = Instantiator(self.templates[j])
        return self._compiled[j]

    def draw(self, topic: str, difficulty: int, rng: random.Random, *, max_number=None) -> dict | None:
        """One raw variant {problem, solution, answer, template, source} for the slot, or None."""
        pool = self.pool(topic, difficulty)
        for _ in range(8 if pool else 0):
            j = rng.choice(pool)
            s = self.instantiator(j).sample(rng, max_number=max_number)
            if s is not None:
                return {**s, "template": j, "source": self.templates[j]["source"]}
        return None

    def variants(self, per_template: int, *, seed: int = 0) -> list[dict]:
        """Training records {problem, solution, answer, topic, difficulty}: up to `per_template` variants
        of every template, each passing every check (to teach a language model more of the same shapes)."""
        rng, out = random.Random(seed), []
        for j, t in enumerate(self.templates):
            for _ in range(per_template):
                s = self.instantiator(j).sample(rng)
                if s is not None and check_problem(s["problem"], s["solution"], s["answer"]).usable:
                    out.append({"problem": s["problem"], "solution": s["solution"], "answer": s["answer"],
                                "topic": t["topic"], "difficulty": F.derive_difficulty(s["solution"])})
        return out

    # ------------------------------------------------------------------ persistence
    def num_numbers(self) -> int:
        return sum(len(t["variables"]) + len(t["results"]) for t in self.templates)

    def save(self, folder: Path) -> None:
        """templates.json holds each template's text and structure; model.safetensors its numbers (the
        values the training problems stated and their steps' results, as exact numerator/denominator)."""
        from safetensors.numpy import save_file

        def fractions(key: str) -> list[Fraction]:
            return [Fraction(x if key == "results" else x["value"]) for t in self.templates for x in t[key]]

        arrays = {}
        for key in ("variables", "results"):
            vals = fractions(key)
            arrays[f"{key}_numerator"] = np.asarray([v.numerator for v in vals], dtype=np.int64)
            arrays[f"{key}_denominator"] = np.asarray([v.denominator for v in vals], dtype=np.int64)
            arrays[f"{key}_per_template"] = np.asarray([len(t[key]) for t in self.templates], dtype=np.int64)
        save_file(arrays, str(folder / "model.safetensors"))
        structure = [{**t, "variables": [{k: v for k, v in x.items() if k != "value"} for x in t["variables"]],
                      "results": len(t["results"])} for t in self.templates]
        (folder / "templates.json").write_text(json.dumps({"templates": structure, "report": self.report}),
                                               encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> "TemplateBank":
        from safetensors.numpy import load_file

        from ..core.modelfolder import read_json_file

        path = folder / "templates.json"
        data = read_json_file(path, folder)
        if not isinstance(data, dict) or not isinstance(data.get("templates"), list):
            raise CheckpointError(f"{path}: expected an object with a 'templates' list")
        templates = data["templates"]
        if len(templates) > MAX_TEMPLATES:
            raise CheckpointError(f"{path}: {len(templates)} templates, more than {MAX_TEMPLATES}")
        _fill_numbers(templates, load_file(str(folder / "model.safetensors")))
        for j, t in enumerate(templates):
            problem = validate(t)
            if problem is None:
                try:
                    Instantiator(t).check()
                except (*ERRORS, KeyError, TypeError) as e:
                    problem = f"its steps do not compile to its results ({type(e).__name__}: {e})"
            if problem:
                raise CheckpointError(f"{path}: template {j} is malformed: {problem}")
        return cls(templates, data.get("report") if isinstance(data.get("report"), dict) else {})


def _fill_numbers(templates: list, arrays: dict) -> None:
    """Put model.safetensors' numbers back into the templates, refusing arrays that do not fit them."""
    for key in ("variables", "results"):
        num, den = arrays.get(f"{key}_numerator"), arrays.get(f"{key}_denominator")
        per = arrays.get(f"{key}_per_template")
        if num is None or den is None or per is None or len(per) != len(templates) or (per < 0).any() \
                or len(num) != len(den) or int(per.sum()) != len(num) or (den <= 0).any():
            raise CheckpointError(f"model.safetensors' {key} do not fit templates.json")
        pos = 0
        for t, k in zip(templates, per.tolist()):
            vals = [str(Fraction(int(a), int(b))) for a, b in zip(num[pos:pos + k], den[pos:pos + k])]
            pos += k
            if not isinstance(t, dict):
                continue  # validate() names it
            if key == "results":
                if t.get("results") != k:
                    raise CheckpointError("a template's result count differs from model.safetensors'")
                t["results"] = vals
            else:
                if not isinstance(t.get("variables"), list) or len(t["variables"]) != k \
                        or not all(isinstance(x, dict) for x in t["variables"]):
                    raise CheckpointError("a template's variables differ from model.safetensors'")
                for x, v in zip(t["variables"], vals):
                    x["value"] = v


def validate(t) -> str | None:
    """What is wrong with one stored template (a folder from a stranger is data), or None."""
    if not isinstance(t, dict):
        return "not an object"
    need = {"topic": str, "steps": list, "question": list, "solution": list, "variables": list, "results": list,
            "names": list, "objects": list}
    for k, typ in need.items():
        if not isinstance(t.get(k), typ):
            return f"'{k}' missing or not a {typ.__name__}"
    sizes = {"v": len(t["variables"]), "p": len(t["variables"]), "r": len(t["results"]), "n": len(t["names"]),
             "o": len(t["objects"])}
    if len(t["results"]) != len(t["steps"]) or not t["steps"]:
        return "one result per step is needed"
    for where in ("question", "solution", *[f"steps[{k}]" for k in range(len(t["steps"]))]):
        pieces = t[where] if not where.startswith("steps") else t["steps"][int(where[6:-1])]
        for p in pieces:
            if isinstance(p, str):
                if len(p) > 20_000:
                    return f"a text piece of {where} is too long"
                continue
            keys = set(p) & _PIECE_KEYS if isinstance(p, dict) else set()
            if len(keys) != 1:
                return f"a piece of {where} is neither text nor one slot: {str(p)[:60]}"
            k = keys.pop()
            if not isinstance(p[k], int) or not 0 <= p[k] < sizes[k]:
                return f"slot {p} of {where} points outside the template"
    for n in t["names"]:
        if not isinstance(n, dict) or n.get("gender") not in ("f", "m"):
            return "a name without gender 'f' or 'm'"
    from .lexicon import OBJECT_GROUPS

    for o in t["objects"]:
        if not isinstance(o, dict) or o.get("group") not in OBJECT_GROUPS or not isinstance(o.get("index"), int) \
                or not 0 <= o["index"] < len(OBJECT_GROUPS[o["group"]]):
            return "an object outside the word lists"
    return None

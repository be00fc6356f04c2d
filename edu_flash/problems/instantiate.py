"""Re-choosing a template's values, names and objects, and recomputing its solution exactly.

Each variable gets a domain implied by the value the original problem wrote: whole numbers stay
whole, round numbers stay as round (120 -> multiples of 10), money keeps its cents, a percentage
stays a multiple of 5 (or of 1) at most 100, and units cap what makes sense ("8 hours a day" stays
at most 24, "5 days a week" at most 7, ages under 100). Values are drawn within two thirds to
one and a half times the original (small counts within 3 of it), in the original's order (a smaller quantity stays smaller); half the draws keep the
original's small divisors (48 -> a multiple of 12), so divisions that came out even still can. Every step is then recomputed
exactly and must stay sensible the way the original's was: whole where it was whole (no fractional
people), positive where it was positive (no negative counts), at most 2 decimals where it had
decimals, within a factor of 25 of the original, and at least 2 where it was (no "1 apples").
A story that compares quantities ("which throw was highest") keeps the order of every pair of
its quantities and results, so the same one stays highest. A draw that breaks a rule is drawn again.
"""
from __future__ import annotations

import math
import random
import re
from fractions import Fraction

from .calculator import exact_decimal, format_value
from .lexicon import OBJECT_GROUPS, names_of
from .verify import ERRORS, UnsafeExpression, evaluate, parse_expression

_CAPS = [  # (pattern on the text right after the number, cap)
    (re.compile(r"^\s*(?:-|\s)?hours?\b.{0,15}\b(a|per|each|every)\s+day", re.I), 24),
    (re.compile(r"^\s*(?:-|\s)?days?\b.{0,15}\b(a|per|each|every)\s+week", re.I), 7),
    (re.compile(r"^\s*(?:-|\s)?days?\b.{0,15}\b(a|per|each|every|in\s+a)\s+month", re.I), 28),
    (re.compile(r"^\s*(?:-|\s)?months?\b", re.I), 12),
    (re.compile(r"^\s*(?:-|\s)?(minutes?|seconds?)\b", re.I), 59),
    (re.compile(r"^\s*(?:-|\s)?hours?\b", re.I), 24),
    (re.compile(r"^\s*(?:-|\s)?years?[\s-]+old", re.I), 95),
    (re.compile(r"^\s*(?:-|\s)?(grade|th grade)", re.I), 12),
    (re.compile(r"^\s*(?:-|\s)?(feet|foot|ft)\b.{0,30}\btall", re.I), 7),  # a person: not 10 feet tall
    (re.compile(r"^\s*(?:-|\s)?inch(es)?\b", re.I), 11),  # "5 feet 3 inches": inches stay under a foot
]
# clock times, and a count of the people the story names ("share between the 3 of them"), stay as written
_KEEP = re.compile(r"^\s*(am|pm|a\.m\.|p\.m\.|o'clock\b|of (them|us|you)\b)", re.I)
_ROUND = (1000, 500, 100, 50, 25, 10, 5)
_MAX_FACTOR = 25
MAX_TRIES = 200


def _decimals(v: Fraction) -> int | None:
    """Decimals needed to write v exactly (None: not a short decimal)."""
    for d in range(0, 5):
        if (v * 10 ** d).denominator == 1:
            return d
    return None


def domain(value: Fraction, percent: bool, context: str) -> tuple[Fraction, Fraction, Fraction] | None:
    """(low, high, step) for a variable first written as `value`; None keeps it as written."""
    if _KEEP.match(context) or value <= 0:
        return None
    if value.denominator == 1:
        v = int(value)
        step = Fraction(next((g for g in _ROUND if v % g == 0 and v // g >= 2), 1))
        lo, hi = (max(Fraction(2), value - 3), value + 3) if v < 10 else (value * 2 / 3, value * 3 / 2)
    else:
        d = _decimals(value)
        if d is None:
            return None
        step = next((Fraction(1, k) for k in (2, 4) if (value * k).denominator == 1), Fraction(1, 10 ** d))
        lo, hi = max(step, value * 2 / 3), value * 3 / 2
    caps = [cap for rule, cap in _CAPS if rule.match(context) and value <= cap]
    if percent and value <= 100:
        caps.append(100)
        if value.denominator == 1 and int(value) % 5 == 0:
            step = max(step, Fraction(5))
    if caps:
        hi = min(hi, Fraction(min(caps)))
    lo, hi = math.ceil(lo / step) * step, math.floor(hi / step) * step
    if hi - lo < step:
        return None
    return lo, hi, step


_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
         "seventeen eighteen nineteen").split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()


def in_words(n: int) -> str:
    """0-999 in English words ("thirty-five", "one hundred twelve"); digits beyond that."""
    if not 0 <= n < 1000:
        return str(n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10 - 2] + ("-" + _ONES[n % 10] if n % 10 else "")
    return _ONES[n // 100] + " hundred" + (" " + in_words(n % 100) if n % 100 else "")


def _fmt(v: Fraction, slot: dict) -> str:
    if "w" in slot and v.denominator == 1:  # a quantity the solution wrote in words
        text = in_words(int(v))
        return text[0].upper() + text[1:] if slot["w"] == "cap" else text
    if "d" in slot:
        text = exact_decimal(v, slot["d"], strip=False)
    else:
        text = format_value(v)
    if slot.get("c") and abs(v) >= 1000:
        whole, _, frac = text.partition(".")
        text = f"{int(whole):,}" + (f".{frac}" if frac else "")
    return text


class Instantiator:
    """A template (the dict `templates.lift` returns) compiled for fast re-sampling."""

    def __init__(self, t: dict):
        self.t = t
        self.values = [Fraction(v["value"]) for v in t["variables"]]
        self.results = [Fraction(r) for r in t["results"]]
        self.domains = [None if var.get("fixed") else domain(v, bool(var.get("percent")), var.get("context", ""))
                        for v, var in zip(self.values, t["variables"])]
        self.equal = [(tuple(a), tuple(b)) for a, b in t.get("equal", [])]
        self.order = sorted(range(len(self.values)), key=lambda i: self.values[i])
        self.trees = [parse_expression(self._expr_text(e)) for e in t["steps"]]

    @staticmethod
    def _expr_text(pieces: list) -> str:
        out = []
        for p in pieces:
            if isinstance(p, str):
                out.append(p)
            elif "v" in p:
                out.append(f"V{p['v']}")
            elif "p" in p:
                out.append(f"(V{p['p']}/100)")
            elif "r" in p:
                out.append(f"R{p['r']}")
            else:
                raise UnsafeExpression(f"unknown slot {p} in a step")
        return "".join(out)

    def check(self) -> None:
        """A stored template must reproduce its own results from its own values (ValueError if not):
        a folder from a stranger is data, and its steps are arithmetic over the template's slots only."""
        env = {f"V{i}": v for i, v in enumerate(self.values)}
        for k, (tree, text) in enumerate(self.trees):
            if evaluate(tree, text, env) != self.results[k]:
                raise ValueError(f"step {k + 1} does not give the stored result {self.results[k]}")
            env[f"R{k}"] = self.results[k]

    @property
    def changeable(self) -> bool:
        return any(d is not None for d in self.domains)

    def _draw_values(self, rng: random.Random, max_number: Fraction | None) -> list[Fraction] | None:
        new, floor = list(self.values), Fraction(0)
        for i in self.order:  # ascending original value: each new value exceeds the one before
            d = self.domains[i]
            if d is None:
                if self.values[i] <= floor:
                    return None
                floor = self.values[i]
                continue
            lo, hi, step = d
            if rng.random() < 0.5:  # half the draws keep the original's small divisors (48 -> a multiple of 12)
                step *= math.gcd(int(self.values[i] / step), 12)
            if max_number is not None:
                hi = min(hi, math.floor(max_number / step) * step)
            lo = max(math.ceil(lo / step) * step, (math.floor(floor / step) + 1) * step)
            if hi < lo:
                return None
            new[i] = lo + step * rng.randint(0, int((hi - lo) / step))
            floor = new[i]
        return new

    def _results(self, values: list[Fraction], max_number: Fraction | None) -> list[Fraction] | None:
        env = {f"V{i}": v for i, v in enumerate(values)}
        out = []
        for k, (tree, text) in enumerate(self.trees):
            try:
                r = evaluate(tree, text, env)
            except ERRORS:
                return None
            orig = self.results[k]
            d = _decimals(r)
            if d is None or (orig.denominator == 1 and d) or d > max(_decimals(orig) or 0, 2):
                return None  # whole stays whole; at most 2 decimals (or as many as the original had)
            if (orig > 0) != (r > 0) or (orig < 0) != (r < 0) or (orig >= 2 and r < 2) or (orig >= 1 and r < 1):
                return None
            if orig and not abs(orig) / _MAX_FACTOR <= abs(r) <= abs(orig) * _MAX_FACTOR:
                return None
            if max_number is not None and abs(r) > max_number:
                return None
            env[f"R{k}"] = r
            out.append(r)
        if self.t.get("ordered") and not self._same_order(values, out):
            return None
        slots = {"v": values, "p": [v / 100 for v in values], "r": out}
        for a, b in self.equal:  # numbers the original could not tell apart must stay equal
            va, vb = (Fraction(x[1]) if x[0] == "c" else slots[x[0]][x[1]] for x in (a, b))
            if va != vb:
                return None
        return out

    def _same_order(self, values: list[Fraction], results: list[Fraction]) -> bool:
        """For stories that compare ("which is highest"): every pair of quantities keeps its order."""
        old, new = self.values + self.results, values + results
        return all((a < b) == (c < d) and (a == b) == (c == d)
                   for i, (a, c) in enumerate(zip(old, new)) for b, d in zip(old[i + 1:], new[i + 1:]))

    def sample(self, rng: random.Random, *, max_number=None, tries: int = MAX_TRIES) -> dict | None:
        """A new problem {problem, solution, answer, values} or None if no draw fits in `tries`."""
        cap = Fraction(max_number) if max_number is not None else None
        for _ in range(tries):
            values = self._draw_values(rng, cap)
            if values is None or values == self.values:
                continue
            results = self._results(values, cap)
            if results is None:
                continue
            names = self._names(rng)
            objects = self._objects(rng)
            slots = {"v": values, "p": [v / 100 for v in values], "r": results}
            return {"problem": self._render(self.t["question"], slots, names, objects),
                    "solution": self._render(self.t["solution"], slots, names, objects),
                    "answer": format_value(results[-1]), "values": [str(v) for v in values]}
        return None

    def _names(self, rng: random.Random) -> list[str]:
        taken, out = {n["text"] for n in self.t["names"]}, []
        for n in self.t["names"]:
            pool = [x for x in names_of(n["gender"]) if x not in taken]
            pick = rng.choice(pool) if pool else n["text"]
            taken.add(pick)
            out.append(pick)
        return out

    def _objects(self, rng: random.Random) -> list[tuple[str, str]]:
        used: dict[str, set[int]] = {}
        for o in self.t["objects"]:
            used.setdefault(o["group"], set()).add(o["index"])
        out = []
        for o in self.t["objects"]:
            members = OBJECT_GROUPS[o["group"]]
            free = [i for i in range(len(members)) if i not in used[o["group"]] or i == o["index"]]
            pick = rng.choice(free)
            used[o["group"]].discard(o["index"])
            used[o["group"]].add(pick)
            out.append(members[pick])
        return out

    @staticmethod
    def _render(pieces: list, slots: dict, names: list[str], objects: list[tuple[str, str]]) -> str:
        out: list[str] = []
        for p in pieces:
            if isinstance(p, str):
                out.append(p)
            elif "n" in p:
                out.append(names[p["n"]])
            elif "o" in p:
                word = objects[p["o"]][1 if p.get("pl") else 0]
                if out:  # "an apple" -> "a pear"
                    out[-1] = re.sub(r"\b([Aa])n?(\s+)$", lambda m: m.group(1) + ("n" if word[0] in "aeiou" else "")
                                     + m.group(2), out[-1])
                out.append(word)
            else:
                kind = next(k for k in ("v", "p", "r") if k in p)
                out.append(_fmt(slots[kind][p[kind]], p))
        return "".join(out)

"""The numbers a problem states, where and how they are written: what templates re-choose and what
the usability checks compare a solution against.

A mention records its span, exact value and writing style (thousands separators, decimals, a `$`
before or `%` after it) so a new value can be written the same way. Some numbers are part of the
story's furniture rather than quantities: years ("in 2019") are `fixed` mentions (never re-chosen,
and a solution need not use them); ordinals ("1st"), clock times ("3:30") and the parts of a written
fraction ("3/4") are not mentions at all.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from .verify import _NUM_COMMA, MAX_LITERAL_DIGITS, STEP, parse_number

# digits with thousands separators or decimals; letters may follow ("220km", "6x5") but not an
# ordinal suffix ("4th"); in problems, "a/b" is one fraction rather than two numbers
_NUMBER = r"(\d{1,3}(?:,\d{3})+(?![\d,])|\d+)(\.\d+)?(?!\d|\.\d|:\d|(?:st|nd|rd|th)\b)|(?<![\w.])\.(\d+)(?!\w)"
_ANY_NUMBER = re.compile(r"(?<![\d.,:])" + _NUMBER)
_MENTION = re.compile(r"(?<![\w.,:])(?<!\d/)(?<!\d\s/\s)(?!\d+\s?/\s?\d)" + _NUMBER)
ORDINAL = re.compile(r"(?<![\d.])(\d{1,6})(?:st|nd|rd|th)\b")
_FRACTION = re.compile(r"(?<![\w.])(\d{1,12})\s*/\s*(\d{1,12})(?![\w.])")
_YEAR_BEFORE = re.compile(r"\b(in|since|of|year|by|until|from|before|after)\s*$", re.I)
_LITERAL = re.compile(r"\d+(?:\.\d+)?|\.\d+")


@dataclass(frozen=True)
class Mention:
    start: int  # span of the digits (and decimals) only: "$" and "%" stay outside
    end: int
    text: str
    value: Fraction
    dollar: bool = False
    percent: bool = False
    commas: bool = False
    decimals: int = 0
    fixed: str | None = None  # why the number is not a quantity: "year", "mixed number"


def mentions(text: str, *, in_fractions: bool = False) -> list[Mention]:
    """Every number written in digits, in order of appearance; the parts of "a/b" only with
    `in_fractions` (in a solution's text "54/2" is a division, in a problem "3/4" is one number)."""
    out = []
    for m in (_ANY_NUMBER if in_fractions else _MENTION).finditer(text):
        raw = m.group(0)
        digits = raw.replace(",", "")
        if sum(c.isdigit() for c in digits) > MAX_LITERAL_DIGITS:
            continue
        value = Fraction(digits)
        fixed = None
        if re.match(r"\s+\d{1,3}\s*/\s*\d{1,3}\b", text[m.end():m.end() + 12]):
            fixed = "mixed number"  # the 2 of "2 1/2 times" goes with its fraction
        elif m.group(2) is None and len(digits) == 4 and 1900 <= value <= 2099 \
                and _YEAR_BEFORE.search(text[:m.start()]) and text[m.start() - 1:m.start()] != "$":
            fixed = "year"
        decimals = len(digits.split(".")[1]) if "." in digits else 0
        out.append(Mention(m.start(), m.end(), raw, value, dollar=text[max(m.start() - 2, 0):m.start()].strip() == "$",
                           percent=text[m.end():m.end() + 2].lstrip().startswith(("%", "percent")),
                           commas="," in raw, decimals=decimals, fixed=fixed))
    return out


def fraction_mentions(text: str) -> list[Fraction]:
    out = []
    for m in _FRACTION.finditer(text):
        if int(m.group(2)):
            out.append(Fraction(int(m.group(1)), int(m.group(2))))
    return out


def literals(expr: str) -> list[Fraction]:
    """The number literals of a step expression ("1,000 * 20%" -> [1000, 20])."""
    t = _NUM_COMMA.sub("", expr)
    return [Fraction(x) for x in _LITERAL.findall(t) if sum(c.isdigit() for c in x) <= MAX_LITERAL_DIGITS]


def steps(solution: str) -> list[tuple[str, Fraction | None]]:
    """(expression, written value) per `<<expr=value>>` step."""
    return [(e, parse_number(v)) for e, v in STEP.findall(solution)]


def fraction_parts(problem: str) -> set[Fraction]:
    """Numerators, denominators and values of the fractions a problem writes ("3/4" -> 3, 4, 0.75)."""
    vals = set(fraction_mentions(problem))
    for m in _FRACTION.finditer(problem):
        vals.update((Fraction(m.group(1)), Fraction(m.group(2))))
    return vals


def stated_values(problem: str) -> set[Fraction]:
    """Values a problem states in digits: each number, a percentage also as a fraction (20% -> 0.2),
    and each written fraction's value (3/4 -> 0.75)."""
    vals = set()
    for m in mentions(problem):
        vals.add(m.value)
        if m.percent:
            vals.add(m.value / 100)
    return vals | fraction_parts(problem)

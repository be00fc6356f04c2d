"""Would a teacher hand this problem out? Checks beyond the arithmetic, run on every emitted problem.

The verifier proves that each `<<expr=value>>` step (and the arithmetic written around it) is right;
it says nothing about the story. These checks catch what made earlier generated problems unusable:

- `question`: the problem ends by asking for one quantity ("How many ...?", "Find ...").
- `grounded`: every number a step uses is stated in the problem, computed by an earlier step or
  written earlier in the solution (not just in the arithmetic right before the step), or one a student knows from the problem's words (a number
  word, "half", 60 minutes in an hour).
- `numbers_used`: every quantity the problem states is used by the solution (years, 0 and 1 -
  "1 month", "one tub" - are exempt).
- `no_repetition`: no degenerate repetition ("the number of the number of", a repeated sentence).
- `number_agreement`: no "1 apples" (the number 1 before a plural noun) in problem or solution.
- `plausible_answer`: the answer fits the question: a count is a non-negative whole number, money
  has at most 2 decimals, an age is under 120, and no answer is negative without a reason.

They are heuristics on English text, tuned so that human-written GSM8K problems pass (see
BENCHMARKS.md for each check's rate on the GSM8K training set); they do not prove a story makes
sense. `usable` = verified and every check passed.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction

from . import quantities as Q
from .lexicon import known_constant
from .verify import STEP, Verdict, parse_number, short_number, verify_solution

CHECKS = ("verified", "question", "grounded", "numbers_used", "no_repetition", "number_agreement", "plausible_answer")
_SENTENCE = re.compile(r"(?<!\bMr\.)(?<!\bMrs\.)(?<!\bMs\.)(?<!\bDr\.)(?<!\bSt\.)(?<!\bvs\.)(?<=[.?!])[\"')\]]*\s+"
                       r"(?=[A-Z$\d\"'(])")
_ASK = re.compile(r"\b(how (many|much|long|far|old|fast|tall|big|heavy|often|wide|deep|high)|what|which|find|"
                  r"calculate|compute|determine|work out)\b", re.I)
_IMPERATIVE = re.compile(r"(^|,\s*)(find|calculate|compute|determine|work out|give|express|write)\b", re.I)
_TWO_ASKS = re.compile(r"\b(how|what)\b[^?]*\b(and|or)\s+(how|what)\b", re.I)
_MEASURE = re.compile(r"^(hours?|minutes?|seconds?|days?|weeks?|months?|years?|miles?|kilomet\w*|km|met(er|re)s?|"
                      r"feet|foot|inch\w*|yards?|pounds?|kilo\w*|kg|grams?|ounces?|lit(er|re)s?|gallons?|cups?|"
                      r"quarts?|pints?|dollars?|cents?|percent\w*|degrees?|times|square|cubic|more|less|fewer|"
                      r"ml|mph|points?|calories|tons?|acres?|servings?|portions?|slices?|pieces?|laps?|rounds?|"
                      r"units?|sheets?|batches|scoops?|bags?|loads?)$", re.I)
_NEGATIVE_OK = re.compile(r"below zero|temperature|degrees|\bloss\b|\bdebt\b|negative|\blost\b|\bowe", re.I)
_MONEY = re.compile(r"\$|\bhow much (money|did|does|do|will|would|is|was|are|more|less|should|can|must|has|had)\b|"
                    r"\b(cost|pay|paid|earn|spend|spent|dollars?|profit|price|charge|save|saved|owe|change)\b", re.I)
_WORD = re.compile(r"[a-z']+|\d+(?:\.\d+)?", re.I)
_REPEAT = re.compile(r"\b((?:[a-z']+\s+){1,5}[a-z']+)\s+\1\b", re.I)  # "the number of the number of"
_DOUBLE_WORD = re.compile(r"\b([a-z']+)\s+\1\b", re.I)
_TRAILING_ARITHMETIC = re.compile(r"[\d\s.,+\-*/xX×÷()$%]*=?\s*\$?\s*$")
_ONE_PLURAL = re.compile(r"(?<![\d.,])\b1 (?!(?:is|was|has|less|plus|minus|times|thus|this|gas|bus|class|glass|"
                         r"grass|dress|pass|kiss|boss|mass|lens|series|species|news|means|equals|gives|contains|costs|makes|takes|"
                         r"weighs|holds|gets|needs|goes|pays|sells|eats|buys|runs|uses|lasts|comes|leaves|works|"
                         r"earns|saves|adds|represents|remains|stands|becomes|seems)\b)([a-z]{2,}[^su\W]s)\b")
_DOUBLE_OK = {"had", "that", "is", "very", "bye", "ha", "no", "yes", "so", "knock", "tick", "choo", "far"}


@dataclass
class Usability:
    checks: dict[str, bool]
    reasons: dict[str, str] = field(default_factory=dict)  # failed check -> why

    @property
    def usable(self) -> bool:
        return all(self.checks.values())


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text.strip()) if s.strip()]


def question_issue(problem: str) -> str | None:
    """None if the problem ends by asking for one quantity, else why not."""
    parts = sentences(problem)
    if len(_WORD.findall(problem)) < 8:
        return "too short to be a word problem"
    last = parts[-1] if parts else ""
    if not (last.endswith("?") or _IMPERATIVE.search(last)):
        return "does not end with a question"
    if not _ASK.search(last):
        return "the last sentence asks for no quantity"
    if sum(s.endswith("?") for s in parts) > 1:
        return "asks more than one question"
    if _TWO_ASKS.search(last):
        return "asks for two quantities"
    return None


def grounding_issue(problem: str, solution: str) -> str | None:
    """None if every number every step uses is stated, computed earlier or known from the words."""
    stated = Q.stated_values(problem)
    found = list(STEP.finditer(solution))
    if not found:
        return "no steps"
    computed: set[Fraction] = set()
    for i, m in enumerate(found, 1):
        # said earlier ("Night 1: 30 pages"), not counting the arithmetic right before this step ("5*7 = <<")
        before = _TRAILING_ARITHMETIC.sub("", STEP.sub(" ", solution[:m.start()]))
        written = {x.value for x in Q.mentions(before, in_fractions=True)}
        for v in Q.literals(m.group(1)):
            if v not in stated and v not in computed and v not in written and not known_constant(v, problem):
                return f"step {i} uses {short_number(v)}, which the problem does not state"
        value = parse_number(m.group(2))
        if value is not None:
            computed.add(value)
    return None


def unused_issue(problem: str, solution: str) -> str | None:
    """None if every quantity the problem states is used by the solution."""
    used: set[Fraction] = set()
    for m in STEP.finditer(solution):
        used.update(Q.literals(m.group(1)))
    text = STEP.sub(" ", solution)
    used.update(m.value for m in Q.mentions(text, in_fractions=True))
    for m in Q.mentions(problem):
        if m.fixed or m.value in (0, 1) or m.value in used or (m.percent and m.value / 100 in used):
            continue
        return f"the problem states {m.text} but the solution never uses it"
    return None


def repetition_issue(problem: str, solution: str = "") -> str | None:
    for text, where in ((problem, "problem"), (solution, "solution")):
        plain = STEP.sub(" ", text)
        m = _REPEAT.search(plain)
        if m is not None:
            return f"the {where} repeats {m.group(1)!r}"
        for d in _DOUBLE_WORD.finditer(plain):
            if d.group(1).lower() not in _DOUBLE_OK:
                return f"the {where} repeats {d.group(1)!r}"
        seen = set()
        for s in sentences(plain):
            key = " ".join(_WORD.findall(s.lower()))
            if key in seen and len(key.split()) > 3:
                return f"the {where} repeats a sentence"
            seen.add(key)
    words = [w.lower() for w in _WORD.findall(problem)]
    if len(words) >= 25 and len(set(words)) / len(words) < 0.35:
        return "the problem keeps repeating the same words"
    return None


def agreement_issue(problem: str, solution: str = "") -> str | None:
    """None unless the text writes 1 before a plural noun ("1 apples", "1 hours")."""
    m = _ONE_PLURAL.search(problem + "\n" + STEP.sub(" ", solution))
    return f"writes {m.group(0)!r}" if m else None


def answer_issue(problem: str, answer) -> str | None:
    """None if the final answer is plausible for the question asked."""
    value = parse_number(str(answer)) if answer is not None else None
    if value is None:
        return "no numeric answer"
    written = str(answer).strip().replace(",", "")
    if "." in written and len(written.split(".")[1].rstrip("0")) > 2:
        return f"answer {answer} has more than 2 decimals"
    if abs(value) >= 10 ** 9:
        return f"answer {answer} is implausibly large"
    if value < 0 and not _NEGATIVE_OK.search(problem):
        return f"answer {answer} is negative"
    last = sentences(problem)[-1] if problem.strip() else ""
    ask = re.search(r"\bhow many\s+(?:more\s+|fewer\s+|less\s+|total\s+|in all\s+)?([a-z]+)", last, re.I)
    if ask and not _MEASURE.match(ask.group(1)) and value.denominator != 1:
        return f"asks how many {ask.group(1)} but the answer {answer} is not a whole number"
    if re.search(r"\bhow old\b", last, re.I) and not 0 <= value <= 120:
        return f"an age of {answer}"
    if _MONEY.search(last) and (value * 100).denominator != 1:
        return f"an amount of money of {answer} (more than 2 decimals)"
    return None


def check_problem(problem: str, solution: str, answer=None, verdict: Verdict | None = None) -> Usability:
    """Every check on one problem; `verdict` reuses a verifier result already computed."""
    v = verdict if verdict is not None else verify_solution(solution)
    if answer is None:
        answer = v.answer
    issues = {"verified": "; ".join(v.errors) if not v.ok else None,
              "question": question_issue(problem),
              "grounded": grounding_issue(problem, solution),
              "numbers_used": unused_issue(problem, solution),
              "no_repetition": repetition_issue(problem, solution),
              "number_agreement": agreement_issue(problem, solution),
              "plausible_answer": answer_issue(problem, answer)}
    return Usability({k: issues[k] is None for k in CHECKS}, {k: r for k, r in issues.items() if r})

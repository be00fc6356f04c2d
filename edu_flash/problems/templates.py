"""Lifting a worked problem into a template (the "isomorphic problems" of tutoring systems and
GSM-Symbolic, Mirzadeh et al. 2024, done automatically from GSM8K-style `<<expr=value>>` steps).

The quantities the question states become variables; each step's expression becomes a node of an
expression graph over variables, earlier results and constants; the question and the solution become
text with slots for numbers, people's names and interchangeable objects. A number in a step must have
one clear role: a stated quantity, an earlier result, or a constant a student knows ("half", 60
minutes in an hour); a problem whose numbers cannot be accounted for that way is not lifted, and
why is recorded (`LiftError.reason`), because a template that guessed a role wrongly would print
solutions that no longer match their story.

Text is a list of pieces: a string, or a slot {"v": i} (variable i), {"p": i} (variable i / 100,
a percentage written as a decimal), {"r": k} (step k's result), {"n": j} (name j), {"o": j}
(object j, "pl": plural). Number slots carry how the original wrote them ("c": thousands
separators, "d": fixed decimals).
"""
from __future__ import annotations

import re
from fractions import Fraction

from . import quantities as Q
from .lexicon import COMPOUND_NEXT, NUMBER_WORDS, OBJECT_GROUPS, OBJECT_WORDS, infer_topic, known_constant, name_gender
from .usability import check_problem
from .calculator import format_value
from .verify import FINAL, STEP, _clean, parse_number, safe_eval, verify_solution, visible_value

_EXPR_LITERAL = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?|\.\d+)(?![\d.])")
_PLAIN_EXPR = re.compile(r"^[\d\s.+\-*/()]+$")
_NAME = re.compile(r"\b[A-Z][a-z]+\b")
_TITLE_BEFORE = re.compile(r"(Mr|Mrs|Ms|Dr|Miss|Mister|Aunt|Uncle)\.?\s$")
_NOT_QUANTITY_WORDS = {"both", "each", "second", "third", "quarter", "half", "double", "twice", "pair", "single"}
# a story that compares quantities ("which is highest") stays right only if their order stays the same
_COMPARES = re.compile(r"\b(highest|lowest|largest|smallest|most|least|fewest|greatest|best|worst|which|longest|"
                       r"shortest|fastest|slowest|biggest|cheapest|maximum|minimum|whichever|winner|wins?)\b", re.I)
_AFTER_STEP = re.compile(r"\s*\$?\s*$")
_TEXT_RESULT = re.compile(r"=\s*\$?\s*(\d[\d,]*(?:\.\d+)?|\.\d+)(?!\d|\.\d|\s*[-+*/x×÷])")


class LiftError(ValueError):
    """Why a problem cannot become a template; `reason` is a short category for reports."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def _style(m: Q.Mention) -> dict:
    d = {}
    if m.commas:
        d["c"] = True
    if m.decimals and (m.text.endswith("0") or m.dollar):
        d["d"] = m.decimals  # "$2.50" stays written with cents
    return d


class _Roles:
    """Decides what each number in a step or in the solution text stands for.

    A number equal to two things (a stated quantity and an earlier result, two earlier results,
    or an earlier result and a known constant) is read as the most recent result, and the pair is
    recorded in `equal`: every variant must keep the two equal, so both readings stay right. When
    the equality is structural (1*5 = 5) every draw keeps it; when it was a coincidence no draw
    does, and the template is dropped as ambiguous.
    """

    def __init__(self, problem: str):
        self.problem = problem
        self.mentions = [m for m in Q.mentions(problem)]
        self.var_of: dict[Fraction, int] = {}
        self.values: list[Fraction] = []
        self.percent: list[bool] = []
        self.fixed: set[int] = set()  # variables whose value never changes (see `role`)
        self.equal: set[tuple] = set()
        for m in self.mentions:
            if m.fixed or m.value in (0, 1) or m.value < 0:
                continue
            if m.value not in self.var_of:
                self.var_of[m.value] = len(self.values)
                self.values.append(m.value)
                self.percent.append(m.percent)
            elif m.percent:
                self.percent[self.var_of[m.value]] = True
        # numbers stated as something other than a quantity: fraction parts, years, mixed numbers, 0 and 1
        self.stated_other = Q.fraction_parts(problem) | {m.value for m in self.mentions if m.fixed} | {Fraction(0),
                                                                                                       Fraction(1)}

    def role(self, value: Fraction, results: list[Fraction], before: int, where: str, coming: bool = False) -> tuple:
        """('v', i) | ('p', i) | ('r', k) | ('c',) for a number; results[:before] are computable here
        (and, with `coming`, results[before] as a last resort: text written just before its step)."""
        cands = [("v", self.var_of[value])] if value in self.var_of else []
        cands += [("p", i) for i, (x, pct) in enumerate(zip(self.values, self.percent)) if pct and x / 100 == value]
        earlier = [k for k in range(before) if results[k] == value]
        constant = value in self.stated_other or known_constant(value, self.problem)
        if earlier:
            r = ("r", earlier[-1])
            others = cands + [("r", k) for k in earlier[:-1]] + ([("c", str(value))] if constant else [])
            self.equal.update((r, o) for o in others)
            return r
        if coming and not cands and not constant and before < len(results) and results[before] == value:
            return ("r", before)  # "she sold 24 because 48/2 = <<48/2=24>>24": the coming step's result
        if cands:
            if constant:  # "2 boxes ... twice as many": the 2 stays 2, so both readings agree
                self.fixed.add(cands[0][1])
                return ("c",)
            return cands[0]
        if constant:
            return ("c",)
        raise LiftError("unstated number", f"{where} uses {value}, which is neither stated, computed nor a known "
                                           "constant")


def _text_pieces(text: str, slots: list[tuple[int, int, dict]]) -> list:
    """text with [start, end) spans replaced by slot dicts (spans must not overlap)."""
    out, pos = [], 0
    for a, b, slot in sorted(slots, key=lambda s: s[0]):
        if a < pos:
            continue
        if a > pos:
            out.append(text[pos:a])
        out.append(slot)
        pos = b
    if pos < len(text):
        out.append(text[pos:])
    return out


def _names(problem: str, solution: str) -> tuple[list[dict], dict[str, int]]:
    found: dict[str, int] = {}
    for m in _NAME.finditer(problem):
        w = m.group(0)
        if name_gender(w) and not _TITLE_BEFORE.search(problem[:m.start()]) and w not in found:
            found[w] = len(found)
    for m in _NAME.finditer(solution):
        if name_gender(m.group(0)) and m.group(0) not in found and not _TITLE_BEFORE.search(solution[:m.start()]):
            raise LiftError("names differ", f"the solution names {m.group(0)}, who is not in the problem")
    return [{"text": w, "gender": name_gender(w)} for w in found], found


def _objects(problem: str, solution: str) -> list[tuple[str, int]]:
    """(group, member index) of each swappable object the problem names."""
    out, blocked = [], set()
    for text in (problem, solution):
        for m in re.finditer(r"\b([A-Za-z]+)\b(?=(\s+[a-z]+)?)", text):
            key = m.group(1).lower()
            if key not in OBJECT_WORDS:
                continue
            nxt = (m.group(2) or "").strip()
            if m.group(1) != key or nxt in COMPOUND_NEXT:
                blocked.add(OBJECT_WORDS[key])
    for m in re.finditer(r"\b[a-z]+\b", problem):
        item = OBJECT_WORDS.get(m.group(0))
        if item and item not in blocked and item not in out:
            out.append(item)
    return out


def _word_slots(text: str, names: dict[str, int], objects: list[tuple[str, int]]) -> list[tuple[int, int, dict]]:
    slots = []
    for m in _NAME.finditer(text):
        if m.group(0) in names and not _TITLE_BEFORE.search(text[:m.start()]):
            slots.append((m.start(), m.end(), {"n": names[m.group(0)]}))
    for j, (group, idx) in enumerate(objects):
        singular, plural = OBJECT_GROUPS[group][idx]
        for m in re.finditer(rf"\b({re.escape(singular)}|{re.escape(plural)})\b", text):
            slots.append((m.start(), m.end(), {"o": j, "pl": m.group(0) == plural}))
    return slots


def _number_words(problem: str, masked: str, roles: _Roles, changing: set) -> list[tuple[int, int, dict]]:
    """A solution that writes a changing quantity in words ("Twenty shirts cost ...") gets a slot that
    writes the new value in words, when the word is followed by the same word as the number in the
    problem ("20 shirts"); any other number word for a changing value ("add those two quantities"
    beside a stated 2) cannot be told apart from a coincidence, and the problem is not lifted."""
    after = {}
    for m in roles.mentions:
        nxt = re.match(r"\s*([a-z]+)", problem[m.end:].lower())
        if nxt and m.value in roles.var_of:
            after.setdefault(m.value, set()).add(nxt.group(1))
    slots = []
    for m in re.finditer(r"\b([A-Za-z]+)\b(?=(?:\s+([a-z]+))?)", masked):
        w = m.group(1).lower()
        v = NUMBER_WORDS.get(w)
        if v is None or v not in changing or w in problem.lower() or w in _NOT_QUANTITY_WORDS:
            continue
        i = roles.var_of.get(v)
        if i is None or i in roles.fixed or (m.group(2) or "") not in after.get(v, ()):
            raise LiftError("number in words", f"the solution writes {w!r} for a number that changes")
        slots.append((m.start(1), m.end(1), {"v": i, "w": "cap" if m.group(1)[0].isupper() else "low"}))
    return slots


def annotate_text_steps(solution: str) -> str:
    """Arithmetic a solution writes without an annotation ("100 cards - 10 cards = 90 cards") gets one
    (`= <<100 - 10=90>>90`) when it is right, so its result becomes a node of the graph like any step."""
    masked = STEP.sub(lambda m: " " * len(m.group(0)), solution)
    inserts = []
    for m in _TEXT_RESULT.finditer(masked):
        start = max(masked.rfind("\n", 0, m.start()) + 1, masked.rfind("  ", 0, m.start()))
        found = visible_value(masked[start:m.start() + 1])
        value = parse_number(m.group(1))
        if found is None or value is None or "<<" in solution[m.start():m.start(1)]:
            continue
        expr, ok = found[0], found[1] == value
        plain = re.sub(r"\s+", "", _clean(expr))
        if ok and _PLAIN_EXPR.match(plain):
            inserts.append((m.start(1), f"<<{plain}={format_value(value)}>>"))
    for pos, text in reversed(inserts):
        solution = solution[:pos] + text + solution[pos:]
    return solution


def lift(problem: str, solution: str, topic: str | None = None, source: int = -1) -> dict:
    """A template (JSON-ready dict) from one worked problem, or LiftError saying why not."""
    verdict = verify_solution(solution)
    if not verdict.ok:
        raise LiftError("fails the verifier", verdict.errors[0])
    solution = annotate_text_steps(solution)
    verdict = verify_solution(solution)
    u = check_problem(problem, solution, verdict=verdict)
    if not u.usable:
        failed = next(k for k, ok in u.checks.items() if not ok)
        raise LiftError(f"source fails '{failed}'", u.reasons[failed])
    roles = _Roles(problem)
    steps = list(STEP.finditer(solution))
    results = [parse_number(m.group(2)) for m in steps]
    for k, m in enumerate(steps):
        if not _PLAIN_EXPR.match(m.group(1)):
            raise LiftError("annotation not plain arithmetic", m.group(1))
        if results[k] != (x := safe_eval(m.group(1))):
            raise LiftError("rounded step", f"step {k + 1} writes {m.group(2)} for {x}")
    # pass 1: roles of every number in the steps and in the solution's text
    step_roles = [[roles.role(Fraction(lit.group(0)), results, k, f"step {k + 1}")
                   for lit in _EXPR_LITERAL.finditer(m.group(1))] for k, m in enumerate(steps)]
    masked = STEP.sub(lambda m: " " * len(m.group(0)), solution)
    final = FINAL.search(solution)
    text_roles = []
    for mt in Q.mentions(masked, in_fractions=True):
        if final and mt.start >= final.start():
            text_roles.append((mt, ("r", len(steps) - 1)))
            continue
        after = [k for k, m in enumerate(steps) if m.end() <= mt.start and _AFTER_STEP.match(masked[m.end():mt.start])]
        if after and results[after[-1]] == mt.value:
            text_roles.append((mt, ("r", after[-1])))
            continue
        upcoming = next((k for k, m in enumerate(steps) if m.start() >= mt.end), len(steps))
        text_roles.append((mt, roles.role(mt.value, results, upcoming, "the solution text", coming=True)))
    changing = {v for i, v in enumerate(roles.values) if i not in roles.fixed} | set(results)
    for m in Q.ORDINAL.finditer(masked):
        if Fraction(m.group(1)) in changing:
            raise LiftError("ordinal number", f"the solution writes {m.group(0)}, which would not change with its value")
    word_slots = _number_words(problem, masked, roles, changing)
    if len(roles.fixed) == len(roles.values):
        raise LiftError("no quantity to re-choose", "every stated number is a constant")

    def slot(role: tuple, style: dict) -> dict | None:
        if role[0] == "c" or (role[0] in ("v", "p") and role[1] in roles.fixed):
            return None
        return {role[0]: role[1], **style}

    names, name_index = _names(problem, solution)
    objects = _objects(problem, solution)
    q_slots = [(m.start, m.end, s) for m in roles.mentions if m.value in roles.var_of
               for s in [slot(("v", roles.var_of[m.value]), _style(m))] if s is not None]
    question = _text_pieces(problem, q_slots + _word_slots(problem, name_index, objects))
    s_slots = _word_slots(solution, name_index, objects) + word_slots
    for mt, role in text_roles:
        s = slot(role, _style(mt))
        if s is not None:
            s_slots.append((mt.start, mt.end, s))
    exprs = []
    for k, m in enumerate(steps):
        lits = list(_EXPR_LITERAL.finditer(m.group(1)))
        e_slots = [(lit.start(), lit.end(), s) for lit, role in zip(lits, step_roles[k])
                   for s in [slot(role, {})] if s is not None]
        exprs.append(_text_pieces(m.group(1), e_slots))
        s_slots.append((m.start(), m.end(), {"step": k}))
    solution_pieces = []
    for piece in _text_pieces(solution, s_slots):
        if isinstance(piece, dict) and "step" in piece:
            solution_pieces += ["<<", *exprs[piece["step"]], "=", {"r": piece["step"]}, ">>"]
        else:
            solution_pieces.append(piece)
    first = {}
    for m in roles.mentions:
        first.setdefault(roles.var_of.get(m.value), m)
    variables = [{"value": str(v), "percent": roles.percent[i], "fixed": i in roles.fixed,
                  "context": problem[first[i].end:first[i].end + 40]} for i, v in enumerate(roles.values)]
    equal = sorted([list(a), list(b)] for a, b in roles.equal if not (b[0] in ("v", "p") and b[1] in roles.fixed))
    return {"source": source, "topic": topic or infer_topic(problem), "steps": exprs,
            "question": _merge(question), "solution": _merge(solution_pieces), "variables": variables,
            "results": [str(r) for r in results], "equal": equal, "names": names,
            "ordered": bool(_COMPARES.search(problem) or _COMPARES.search(solution)),
            "objects": [{"group": g, "index": i} for g, i in objects]}


def _merge(pieces: list) -> list:
    """Adjacent strings joined (smaller JSON, easier to read)."""
    out: list = []
    for p in pieces:
        if isinstance(p, str) and out and isinstance(out[-1], str):
            out[-1] += p
        elif p != "":
            out.append(p)
    return out

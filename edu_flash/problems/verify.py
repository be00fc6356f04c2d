"""Checking a worked solution without trusting it: a safe arithmetic evaluator and step checks.

Generated text and training data are untrusted input, so nothing here calls `eval`/`exec`:
expressions are parsed with `ast` and only number literals, + - * / // % ** and unary signs are
walked, with exact `fractions.Fraction` arithmetic (0.1 + 0.2 == 0.3). Every cost is bounded before
it is paid: the expression's length, each literal's digits and exponent (checked on the text, before
any conversion: `1e99999999` is refused, not built), the nesting depth, the size of a power's result
(estimated from its operands' sizes) and of every intermediate value. Anything else (names, calls,
attributes) is rejected.

A solution is checked twice over: each annotation `<<expr=value>>` must be right, and what a
student reads must agree with it: the number written right after `>>`, and an arithmetic expression
written right before `= <<` ("15*3 = <<15*3=45>>45" is fine; "15*3 = <<15*3=45>>6" or
"5*2 = <<5*3=15>>15" is not).
"""
from __future__ import annotations

import ast
import operator
import re
from dataclasses import dataclass, field
from fractions import Fraction

MAX_EXPR_CHARS = 200
MAX_DEPTH = 30
MAX_EXPONENT = 64
MAX_BITS = 4096  # numerator/denominator size bound on every intermediate value
MAX_LITERAL_DIGITS = 40  # digits in one written number (GSM8K's longest has 10)
MAX_LITERAL_EXPONENT = 40  # |e| in a literal like 1.5e3
MAX_SOLUTION_CHARS = 20_000  # a worked solution longer than this is not checked (nor trained on)

STEP = re.compile(r"<<([^<>]*?)=([^<>=]*)>>")
FINAL = re.compile(r"####\s*(.+?)\s*$", re.S)
_NUM_COMMA = re.compile(r"(?<=\d),(?=\d{3}\b)")
_LITERAL = re.compile(r"(?P<int>\d*)(?:\.(?P<frac>\d*))?(?:[eE](?P<exp>[+-]?\d+))?")
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
        ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod}
ERRORS = (ValueError, ZeroDivisionError, SyntaxError, OverflowError, RecursionError, MemoryError)


class UnsafeExpression(ValueError):
    """The expression uses something other than numbers and arithmetic, or is too big to evaluate."""


def _clean(expr: str) -> str:
    """GSM8K writing habits -> Python arithmetic: 1,000 -> 1000, $5 -> 5, 50% -> 50/100, x/× -> *."""
    e = _NUM_COMMA.sub("", expr.strip()).replace("$", "").replace("×", "*").replace("÷", "/")
    e = re.sub(r"(?<=[\d)])\s*[xX]\s*(?=[\d(.])", "*", e)
    e = re.sub(r"(?<![\d.])(\d+(?:\.\d+)?|\.\d+)\s*%", r"(\1/100)", e)
    return e


def _check_size(v: Fraction) -> Fraction:
    if v.numerator.bit_length() > MAX_BITS or v.denominator.bit_length() > MAX_BITS:
        raise UnsafeExpression("intermediate value too large")
    return v


def _literal(text: str) -> Fraction:
    """A number literal's exact value, its size checked on the text before anything is converted."""
    m = _LITERAL.fullmatch(text)
    if m is None or not (m.group("int") or m.group("frac")):
        raise UnsafeExpression(f"number literal {text[:20]!r} is not plain decimal notation")
    digits = len(m.group("int") or "") + len(m.group("frac") or "")
    exp = m.group("exp")
    if digits > MAX_LITERAL_DIGITS or (exp is not None and (len(exp) > 6 or abs(int(exp)) > MAX_LITERAL_EXPONENT)):
        raise UnsafeExpression(f"number literal {text[:20]!r}... is too large (at most {MAX_LITERAL_DIGITS} digits, "
                               f"exponent at most {MAX_LITERAL_EXPONENT})")
    return Fraction(text)


def _power(a: Fraction, b: Fraction) -> Fraction:
    if b.denominator != 1 or abs(b) > MAX_EXPONENT:
        raise UnsafeExpression("only small whole-number powers are allowed")
    if a == 0 and b < 0:
        raise ZeroDivisionError("0 to a negative power")
    bits = max(a.numerator.bit_length(), a.denominator.bit_length()) * abs(int(b))
    if bits > MAX_BITS:  # refused before it is computed
        raise UnsafeExpression("power too large")
    return a ** int(b)


def parse_expression(expr: str) -> tuple[ast.Expression, str]:
    """The bounded parse of an arithmetic expression: (tree, cleaned text) for `evaluate`."""
    if not isinstance(expr, str) or len(expr) > 2 * MAX_EXPR_CHARS:
        raise UnsafeExpression(f"expression empty or longer than {MAX_EXPR_CHARS} characters")
    e = _clean(expr)
    if not e or len(e) > MAX_EXPR_CHARS:
        raise UnsafeExpression(f"expression empty or longer than {MAX_EXPR_CHARS} characters")
    try:
        return ast.parse(e, mode="eval"), e
    except (RecursionError, MemoryError):
        raise UnsafeExpression("expression nested too deeply") from None


def evaluate(tree: ast.Expression, text: str, names: dict[str, Fraction] | None = None) -> Fraction:
    """Exact value of a parsed expression; `names` gives the only names it may use (template slots)."""

    def walk(node, depth: int) -> Fraction:
        if depth > MAX_DEPTH:
            raise UnsafeExpression("expression nested too deeply")
        if isinstance(node, ast.Expression):
            return walk(node.body, depth + 1)
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            # the literal's own text, so 0.1 is exactly 1/10 and not the nearest binary float
            return _literal(ast.get_source_segment(text, node) or "")
        if isinstance(node, ast.Name) and names is not None and node.id in names:
            return names[node.id]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
            v = walk(node.operand, depth + 1)
            return v if isinstance(node.op, ast.UAdd) else -v
        if isinstance(node, ast.BinOp):
            a, b = walk(node.left, depth + 1), walk(node.right, depth + 1)
            if isinstance(node.op, ast.Pow):
                return _check_size(_power(a, b))
            op = _OPS.get(type(node.op))
            if op is None:
                raise UnsafeExpression(f"operator {type(node.op).__name__} is not allowed")
            return _check_size(Fraction(op(a, b)))
        raise UnsafeExpression(f"{type(node).__name__} is not allowed in an arithmetic step")

    return walk(tree, 0)


def safe_eval(expr: str) -> Fraction:
    """Exact value of an arithmetic expression, or UnsafeExpression / ZeroDivisionError / SyntaxError."""
    return evaluate(*parse_expression(expr))


def parse_number(text: str) -> Fraction | None:
    """A written value ("1,200", "$4.50", "3/4", "-2", "12 apples") -> Fraction, else None."""
    t = _NUM_COMMA.sub("", str(text)[:200].strip()).replace("$", "").rstrip(".").strip()
    m = re.match(r"^-?\s*\d*\.?\d+(?:\s*/\s*\d+)?", t)
    if not m or re.search(r"[\d+\-*/=^()<>]", t[m.end():]):  # "12 apples" is 12; "4+2" or "4 5" is no number
        return None
    if sum(c.isdigit() for c in m.group(0)) > MAX_LITERAL_DIGITS:
        return None
    try:
        return Fraction(m.group(0).replace(" ", ""))
    except (ValueError, ZeroDivisionError):
        return None


def _matches(exact: Fraction, written: str, value: Fraction) -> bool:
    """Exact equality, or equality after rounding to the decimals the author wrote (10/3 = 3.33)."""
    if exact == value:
        return True
    decimals = len(written.split(".")[1]) if "." in written else None
    if decimals and decimals <= MAX_LITERAL_DIGITS:
        return round(exact, decimals) == value
    return False


# ---------------------------------------------------------------- what a student reads
_TOKEN = re.compile(r"\s*(?:(?P<num>\$?(?:\d[\d,]*(?:\.\d+)?|\.\d+)%?)|(?P<op>[-+*/×÷]|(?<![A-Za-z])[xX](?![A-Za-z]))"
                    r"|(?P<par>[()])|(?P<word>[A-Za-z]+)|(?P<other>\S))")
_AFTER = re.compile(r"\s*(-?)\s*\$?\s*(\d[\d,]*(?:\.\d+)?|\.\d+)")
MAX_UNIT_WORDS = 3  # "24 bottles * 1/3", "120 complaints/day * 4/3": words after a number are its unit


def _unit_start(toks: list, i: int) -> int | None:
    """toks[i] is a word: the index of the number its unit follows ("5 miles/hour"), or None (prose)."""
    j, words = i, 0
    while j >= 0 and words < MAX_UNIT_WORDS:
        if toks[j][0] == "word":
            words += 1
        elif not (toks[j][1] == "/" and j > 0 and toks[j - 1][0] == "word"):
            break
        j -= 1
    return j if j >= 0 and toks[j][0] == "num" else None


def visible_expression(before: str) -> str | None:
    """The arithmetic a student reads right before `= <<...>>` ("48/2", "24 bottles * 1/3" -> "24 * 1/3"),
    or None when the text there is prose, a lone number ("20% of 50 ="), a mixed number ("1 and 1/4")
    or anything else that does not read as one expression."""
    found = visible_value(before)
    return None if found is None else found[0]


def visible_value(before: str) -> tuple[str, Fraction] | None:
    """visible_expression and its value (it is evaluated to be recognised; callers need not again)."""
    text = before.rstrip().rstrip("$").rstrip()
    if not text.endswith("="):
        return None
    toks = [(m.lastgroup, m.group(m.lastgroup)) for m in _TOKEN.finditer(text[:-1][-MAX_EXPR_CHARS:])]
    out, i, operand, depth = [], len(toks) - 1, True, 0
    while i >= 0:
        kind, tok = toks[i]
        if operand and kind == "word":
            j = _unit_start(toks, i)
            if j is None:
                break
            i = j
            continue
        if operand and kind == "num":
            out.append(tok)
            operand = False
        elif operand and tok == ")":
            out.append(tok)
            depth += 1
        elif not operand and kind == "op":
            out.append(tok)
            operand = True
        elif not operand and tok == "(" and depth:
            out.append(tok)
            depth -= 1
        else:
            break
        i -= 1
    if i >= 0 and (toks[i][0] == "num" or toks[i][1] in ("(", ")", "and") or (operand and toks[i][0] == "word")):
        return None  # "4(7) - 10", "1 and 1/4 cup", "35 lunches for the kids + 5": no clear start
    if operand and out and out[-1] != "-":
        out.pop()  # an operator that belongs to the prose; a leading "-" is the number's sign
    if depth or not any(k in "+-*/×÷xX" for k in out[:-1]):
        return None
    expr = " ".join(reversed(out))
    try:
        return expr, safe_eval(expr)
    except ERRORS:
        return None


def visible_errors(solution: str) -> list[str]:
    """Disagreements between each annotation and the arithmetic written around it."""
    errors, prev = [], 0
    for i, m in enumerate(STEP.finditer(solution), 1):
        written = m.group(2).strip()
        start = max(prev, solution.rfind("\n", 0, m.start()) + 1)
        prev = m.end()
        value = parse_number(written)
        if value is None:
            continue  # reported by the annotation check
        after = _AFTER.match(solution, m.end())
        if after is None:
            errors.append(f"step {i}: the value {written} is not written after the step")
        elif parse_number(after.group(1) + after.group(2)) != value:
            errors.append(f"step {i}: the text says {after.group(1) + after.group(2)} where the step computes "
                          f"{written}")
        found = visible_value(solution[start:m.start()])
        if found is None:
            continue
        shown, value_shown = found
        try:  # "0.6 x 100% = 60%": a trailing "x 100%" converts to a percentage
            seen = [value_shown, *([safe_eval(shown.replace("%", ""))] if "%" in shown else [])]
        except ERRORS:
            continue
        if not any(_matches(v, written, value) for v in seen):
            errors.append(f"step {i}: the text writes {shown} = {written}, but {shown} is {short_number(seen[0])}")
    return errors


def short_number(v: Fraction) -> str:
    """A number for a message: whole as written, otherwise 4 significant digits."""
    return str(v.numerator) if v.denominator == 1 else f"{float(v):.4g}"


@dataclass
class Verdict:
    """Why a solution passed or failed; `ok` is the one bit the generator filters on."""

    ok: bool
    steps: int = 0
    answer: Fraction | None = None
    errors: list[str] = field(default_factory=list)


def verify_solution(solution: str, answer: str | None = None, *, require_steps: bool = True,
                    visible: bool = True) -> Verdict:
    """Every `<<expr=value>>` must evaluate (safely, exactly) to its value, the final answer (`#### x`,
    or `answer`) must equal the last step's value, and (with `visible`) the arithmetic written around
    each step must agree with it (`visible_errors`)."""
    if not isinstance(solution, str) or len(solution) > MAX_SOLUTION_CHARS:
        return Verdict(ok=False, errors=[f"solution longer than {MAX_SOLUTION_CHARS} characters"])
    errors: list[str] = []
    steps = STEP.findall(solution)
    last = None
    for i, (expr, written) in enumerate(steps, 1):
        value = parse_number(written)
        if value is None:
            errors.append(f"step {i}: value {written!r} is not a number")
            continue
        try:
            exact = safe_eval(expr)
        except (UnsafeExpression, *ERRORS) as e:
            errors.append(f"step {i}: cannot evaluate {expr!r} ({type(e).__name__}: {e})")
            continue
        if not _matches(exact, written.strip(), value):
            errors.append(f"step {i}: {expr} is {exact}, not {written.strip()}")
        last = value
    if visible:
        errors += visible_errors(solution)
    if require_steps and not steps:
        errors.append("no <<expr=value>> steps to check")
    if answer is None:
        m = FINAL.search(solution)
        answer = m.group(1) if m else None
    final = parse_number(answer) if answer is not None else None
    if final is None:
        errors.append("no final answer (#### x)" if answer is None else f"final answer {answer!r} is not a number")
    elif steps and last is not None and final != last:
        errors.append(f"final answer {answer} differs from the last step's value {last}")
    return Verdict(ok=not errors, steps=len(steps), answer=final, errors=errors)


def boxed(text: str) -> str | None:
    """Content of the last \\boxed{...} (MATH's answer convention), braces balanced."""
    i = text.rfind("\\boxed")
    if i < 0:
        return None
    j = text.find("{", i)
    if j < 0:
        return None
    depth = 0
    for k in range(j, len(text)):
        depth += {"{": 1, "}": -1}.get(text[k], 0)
        if depth == 0:
            return text[j + 1:k]
    return None

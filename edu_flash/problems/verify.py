"""Checking a worked solution without trusting it: a safe arithmetic evaluator and step checks.

Generated text is untrusted input, so nothing here calls `eval`/`exec`: expressions are parsed with
`ast` and only number literals, + - * / // % ** and unary signs are walked, with exact
`fractions.Fraction` arithmetic (0.1 + 0.2 == 0.3) and bounds on size, depth and powers so a
hostile `9**9**9` cannot hang the process. Anything else (names, calls, attributes) is rejected.
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

STEP = re.compile(r"<<([^<>]*?)=([^<>=]*)>>")
FINAL = re.compile(r"####\s*(.+?)\s*$", re.S)
_NUM_COMMA = re.compile(r"(?<=\d),(?=\d{3}\b)")
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
        ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod}


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


def safe_eval(expr: str) -> Fraction:
    """Exact value of an arithmetic expression, or UnsafeExpression / ZeroDivisionError / SyntaxError."""
    e = _clean(expr)
    if not e or len(e) > MAX_EXPR_CHARS:
        raise UnsafeExpression(f"expression empty or longer than {MAX_EXPR_CHARS} characters")
    tree = ast.parse(e, mode="eval")

    def walk(node, depth: int) -> Fraction:
        if depth > MAX_DEPTH:
            raise UnsafeExpression("expression nested too deeply")
        if isinstance(node, ast.Expression):
            return walk(node.body, depth + 1)
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            # the literal's own text, so 0.1 is exactly 1/10 and not the nearest binary float
            return Fraction(ast.get_source_segment(e, node) or repr(node.value))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
            v = walk(node.operand, depth + 1)
            return v if isinstance(node.op, ast.UAdd) else -v
        if isinstance(node, ast.BinOp):
            a, b = walk(node.left, depth + 1), walk(node.right, depth + 1)
            if isinstance(node.op, ast.Pow):
                if b.denominator != 1 or abs(b) > MAX_EXPONENT:
                    raise UnsafeExpression("only small whole-number powers are allowed")
                if a == 0 and b < 0:
                    raise ZeroDivisionError("0 to a negative power")
                return _check_size(a ** int(b))
            op = _OPS.get(type(node.op))
            if op is None:
                raise UnsafeExpression(f"operator {type(node.op).__name__} is not allowed")
            return _check_size(Fraction(op(a, b)))
        raise UnsafeExpression(f"{type(node).__name__} is not allowed in an arithmetic step")

    return walk(tree, 0)


def parse_number(text: str) -> Fraction | None:
    """A written value ("1,200", "$4.50", "3/4", "-2", "12 apples") -> Fraction, else None."""
    t = _NUM_COMMA.sub("", str(text).strip()).replace("$", "").rstrip(".").strip()
    m = re.match(r"^-?\s*\d*\.?\d+(?:\s*/\s*\d+)?", t)
    if not m or re.search(r"[\d+\-*/=^()<>]", t[m.end():]):  # "12 apples" is 12; "4+2" or "4 5" is no number
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
    if decimals:
        return round(exact, decimals) == value
    return False


@dataclass
class Verdict:
    """Why a solution passed or failed; `ok` is the one bit the generator filters on."""

    ok: bool
    steps: int = 0
    answer: Fraction | None = None
    errors: list[str] = field(default_factory=list)


def verify_solution(solution: str, answer: str | None = None, *, require_steps: bool = True) -> Verdict:
    """Every `<<expr=value>>` must evaluate (safely, exactly) to its value, and the final answer
    (`#### x`, or `answer`) must equal the last step's value."""
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
        except (UnsafeExpression, SyntaxError, ZeroDivisionError, ValueError, OverflowError) as e:
            errors.append(f"step {i}: cannot evaluate {expr!r} ({type(e).__name__}: {e})")
            continue
        if not _matches(exact, written.strip(), value):
            errors.append(f"step {i}: {expr} is {exact}, not {written.strip()}")
        last = value
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

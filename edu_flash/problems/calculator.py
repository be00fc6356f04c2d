"""Calculator-assisted decoding (Cobbe et al. 2021, "Training Verifiers to Solve Math Word
Problems", calculator annotations): when a sampled solution opens a step `<<expr=`, the exact value
of `expr` is written for the model, `value>>value` (the annotation, then the number the student
reads after it), instead of being sampled.

A small model learns the *format* and which quantities to combine long before it learns digit-wise
arithmetic; forcing the result removes the arithmetic errors that otherwise make almost every draw
fail verification. The verifier still checks every step (and the final answer against the last
step), so the calculator cannot let a wrong problem through: an expression that does not evaluate
forces nothing, and the draw fails as it would without the calculator.
"""
from __future__ import annotations

import re
from fractions import Fraction

import torch
from transformers import LogitsProcessor

from .verify import UnsafeExpression, safe_eval

OPEN_STEP = re.compile(r"<<([^<>=]*)=\s*$")  # a tail that has just opened a step and awaits its value
_TAIL_TOKENS = 64  # enough for any expression the verifier accepts in practice
_NO_DIGIT = -1  # queue marker: the step after the forced value may not start a digit
_ERRORS = (UnsafeExpression, SyntaxError, ZeroDivisionError, ValueError, OverflowError, TypeError, MemoryError)


def format_value(v: Fraction, max_decimals: int = 4) -> str:
    """How GSM8K writes a value: integers plain (no thousands separators), exact short decimals as
    they are (0.5, 2.25), anything else rounded to 2 decimals (10/3 -> 3.33; the verifier accepts a
    value rounded to the decimals it is written with)."""
    if v.denominator == 1:
        return str(v.numerator)
    for d in range(1, max_decimals + 1):
        if (v * 10 ** d).denominator == 1:
            return exact_decimal(v, d)
    return exact_decimal(v, 2, strip=False)  # "0.00", "3.30": the decimals written say it is rounded


def exact_decimal(v: Fraction, d: int, strip: bool = True) -> str:
    """v rounded to d decimals, written from integers (no float: exact at any size)."""
    scaled = round(v * 10 ** d)
    sign, scaled = ("-" if scaled < 0 else ""), abs(scaled)
    text = f"{sign}{scaled // 10 ** d}.{scaled % 10 ** d:0{d}d}"
    return text.rstrip("0").rstrip(".") if strip else text


def step_value(expr: str) -> str | None:
    """The text the calculator writes for an opened step, `value>>value` (the annotation's value, then
    the same number written for the student, as GSM8K does), or None if expr does not evaluate."""
    try:
        value = format_value(safe_eval(expr))
    except _ERRORS:
        return None
    return f"{value}>>{value}"


class CalculatorLogitsProcessor(LogitsProcessor):
    """A `transformers` LogitsProcessor (called as processor(input_ids, scores) at every decoding step)
    that forces the calculator's `value>>` into each batch row that has just written `<<expr=`.

    Per row it keeps a queue of token ids still to force; one instance serves one `generate` call.
    Only rows whose last token contains '=' are decoded, so the cost is a set lookup per row and step.
    After the forced value the next token may not be a digit: a small model otherwise keeps writing
    zeros onto the number ("10000>>10000" + "0"), and the student would read another number.
    """

    def __init__(self, tokenizer):
        self.tok = tokenizer
        vocab = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
        self.eq_ids = {i for i, t in enumerate(vocab) if t and "=" in t}
        self.digit_ids = [i for i, t in enumerate(vocab) if t and t.lstrip("Ġ▁")[:1].isdigit()]
        self.queues: dict[int, list[int]] = {}
        self.forced_steps = 0  # steps whose value was written by the calculator (for reporting)
        self.failed_steps = 0  # opened steps whose expression did not evaluate

    def _open_step(self, row: torch.Tensor) -> list[int]:
        tail = self.tok.decode(row[-_TAIL_TOKENS:].tolist(), skip_special_tokens=False,
                               clean_up_tokenization_spaces=False)
        m = OPEN_STEP.search(tail)
        if m is None:
            return []
        text = step_value(m.group(1))
        if text is None:
            self.failed_steps += 1
            return []
        self.forced_steps += 1
        return list(self.tok(text, add_special_tokens=False)["input_ids"]) + [_NO_DIGIT]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        last = input_ids[:, -1].tolist()
        force: dict[int, int] = {}
        no_digit: list[int] = []
        for b, t in enumerate(last):
            queue = self.queues.get(b)
            if not queue and t in self.eq_ids:
                queue = self.queues[b] = self._open_step(input_ids[b])
            if queue:
                nxt = queue.pop(0)
                if nxt == _NO_DIGIT:
                    no_digit.append(b)
                else:
                    force[b] = nxt
        if no_digit and self.digit_ids:
            scores = scores.clone()
            scores[torch.tensor(no_digit, device=scores.device)[:, None],
                   torch.tensor(self.digit_ids, device=scores.device)[None, :]] = float("-inf")
        if force:
            scores = scores.clone()
            rows = torch.tensor(list(force), device=scores.device)
            cols = torch.tensor(list(force.values()), device=scores.device)
            scores[rows] = float("-inf")
            scores[rows, cols] = 0.0
        return scores


class SamplingGuard(LogitsProcessor):
    """Decoding hygiene for small models, on with or without the calculator: never sample the padding
    token (never a training target, so its logit is untrained), and end number runs: after
    `max_run` consecutive digit / ',' / '.' tokens those tokens are banned until something else comes
    (GSM8K's longest number has 10 digits; weak models otherwise loop on "000,000,..." until the token
    budget ends and the draw is unparseable)."""

    def __init__(self, tokenizer, max_run: int = 12):
        self.max_run = max_run
        vocab = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
        self.number_ids = [i for i, t in enumerate(vocab)
                           if t and (t.lstrip("Ġ▁").isdigit() or t.lstrip("Ġ▁") in (",", "."))]
        pad, eos = tokenizer.pad_token_id, tokenizer.eos_token_id
        self.banned = [pad] if pad is not None and pad != eos else []
        self._is_number: torch.Tensor | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        scores = scores.clone()
        if self.banned:
            scores[:, self.banned] = float("-inf")
        if self.number_ids and input_ids.shape[1] >= self.max_run:
            if self._is_number is None or self._is_number.device != input_ids.device:
                size = max(scores.shape[-1], int(input_ids.max()) + 1, max(self.number_ids) + 1)
                self._is_number = torch.zeros(size, dtype=torch.bool, device=input_ids.device)
                self._is_number[self.number_ids] = True
            run = self._is_number[input_ids[:, -self.max_run:]].all(1)
            if run.any():
                rows = run.nonzero()  # (k, 1): broadcasts against the column ids
                scores[rows, torch.tensor(self.number_ids, device=scores.device)] = float("-inf")
        return scores

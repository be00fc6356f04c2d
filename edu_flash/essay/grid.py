"""Score grids: a rubric is low, high and step (1-6 in whole points, 1.0-5.0 in half points, ...).

A grid is never truncated to integers. Predictions are rounded to the nearest grid point, halves
upward (2.25 on a half-point grid becomes 2.5, not banker's rounding), and clipped into the range.
QWK, RMSE and SMD are computed on the grid's levels.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterable

from ..core.errors import ConfigError

_TOL = 1e-6  # relative to the step: 2.4999999 from a csv is still 2.5
MAX_LEVELS = 2001  # beyond this the "grid" is a continuous score: ask for the step


def _frac(x: float) -> Fraction:
    return Fraction(x).limit_denominator(1000)


def _fgcd(fracs) -> Fraction:
    """Greatest common divisor of fractions (0 when all are 0): the coarsest step they all lie on."""
    out = Fraction(0)
    for f in fracs:
        f = abs(f)
        out = Fraction(math.gcd(out.numerator * f.denominator, f.numerator * out.denominator),
                       out.denominator * f.denominator)
    return out


def _fmt(x: float) -> str:
    return f"{x:g}"


@dataclass(frozen=True)
class Grid:
    """The score levels lo, lo + step, ..., hi of one prompt (and trait)."""

    lo: float
    hi: float
    step: float = 1.0

    def __post_init__(self):
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (self.lo, self.hi, self.step)):
            raise ConfigError(f"a score range needs finite numbers, got {self.to_list()}")
        if self.step <= 0:
            raise ConfigError(f"a score step must be positive, got {self.step:g}")
        if self.hi <= self.lo:
            raise ConfigError(f"a score range needs low < high, got {_fmt(self.lo)}-{_fmt(self.hi)}")
        k = (self.hi - self.lo) / self.step
        if abs(k - round(k)) > _TOL * max(1.0, k):
            raise ConfigError(f"the range {_fmt(self.lo)}-{_fmt(self.hi)} is not a whole number of steps of "
                              f"{_fmt(self.step)}")
        if round(k) + 1 > MAX_LEVELS:
            raise ConfigError(f"the range {self} has {round(k) + 1} levels (at most {MAX_LEVELS}): give a coarser step")

    # ------------------------------------------------------------------ construction
    @classmethod
    def parse(cls, value, what: str = "score range") -> "Grid":
        """(lo, hi) or (lo, hi, step), as a user writes it; (lo, hi) means whole points."""
        if isinstance(value, Grid):
            return value
        if isinstance(value, dict):
            value = (value.get("low", value.get("lo")), value.get("high", value.get("hi")), value.get("step", 1))
        if not isinstance(value, (list, tuple)) or len(value) not in (2, 3):
            raise ConfigError(f"{what} must be (low, high) or (low, high, step), got {value!r}")
        try:
            nums = [float(v) for v in value]
        except (TypeError, ValueError):
            raise ConfigError(f"{what} must hold numbers, got {value!r}") from None
        if any(isinstance(v, bool) for v in value):
            raise ConfigError(f"{what} must hold numbers, got {value!r}")
        try:
            return cls(*nums)
        except ConfigError as e:
            raise ConfigError(f"{what}: {e}") from None

    @classmethod
    def infer(cls, scores: Iterable[float], lo: float | None = None, hi: float | None = None) -> "Grid":
        """From the scores seen: low and high (unless given) and the finest spacing of the values.

        Whole-number scores keep a step of 1, as integer rubrics always had (a score never seen, such
        as an odd total, is still a valid level); otherwise the step is the largest one every value
        lies on (0.5 for half points, 1/3 for the mean of three raters).
        """
        values = sorted(set(float(s) for s in scores) | {v for v in (lo, hi) if v is not None})
        lo = values[0] if lo is None else float(lo)
        hi = values[-1] if hi is None else float(hi)
        if all(float(v).is_integer() for v in values):
            return cls(lo, hi, 1.0)
        step = _fgcd([_frac(v - lo) for v in values])
        step = float(step) if step else 1.0
        if (hi - lo) / step + 1 > MAX_LEVELS:
            raise ConfigError(f"the scores {_fmt(lo)}-{_fmt(hi)} look continuous (spacing {step:.3g}): give the "
                              "rubric's step with score_ranges={prompt: (low, high, step)}")
        return cls(lo, hi, step)

    # ------------------------------------------------------------------ levels
    @property
    def n_levels(self) -> int:
        return int(round((self.hi - self.lo) / self.step)) + 1

    def levels(self) -> list[float]:
        return [self.value(k) for k in range(self.n_levels)]

    def value(self, k: int) -> float:
        v = self.lo + k * self.step
        return float(round(v, 9))  # 1 + 3 * 0.1 is 1.3, not 1.3000000000000003

    def offset(self, score: float) -> float:
        """How many steps above low (a whole number for a score on the grid)."""
        return (float(score) - self.lo) / self.step

    def on_grid(self, score: float) -> bool:
        k = self.offset(score)
        return abs(k - round(k)) <= _TOL * max(1.0, abs(k))

    def contains(self, score: float) -> bool:
        return self.on_grid(score) and -_TOL <= self.offset(score) <= self.n_levels - 1 + _TOL

    def index(self, score: float) -> int:
        """The level number of a score on the grid (0 for low)."""
        return int(round(self.offset(score)))

    def round(self, raw: float) -> float:
        """Nearest grid point, halves upward, clipped into the range."""
        k = math.floor(self.offset(raw) + 0.5 + _TOL)
        return self.value(min(max(k, 0), self.n_levels - 1))

    def scale(self, score: float) -> float:
        return (float(score) - self.lo) / (self.hi - self.lo)

    def unscale(self, scaled: float) -> float:
        """A [0, 1] model output back on the score scale, clipped into the range (not rounded)."""
        return self.lo + min(max(float(scaled), 0.0), 1.0) * (self.hi - self.lo)

    def widened(self, scores: Iterable[float]) -> "Grid":
        """The same step, stretched to hold every score (all on the grid)."""
        scores = list(scores)
        lo = min([self.lo, *scores])
        hi = max([self.hi, *scores])
        return Grid(self.value(int(round((lo - self.lo) / self.step))), self.value(int(round((hi - self.lo) / self.step))),
                    self.step)

    # ------------------------------------------------------------------ I/O
    def to_list(self) -> list:
        """[lo, hi] for whole-point rubrics (as config.json always held them), else [lo, hi, step]."""
        nums = [int(v) if float(v).is_integer() else float(v) for v in (self.lo, self.hi, self.step)]
        return nums[:2] if nums[2] == 1 and all(isinstance(v, int) for v in nums[:2]) else nums

    def __str__(self) -> str:
        return f"{_fmt(self.lo)}-{_fmt(self.hi)}" + ("" if self.step == 1 else f" step {_fmt(self.step)}")


def common_grid(grids: Iterable[Grid]) -> Grid:
    """One grid holding the levels of all: for QWK over essays of several prompts pooled."""
    grids = list(grids)
    lo, hi = min(g.lo for g in grids), max(g.hi for g in grids)
    step = _fgcd([_frac(g.step) for g in grids] + [_frac(g.lo - lo) for g in grids])
    step_f = float(step)
    if (hi - lo) / step_f + 1 > MAX_LEVELS:  # incommensurable grids: fall back to the finest step
        step_f = min(g.step for g in grids)
        hi = lo + math.ceil((hi - lo) / step_f - _TOL) * step_f
    return Grid(lo, hi, step_f)

"""Reading essay data: columns, traits, prompts and each (trait, prompt)'s score grid.

Every check that can fail runs here, before anything trains or is written: scores off their grid or
outside a range the user gave are DataErrors naming file, column and row. A range inferred from the
training scores is a guess, so a later test score outside it widens it (with a warning) instead.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..core.data import Table, check_labels, check_numeric, check_text, label_str, require_columns
from ..core.errors import ConfigError, DataError, UnknownLabelError, warn_user
from .grid import Grid

# No rubric scores in the millions: such a value is a data error (e.g. an id in the score column), not a range.
MAX_SCORE = 1e6

DEFAULT_PROMPT = "all"  # the one implicit prompt of data without a prompt column
_PROMPT_LIKE = re.compile(r"(?i)^(prompt|prompt[_ ]?(id|no|number|name)|essay[_ ]?set|set|set[_ ]?id|task|task[_ ]?id|"
                          r"topic|question|question[_ ]?id|item|item[_ ]?id|assignment|assignment[_ ]?id)$")


@dataclass
class Essays:
    """One table read: texts, scores per trait (None when not needed) and prompt ids."""

    texts: list[str]
    scores: dict[str, list[float]] | None
    prompts: list[str]
    table: Table


def columns(saved: dict, text_column=None, score_column=None, prompt_column=None, subgroup_columns=None) -> dict:
    """The user's column names for this call, falling back to those the model was trained with."""
    sub = subgroup_columns if subgroup_columns is not None else saved.get("subgroups", [])
    score = score_column or saved.get("score", "score")
    traits = [score] if isinstance(score, str) else list(score)
    if not traits or not all(isinstance(t, str) and t for t in traits) or len(set(traits)) != len(traits):
        raise ConfigError(f"score_column must be a column name or a list of distinct names, got {score_column!r}")
    return {"text": text_column or saved.get("text", "text"), "score": traits[0] if len(traits) == 1 else traits,
            "traits": traits, "prompt": prompt_column if prompt_column is not None else saved.get("prompt"),
            "subgroups": [sub] if isinstance(sub, str) else list(sub)}


def read_essays(table: Table, cols: dict, *, need_score: bool, default_prompt=None) -> Essays:
    """Texts, scores and prompts, each value checked; a missing prompt column uses `default_prompt()`."""
    has_prompt = cols["prompt"] is not None and (cols["prompt"] in table.df.columns or need_score)
    roles = {"text": cols["text"], "prompt": cols["prompt"] if has_prompt else None}
    if need_score:
        roles.update({("score" if len(cols["traits"]) == 1 else f"score ({t})"): t for t in cols["traits"]})
        roles.update({f"subgroup ({c})": c for c in cols["subgroups"]})
    require_columns(table, roles)
    texts = check_text(table, cols["text"])
    scores = {t: check_numeric(table, t, max_abs=MAX_SCORE, what="score") for t in cols["traits"]} if need_score else None
    prompts = check_labels(table, cols["prompt"]) if has_prompt else [default_prompt()] * len(texts)
    return Essays(texts, scores, prompts, table)


def check_known_prompts(prompts, known, table: Table, col: str | None) -> None:
    for i, p in enumerate(prompts):
        if p not in known:
            raise UnknownLabelError(f"prompt {p!r} was never seen in training (known: {sorted(known)})",
                                    column=col, **table.where(i))


# ---------------------------------------------------------------------------------------------- grids
def user_ranges(score_ranges, traits: list[str]) -> dict[str, dict[str, tuple]]:
    """score_ranges as given -> trait -> prompt -> (lo, hi, step or None).

    Keys are prompt ids (the range holds for every trait) or, with several traits, trait names whose
    value is one range for every prompt or a mapping prompt -> range.
    """
    if score_ranges is None:
        return {t: {} for t in traits}
    if not isinstance(score_ranges, dict):
        raise ConfigError(f"score_ranges must map prompt ids (or traits) to (low, high[, step]), got {score_ranges!r}")
    out: dict[str, dict[str, tuple]] = {t: {} for t in traits}
    for key, value in score_ranges.items():
        if isinstance(key, str) and key in traits and (len(traits) > 1 or isinstance(value, dict)):
            items = value.items() if isinstance(value, dict) else [(None, value)]
            for p, v in items:
                out[key][label_str(p) if p is not None else None] = _spec(v, f"score_ranges[{key!r}]")
        else:
            for t in traits:
                out[t].setdefault(label_str(key), _spec(value, f"score_ranges[{key!r}]"))
    return out


def _spec(value, what: str) -> tuple:
    g = Grid.parse(value, what)  # checks the numbers; a missing step is inferred from the scores
    given_step = isinstance(value, dict) and "step" in value or isinstance(value, (list, tuple)) and len(value) == 3
    return (g.lo, g.hi, g.step if given_step else None)


def _grid_for(seen: list[float], spec: tuple | None, prompt: str, trait: str, where: dict) -> Grid:
    if spec is None:
        if len(set(seen)) < 2:
            raise DataError(f"prompt {prompt!r} has a single score value {seen[0]:g}: give its range with "
                            f"score_ranges={{{prompt!r}: (low, high)}}", **where)
        try:
            return Grid.infer(seen)
        except ConfigError as e:
            raise DataError(f"prompt {prompt!r}: {e}", **where) from None
    lo, hi, step = spec
    if step is not None:
        return Grid(lo, hi, step)
    inside = [s for s in seen if lo <= s <= hi]
    return Grid.infer(inside, lo, hi)


def fit_grids(train: Essays, cols: dict, score_ranges, kept: dict | None, kept_given: dict | None
              ) -> tuple[dict, dict]:
    """(trait -> prompt -> Grid, trait -> prompts whose range the user gave), every training score
    checked. A range not given is inferred from the training scores only (a validation set is
    scored like any evaluation data: see eval_grids).

    kept / kept_given: the grids of a loaded model being trained further; they hold like given ones.
    """
    traits = cols["traits"]
    given = user_ranges(score_ranges, traits)
    grids, given_prompts = {}, {}
    for t in traits:
        spec = dict(given[t])
        by_default = spec.pop(None, None)
        kept_t = {p: Grid.parse(g) for p, g in (kept or {}).get(t, {}).items()}
        for p, g in kept_t.items():
            if p in spec and spec[p][2] is not None and Grid(*spec[p]) != g:
                raise ConfigError(f"the new score range {Grid(*spec[p])} of prompt {p!r} differs from the loaded "
                                  f"model's {g}; train a new model for a new rubric")
        seen: dict[str, list[float]] = {}
        for s, p in zip(train.scores[t], train.prompts):
            seen.setdefault(p, []).append(s)
        grids[t] = dict(kept_t)
        given_prompts[t] = sorted(set((kept_given or {}).get(t, [])) | set(spec) |
                                  (set(seen) if by_default is not None else set()))
        for p in spec:  # ranges given for prompts not in this data still describe the rubric
            if p not in grids[t] and p not in seen:
                grids[t][p] = Grid(*spec[p][:2], spec[p][2] or 1.0)
        for p in sorted(seen, key=lambda x: (len(x), x)):
            if p not in kept_t:
                where = {"source": train.table.source, "column": t}
                grids[t][p] = _grid_for(seen[p], spec.get(p, by_default), p, t, where)
        check_scores(train, t, grids[t])
    return grids, given_prompts


def _score_error(part: Essays, i: int, trait: str, grid: Grid) -> DataError:
    s, p = part.scores[trait][i], part.prompts[i]
    if grid.on_grid(s):
        return DataError(f"score {s:g} is outside prompt {p!r}'s score range {grid}", column=trait,
                         **part.table.where(i))
    return DataError(f"score {s:g} is not on prompt {p!r}'s score grid {grid} (give the rubric's step with "
                     "score_ranges={prompt: (low, high, step)})", column=trait, **part.table.where(i))


def check_scores(part: Essays, trait: str, grids: dict) -> None:
    """Every score on its prompt's grid and inside its range, or a DataError naming the row."""
    for i, (s, p) in enumerate(zip(part.scores[trait], part.prompts)):
        if not grids[p].contains(s):
            raise _score_error(part, i, trait, grids[p])


def eval_grids(part: Essays, trait: str, grids: dict, given: list[str]) -> dict:
    """The grids to score this data on: a trained grid widened (with a warning) for a score on its
    grid but outside an inferred range; off the grid, or outside a given range: DataError."""
    out = dict(grids)
    for i, (s, p) in enumerate(zip(part.scores[trait], part.prompts)):
        if not grids[p].on_grid(s) or (p in given and not grids[p].contains(s)):
            raise _score_error(part, i, trait, grids[p])
    for p in sorted(set(part.prompts)):
        g = grids[p]
        outside = sorted({s for s, q in zip(part.scores[trait], part.prompts) if q == p and not g.contains(s)})
        if outside:
            out[p] = g.widened(outside)
            warn_user(f"{part.table.source}: prompt {p!r} ({trait}) has scores outside the range {g} "
                      f"inferred from the training data ({', '.join(f'{s:g}' for s in outside[:5])}); "
                      f"evaluating on {out[p]}. The model never predicts outside {g}: give the rubric's "
                      "range with score_ranges= when training.")
    return out


# ---------------------------------------------------------------------------------------------- pooling
def warn_if_prompts_pooled(train: Essays, cols: dict) -> None:
    """No prompt column was mapped: say so when the data looks like several prompts pooled as one
    (issue 16: a column named like a prompt, a column whose groups have different score ranges, or
    scores in separate clusters), since one range over several rubrics gives wrong scores silently."""
    df, n = train.table.df, len(train.texts)
    used = {cols["text"], *cols["traits"], *cols["subgroups"]}
    hints = []
    for c in df.columns:
        if c in used:
            continue
        name = str(c)
        if _PROMPT_LIKE.match(name.strip()) or "prompt" in name.lower():
            hints.append(f"column {name!r} looks like a prompt id")
            continue
        values = df[c]
        k = values.nunique(dropna=True)
        if 2 <= k <= min(50, n // 10) and not values.map(lambda v: isinstance(v, str) and len(v) > 80).any():
            for t in cols["traits"]:
                spans = _group_spans(values, train.scores[t])
                if spans and max(spans) >= 1.5 * max(min(spans), 1e-9):
                    hints.append(f"the score ranges differ by {name!r} ({_span_text(values, train.scores[t])})")
                    break
    for t in cols["traits"]:
        clusters = _score_clusters(train.scores[t])
        if clusters:
            hints.append(f"the {t!r} scores fall in separate ranges ({clusters})")
    if hints:
        lo, hi = min(train.scores[cols["traits"][0]]), max(train.scores[cols["traits"][0]])
        warn_user(f"{train.table.source}: no prompt column was given, so all {n} essays are scored as one "
                  f"prompt with one range ({lo:g}-{hi:g}), but " + "; ".join(hints)
                  + ". If the essays answer different prompts, pass prompt_column=... so each prompt is "
                  "scored on its own range.")


def _group_spans(values, scores) -> list[float]:
    lo = min(scores)
    spans: dict = {}
    for v, s in zip(values.tolist(), scores):
        if v is None or v != v:
            continue
        spans.setdefault(v, []).append(s)
    return [max(s) - lo for s in spans.values() if len(s) >= 10]


def _span_text(values, scores) -> str:
    groups: dict = {}
    for v, s in zip(values.tolist(), scores):
        groups.setdefault(v, []).append(s)
    parts = [f"{label_str(v)}: {min(s):g}-{max(s):g}" for v, s in list(groups.items())[:4]]
    return ", ".join(parts) + (", ..." if len(groups) > 4 else "")


def _score_clusters(scores) -> str:
    """'0-4 and 10-60' when the distinct scores split in two at a gap at least 4 times the usual
    spacing on either side, with at least 10% of essays on each side; '' otherwise."""
    import numpy as np

    s = np.asarray(scores, float)
    u = np.unique(s)
    if len(u) < 4:
        return ""
    gaps = np.diff(u)
    j = int(np.argmax(gaps))
    spacing = min([float(np.median(side)) for side in (gaps[:j], gaps[j + 1:]) if len(side)] or [0.0])
    if not spacing or gaps[j] < 4 * spacing:
        return ""
    low_share = float((s <= u[j]).mean())
    if not 0.1 <= low_share <= 0.9:
        return ""
    return f"{u[0]:g}-{u[j]:g} and {u[j + 1]:g}-{u[-1]:g}"

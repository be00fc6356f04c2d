"""Problem data in, problem text out: the GSM8K, MATH and plain (problem, solution, answer) formats
become one record shape, and records become the control-token sequences the model trains on.

Records are {problem, solution, answer, topic, difficulty}; difficulty is 1-5. Where the data has
no topic it is inferred from the problem's words (lexicon.infer_topic: money, time, percentages ...);
where it has no difficulty it is derived from the solution (GSM8K: the number of `<<expr=value>>` steps), and
the same function measures the realised difficulty of generated problems, so requested and
realised levels are on one scale.
"""
from __future__ import annotations

import re

from ..core.data import Table, check_text, label_str, require_columns
from ..core.errors import DataError
from .lexicon import infer_topic
from .verify import FINAL, STEP, boxed, verify_solution

LEVELS = (1, 2, 3, 4, 5)
PROBLEM, SOLUTION, EOS = "<|problem|>", "<|solution|>", "<|endoftext|>"
FORMATS = ("auto", "gsm8k", "math", "generic")
BAD_SOLUTIONS = ("drop", "error")


def topic_token(topic: str) -> str:
    return f"<|topic:{re.sub(r'[^a-z0-9]+', '-', str(topic).lower()).strip('-') or 'none'}|>"


def difficulty_token(d: int) -> str:
    return f"<|difficulty:{int(d)}|>"


def control_tokens(topics) -> list[str]:
    return [PROBLEM, SOLUTION, *(difficulty_token(d) for d in LEVELS), *(topic_token(t) for t in topics)]


def derive_difficulty(solution: str) -> int:
    """1-5 from the number of arithmetic steps; without steps (MATH), from the number of sentences."""
    n = len(STEP.findall(solution))
    if n == 0:
        body = re.sub(r"\$[^$]*\$", "x", solution)
        n = (len([s for s in re.split(r"[.!?]\s|\n", body) if s.strip()]) + 1) // 2
    return min(max(n, 1), 5)


def final_answer(solution: str) -> str | None:
    m = FINAL.search(solution)
    return m.group(1).strip() if m else boxed(solution)


def detect_format(columns) -> str:
    cols = set(map(str, columns))
    if {"question", "answer"} <= cols and "solution" not in cols:
        return "gsm8k"
    if {"problem", "solution"} <= cols and ({"level", "type"} & cols):
        return "math"
    return "generic"


def _level(v, table: Table, col: str, i: int) -> int:
    s = label_str(v)
    m = re.search(r"\d+", s)
    if not m or not 1 <= int(m.group(0)) <= 5:
        raise DataError(f"difficulty {v!r} is not a level 1-5 (e.g. 3 or 'Level 3')", column=col, **table.where(i))
    return int(m.group(0))


def read_records(table: Table, *, format: str = "auto", problem_column: str | None = None,
                 solution_column: str | None = None, answer_column: str | None = None,
                 topic_column: str | None = None, difficulty_column: str | None = None) -> tuple[list[dict], str]:
    """Table -> (records, format used). Raises DataError naming file, column and row."""
    if format not in FORMATS:
        raise DataError(f"format {format!r} is not one of {list(FORMATS)}", source=table.source)
    df = table.df
    fmt = detect_format(df.columns) if format == "auto" else format
    defaults = {"gsm8k": ("question", "answer", None, None, None),
                "math": ("problem", "solution", None, "type", "level"),
                "generic": ("problem", "solution", "answer", "topic", "difficulty")}[fmt]
    p_col = problem_column or defaults[0]
    s_col = solution_column or defaults[1]
    a_col = answer_column or (defaults[2] if defaults[2] in df.columns else None)
    t_col = topic_column or next((c for c in (defaults[3], "topic", "type", "subject") if c in df.columns), None)
    d_col = difficulty_column or next((c for c in (defaults[4], "difficulty", "level") if c in df.columns), None)
    require_columns(table, {"problem": p_col, "solution": s_col, "answer": a_col, "topic": t_col,
                            "difficulty": d_col})
    problems, solutions = check_text(table, p_col), check_text(table, s_col)
    out = []
    for i, (p, s) in enumerate(zip(problems, solutions)):
        s = s.strip()
        ans = df[a_col].iloc[i] if a_col else None
        if ans is not None and ans == ans and FINAL.search(s) is None and boxed(s) is None:
            s = f"{s}\n#### {label_str(ans)}"  # one answer convention for training and checking
        answer = final_answer(s)
        if answer is None:
            raise DataError("solution has no final answer ('#### x', \\boxed{x} or an answer column)",
                            column=s_col, **table.where(i))
        tv = df[t_col].iloc[i] if t_col else None
        topic = infer_topic(p) if tv is None or tv != tv else label_str(tv)
        if d_col and df[d_col].iloc[i] == df[d_col].iloc[i] and df[d_col].iloc[i] is not None:
            diff = _level(df[d_col].iloc[i], table, d_col, i)
        else:
            diff = derive_difficulty(s)
        out.append({"problem": p.strip(), "solution": s, "answer": answer, "topic": topic, "difficulty": diff})
    if not out:
        raise DataError("no problems in the data", source=table.source)
    return out, fmt


def prefix(topic: str, difficulty: int) -> str:
    """The conditioning part of a training sequence: control tokens, then the problem marker."""
    return topic_token(topic) + difficulty_token(difficulty) + PROBLEM


def target(record: dict) -> str:
    return f"{record['problem']}{SOLUTION}{record['solution']}"


def split_generated(text: str, stops: tuple[str, ...] = ()) -> dict | None:
    """Decoded model output (after the prefix) -> {problem, solution, answer} or None if unparseable.
    The text ends at the first end-of-sequence marker (ours, or the backbone's eos/pad)."""
    for tok in (EOS, *stops):
        if tok:
            text = text.split(tok)[0]
    if SOLUTION not in text:
        return None
    problem, solution = (x.strip() for x in text.split(SOLUTION, 1))
    for tok in (PROBLEM, SOLUTION):
        solution = solution.replace(tok, "")
    answer = final_answer(solution)
    if not problem or not solution or answer is None:
        return None
    return {"problem": problem, "solution": solution, "answer": answer}


def check_solutions(records: list[dict], table, policy: str) -> tuple[list[dict], dict]:
    """Training lines whose `<<expr=value>>` steps are malformed or wrong (or disagree with the text
    around them) never reach training: dropped and counted (default), or refused with file and row."""
    kept, dropped, where = [], 0, []
    for i, r in enumerate(records):
        v = verify_solution(r["solution"], require_steps=False)
        if v.ok or (not v.steps and "####" not in r["solution"]):  # nothing checkable (MATH style): kept
            kept.append(r)
            continue
        if policy == "error":
            raise DataError(f"the worked solution fails the verifier: {v.errors[0]} (pass bad_solutions='drop' "
                            "to train on the rest)", column="solution", **table.where(i))
        dropped += 1
        if len(where) < 3:
            loc = table.where(i)
            where.append(f"row {loc['row']}: {v.errors[0]}")
    if not kept:
        raise DataError("every worked solution fails the verifier; nothing left to train on", source=table.source)
    return kept, {"dropped": dropped, "examples": where}

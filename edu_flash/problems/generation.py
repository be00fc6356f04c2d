"""Drawing problems from either kind of backbone, judging each draw, and re-drawing the rejects.

A draw is {topic, difficulty, parsed, problem, solution, answer, ...}. Every draw, whatever made it,
is judged the same way: the verifier (annotations and the arithmetic written around them), the
usability checks, novelty against the training set, and its realised difficulty. `generate` keeps a
draw only when it passes all of them, re-draws the rest up to `max_attempts` per requested problem,
and reports what was rejected and why.
"""
from __future__ import annotations

import random
from collections import Counter

from . import formats as F
from .usability import CHECKS, check_problem
from .verify import verify_solution

from .hparams import NOVELTY  # noqa: F401  (re-exported: the modes generate() takes)
KEEP = ("topic", "difficulty", "problem", "solution", "answer", "verified", "usable", "checks", "realised_difficulty",
        "overlap", "surface_novel", "structural_novel", "graph_novel", "story_novel", "template", "source")


def draw_templates(bank, slots: list[tuple[str, int]], seed: int, max_number=None) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for topic, difficulty in slots:
        d = bank.draw(topic, difficulty, rng, max_number=max_number)
        out.append({"topic": topic, "difficulty": difficulty, "parsed": d is not None, **(d or {})})
    return out


def draw_lm(gen, slots: list[tuple[str, int]], seed: int, temperature, top_p, calculator) -> list[dict]:
    from .model import sample

    hp, tok = gen.hparams, gen.tokenizer
    kind = gen._kind()
    limit = hp.max_new_tokens
    if kind == "causal":
        limit = min(limit, getattr(gen.model.config, "n_positions", 10**9) - 4)
    texts = sample(gen.model, tok, kind, [F.prefix(t, d) for t, d in slots],
                   temperature=hp.temperature if temperature is None else temperature,
                   top_p=hp.top_p if top_p is None else top_p, max_new_tokens=limit, seed=seed,
                   batch_size=hp.predict_batch_size, calculator=hp.calculator if calculator is None else bool(calculator))
    out = []
    for (t, d), text in zip(slots, texts):
        p = F.split_generated(text, (tok.eos_token, tok.pad_token))
        out.append({"topic": t, "difficulty": d, "parsed": p is not None, **(p or {})})
    return out


def judge(row: dict, index, max_overlap: float, require_steps: bool = True) -> dict:
    """The draw with its verdicts: verified, each usability check, usable, novelty, realised difficulty."""
    row.update(verified=False, usable=False, checks={}, errors=[], realised_difficulty=None, overlap=0.0,
               surface_novel=False, structural_novel=False, graph_novel=False, story_novel=False)
    if not row["parsed"]:
        return row
    v = verify_solution(row["solution"], require_steps=require_steps)
    u = check_problem(row["problem"], row["solution"], row.get("answer"), verdict=v)
    row.update(verified=v.ok, usable=u.usable, checks=u.checks, errors=list(u.reasons.values()),
               realised_difficulty=F.derive_difficulty(row["solution"]))
    if index is not None:
        row.update(index.judge(row["problem"], row["solution"], max_overlap))
    return row


def rejection(row: dict, *, verify: bool, novelty: str) -> str | None:
    """Why `generate` would not return this draw (None: it would)."""
    if not row["parsed"]:
        return "unparseable"
    if verify and not row["verified"]:
        return "unverified"
    if verify and not row["usable"]:
        failed = [k for k in CHECKS if not row["checks"].get(k, False)]  # then a caller's own (max_number)
        failed += [k for k, ok in row["checks"].items() if not ok and k not in CHECKS]
        return f"unusable ({failed[0]})"
    if novelty == "variant" and not row["surface_novel"]:
        return "copy of a training problem"
    if novelty == "new" and not row["structural_novel"]:
        return "not structurally new"
    return None


def generate_slots(draw, slots: list[tuple[str, int]], *, seed: int, budget: int, verify: bool, novelty: str,
                   judge_row) -> tuple[list[dict | None], dict]:
    """Draw every slot, re-draw rejects up to `budget` draws per slot; (results, report)."""
    results: list[dict | None] = [None] * len(slots)
    pending, attempts = list(range(len(slots))), [0] * len(slots)
    why: Counter = Counter()
    rnd = 0
    while pending:
        rows = draw([slots[i] for i in pending], seed + 7919 * rnd)
        rnd += 1
        still = []
        for i, row in zip(pending, rows):
            attempts[i] += 1
            row = judge_row(row)
            reason = rejection(row, verify=verify, novelty=novelty)
            if reason is None:
                results[i] = {k: row[k] for k in KEEP if k in row}
                results[i]["attempts"] = attempts[i]
                continue
            why[reason] += 1
            if attempts[i] < budget:
                still.append(i)
        pending = still
    draws, returned = sum(attempts), sum(r is not None for r in results)
    report = {"requested": len(slots), "returned": returned, "dropped": len(slots) - returned, "draws": draws,
              "rejected": sum(why.values()), "rejection_rate": sum(why.values()) / max(draws, 1),
              "rejected_by_reason": dict(why), "max_attempts": budget, "novelty": novelty}
    return results, report


def samples_markdown(problems: list[dict], report: dict, how: str) -> str:
    """The card's showcase: problems exactly as generate() returned them, none chosen by hand."""
    out = [f"{how} It returned {report['returned']} of {report['requested']} requested after {report['draws']} "
           f"draws (rejected by reason: {report['rejected_by_reason'] or 'none'}). Solutions are shown as "
           "generated, with their `<<expr=value>>` annotations."]
    for i, p in enumerate(problems, 1):
        origin = f"; variant of training problem #{p['source'] + 1}" if p.get("source") is not None else ""
        out.append(f"**{i}.** topic `{p['topic']}`, difficulty {p['difficulty']} (realised "
                   f"{p['realised_difficulty']}), verified {p['verified']}, usable {p['usable']}{origin}\n\n"
                   f"> {p['problem']}\n\n```text\n{p['solution']}\n```")
    return "\n\n".join(out)

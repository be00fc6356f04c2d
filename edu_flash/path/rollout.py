"""Closed-loop practice against a simulated student, for the recommender and the rules it must beat.

Each policy picks one item per student per step; the simulated student (a separately trained KT
model) answers it, a draw from its P(correct); both the policy's model and the student see the
answer. Every policy meets the same random numbers (common random numbers): the same uniform draw
decides a student's t-th answer under every policy, so differences come from the choices, not the
draws. The outcome per student is the gain in goal mastery under the simulated student.

Baselines (what a teacher or a simple app would do):
  random         any goal item, uniformly
  easiest-first  the goal item the recommender's KT backbone finds easiest (highest P(correct))
  round-robin    the goal skills in turn (interleaving), a random item of the skill
  weakest-first  the goal skill with the lowest mastery the backbone predicts, a random item of it
  oracle         the recommender's search run on the simulated student itself (the ceiling)
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .policy import Ensemble, Hist, Planner, Sim, extend, goal_mastery, per_row

BASELINES = ("random", "easiest-first", "round-robin", "weakest-first", "oracle")


@dataclass
class Episode:
    """What one policy did to every student."""

    gain: np.ndarray                  # [students] goal mastery after - before, under the student
    correct: np.ndarray               # [students] share of answers correct
    distinct: np.ndarray              # [students] distinct goal skills practised
    longest_run: np.ndarray           # [students] longest run of one item in a row
    items: list = field(default_factory=list)   # per student: the chosen items


def _skill_pick(sim: Sim, skill: int, u: float) -> int:
    its = sim.skill_items[skill]
    return int(its[min(int(u * len(its)), len(its) - 1)])


def choose(policy: str, planner: Planner, rec: Sim, stu: Sim, rec_h: list[Hist], stu_h: list[Hist],
           cands: list[np.ndarray], goals: list[list[int]], t: int, pick: np.ndarray, order: list,
           remaining: int | None = None) -> list[int]:
    """The item each policy gives each student at step t (pick: uniform draws [students];
    remaining: steps left including this one, which bounds the planners' look-ahead)."""
    n = len(rec_h)
    own = rec.members[0] if isinstance(rec, Ensemble) else rec      # the rules read the KT backbone alone
    if policy == "recommender":
        return planner.choose(rec, rec_h, cands, goals, remaining=remaining)
    if policy == "oracle":
        return planner.oracle().choose(stu, stu_h, cands, goals, remaining=remaining)
    if policy == "random":
        return [int(c[min(int(pick[i] * len(c)), len(c) - 1)]) for i, c in enumerate(cands)]
    if policy == "easiest-first":
        return [int(c[np.argmax(p)]) for c, p in zip(cands, per_row(own, rec_h, cands))]
    if policy == "round-robin":
        return [_skill_pick(own, order[i][t % len(order[i])], pick[i]) for i in range(n)]
    if policy == "weakest-first":
        skills = sorted({s for g in goals for s in g})
        m, col = own.mastery(rec_h, skills), {s: j for j, s in enumerate(skills)}
        weakest = [g[int(np.argmin([m[i, col[s]] for s in g]))] for i, g in enumerate(goals)]
        return [_skill_pick(own, s, pick[i]) for i, s in enumerate(weakest)]
    raise ValueError(f"unknown policy {policy!r}; known: recommender, {', '.join(BASELINES)}")


def run(policy: str, planner: Planner, rec: Sim, stu: Sim, starts: list[Hist], cands: list[np.ndarray],
        goals: list[list[int]], steps: int, seed: int) -> Episode:
    """One policy, every student, `steps` items each."""
    rng = np.random.default_rng(seed)
    u, pick = rng.random((len(starts), steps)), rng.random((len(starts), steps))
    order = [list(rng.permutation(g)) for g in goals]           # round-robin's order, the same every run
    before = goal_mastery(stu, starts, goals)
    rec_h, stu_h = list(starts), list(starts)
    chosen, correct = [[] for _ in starts], np.zeros(len(starts))
    for t in range(steps):
        items = choose(policy, planner, rec, stu, rec_h, stu_h, cands, goals, t, pick[:, t], order, steps - t)
        p_true = np.array([p[0] for p in per_row(stu, stu_h, [np.array([c]) for c in items])])
        r = (u[:, t] < p_true).astype(np.float32)
        correct += r
        rec_h = [extend(h, c, x) for h, c, x in zip(rec_h, items, r)]
        stu_h = [extend(h, c, x) for h, c, x in zip(stu_h, items, r)]
        for i, c in enumerate(items):
            chosen[i].append(c)
    gain = goal_mastery(stu, stu_h, goals) - before
    q = rec.q
    distinct = np.array([len({s for c in ch for s in q[c - 1]} & set(g)) for ch, g in zip(chosen, goals)])
    return Episode(gain, correct / max(steps, 1), distinct, np.array([_longest_run(ch) for ch in chosen]), chosen)


def average(episodes: list[Episode]) -> Episode:
    """Several rollouts of one policy as one Episode: per-student means (the first rollout's items)."""
    if len(episodes) == 1:
        return episodes[0]
    mean = lambda k: np.mean([getattr(e, k) for e in episodes], axis=0)
    return Episode(mean("gain"), mean("correct"), mean("distinct"), mean("longest_run"), episodes[0].items)


def _longest_run(seq: list) -> int:
    best = run_len = 0
    for j, x in enumerate(seq):
        run_len = run_len + 1 if j and x == seq[j - 1] else 1
        best = max(best, run_len)
    return best

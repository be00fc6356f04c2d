"""Recommendation and learning paths on top of any KT model that gives next-step P(correct).

Mastery of a skill is the model's P(correct) on the next response, averaged over the items that
practise that skill. An item's expected gain is E[mastery after answering it] - mastery now, the
expectation taken over the model's own P(correct) for that item. Paths are chosen greedily, one
step at a time, within a target success zone (the "desirable difficulty" band), and simulated with
the model; `evaluate_paths` closes the loop with a second, separately trained model as the student.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

Hist = tuple[np.ndarray, np.ndarray]


class Sim:
    """A KT model seen as a simulator: next-step P(correct) and per-skill mastery for histories."""

    def __init__(self, probs: Callable[[list[Hist], np.ndarray], np.ndarray], q: list[list[int]]):
        self.probs, self.q = probs, q  # q[i - 1]: skill indices of item i
        self.skill_items: dict[int, np.ndarray] = {}
        for i, ss in enumerate(q):
            for s in ss:
                self.skill_items.setdefault(s, []).append(i + 1)
        self.skill_items = {s: np.asarray(v) for s, v in self.skill_items.items()}

    def items_of(self, skills) -> np.ndarray:
        return np.unique(np.concatenate([self.skill_items[s] for s in skills])) if len(skills) else np.zeros(0, int)

    def mastery(self, hists: list[Hist], skills) -> np.ndarray:
        """[H, len(skills)]"""
        items = self.items_of(skills)
        p = self.probs(hists, items)
        col = {it: j for j, it in enumerate(items)}
        return np.stack([p[:, [col[i] for i in self.skill_items[s]]].mean(1) for s in skills], 1)


def extend(h: Hist, item: int, r: float) -> Hist:
    return np.append(h[0], item), np.append(h[1], np.float32(r))


def expected_gains(sim: Sim, hists: list[Hist], cands: list[np.ndarray], goals: list) -> list[tuple]:
    """Per history: (P(correct) [C], mastery now, expected goal mastery after each candidate [C]).

    goals[i] None: each candidate is judged on its own skills. One batched model call for all.
    """
    hyps, need = [], set()
    for h, cs, g in zip(hists, cands, goals):
        for c in cs:
            hyps += [extend(h, c, 1.0), extend(h, c, 0.0)]
            need.update(g if g is not None else sim.q[c - 1])
        need.update(g if g is not None else [])
    skills = sorted(need)
    col = {s: j for j, s in enumerate(skills)}
    items = sim.items_of(skills)
    all_cands = np.unique(np.concatenate(cands))
    p_all = sim.probs(list(hists) + hyps, np.union1d(items, all_cands))
    cix = {it: j for j, it in enumerate(np.union1d(items, all_cands))}
    skill_cols = [[cix[i] for i in sim.skill_items[s]] for s in skills]
    mast = np.stack([p_all[:, c].mean(1) for c in skill_cols], 1)  # [rows, skills]
    out, k = [], len(hists)
    for n, (cs, g) in enumerate(zip(cands, goals)):
        p = p_all[n, [cix[c] for c in cs]]
        after, now = np.zeros(len(cs)), np.zeros(len(cs))
        for j, c in enumerate(cs):
            gc = [col[s] for s in (g if g is not None else sim.q[c - 1])]
            m1, m0 = mast[k, gc].mean(), mast[k + 1, gc].mean()
            after[j], now[j] = p[j] * m1 + (1 - p[j]) * m0, mast[n, gc].mean()
            k += 2
        out.append((p, now, after))
    return out


def in_zone(p, target) -> np.ndarray:
    return (p >= target[0]) & (p <= target[1])


def pick(p, gain, target) -> tuple[int, bool]:
    """Best expected gain inside the zone; if nothing is in the zone, the item closest to it."""
    z = in_zone(p, target)
    if z.any():
        return int(np.flatnonzero(z)[np.argmax(gain[z])]), True
    dist = np.maximum(target[0] - p, 0) + np.maximum(p - target[1], 0)
    return int(np.argmin(dist - 1e-6 * gain)), False


def plan(sim: Sim, hist: Hist, cands: np.ndarray, goal: list[int], steps: int, target, samples: int,
         seed: int) -> dict:
    """Open-loop greedy path; the model samples `samples` simulated answer sequences along it and the
    expected goal mastery after each step is averaged over them."""
    rng = np.random.default_rng(seed)
    rolls = [hist] * samples
    start = float(sim.mastery([hist], goal).mean())
    out = []
    for t in range(steps):
        res = expected_gains(sim, rolls, [cands] * samples, [goal] * samples)
        p = np.mean([r[0] for r in res], 0)
        after = np.mean([r[2] for r in res], 0)
        now = float(np.mean([r[1][0] for r in res]))
        j, z = pick(p, after - now, target)
        item = int(cands[j])
        ps = np.array([r[0][j] for r in res])
        rolls = [extend(h, item, float(u < q)) for h, u, q in zip(rolls, rng.random(samples), ps)]
        per = sim.mastery(rolls, goal).mean(0)
        out.append({"step": t + 1, "item": item, "p_correct": float(p[j]), "in_zone": bool(z),
                    "expected_gain": float(after[j] - now), "expected_mastery": float(after[j]),
                    "mastery": {int(s): float(v) for s, v in zip(goal, per)}})
    return {"start_mastery": start, "steps": out}


def rollout(policy: str, rec: Sim, student: Sim, starts: list[Hist], cands: list[np.ndarray],
            goals: list[list[int]], steps: int, target, seed: int) -> dict:
    """Closed loop: the policy picks with `rec`; `student` answers (sampled) and measures mastery.

    Every policy sees the same random numbers (common random numbers), so differences come from
    the choices, not the draws.
    """
    rng = np.random.default_rng(seed)
    u, pickr = rng.random((len(starts), steps)), rng.random((len(starts), steps))
    before = goal_mastery(student, starts, goals)
    rec_h, stu_h = list(starts), list(starts)
    zone_hits, correct = 0, 0.0
    for t in range(steps):
        if policy == "recommender":
            res = expected_gains(rec, rec_h, cands, goals)
            choice = [pick(p, a - n, target) for p, n, a in res]
            zone_hits += sum(z for _, z in choice)
            chosen = [int(c[j]) for c, (j, _) in zip(cands, choice)]
        elif policy == "easiest-first":
            chosen = [int(c[np.argmax(p)]) for c, p in zip(cands, per_row(rec, rec_h, cands))]
        else:  # random
            chosen = [int(c[int(pickr[i, t] * len(c))]) for i, c in enumerate(cands)]
        p_true = np.array([p[0] for p in per_row(student, stu_h, [np.array([c]) for c in chosen])])
        r = (u[:, t] < p_true).astype(np.float32)
        correct += float(r.sum())
        rec_h = [extend(h, c, x) for h, c, x in zip(rec_h, chosen, r)]
        stu_h = [extend(h, c, x) for h, c, x in zip(stu_h, chosen, r)]
    gain = goal_mastery(student, stu_h, goals) - before
    out = {"mastery_gain": float(gain.mean()), "gain_se": float(gain.std(ddof=1) / np.sqrt(len(gain)))
           if len(gain) > 1 else 0.0, "final_mastery": float((before + gain).mean()),
           "correct_rate": correct / (len(starts) * steps)}
    if policy == "recommender":
        out["in_zone_rate"] = zone_hits / (len(starts) * steps)
    return out


def compare(rec: Sim, student: Sim, starts, cands, goals, steps: int, target, seed: int) -> dict:
    """The recommender (in its target zone, and free of it) against easiest-first and random."""
    return {"recommender": rollout("recommender", rec, student, starts, cands, goals, steps, target, seed),
            "recommender (no zone)": rollout("recommender", rec, student, starts, cands, goals, steps, (0.0, 1.0),
                                             seed),
            "easiest-first": rollout("easiest-first", rec, student, starts, cands, goals, steps, target, seed),
            "random": rollout("random", rec, student, starts, cands, goals, steps, target, seed)}


def per_row(sim: Sim, hists: list[Hist], cands: list[np.ndarray]) -> list[np.ndarray]:
    """P(correct) of each history on its own candidates, in one model call."""
    union = np.unique(np.concatenate(cands))
    p = sim.probs(hists, union)
    return [p[i, np.searchsorted(union, c)] for i, c in enumerate(cands)]


def goal_mastery(sim: Sim, hists: list[Hist], goals: list[list[int]]) -> np.ndarray:
    """Mean mastery of each history's own goal skills, in one model call."""
    skills = sorted({s for g in goals for s in g})
    m = sim.mastery(hists, skills)
    col = {s: j for j, s in enumerate(skills)}
    return np.array([m[i, [col[s] for s in g]].mean() for i, g in enumerate(goals)])

"""Choosing practice on top of any KT model that gives next-step P(correct).

Mastery of a skill is the model's P(correct) on the next response, averaged over the items that
practise it; goal mastery is the mean over the goal skills. The recommender's policy (`Planner`)
looks `depth` answers ahead: for each candidate item it takes the expectation over the model's own
P(correct) of the best continuation (expectimax), and picks the item whose plan ends with the most
expected goal mastery. Because every branch re-reads mastery from the model after the simulated
answers, practice is spread on its own where the model's marginal gains fall (a skill practised
twice already gains less from a third item than an untouched one), and a skill at `mastered` or
above is not offered at all. Items whose one-step expected gain is not positive are never chosen
when `strict`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

Hist = tuple[np.ndarray, np.ndarray]


class Sim:
    """A KT model seen as a simulator: next-step P(correct) and per-skill mastery for histories."""

    def __init__(self, probs: Callable[[list[Hist], np.ndarray], np.ndarray], q: list[list[int]]):
        self.probs, self.q = probs, q  # q[i - 1]: skill indices of item i
        skill_items: dict[int, list] = {}
        for i, ss in enumerate(q):
            for s in ss:
                skill_items.setdefault(s, []).append(i + 1)
        self.skill_items = {s: np.asarray(v) for s, v in skill_items.items()}

    def items_of(self, skills) -> np.ndarray:
        return np.unique(np.concatenate([self.skill_items[s] for s in skills])) if len(skills) else np.zeros(0, int)

    def mastery(self, hists: list[Hist], skills) -> np.ndarray:
        """[H, len(skills)]"""
        items = self.items_of(skills)
        p = self.probs(hists, items)
        col = {it: j for j, it in enumerate(items)}
        return np.stack([p[:, [col[i] for i in self.skill_items[s]]].mean(1) for s in skills], 1)

    def goal_weights(self, goals: list[list[int]], items: np.ndarray) -> np.ndarray:
        """[len(goals), len(items)]: goal mastery of row h = P[h] @ W[h] (items must hold every goal item)."""
        col = {it: j for j, it in enumerate(items)}
        W = np.zeros((len(goals), len(items)))
        for r, g in enumerate(goals):
            for s in g:
                its = self.skill_items[s]
                W[r, [col[i] for i in its]] += 1.0 / (len(g) * len(its))
        return W


class Ensemble(Sim):
    """Several student models that decide together. As a Sim (P(correct), mastery, the beam) it is
    their mean. With rule="regret" the planner searches on each member separately and takes the
    item whose largest regret across members — the share of that member's best-to-worst spread it
    gives up — is smallest (minimax regret), so no member's view of practice is sacrificed to
    another's; rule="mean" plans on the mean model. rule="agree" starts from interleaving (the goal
    skill practised longest ago) and leaves it only for an item every member values more (the
    largest smallest improvement): a safe improvement on round-robin, by the members' own account."""

    def __init__(self, members: list[Sim], rule: str = "regret"):   # members[0]: the recommender's backbone
        if rule not in RULES:
            raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
        super().__init__(lambda h, c: sum(m.probs(h, c) for m in members) / len(members), members[0].q)
        self.members, self.rule = members, rule


RULE_WORDS = {"mean": "predictions averaged", "regret": "minimax regret over their look-ahead values",
              "agree": "the goal skills in turn, unless every one of them gains more from another item"}
RULES = tuple(RULE_WORDS)


def judges(sim: Sim) -> list[Sim]:
    """The models whose expected gains are averaged: an Ensemble's members when they are searched
    one by one (the planner's gain is their mean), else the model itself."""
    return sim.members if isinstance(sim, Ensemble) and sim.rule != "mean" else [sim]


def extend(h: Hist, item: int, r: float) -> Hist:
    return np.append(h[0], item), np.append(h[1], np.float32(r))


def goal_mastery(sim: Sim, hists: list[Hist], goals: list[list[int]]) -> np.ndarray:
    """Mean mastery of each history's own goal skills, in one model call."""
    items = sim.items_of(sorted({s for g in goals for s in g}))
    return (sim.probs(hists, items) * sim.goal_weights(goals, items)).sum(1)


def per_row(sim: Sim, hists: list[Hist], cands: list[np.ndarray]) -> list[np.ndarray]:
    """P(correct) of each history on its own candidates, in one model call."""
    union = np.unique(np.concatenate(cands))
    p = sim.probs(hists, union)
    return [p[i, np.searchsorted(union, c)] for i, c in enumerate(cands)]


@dataclass
class Tree:
    """Expectimax results per root history, over its (padded) candidate row."""

    p: np.ndarray        # [N, B] P(correct) of each candidate now
    now: np.ndarray      # [N] goal mastery now
    gain: np.ndarray     # [N, B] expected goal mastery after the candidate, minus now
    value: np.ndarray    # [N, B] expected goal mastery at the end of the best `depth`-step plan, minus now
    score: np.ndarray | None = None   # [N, B] what the choice maximises (default: value)

    def __post_init__(self):
        if self.score is None:
            self.score = self.value


def search_tree(sim: Sim, hists: list[Hist], cands: np.ndarray, ok: np.ndarray, goals: list[list[int]],
                depth: int) -> Tree:
    """expectimax, or for an Ensemble with rule="regret" one expectimax per member (on the same
    look-ahead histories) combined by minimax regret (gain and value: the members' means; score:
    minus the largest regret)."""
    if not isinstance(sim, Ensemble) or sim.rule == "mean":
        return expectimax(sim, hists, cands, ok, goals, depth)
    levels, union = _levels(sim, hists, cands, goals, depth)
    trees = [_backup(m, levels, union, cands, ok, goals) for m in sim.members]
    v = np.stack([t.value for t in trees])                              # [M, N, B], -inf where not ok
    fin = np.isfinite(v)
    mean = lambda xs: np.mean(np.stack(xs), 0)
    if sim.rule == "agree":
        d = interleaved(sim, hists, cands, ok, goals, mean([t.value for t in trees]))
        better = (v - v[:, np.arange(len(d)), d][..., None]).min(0)      # [N, B]: the least-convinced member
        score = np.where(fin.all(0), better, -np.inf)
    else:
        best = np.where(fin, v, -np.inf).max(2, keepdims=True)
        worst = np.where(fin, v, np.inf).min(2, keepdims=True)
        span = np.where(best - worst > 1e-12, best - worst, 1.0)
        score = -np.where(fin, (best - v) / span, np.inf).max(0)        # minus the largest regret
    return Tree(mean([t.p for t in trees]), mean([t.now for t in trees]), mean([t.gain for t in trees]),
                mean([t.value for t in trees]), score)


def interleaved(sim: Sim, hists: list[Hist], cands: np.ndarray, ok: np.ndarray, goals: list[list[int]],
                value: np.ndarray) -> np.ndarray:
    """[N] per row, the allowed candidate that interleaving would take: the one whose goal skills
    were practised longest ago (never: first), ties to the larger `value`."""
    out = np.zeros(len(hists), np.int64)
    for n, (h, g) in enumerate(zip(hists, goals)):
        last = {s: t for t, it in enumerate(h[0].tolist()) for s in sim.q[int(it) - 1]}
        when = np.array([min(last.get(s, -1) for s in set(sim.q[c - 1]) & set(g) or {0}) for c in cands[n]], float)
        key = np.where(ok[n] & np.isfinite(value[n]), -when * 1e6 + np.nan_to_num(value[n]), -np.inf)
        out[n] = int(np.argmax(key))
    return out


def expectimax(sim: Sim, hists: list[Hist], cands: np.ndarray, ok: np.ndarray, goals: list[list[int]],
               depth: int) -> Tree:
    """Look `depth` answers ahead over the candidates (the same row at every level; padding and
    excluded candidates have ok=False). One model call per level, for all roots together."""
    if depth < 1:
        raise ValueError("depth must be at least 1")
    levels, union = _levels(sim, hists, cands, goals, depth)
    return _backup(sim, levels, union, cands, ok, goals)


def _levels(sim: Sim, hists, cands, goals, depth):
    """The look-ahead histories level by level (root-major: each root's nodes stay together), and
    the items whose P(correct) the backup needs (candidates and goal items)."""
    N, B = cands.shape
    union = np.union1d(np.unique(cands), sim.items_of(sorted({s for g in goals for s in g})))
    levels = [list(hists)]
    for _ in range(depth):
        prev, kids = levels[-1], []
        reps = len(prev) // N                               # nodes per root at the previous level
        for n, h in enumerate(prev):
            for c in cands[n // reps]:
                kids += [extend(h, int(c), 1.0), extend(h, int(c), 0.0)]
        levels.append(kids)
    return levels, union


def _backup(sim: Sim, levels, union, cands, ok, goals) -> Tree:
    N, B = cands.shape
    W = sim.goal_weights(goals, union)
    ccol = np.searchsorted(union, cands)                    # [N, B]
    roots = np.arange(N)
    P = [sim.probs(lv, union) for lv in levels]
    mast = [(p * W[np.repeat(roots, len(p) // N)]).sum(1) for p in P]
    V = mast[-1]
    for d in range(len(levels) - 2, -1, -1):
        M = len(levels[d])
        owner = np.repeat(roots, M // N)
        pc = P[d][np.arange(M)[:, None], ccol[owner]]       # [M, B]
        child = V.reshape(M, B, 2)
        Q = np.where(ok[owner], pc * child[..., 0] + (1 - pc) * child[..., 1], -np.inf)
        V = Q.max(1)
    m1 = mast[1].reshape(N, B, 2)
    gain = pc * m1[..., 0] + (1 - pc) * m1[..., 1] - mast[0][:, None]
    return Tree(pc, mast[0], np.where(ok, gain, -np.inf), Q - mast[0][:, None])


def pad(cands: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Ragged candidate lists -> [N, B] rows (padded with the row's first item) and a validity mask."""
    B = max(1, max(len(c) for c in cands))
    out, ok = np.zeros((len(cands), B), np.int64), np.zeros((len(cands), B), bool)
    for i, c in enumerate(cands):
        out[i, :len(c)], ok[i, :len(c)] = c, True
        out[i, len(c):] = c[0] if len(c) else 1
    return out, ok


@dataclass
class Planner:
    """The recommender's policy: expectimax over the goal items, `depth` answers ahead, on the
    `beam` candidates with the best one-step gain, never offering a skill already at `mastered`.

    The oracle of `evaluate_paths` is the same search run on the simulated student itself, with
    nothing excluded.
    """

    depth: int = 2
    beam: int = 6
    mastered: float | None = 0.95
    fresh: int = 10     # an item answered in the last `fresh` responses waits while its skill has another
    spacing: int = 0    # a goal skill practised in the last `spacing` responses waits while another is open

    def oracle(self) -> "Planner":
        """The same search with nothing excluded: what evaluate_paths' oracle runs on the student itself."""
        return Planner(self.depth, self.beam, None, 0, 0)

    def open_mask(self, sim: Sim, hists: list[Hist], cands: list[np.ndarray], goals: list[list[int]]) -> list:
        """Per history, False for an item whose goal skills are all at `mastered` or above."""
        if self.mastered is None:
            return [np.ones(len(c), bool) for c in cands]
        skills = sorted({s for g in goals for s in g})
        m = sim.mastery(hists, skills)
        col = {s: j for j, s in enumerate(skills)}
        out = []
        for i, (c, g) in enumerate(zip(cands, goals)):
            open_ = {s for s in g if m[i, col[s]] < self.mastered}
            out.append(np.array([bool(open_ & set(sim.q[it - 1])) for it in c], bool))
        return out

    def allowed(self, sim: Sim, hists: list[Hist], cands: list[np.ndarray], goals: list[list[int]]) -> list:
        """Per history, a mask over its candidates: not mastered (open_mask) and not waiting its turn
        (turn_mask); if that leaves nothing, everything again."""
        out = []
        for h, c, g, ok in zip(hists, cands, goals, self.open_mask(sim, hists, cands, goals)):
            ok = ok & self.turn_mask(sim, h, c, ok, g)
            out.append(ok if ok.any() else np.ones(len(c), bool))
        return out

    def turn_mask(self, sim: Sim, hist: Hist, cands: np.ndarray, ok: np.ndarray, goal: list[int]) -> np.ndarray:
        """False for a candidate that waits its turn: its item was just answered while its skill has
        another (fresh_mask), or all its goal skills were just practised while another allowed
        candidate practises a goal skill that was not (spacing_mask)."""
        fresh = self.fresh_mask(sim, hist, cands, ok)
        return fresh & self.spacing_mask(sim, hist, cands, ok & fresh, goal)

    def spacing_mask(self, sim: Sim, hist: Hist, cands: np.ndarray, ok: np.ndarray, goal: list[int]) -> np.ndarray:
        """False for a candidate whose goal skills were all practised in the last `spacing` responses
        while an allowed candidate has a goal skill that was not: goal skills take turns, so no
        model's belief in drilling one skill decides a whole path."""
        if not self.spacing or not len(hist[0]):
            return np.ones(len(cands), bool)
        recent = {s for it in hist[0][-self.spacing:].tolist() for s in sim.q[int(it) - 1]}
        stale = np.array([set(sim.q[c - 1]) & set(goal) <= recent for c in cands], bool)
        return ~stale if (ok & ~stale).any() else np.ones(len(cands), bool)

    def fresh_mask(self, sim: Sim, hist: Hist, cands: np.ndarray, ok: np.ndarray) -> np.ndarray:
        """False for an item answered in the last `fresh` responses while an allowed candidate of one
        of its skills was answered longer ago (or never): items of a skill take turns."""
        items = hist[0]
        if not self.fresh or not len(items):
            return np.ones(len(cands), bool)
        last = {int(it): t for t, it in enumerate(items.tolist())}
        when = np.array([last.get(int(c), -1) for c in cands])
        oldest: dict[int, int] = {}
        for c, w, k in zip(cands, when, ok):
            for s in sim.q[c - 1]:
                if k:
                    oldest[s] = min(oldest.get(s, w), w)
        cut = len(items) - self.fresh
        return np.array([w < cut or not any(oldest.get(s, w) < w for s in sim.q[c - 1])
                         for c, w in zip(cands, when)], bool)

    def search(self, sim: Sim, hists: list[Hist], cands: list[np.ndarray], goals: list[list[int]],
               remaining: int | None = None):
        """(candidate rows [N, B], Tree) with the look-ahead value on the beam (others: -inf); the
        look-ahead never goes past the `remaining` steps of a path."""
        depth = max(1, min(self.depth, remaining)) if remaining is not None else self.depth
        rows, ok = pad(cands)
        allow = self.allowed(sim, hists, cands, goals)
        for i, a in enumerate(allow):
            ok[i, :len(a)] &= a
        if rows.shape[1] > self.beam and depth > 1:   # narrow to the beam on one-step gains first
            first = expectimax(sim, hists, rows, ok, goals, 1)
            keep = np.argsort(-first.gain, 1, kind="stable")[:, :self.beam]
            rows, ok = np.take_along_axis(rows, keep, 1), np.take_along_axis(ok, keep, 1)
        return rows, search_tree(sim, hists, rows, ok, goals, depth)

    def choose(self, sim: Sim, hists: list[Hist], cands: list[np.ndarray], goals: list[list[int]],
               strict: bool = False, remaining: int | None = None) -> list[int | None]:
        """One item per history (None under `strict` when no allowed item has a positive gain).
        Ties in look-ahead value go to the larger one-step gain (sooner is safer)."""
        rows, t = self.search(sim, hists, cands, goals, remaining)
        score = t.score + 1e-9 * np.where(np.isfinite(t.gain), t.gain, 0)
        score = np.where(t.gain > 0, score, -np.inf) if strict else score
        out = []
        for i in range(len(hists)):
            j = int(np.argmax(score[i]))
            if not np.isfinite(score[i, j]):
                if strict:
                    out.append(None)
                    continue
                j = int(np.argmax(np.where(np.isfinite(t.score[i]), t.score[i], t.gain[i])))
            out.append(int(rows[i, j]))
        return out


def own_skill_gains(sim: Sim, hist: Hist, cands: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(P(correct), expected gain) of each candidate judged on its own skills (no goal given)."""
    hyps = [hist] + [extend(hist, c, r) for c in cands for r in (1.0, 0.0)]
    union = np.union1d(cands, sim.items_of(sorted({s for c in cands for s in sim.q[c - 1]})))
    P = sim.probs(hyps, union)
    W = sim.goal_weights([sim.q[c - 1] for c in cands], union)   # row j: candidate j's own skills
    p = P[0, np.searchsorted(union, cands)]
    now = (P[0][None] * W).sum(1)
    m1 = (P[1::2] * W).sum(1)
    m0 = (P[2::2] * W).sum(1)
    return p, p * m1 + (1 - p) * m0 - now

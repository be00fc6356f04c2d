"""Bayesian Knowledge Tracing (Corbett & Anderson 1995): one two-state hidden Markov model per skill
(prior P(L0), learn P(T), guess P(G), slip P(S), no forgetting), fitted by expectation-maximisation
(Baum-Welch) on every student's responses to that skill, and kept as four plain arrays.

A response to an item with several skills is an observation of each of them (as the duplicated rows
of ASSISTments treat it); an item's P(correct) is the mean of its skills'. EM runs on all
(student, skill) sequences at once, time step by time step, so its cost is the number of responses
times the iterations, not a Python loop per sequence.
"""
from __future__ import annotations

import numpy as np

# Bounds keep each skill's HMM identifiable (a guess or slip above 0.5 would swap the meaning of
# "learned" and "not learned": the model degeneracy of Baker, Corbett & Aleven 2008).
BOUNDS = {"prior": (1e-3, 1 - 1e-3), "learn": (1e-4, 0.5), "guess": (1e-3, 0.45), "slip": (1e-3, 0.45)}
START = {"prior": 0.4, "learn": 0.1, "guess": 0.2, "slip": 0.1}
PSEUDO = 2.0  # pseudo-observations pulling a rarely seen skill towards START (a Beta prior on each rate)


class _Seqs:
    """(student, skill) subsequences, longest first, laid out time-major: at step t the sequences
    still running are ranks 0..n[t]-1 and their observations sit at flat[off[t]:off[t] + n[t]]."""

    def __init__(self, items: list, correct: list, qm: np.ndarray):
        it = np.concatenate(items).astype(np.int64) if items else np.zeros(0, np.int64)
        ob = np.concatenate(correct).astype(np.float64) if correct else np.zeros(0)
        stu = np.repeat(np.arange(len(items)), [len(x) for x in items])
        pos = np.arange(len(it))
        sk = qm[it]                                            # [N, K]
        row, col = np.nonzero(sk)
        skill, stu, pos, ob = sk[row, col], stu[row], pos[row], ob[row]
        order = np.lexsort((pos, skill, stu))
        skill, stu, ob = skill[order], stu[order], ob[order]
        new = np.r_[True, (stu[1:] != stu[:-1]) | (skill[1:] != skill[:-1])] if len(stu) else np.zeros(0, bool)
        seq = np.cumsum(new) - 1
        starts = np.flatnonzero(new)
        lengths = np.diff(np.r_[starts, len(seq)])
        rank_of = np.empty(len(lengths), np.int64)
        rank_of[np.argsort(-lengths, kind="stable")] = np.arange(len(lengths))
        t = np.arange(len(seq)) - starts[seq]
        self.n = np.bincount(lengths, minlength=int(lengths.max(initial=0)) + 1)[::-1].cumsum()[::-1][1:]
        self.off = np.r_[0, np.cumsum(self.n)]
        flat = self.off[t] + rank_of[seq]
        self.obs = np.empty(len(seq))
        self.obs[flat] = ob
        self.skill = np.empty(len(lengths), np.int64)          # per rank
        self.skill[rank_of] = skill[starts]
        self.flat_skill = self.skill[np.arange(len(seq)) - self.off[np.repeat(np.arange(len(self.n)), self.n)]] \
            if len(seq) else np.zeros(0, np.int64)

    def at(self, t: int) -> slice:
        return slice(self.off[t], self.off[t] + self.n[t])


def _emission(o, L_side: bool, guess, slip):
    return np.where(o > 0.5, 1 - slip, slip) if L_side else np.where(o > 0.5, guess, 1 - guess)


class BKT:
    """Per-skill BKT parameters as arrays indexed by skill (index 0 = padding, unused)."""

    def __init__(self, q: list[list[int]], n_skills: int, params: dict | None = None):
        self.q, self.n_skills = q, n_skills
        k = max(len(x) for x in q)
        self.qm = np.zeros((len(q) + 1, k), dtype=np.int64)
        for i, s in enumerate(q):
            self.qm[i + 1, :len(s)] = s
        self.params = params or {name: np.full(n_skills + 1, v) for name, v in START.items()}
        self.log_likelihood: float | None = None
        self.iterations = 0

    # ------------------------------------------------------------------ fitting
    def fit(self, items: list, correct: list, iters: int = 100, tol: float = 1e-8) -> "BKT":
        """EM from START; stops when the log-likelihood gains less than `tol` (relative) per step."""
        seqs = _Seqs(items, correct, self.qm)
        prev = -np.inf
        for k in range(iters):
            ll, stats = self._e_step(seqs)
            self._m_step(stats, seqs)
            self.iterations = k + 1
            if ll - prev < tol * abs(ll):
                break
            prev = ll
        self.log_likelihood = float(self._e_step(seqs)[0])
        return self

    def _e_step(self, s: _Seqs):
        P = self.params
        T = len(s.n)
        N = len(s.obs)
        a = np.empty(N)     # filtered P(learned | o_1..t)
        pred = np.empty(N)  # predicted P(learned | o_1..t-1)
        c = np.empty(N)     # P(o_t | o_1..t-1)
        for t in range(T):
            sl, sk = s.at(t), s.skill[:s.n[t]]
            o = s.obs[sl]
            prev = a[s.at(t - 1)][:s.n[t]] if t else None
            pl = P["prior"][sk] if t == 0 else prev + (1 - prev) * P["learn"][sk]
            el, eu = _emission(o, True, P["guess"][sk], P["slip"][sk]), _emission(o, False, P["guess"][sk],
                                                                                    P["slip"][sk])
            pred[sl] = pl
            c[sl] = pl * el + (1 - pl) * eu
            a[sl] = pl * el / c[sl]
        # Backward smoothing on posteriors (not on scaled likelihoods, which overflow on long
        # sequences): with no forgetting, gamma_t(L) = a_t * gamma_t+1(L) / pred_t+1 and the
        # unlearned->learned transition carries the rest.
        gl, gu, xi = a.copy(), 1 - a, np.zeros(N)
        for t in range(T - 2, -1, -1):
            n1, sl1 = s.n[t + 1], s.at(t + 1)
            head = slice(s.off[t], s.off[t] + n1)
            r = gl[sl1] / pred[sl1]
            xi[head] = (1 - a[head]) * P["learn"][s.skill[:n1]] * r
            gl[head] = a[head] * r
            gu[head] = xi[head] + gu[sl1]
        not_last = np.zeros(N, bool)
        for t in range(T - 1):
            not_last[s.off[t]:s.off[t] + s.n[t + 1]] = True
        return float(np.log(c).sum()), (gl, gu, xi, not_last)

    def _m_step(self, stats, s: _Seqs) -> None:
        gl, gu, xi, not_last = stats
        S, sk, o = self.n_skills + 1, s.flat_skill, s.obs
        cnt = lambda w: np.bincount(sk, weights=w, minlength=S)
        first = s.at(0) if len(s.n) else slice(0, 0)
        ratio = {"prior": (np.bincount(s.skill, weights=gl[first], minlength=S), np.bincount(s.skill, minlength=S)),
                 "learn": (cnt(xi * not_last), cnt(gu * not_last)),
                 "guess": (cnt(gu * o), cnt(gu)),
                 "slip": (cnt(gl * (1 - o)), cnt(gl))}
        for name, (num, den) in ratio.items():
            lo, hi = BOUNDS[name]
            self.params[name] = np.clip((num + PSEUDO * START[name]) / (den + PSEUDO), lo, hi)

    # ------------------------------------------------------------------ prediction
    def _p_correct(self, L: np.ndarray, skills: np.ndarray) -> np.ndarray:
        P = self.params
        return L * (1 - P["slip"][skills]) + (1 - L) * P["guess"][skills]

    def _filter(self, hists: list, record: bool = False):
        """Run each history through its skills' HMMs: P(learned) per skill after it [H, S+1], and,
        with record, P(correct) of each response before it was seen (the item's skills' mean)."""
        P = self.params
        H = len(hists)
        L = np.tile(P["prior"], (H, 1))
        lens = np.array([len(h[0]) for h in hists], dtype=np.int64)
        T = int(lens.max(initial=0))
        items = np.zeros((H, T), np.int64)
        obs = np.zeros((H, T))
        for h, (it, r) in enumerate(hists):
            items[h, :len(it)] = it
            obs[h, :len(r)] = r
        pred = np.zeros((H, T)) if record else None
        rows = np.arange(H)
        for t in range(T):
            live = rows[lens > t]
            sk = self.qm[items[live, t]]                         # [h, K]
            o = obs[live, t]
            if record:
                m = sk > 0
                pred[live, t] = (self._p_correct(L[live[:, None], sk], sk) * m).sum(1) / np.maximum(m.sum(1), 1)
            for j in range(sk.shape[1]):
                s = sk[:, j]
                ok = s > 0
                h, s, oo = live[ok], s[ok], o[ok]
                pl = L[h, s]
                el = oo * (1 - P["slip"][s]) + (1 - oo) * P["slip"][s]      # soft responses blend linearly
                eu = oo * P["guess"][s] + (1 - oo) * (1 - P["guess"][s])
                z = pl * el + (1 - pl) * eu               # 0 only for an answer the model deems impossible
                post = np.divide(pl * el, z, out=pl.copy(), where=z > 0)
                L[h, s] = post + (1 - post) * P["learn"][s]
        return L, pred, lens

    def next_probs(self, hists: list, cand: np.ndarray) -> np.ndarray:
        """[H, C] P(correct) on each candidate item after each history."""
        L, _, _ = self._filter(hists)
        cq = self.qm[np.asarray(cand, dtype=np.int64)]           # [C, K]
        m = (cq > 0).astype(np.float64)
        p = self._p_correct(L[:, cq], cq[None])                  # [H, C, K]
        return (p * m).sum(-1) / np.maximum(m.sum(-1), 1)

    def mastery(self, hists: list) -> np.ndarray:
        """[H, S+1] P(learned) per skill after each history (column 0 unused)."""
        return self._filter(hists)[0]

    def sequence_probs(self, items: list, correct: list) -> list[np.ndarray]:
        """P(correct) of every response of every sequence (the first included), before it is seen."""
        _, pred, lens = self._filter(list(zip(items, correct)), record=True)
        return [pred[h, :n] for h, n in enumerate(lens)]

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> tuple[dict, dict]:
        return ({k: v.astype(np.float64) for k, v in self.params.items()},
                {"n_skills": self.n_skills, "log_likelihood": self.log_likelihood, "iterations": self.iterations})

    @classmethod
    def from_state_dict(cls, arrays: dict, meta: dict, q: list[list[int]]) -> "BKT":
        missing = sorted(set(START) - set(arrays))
        if missing:
            raise ValueError(f"BKT weights lack {missing}")
        m = cls(q, int(meta["n_skills"]), {k: np.asarray(arrays[k], np.float64) for k in START})
        m.log_likelihood, m.iterations = meta.get("log_likelihood"), int(meta.get("iterations", 0))
        return m


def simulate(n_students: int, lengths, params: dict, q: list[list[int]], seed: int = 0):
    """Responses drawn from a BKT model (for tests and checks): per student a random order of items.

    lengths: an int or (low, high) per student. Returns (items, correct) lists of arrays.
    """
    rng = np.random.default_rng(seed)
    qm = BKT(q, len(params["prior"]) - 1, params).qm
    items, correct = [], []
    for _ in range(n_students):
        n = lengths if isinstance(lengths, int) else int(rng.integers(lengths[0], lengths[1] + 1))
        learned = rng.random(len(params["prior"])) < params["prior"]
        it = rng.integers(1, len(q) + 1, n)
        r = np.zeros(n, np.float32)
        for t, i in enumerate(it):
            sk = qm[i][qm[i] > 0]
            p = np.mean([(1 - params["slip"][s]) if learned[s] else params["guess"][s] for s in sk])
            r[t] = float(rng.random() < p)
            for s in sk:
                learned[s] |= rng.random() < params["learn"][s]
        items.append(it.astype(np.int64))
        correct.append(r)
    return items, correct

"""Performance Factors Analysis (Pavlik, Cen & Koedinger 2009) as a scikit-learn logistic regression.

For each skill k of the item answered: an easiness term beta_k, and gamma_k * log(1 + prior successes
on k) + rho_k * log(1 + prior failures on k); plus an item easiness where items are not just their
skills. Fitted with scikit-learn, then kept as plain arrays (coefficients and intercept), so saving is
safetensors and prediction is numpy.
"""
from __future__ import annotations

import numpy as np


class PFA:
    def __init__(self, q: list[list[int]], n_skills: int, item_terms: bool, coef=None, intercept: float = 0.0):
        self.q, self.n_skills, self.item_terms = q, n_skills, item_terms   # q[i - 1]: skills of item i
        self.n_items = len(q)
        self.coef, self.intercept = coef, float(intercept)
        k = max(len(x) for x in q)
        self.qm = np.zeros((self.n_items + 1, k), dtype=np.int64)
        for i, s in enumerate(q):
            self.qm[i + 1, :len(s)] = s

    @property
    def n_features(self) -> int:
        return 3 * (self.n_skills + 1) + (self.n_items + 1 if self.item_terms else 0)

    def _features(self, items: list, correct: list):
        """Sparse design matrix, one row per response, counts taken before that response."""
        import pandas as pd
        from scipy import sparse

        S = self.n_skills + 1
        it = np.concatenate(items)
        cr = np.concatenate(correct).astype(np.float64)
        stu = np.repeat(np.arange(len(items)), [len(x) for x in items])
        sk = self.qm[it]                                      # [N, K]
        row, col = np.nonzero(sk)
        skill = sk[row, col]
        df = pd.DataFrame({"s": stu[row], "k": skill, "c": cr[row]})
        g = df.groupby(["s", "k"], sort=False)["c"]
        succ = (g.cumsum() - df["c"]).to_numpy()
        fail = g.cumcount().to_numpy() - succ
        rows = [row, row, row]
        cols = [skill, S + skill, 2 * S + skill]
        vals = [np.ones(len(row)), np.log1p(succ), np.log1p(fail)]
        if self.item_terms:
            rows.append(np.arange(len(it)))
            cols.append(3 * S + it)
            vals.append(np.ones(len(it)))
        X = sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                              shape=(len(it), self.n_features))
        return X, cr

    def fit(self, items: list, correct: list, C: float = 1.0) -> "PFA":
        from sklearn.linear_model import LogisticRegression

        X, y = self._features(items, correct)
        lr = LogisticRegression(C=C, max_iter=500, solver="lbfgs").fit(X, y.astype(int))
        self.coef, self.intercept = lr.coef_[0].astype(np.float64), float(lr.intercept_[0])
        return self

    def sequence_probs(self, items: list, correct: list) -> list[np.ndarray]:
        """P(correct) for every response of every sequence (the first included), from the full history."""
        X, _ = self._features(items, correct)
        p = 1 / (1 + np.exp(-(X @ self.coef + self.intercept)))
        return np.split(p, np.cumsum([len(x) for x in items])[:-1])

    def next_probs(self, hists: list, cand: np.ndarray) -> np.ndarray:
        """[H, C] next-response P(correct); soft (fractional) responses count fractionally."""
        S = self.n_skills + 1
        succ = np.zeros((len(hists), S))
        fail = np.zeros((len(hists), S))
        for h, (it, r) in enumerate(hists):
            sk = self.qm[np.asarray(it, dtype=np.int64)]
            rr = np.repeat(np.asarray(r, dtype=np.float64)[:, None], sk.shape[1], 1)
            np.add.at(succ[h], sk.ravel(), rr.ravel())
            np.add.at(fail[h], sk.ravel(), 1 - rr.ravel())
        w = self.coef
        per_skill = w[:S] + w[S:2 * S] * np.log1p(succ) + w[2 * S:3 * S] * np.log1p(fail)
        per_skill[:, 0] = 0.0                                 # skill 0 = padding
        cq = self.qm[np.asarray(cand, dtype=np.int64)]        # [C, K]
        z = per_skill[:, cq].sum(-1) + self.intercept         # [H, C]
        if self.item_terms:
            z = z + w[3 * S + np.asarray(cand, dtype=np.int64)]
        return 1 / (1 + np.exp(-z))

    def state_dict(self) -> tuple[dict, dict]:
        return ({"coef": self.coef.astype(np.float64), "intercept": np.array([self.intercept])},
                {"n_skills": self.n_skills, "item_terms": self.item_terms})

    @classmethod
    def from_state_dict(cls, arrays: dict, meta: dict, q: list[list[int]]) -> "PFA":
        return cls(q, meta["n_skills"], meta["item_terms"], arrays["coef"], float(arrays["intercept"][0]))

"""The scikit-learn backbones (`gbm`, `logreg`) and the scaling the neural one shares.

Each model is fitted with scikit-learn and then kept as plain arrays (safetensors + JSON, no
pickle): the logistic regression as standardisation + coefficients, the boosted trees as a
`TreeEnsemble`. Both give per-student contributions in log-odds that sum to the model's score:
logreg coef * standardised value (relative to the average training student), gbm path credits.
"""
from __future__ import annotations

import numpy as np

from .trees import TreeEnsemble


class Standardizer:
    """NaN -> training mean (+ a 0/1 "missing" column for features that had NaN), then z-scores."""

    def __init__(self, mean=None, std=None, indicate=None):
        self.mean, self.std, self.indicate = mean, std, indicate

    def fit(self, X: np.ndarray) -> "Standardizer":
        with np.errstate(invalid="ignore"):
            self.mean = np.nan_to_num(np.nanmean(X, axis=0)) if len(X) else np.zeros(X.shape[1])
            std = np.nanstd(X, axis=0) if len(X) else np.ones(X.shape[1])
        self.std = np.where(np.isfinite(std) & (std > 1e-12), std, 1.0)
        self.indicate = np.flatnonzero(np.isnan(X).any(0)).astype(np.int64)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        miss = np.isnan(X)
        Z = (np.where(miss, self.mean, X) - self.mean) / self.std
        return np.concatenate([Z, miss[..., self.indicate].astype(float)], axis=-1) if len(self.indicate) else Z

    def groups(self, groups: list[str]) -> list[str]:
        """Output column -> source group (a missing-indicator belongs to its feature's group)."""
        return list(groups) + [groups[i] for i in self.indicate]

    def state_dict(self, prefix: str) -> dict:
        return {f"{prefix}mean": self.mean, f"{prefix}std": self.std, f"{prefix}indicate": self.indicate}

    @classmethod
    def from_state(cls, d: dict, prefix: str) -> "Standardizer":
        return cls(d[f"{prefix}mean"], d[f"{prefix}std"], d[f"{prefix}indicate"].astype(np.int64))


def _weights(y: np.ndarray, balanced: bool) -> tuple[dict | None, float]:
    """sklearn class weights and the log-odds shift they cause (subtracted again at predict time)."""
    pos, neg = int(y.sum()), int(len(y) - y.sum())
    if not balanced or pos == 0 or neg == 0:
        return None, 0.0
    return "balanced", float(np.log(neg / pos))


class LinearModel:
    kind = "logreg"

    def __init__(self, scaler: Standardizer, coef: np.ndarray, intercept: float, shift: float):
        self.scaler, self.coef, self.intercept, self.shift = scaler, coef, intercept, shift

    @classmethod
    def fit(cls, X, y, *, C: float, balanced: bool, seed: int) -> "LinearModel":
        from sklearn.linear_model import LogisticRegression

        scaler = Standardizer().fit(X)
        cw, shift = _weights(y, balanced)
        lr = LogisticRegression(C=C, class_weight=cw, max_iter=2000, random_state=seed).fit(scaler.transform(X), y)
        return cls(scaler, lr.coef_[0].astype(np.float64), float(lr.intercept_[0]), shift)

    def logit(self, X) -> np.ndarray:
        """Calibrated log-odds (the class-weight shift removed)."""
        return self.scaler.transform(X) @ self.coef + self.intercept - self.shift

    def contributions(self, X) -> tuple[np.ndarray, float]:
        Z = self.scaler.transform(X)
        return Z * self.coef, self.intercept - self.shift

    def groups(self, groups: list[str]) -> list[str]:
        return self.scaler.groups(groups)

    def state_dict(self) -> tuple[dict, dict]:
        return ({**self.scaler.state_dict("scaler."), "coef": self.coef},
                {"intercept": self.intercept, "shift": self.shift})

    @classmethod
    def from_state(cls, arrays: dict, meta: dict) -> "LinearModel":
        return cls(Standardizer.from_state(arrays, "scaler."), arrays["coef"], meta["intercept"], meta["shift"])


def _fill_empty(X, empty):
    """sklearn cannot bin an all-NaN column (e.g. scores at week 1); it carries no split."""
    if not empty.any():
        return X
    X = X.copy()
    X[:, empty] = 0.0
    return X


class BoostedTrees:
    kind = "gbm"

    def __init__(self, ensemble: TreeEnsemble, shift: float, n_iter: int = 0):
        self.ensemble, self.shift, self.n_iter = ensemble, shift, n_iter

    @classmethod
    def fit(cls, X, y, *, groups: np.ndarray, hp, balanced: bool, seed: int, val=None) -> "BoostedTrees":
        """Rows of one student at several weeks are near-duplicates with one label, so the trees
        could memorise students: leaves need `gbm_min_samples_leaf` students' worth of rows, and
        early stopping watches held-out students (`val` = (X, y), else 10% of the groups), weighted
        like the training rows."""
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.utils.class_weight import compute_sample_weight

        cw, shift = _weights(y, balanced)
        uniq = np.unique(groups)
        empty = np.isnan(X).all(0)
        X = _fill_empty(X, empty)
        model = HistGradientBoostingClassifier(
            learning_rate=hp.gbm_learning_rate, max_iter=hp.gbm_max_iter, max_leaf_nodes=hp.gbm_max_leaf_nodes,
            max_depth=hp.gbm_max_depth,
            min_samples_leaf=max(1, round(hp.gbm_min_samples_leaf * len(y) / len(uniq))), l2_regularization=hp.gbm_l2,
            class_weight=cw, categorical_features=None, random_state=seed, early_stopping=False)
        Xv, yv, fit_rows = None, None, np.ones(len(y), dtype=bool)
        if val is not None and len(np.unique(val[1])) == 2:
            Xv, yv = _fill_empty(val[0], empty), val[1]
        elif len(uniq) >= 200 and len(np.unique(y)) == 2:
            held = np.random.default_rng(seed).choice(uniq, size=len(uniq) // 10, replace=False)
            inside = np.isin(groups, held)
            if len(np.unique(y[inside])) == 2 and len(np.unique(y[~inside])) == 2:
                Xv, yv, fit_rows = X[inside], y[inside], ~inside
        if Xv is not None:
            model.set_params(early_stopping=True, n_iter_no_change=20, scoring="loss")
            model.fit(X[fit_rows], y[fit_rows], X_val=Xv, y_val=yv,
                      sample_weight_val=compute_sample_weight(cw, yv) if cw else None)
        else:
            model.fit(X, y)
        ens = TreeEnsemble.from_sklearn(model)
        probe = X[: min(len(X), 2000)]
        if not np.array_equal(ens.raw(probe), model.decision_function(probe)):  # the copy must be exact
            raise RuntimeError("the exported tree arrays do not reproduce scikit-learn's predictions")
        return cls(ens, shift, int(model.n_iter_))

    def logit(self, X) -> np.ndarray:
        return self.ensemble.raw(X) - self.shift

    def contributions(self, X) -> tuple[np.ndarray, float]:
        c, bias = self.ensemble.contributions(X)
        return c, bias - self.shift

    def groups(self, groups: list[str]) -> list[str]:
        return list(groups)

    def state_dict(self) -> tuple[dict, dict]:
        return self.ensemble.state_dict(), {"shift": self.shift, "n_iter": self.n_iter}

    @classmethod
    def from_state(cls, arrays: dict, meta: dict) -> "BoostedTrees":
        return cls(TreeEnsemble(arrays), meta["shift"], meta.get("n_iter", 0))

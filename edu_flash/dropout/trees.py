"""scikit-learn's HistGradientBoostingClassifier as flat numpy arrays: saved to safetensors, loaded
without pickle or sklearn internals, and able to say why it scored a student as it did.

`from_sklearn` copies each tree's node fields (feature, threshold, NaN direction, children, value)
into one set of arrays; `raw` walks them exactly as sklearn's predictor does (x <= threshold goes
left, NaN follows missing_go_to_left) and adds the trees in sklearn's order, so the log-odds are
bit-identical (checked at fit time). `contributions` is the path attribution of Saabas
(treeinterpreter): along each tree's decision path, the change in node value is credited to the
split feature; the credits plus the expected value sum exactly to the log-odds. Cheap (one walk),
local, but unlike TreeSHAP it over-credits features split near the root.
"""
from __future__ import annotations

import numpy as np

FIELDS = ("feature", "threshold", "missing_left", "left", "right", "is_leaf", "value")


class TreeEnsemble:
    def __init__(self, arrays: dict[str, np.ndarray]):
        self.a = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
        self.roots = self.a["roots"].astype(np.int64)

    @classmethod
    def from_sklearn(cls, model) -> "TreeEnsemble":
        """A fitted binary HistGradientBoostingClassifier without categorical splits."""
        if model.n_trees_per_iteration_ != 1:
            raise ValueError("only binary classifiers are supported")
        parts, roots, offset = {k: [] for k in FIELDS}, [], 0
        for (tree,) in model._predictors:
            nodes = tree.nodes
            if nodes["is_categorical"].any():
                raise ValueError("categorical splits are not supported")
            leaf = nodes["is_leaf"].astype(bool)
            # leaves hold shrunk values; internal nodes do not (sklearn shrinks leaves only)
            value = np.where(leaf, nodes["value"], nodes["value"] * model.learning_rate)
            for k, v in (("feature", nodes["feature_idx"]), ("threshold", nodes["num_threshold"]),
                         ("missing_left", nodes["missing_go_to_left"]), ("is_leaf", leaf),
                         ("left", nodes["left"].astype(np.int64) + offset),
                         ("right", nodes["right"].astype(np.int64) + offset), ("value", value)):
                parts[k].append(v)
            roots.append(offset)
            offset += len(nodes)
        dtypes = {"feature": np.int64, "threshold": np.float64, "missing_left": np.uint8, "left": np.int64,
                  "right": np.int64, "is_leaf": np.uint8, "value": np.float64}
        arrays = {k: np.concatenate(parts[k]).astype(dtypes[k]) for k in FIELDS}
        arrays["roots"] = np.asarray(roots, dtype=np.int64)
        arrays["baseline"] = np.asarray(model._baseline_prediction, dtype=np.float64).reshape(1)
        return cls(arrays)

    def state_dict(self) -> dict[str, np.ndarray]:
        return dict(self.a)

    @property
    def n_trees(self) -> int:
        return len(self.roots)

    def _walk(self, X: np.ndarray, contrib: np.ndarray | None = None) -> np.ndarray:
        """Leaf index per (row, tree); adds path credits into `contrib` (n, features) if given."""
        a = self.a
        idx = np.broadcast_to(self.roots, (len(X), self.n_trees)).copy()
        rows = np.arange(len(X))[:, None]
        while True:
            inner = ~a["is_leaf"][idx].astype(bool)
            if not inner.any():
                return idx
            node = idx[inner]
            r = np.broadcast_to(rows, idx.shape)[inner]
            x = X[r, a["feature"][node]]
            go_left = np.where(np.isnan(x), a["missing_left"][node].astype(bool), x <= a["threshold"][node])
            child = np.where(go_left, a["left"][node], a["right"][node])
            if contrib is not None:
                np.add.at(contrib, (r, a["feature"][node]), a["value"][child] - a["value"][node])
            idx[inner] = child

    def raw(self, X: np.ndarray, chunk: int = 20000) -> np.ndarray:
        """Log-odds, summed tree by tree in sklearn's order (bit-identical to decision_function)."""
        X = np.asarray(X, dtype=np.float64)
        out = np.empty(len(X))
        for s in range(0, len(X), chunk):
            leaves = self.a["value"][self._walk(X[s:s + chunk])]
            acc = np.zeros(len(leaves)) + self.a["baseline"][0]
            for t in range(self.n_trees):
                acc += leaves[:, t]
            out[s:s + chunk] = acc
        return out

    def contributions(self, X: np.ndarray) -> tuple[np.ndarray, float]:
        """(per-feature log-odds credits (n, features), expected log-odds); they sum to `raw(X)`."""
        X = np.asarray(X, dtype=np.float64)
        contrib = np.zeros(X.shape)
        self._walk(X, contrib)
        bias = float(self.a["baseline"][0] + self.a["value"][self.roots].sum())
        return contrib, bias

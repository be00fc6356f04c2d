"""The `minilm-hybrid` backbone: all-MiniLM-L6-v2 embeddings of the whole essay stacked with TF-IDF
and surface features under per-prompt ridge models, calibrated to each prompt's score distribution.

Per prompt (and trait) ridge regressors see different views of an essay:
  1. word 1-2-grams + surface features (the `tfidf-ridge` design);
  2. word and character 2-5-grams (spelling, morphology) + surface features + the embedding;
  3. the embedding + surface features;
  4. the mean-pooled states of an intermediate layer (LAYER_VIEWS: layer 4 of 6) + surface features: the
     final layer is tuned for sentence similarity, the middle ones keep more of syntax and wording
     (chosen on the dev ids of ASAP folds 0 and 1 among several layer views: BENCHMARKS.md).
The embedding covers the whole essay: it is cut into chunks of `chunk_tokens` tokens (nothing is
truncated), each chunk is mean-pooled by the sentence encoder (at every layer the views use), and the
chunks are averaged by length.
Each ridge's alpha is chosen by leave-one-out GCV, whose leave-one-out predictions also fix
non-negative stacking weights and a linear calibration that gives the stacked predictions the human
scores' mean and spread (ridge shrinks towards the mean, which costs QWK at both ends of a rubric).
The result is one linear function per prompt: a reloaded model predicts bit for bit the same.
"""
from __future__ import annotations

import hashlib

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import LinearRegression, RidgeCV

from ..core.precision import BF16, autocast
from .baseline import (ALPHAS, fit_vectorizer, surface_features, vectorizer_arrays, vectorizer_from_arrays)

VIEWS = ("words", "chars", "embedding")
LAYER_VIEWS: tuple[tuple[int, ...], ...] = ((4,),)  # hidden states (0 = token embeddings) of each extra view
EMBEDDING_WEIGHT = 0.3  # the embedding's scale beside ~150k n-gram columns in view 2
_CACHE: dict[tuple, np.ndarray] = {}  # (encoder id, chunking, sha1 of text) -> embedding, for this process
_CACHE_MAX = 200_000


class ChunkEmbedder:
    """Whole-essay embeddings from a sentence encoder (mean pooling, chunks averaged by length): one
    block of `hidden_size` columns per layer in `layers` (None: the final layer only)."""

    def __init__(self, encoder, tokenizer, *, chunk_tokens: int = 256, batch_size: int = 32,
                 precision: str = "bf16-mixed", key: str = "", layers: tuple[int, ...] | None = None):
        self.encoder, self.tokenizer = encoder, tokenizer
        self.chunk_tokens, self.batch_size, self.precision, self.key = chunk_tokens, batch_size, precision, key
        self.layers = tuple(layers) if layers else None

    def __call__(self, texts: list[str]) -> np.ndarray:
        keys = [(self.key, self.chunk_tokens, self.precision, self.layers, hashlib.sha1(t.encode("utf-8")).hexdigest())
                for t in texts]
        found = {k: _CACHE[k] for k in set(keys) if k in _CACHE}
        missing = list(dict.fromkeys(k for k in keys if k not in found))
        if missing:
            first = {k: i for i, k in reversed(list(enumerate(keys)))}
            new = self._embed([texts[first[k]] for k in missing])
            found.update(zip(missing, new))
            if len(_CACHE) + len(missing) > _CACHE_MAX:
                _CACHE.clear()
            _CACHE.update(zip(missing, new))
        width = self.encoder.config.hidden_size * len(self.layers or (None,))
        return np.stack([found[k] for k in keys]) if keys else np.zeros((0, width))

    def _embed(self, texts: list[str]) -> np.ndarray:
        import torch

        tok = self.tokenizer
        body = self.chunk_tokens - 2
        chunks, owner = [], []  # verbose=False: the whole essay is chunked below, nothing is cut
        for i, ids in enumerate(tok(list(texts), add_special_tokens=False, verbose=False)["input_ids"]):
            ids = ids or [tok.unk_token_id]
            for s in range(0, len(ids), body):
                chunks.append([tok.cls_token_id, *ids[s:s + body], tok.sep_token_id])
                owner.append(i)
        hidden = self.encoder.config.hidden_size * len(self.layers or (None,))
        pooled = np.zeros((len(chunks), hidden), dtype=np.float64)
        order = sorted(range(len(chunks)), key=lambda j: -len(chunks[j]))
        was_training = self.encoder.training
        self.encoder.eval()
        amp = autocast("bf16-mixed" if self.precision in BF16 else "32", "cpu")
        with torch.inference_mode(), amp:
            for b in range(0, len(order), self.batch_size):
                idx = order[b:b + self.batch_size]
                width = max(len(chunks[j]) for j in idx)
                ids = torch.full((len(idx), width), tok.pad_token_id or 0, dtype=torch.long)
                mask = torch.zeros((len(idx), width), dtype=torch.long)
                for r, j in enumerate(idx):
                    ids[r, :len(chunks[j])] = torch.tensor(chunks[j])
                    mask[r, :len(chunks[j])] = 1
                out = self.encoder(input_ids=ids, attention_mask=mask, output_hidden_states=self.layers is not None)
                states = [out.last_hidden_state] if self.layers is None else [out.hidden_states[i] for i in self.layers]
                m = mask.unsqueeze(-1).float()
                pooled[idx] = np.hstack([((h.float() * m).sum(1) / m.sum(1)).numpy() for h in states])
        self.encoder.train(was_training)
        weights = np.array([len(c) for c in chunks], dtype=np.float64)
        out = np.zeros((len(texts), hidden))
        np.add.at(out, np.array(owner), pooled * weights[:, None])
        return out / np.bincount(owner, weights=weights, minlength=len(texts))[:, None]


def _standardize(X: np.ndarray, mean=None, scale=None):
    if mean is None:
        mean, sd = X.mean(axis=0), X.std(axis=0)
        scale = np.where(sd > 1e-12, sd, 1.0)
    return (X - mean) / scale, mean, scale


def _ridge_loo(X, Y: np.ndarray):
    """Ridge with alpha per target by GCV; (coef (T, F), intercept (T,), alphas (T,), LOO predictions (n, T))."""
    r = RidgeCV(alphas=ALPHAS, alpha_per_target=True, scoring="neg_mean_squared_error",
                store_cv_results=True).fit(X, Y)
    alphas = np.atleast_1d(r.alpha_)
    cv = r.cv_results_.reshape(len(Y), Y.shape[1], len(ALPHAS))  # LOO predictions for every alpha
    loo = np.stack([cv[:, t, ALPHAS.index(a)] for t, a in enumerate(alphas)], axis=1)
    return (np.ascontiguousarray(np.atleast_2d(r.coef_)), np.atleast_1d(r.intercept_).astype(np.float64),
            alphas.astype(np.float64), loo)


class MiniLMHybrid:
    """Ridge views per prompt, stacked and calibrated into one linear scorer per prompt."""

    def __init__(self, embedder: ChunkEmbedder | None = None, *, ngram_max: int = 2, min_df: int = 2,
                 max_features: int | None = 50000, char_max_features: int = 100000,
                 layer_views=LAYER_VIEWS):
        self.ngram_max, self.min_df, self.max_features = ngram_max, min_df, max_features
        self.char_max_features = char_max_features
        self.layer_views = tuple(tuple(int(i) for i in v) for v in layer_views)
        self.views = VIEWS + tuple("layers_" + "_".join(map(str, v)) for v in self.layer_views)
        self.embedder = embedder
        if embedder is not None and self.layer_views:  # the final layer's block last (views 2 and 3 read it)
            last = embedder.encoder.config.num_hidden_layers
            embedder.layers = tuple(sorted({i for v in self.layer_views for i in v} - {last})) + (last,)
        self.prompts: dict[str, dict] = {}
        self.n_targets = 1

    def _params(self) -> dict:
        return {"ngram_max": self.ngram_max, "min_df": self.min_df, "max_features": self.max_features,
                "char_max_features": self.char_max_features, "layer_views": [list(v) for v in self.layer_views]}

    def _char_kw(self) -> dict:
        return {"analyzer": "char_wb", "ngram_range": (2, 5)}

    def _views(self, m: dict, texts: list[str], E: np.ndarray, W=None, C=None, S_raw=None) -> list:
        S_raw = surface_features(texts) if S_raw is None else S_raw  # fit passes what it computed
        S = _standardize(S_raw, m["s_mean"], m["s_scale"])[0]
        Z_all = _standardize(E, m["e_mean"], m["e_scale"])[0]
        h = self.embedder.encoder.config.hidden_size
        Z = Z_all[:, -h:]  # the final layer
        W = m["words"].transform(texts) if W is None else W
        C = m["chars"].transform(texts) if C is None else C
        block = {layer: Z_all[:, j * h:(j + 1) * h] for j, layer in enumerate(self.embedder.layers or ())}
        return [sp.hstack([W, sp.csr_matrix(S)], format="csr"),
                sp.hstack([W, C, sp.csr_matrix(S), sp.csr_matrix(EMBEDDING_WEIGHT * Z)], format="csr"),
                np.hstack([Z, S])] + [np.hstack([block[i] for i in v] + [S]) for v in self.layer_views]

    def fit(self, texts: list[str], targets, prompts: list[str]) -> "MiniLMHybrid":
        texts, prompts = list(texts), [str(p) for p in prompts]
        Y = np.asarray(targets, dtype=np.float64)
        Y = Y.reshape(len(texts), -1)
        self.n_targets = Y.shape[1]
        E_all = self.embedder(texts)
        self.prompts = {}
        for p in sorted(set(prompts)):
            idx = np.array([i for i, q in enumerate(prompts) if q == p])
            tx, y, E = [texts[i] for i in idx], Y[idx], E_all[idx]
            m = {}
            m["words"], W = fit_vectorizer(tx, self.min_df, ngram_range=(1, self.ngram_max),
                                           max_features=self.max_features)
            m["chars"], C = fit_vectorizer(tx, self.min_df + 1, max_features=self.char_max_features,
                                           **self._char_kw())
            S_raw = surface_features(tx)
            _, m["s_mean"], m["s_scale"] = _standardize(S_raw)
            _, m["e_mean"], m["e_scale"] = _standardize(E)
            fits = [_ridge_loo(X, y) for X in self._views(m, tx, E, W, C, S_raw)]
            m["coef"] = [f[0] for f in fits]
            m["intercept"] = [f[1] for f in fits]
            m["alpha"] = np.stack([f[2] for f in fits])  # (views, targets)
            weights, bias = np.zeros((len(self.views), self.n_targets)), np.zeros(self.n_targets)
            for t in range(self.n_targets):
                loo = np.stack([f[3][:, t] for f in fits], axis=1)
                stack = LinearRegression(positive=True).fit(loo, y[:, t])
                s = stack.predict(loo)
                a = y[:, t].std() / s.std() if s.std() > 1e-12 else 1.0  # the spread of the human scores
                weights[:, t] = a * stack.coef_
                bias[t] = y[:, t].mean() + a * (stack.intercept_ - s.mean())
            m["weights"], m["bias"] = weights, bias
            self.prompts[p] = m
        return self

    def predict(self, texts: list[str], prompts: list[str]) -> np.ndarray:
        """Scaled scores (unclipped), (essays,) or (essays, traits)."""
        texts, prompts = list(texts), [str(p) for p in prompts]
        E_all = self.embedder(texts)
        out = np.zeros((len(texts), self.n_targets))
        for p in sorted(set(prompts)):
            m = self.prompts[p]
            idx = np.array([i for i, q in enumerate(prompts) if q == p])
            views = self._views(m, [texts[i] for i in idx], E_all[idx])
            base = [np.asarray(X @ c.T) + b for X, c, b in zip(views, m["coef"], m["intercept"])]
            out[idx] = sum(w * v for w, v in zip(m["weights"], base)) + m["bias"]
        return out[:, 0] if self.n_targets == 1 else out

    def chosen(self) -> dict:
        """What the fit chose per prompt, for the card."""
        out = {}
        for p, m in self.prompts.items():
            out[p] = {"alphas": {v: m["alpha"][i].tolist() for i, v in enumerate(self.views)},
                      "weights": {v: m["weights"][i].round(4).tolist() for i, v in enumerate(self.views)}}
        return out

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> tuple[dict[str, np.ndarray], dict]:
        arrays, order = {}, list(self.prompts)
        for i, p in enumerate(order):
            m = self.prompts[p]
            arrays.update(vectorizer_arrays(m["words"], f"p{i}.words"))
            arrays.update(vectorizer_arrays(m["chars"], f"p{i}.chars"))
            for k in ("s_mean", "s_scale", "e_mean", "e_scale", "alpha", "weights", "bias"):
                arrays[f"p{i}.{k}"] = np.ascontiguousarray(m[k], dtype=np.float64)
            for j, v in enumerate(self.views):
                arrays[f"p{i}.{v}.coef"] = np.ascontiguousarray(m["coef"][j], dtype=np.float64)
                arrays[f"p{i}.{v}.intercept"] = np.ascontiguousarray(m["intercept"][j], dtype=np.float64)
        meta = {"params": self._params(), "prompts": order, "n_targets": self.n_targets}
        return arrays, meta

    @classmethod
    def from_state_dict(cls, arrays: dict, meta: dict, embedder: ChunkEmbedder) -> "MiniLMHybrid":
        self = cls(embedder, **{"layer_views": (), **meta["params"]})  # folders saved before layer views had none
        self.n_targets = int(meta["n_targets"])
        for i, p in enumerate(meta["prompts"]):
            m = {"words": vectorizer_from_arrays(arrays, f"p{i}.words", ngram_range=(1, self.ngram_max)),
                 "chars": vectorizer_from_arrays(arrays, f"p{i}.chars", **self._char_kw())}
            for k in ("s_mean", "s_scale", "e_mean", "e_scale", "alpha", "weights", "bias"):
                m[k] = np.asarray(arrays[f"p{i}.{k}"], dtype=np.float64)
            m["coef"] = [np.asarray(arrays[f"p{i}.{v}.coef"], dtype=np.float64) for v in self.views]
            m["intercept"] = [np.asarray(arrays[f"p{i}.{v}.intercept"], dtype=np.float64) for v in self.views]
            self.prompts[p] = m
        return self

"""DropoutPredictor's predict / explain / evaluate / early_warning (a mixin, to keep task.py short).

Every call rebuilds the features at the requested week from the tables given, through
`Panel(norm, upto=week)`: passing the whole course's data is safe, nothing after the week is read.
"""
from __future__ import annotations

import math
from pathlib import Path

from ..core.errors import ConfigError
from .data import DropoutData


def unbundle(data, activity, assessments, kw: dict):
    """A DropoutData -> its students table; its other tables and column mapping fill the gaps."""
    if isinstance(data, DropoutData):
        for k, v in data.columns.items():
            kw.setdefault(k, v)
        return (data.students, activity if activity is not None else data.activity,
                assessments if assessments is not None else data.assessments)
    if isinstance(data, dict) and data and all(isinstance(v, str) or not hasattr(v, "__len__") for v in data.values()):
        data = [data]  # one student as a record (a dict of columns stays a table)
    return data, activity, assessments


def _pairs(name: str, value: str) -> str:
    """"a=1", for features explained together "a=1 & b=2", for a unit "activity: ..."."""
    from .explain import ACTIVITY, ASSESSMENTS, JOIN

    if name in (ACTIVITY, ASSESSMENTS):
        return f"{name}: {value}"
    names, vals = name.split(JOIN), value.split(JOIN)
    if len(names) != len(vals):
        return f"{name}={value}"
    return JOIN.join(f"{n}={v}" for n, v in zip(names, vals))


def np_int():
    import numpy as np

    return np.integer


def _show(v) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "missing"
        return f"{v:.0f}" if v.is_integer() and abs(v) < 1e9 else f"{v:.3g}"
    return "missing" if v is None else str(v)


class Inference:
    def _week(self, week) -> int:
        """The week asked for (default: the model's default week), within the weeks it was trained for."""
        info = self._weeks_info()
        w = info["default"] if week is None else week
        if isinstance(w, bool) or not isinstance(w, (int, np_int())) or w < 0:
            raise ConfigError(f"week must be a non-negative int, got {week!r}")
        if w > info["last"]:
            why = (f"the training data ends in week {info['course']}" if info.get("inferred")
                   else f"max_week={info['last']}")
            raise ConfigError(f"week {w} is beyond the weeks this model was trained for (0-{info['last']}: {why}); "
                              f"a risk there would extrapolate past anything it saw. Choose a week from 0 to "
                              f"{info['last']}, or train with data that runs that long")
        return int(w)

    def _read(self, data, activity, assessments, kw, *, need_label: bool, name: str):
        kw = dict(kw)
        data, activity, assessments = unbundle(data, activity, assessments, kw)
        return self._normalize(data, activity, assessments, kw, need_label=need_label, name=name)

    def _score(self, norm, w: int, *, explain: bool = False, by: str = "feature") -> dict:
        """Log-odds for the population at week w (NaN elsewhere), and credits if asked: per feature
        (near-duplicates at week w as one group) or, by="source", with all activity features as one
        unit and all assessment features as another (see explain.py)."""
        import numpy as np

        from .explain import merged_names, source_names

        d = self._design()
        merge = merged_names(self.state.get("collinear", {}).get(str(w), []))
        if by == "source":
            merged = {g: merge.get(g, g) for g in d.dynamic_names}
            units = source_names(list(set(merged.values())), d.dynamic_names)
            merge = {g: units.get(m, m) for g, m in merged.items()} | {g: m for g, m in merge.items()
                                                                        if g not in merged}
        named = lambda groups: [merge.get(g, g) for g in groups]  # noqa: E731
        if not self._torch:
            panel, D, X = d.at(norm, w)
            pop = panel.population(w)
            logit = np.full(len(pop), np.nan)
            logit[pop] = self.model.logit(X[pop])
            out = {"pop": pop, "logit": logit, "dynamic": D, "panel": panel}
            if explain:
                C, _ = self.model.contributions(X[pop])
                ref = self.state.get("reference", {}).get(str(w))
                if ref is not None and len(ref) == C.shape[1]:
                    C = C - np.asarray(ref)  # against the average training student at this week
                col_groups = named(self.model.groups(d.groups))
                names = list(dict.fromkeys(col_groups))
                onehot = np.zeros((len(col_groups), len(names)))
                onehot[np.arange(len(col_groups)), [names.index(g) for g in col_groups]] = 1.0
                out.update(credits=C @ onehot, names=names)
            return out
        from .model import logits_at, occlusion

        seq, static, _, panel = d.sequences(norm, w)
        pop = panel.population(w)
        logit = np.full(len(pop), np.nan)
        s, st = self._scale(seq[pop], static[pop])
        out = {"pop": pop, "logit": logit, "dynamic": panel.dynamic(w), "panel": panel}
        with self._threads():
            logit[pop] = logits_at(self.model, s, st)[:, -1] - self.state["shift"]
            if explain:
                sg = self.scalers[1].groups(d.enc.groups) if static.shape[-1] else ["(no static features)"]
                means = self.state.get("reference", {}).get("week_means")
                credits, names = occlusion(self.model, s, st, named(self.scalers[0].groups(d.dynamic_names)), named(sg),
                                           week_means=np.asarray(means) if means is not None else None)
                out.update(credits=credits, names=names)
        return out

    def _values(self, norm, scored: dict, names: list[str]):
        """What to show for each feature group: the static value or the raw weekly feature ("a & b"
        groups: each member's)."""
        from .explain import JOIN, join_values

        from .explain import ACTIVITY, ASSESSMENTS, summary

        d = self._design()
        dyn = {n: j for j, n in enumerate(d.dynamic_names)}
        pop = scored["pop"]
        one = lambda g: ([_show(v) for v in scored["dynamic"][pop, dyn[g]].tolist()] if g in dyn  # noqa: E731
                         else [_show(v) for v in norm.students[g].to_numpy()[pop].tolist()] if g in norm.students
                         else [""] * int(pop.sum()))
        units = {u: summary(u, scored["dynamic"][pop], d.dynamic_names, d.channels)
                 for u in (ACTIVITY, ASSESSMENTS) if u in names}
        members = {p: one(p) for g in names if g not in units for p in g.split(JOIN)}
        return {g: units[g] if g in units else join_values(members, g) for g in names}

    def predict(self, students, *, week: int | None = None, activity=None, assessments=None, top_k: int = 3, **columns):
        """Risk per student at `week` (default: the `cutoff_week` hyperparameter), as a DataFrame with
        student, week, risk, flagged (risk >= threshold), status and top_features: the `top_k` features
        pushing the risk up most, as "name=value (+log-odds)". Students not in the population at that
        week (already unregistered, or not registered yet) get status and no risk."""
        self._require_fitted()
        norm, _ = self._read(students, activity, assessments, columns, need_label=False, name="predict input")
        return self._predict_norm(norm, self._week(week), top_k)

    def _predict_norm(self, norm, w: int, top_k: int):
        import numpy as np
        import pandas as pd

        r = self._score(norm, w, explain=top_k > 0, by="source")
        pop, panel = r["pop"], r["panel"]
        risk = 1 / (1 + np.exp(-r["logit"]))
        status = np.where(pop, "active", np.where(panel.withdrawn <= w, f"withdrawn by week {w}", "not registered yet"))
        top = [""] * len(pop)
        if top_k > 0 and pop.any():
            names = r["names"]
            shown = [j for j, g in enumerate(names) if g != "week"]  # the same for everyone this week
            values = self._values(norm, r, [names[j] for j in shown])
            for i, row in zip(np.flatnonzero(pop), range(int(pop.sum()))):
                c = r["credits"][row, shown]
                best = np.argsort(-c, kind="stable")[:top_k]
                top[i] = ", ".join(f"{_pairs(names[shown[j]], values[names[shown[j]]][row])} ({c[j]:+.2f})"
                                   for j in best)
        return pd.DataFrame({"student": norm.students["student"], "week": w, "risk": risk,
                             "flagged": pop & (risk >= self.state["threshold"]), "status": status, "top_features": top})

    def explain(self, students, *, week: int | None = None, by: str = "feature", activity=None, assessments=None,
                **columns):
        """Every feature's credit for every student in the population at `week`, in log-odds against
        the average training student at that week (long table: student, feature, value,
        contribution), most risk-raising first. by="source": the units `top_features` shows (all
        activity features as "activity", all assessment features as "assessments")."""
        import numpy as np
        import pandas as pd

        if by not in ("feature", "source"):
            raise ConfigError(f"by must be 'feature' or 'source', got {by!r}")
        self._require_fitted()
        norm, _ = self._read(students, activity, assessments, columns, need_label=False, name="explain input")
        w = self._week(week)
        r = self._score(norm, w, explain=True, by=by)
        ids = norm.students["student"].to_numpy()[r["pop"]]
        values = self._values(norm, r, r["names"])
        df = pd.DataFrame({"student": np.repeat(ids, len(r["names"])), "feature": np.tile(r["names"], len(ids)),
                           "value": [values[g][i] for i in range(len(ids)) for g in r["names"]],
                           "contribution": r["credits"].ravel()})
        return df.sort_values(["student", "contribution"], ascending=[True, False], kind="stable").reset_index(drop=True)

    def _metrics(self, norm, y, w: int, k: int | None) -> dict:
        import numpy as np

        from .evaluation import binary_metrics
        from .features import _cat

        r = self._score(norm, w)
        pop = r["pop"]
        groups = {c: [_cat(v) for v in norm.students[c].to_numpy()[pop]] for c in norm.subgroups}
        m = binary_metrics(y[pop], 1 / (1 + np.exp(-r["logit"][pop])), threshold=self.state["threshold"],
                           k=k or self.hparams.advisor_k, groups=groups)
        m.update(week=w, left_before_week=int((r["panel"].withdrawn <= w).sum()),
                 not_registered_yet=int((r["panel"].registered > w).sum()))
        return m

    def _labelled(self, data, activity, assessments, columns, name):
        from .data import positives

        norm, cols = self._read(data, activity, assessments, columns, need_label=True, name=name)
        from ..core.data import Table

        where = Table(norm.students, norm.source, header_lines=-1)  # rows in the students table's order
        return norm, positives(norm.students["outcome"].tolist(), self.hparams.target, where, cols["label_column"])

    def evaluate(self, data, *, week: int | None = None, k: int | None = None, name: str | None = None,
                 activity=None, assessments=None, **columns) -> dict:
        """At `week`, over the students in the population then: ROC-AUC, PR-AUC, F1 / precision /
        recall at the flag threshold, precision@k, Brier, ECE and calibration bins, and per subgroup
        column AUC and ABROCA. Recorded for the model card."""
        from .evaluation import card_view

        self._require_fitted()
        label = name or (data.source if isinstance(data, DropoutData) else "evaluation data")
        norm, y = self._labelled(data, activity, assessments, columns, label)
        w = self._week(week)
        m = self._metrics(norm, y, w, k)
        if not m["roc_auc"] == m["roc_auc"]:
            import warnings

            warnings.warn(f"{label}, week {w}: {m['n']} students in the population, {m['positives']} of them "
                          f"positive: ROC-AUC and PR-AUC are undefined (NaN) at this week", UserWarning, stacklevel=2)
        scalars, tables = card_view(m, w)
        sample = self._sample(norm, y, w)
        if sample:
            tables[f"Predictions for {len(sample)} students drawn at random (week {w})"] = sample
        self.card.add_evaluation(f"{label} (week {w})", scalars, tables)
        return m

    def _sample(self, norm, y, w: int, n: int = 5) -> list[dict]:
        """n students of the population drawn at random (seeded), with risk, flag, what happened and
        the top features: real outputs for the card, not chosen ones."""
        import numpy as np

        p = self._predict_norm(norm, w, 3)
        active = np.flatnonzero(p["status"].to_numpy() == "active")
        pick = np.sort(np.random.default_rng(self.hparams.seed).choice(active, size=min(n, len(active)),
                                                                        replace=False))
        outcome = "withdrew" if self.hparams.target == "withdrawn" else "withdrew or failed"
        return [{"student": p["student"].iloc[i], "risk": round(float(p["risk"].iloc[i]), 3),
                 "flagged": bool(p["flagged"].iloc[i]), outcome: "yes" if y[i] else "no",
                 "top features (log-odds)": p["top_features"].iloc[i]} for i in pick]

    def early_warning(self, data, weeks=None, *, train=None, backbones=None, png: str | Path | None =
                      "early_warning.png", k: int | None = None, name: str | None = None, activity=None,
                      assessments=None, train_kwargs: dict | None = None, **columns):
        """Metrics by week: a DataFrame (backbone, week, n, positives, roc_auc, pr_auc, f1,
        precision_at_k, brier, ece) and a PNG of ROC-AUC by week (png=None: no plot).

        Without `train`, this model is scored at each week (and the table goes into its card). With
        `train`, a fresh model per backbone (default: all) with these hyperparameters is trained on
        it first; with pool_weeks=False, one per backbone and week."""
        import pandas as pd

        from .evaluation import plot_by_week

        if train is None:
            if backbones is not None:
                raise ConfigError("backbones= needs train=...: without it only this model is scored")
            self._require_fitted()
            weeks = [self._week(w) for w in (weeks if weeks is not None else range(1, self._weeks_info()["last"] + 1))]
            runs = [(self.backbone, {w: self for w in weeks})]
        else:
            runs = []
            if weeks is None and not self.hparams.pool_weeks:
                raise ConfigError("pool_weeks=False trains one model per week: pass weeks=[...]")
            for b in backbones or self.available_backbones():
                if self.hparams.pool_weeks:
                    m = type(self)(backbone=b, **self.hparams.to_dict()).finetune(train, **(train_kwargs or {}))
                    weeks = [m._week(w) for w in (weeks if weeks is not None else range(1, m._weeks_info()["last"] + 1))]
                    runs.append((b, {w: m for w in weeks}))
                else:
                    hp = self.hparams.to_dict()
                    runs.append((f"{b} (per week)", {w: type(self)(backbone=b, **{**hp, "cutoff_week": w}).finetune(
                        train, **(train_kwargs or {})) for w in weeks}))
        label = name or (data.source if isinstance(data, DropoutData) else "evaluation data")
        rows, cache = [], {}
        keys = ("n", "positives", "prevalence", "roc_auc", "pr_auc", "f1", "precision_at_k", "brier", "ece")
        for b, models in runs:
            for w in weeks:
                model = models[w]
                if id(model) not in cache:
                    cache[id(model)] = model._labelled(data, activity, assessments, columns, label)
                m = model._metrics(*cache[id(model)], w, k)
                rows.append({"backbone": b, "week": w, **{key: m[key] for key in keys}})
        table = pd.DataFrame(rows)
        if png is not None:
            plot_by_week(table, png, f"Early warning by week ({self.hparams.target})")
            table.attrs["png"] = str(png)
        if train is None:
            self.card.add_evaluation(f"{label} (by week)", {"mean roc_auc over weeks": float(table["roc_auc"].mean())},
                                     {"By week": table.drop(columns="backbone").to_dict("records")})
        return table

"""Model inputs at a cutoff: [static | dynamic features at week w] rows for the classical backbones,
(student, week, features) sequences for the GRU. Counts enter the models as log1p; users see raw
values. Everything goes through `Panel(norm, upto=w)`, so nothing after week w is read.
"""
from __future__ import annotations

import numpy as np

from .features import Panel, StaticEncoder, log_mask


class Design:
    def __init__(self, state: dict, pass_mark: float):
        self.enc = StaticEncoder(state["encoder"])
        self.dynamic_names = list(state["dynamic"])
        self.channels, self.has_assessments = state["channels"], state["has_assessments"]
        self.log = log_mask(self.dynamic_names)
        self.pass_mark = pass_mark

    @property
    def names(self) -> list[str]:
        return self.enc.names + self.dynamic_names

    @property
    def groups(self) -> list[str]:
        return self.enc.groups + self.dynamic_names

    def panel(self, norm, upto: int) -> Panel:
        return Panel(norm, upto, channels=self.channels, has_assessments=self.has_assessments,
                     pass_mark=self.pass_mark)

    def static(self, norm) -> np.ndarray:
        return self.enc.transform(norm.students)

    def _logged(self, D: np.ndarray) -> np.ndarray:
        D = D.copy()
        D[..., self.log] = np.log1p(D[..., self.log])
        return D

    def at(self, norm, w: int):
        """(panel, raw dynamic features (n, d), model rows (n, static + d)) at week w."""
        panel = self.panel(norm, w)
        D = panel.dynamic(w)
        return panel, D, np.hstack([self.static(norm), self._logged(D)])

    def rows(self, norm, weeks: list[int]):
        """Stacked rows over cutoffs, population only: (X, student index, week)."""
        panel = self.panel(norm, max(weeks))
        S = self.static(norm)
        X, owner, wk = [], [], []
        for w in weeks:
            pop = panel.population(w)
            X.append(np.hstack([S[pop], self._logged(panel.dynamic(w)[pop])]))
            owner.append(np.flatnonzero(pop))
            wk.append(np.full(int(pop.sum()), w))
        return np.vstack(X), np.concatenate(owner), np.concatenate(wk)

    def sequences(self, norm, upto: int, weeks: list[int] | None = None):
        """(seq (n, upto + 1, d), static (n, s), mask (n, upto + 1), panel): mask marks the weeks in `weeks`
        at which the student is in the population (the cells the loss and metrics use)."""
        panel = self.panel(norm, upto)
        seq = self._logged(panel.sequence(upto))
        mask = np.zeros(seq.shape[:2], dtype=np.float32)
        for w in (weeks if weeks is not None else [upto]):
            mask[:, w] = panel.population(w)
        return seq, self.static(norm), mask, panel

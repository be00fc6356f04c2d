"""Issue 16: the default backbone on real data. On OULAD with clicks (2,515 registrations) the old
default, `gbm` with 31-leaf trees, ranked last; shallow trees close most of the gap and the new
default (`logreg`) is the best of the classical backbones. Needs the shared OULAD copy (skipped
without it); `benchmarks/dropout_oulad.py` has the full 5-fold figures."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edu_flash.dropout import DropoutPredictor, load_oulad

OULAD = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "oulad"
pytestmark = [pytest.mark.usefixtures("one_thread"),
              pytest.mark.skipif(not (OULAD / "studentInfo.csv").exists(), reason="shared OULAD copy not present")]
OLD_GBM = dict(backbone="gbm", gbm_max_depth=None, gbm_max_iter=300)  # the defaults before this change


def test_default_backbone_beats_the_old_default_gbm_on_oulad():
    data = load_oulad(OULAD)
    train, test = data.split(0.2, seed=0)
    train, val = train.split(0.15, seed=1)
    auc = {}
    for name, kw in {"default": {}, "gbm": dict(backbone="gbm"), "old gbm": OLD_GBM}.items():
        m = DropoutPredictor(max_week=20, **kw).finetune(train, val)
        auc[name] = float(np.mean(m.early_warning(test, png=None)["roc_auc"]))
    assert DropoutPredictor().backbone == "logreg"
    assert auc["default"] >= auc["old gbm"] + 0.02, auc
    assert auc["default"] >= auc["gbm"] and auc["gbm"] > auc["old gbm"], auc

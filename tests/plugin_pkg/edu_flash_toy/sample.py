"""Built-in data: y = 2 x1 - x2 + 0.5 x3 + noise."""
from __future__ import annotations


def builtin_splits(n: int | None = None, seed: int = 0):
    import numpy as np
    import pandas as pd

    from edu_flash.core.task import Splits

    n = n or 300
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    df = pd.DataFrame(x, columns=["x1", "x2", "x3"]).assign(y=x @ [2.0, -1.0, 0.5] + 0.1 * rng.normal(size=n))
    a, b = int(0.6 * n), int(0.8 * n)
    return Splits(df.iloc[:a], df.iloc[a:b], df.iloc[b:], example=[{"x1": 1.0, "x2": 0.0,
                                                                                               "x3": 0.0}],
                  about=f"{n} synthetic rows")

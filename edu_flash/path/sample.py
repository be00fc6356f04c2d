"""A small synthetic student simulator: built-in sample data for the demo and the tests.

Students have an ability and a knowledge level per skill that grows with practice (more after a
correct answer); items have difficulties around their skill's; answers follow a 3-parameter
logistic curve with guessing and slipping. Students work through the skills roughly in order,
with reviews of earlier skills, so logs look like tutoring data: learnable, noisy, and with a
real benefit from practising the right skill. Some items need two skills.
"""
from __future__ import annotations

import numpy as np


def sample_logs(n_students: int = 200, *, n_skills: int = 6, items_per_skill: int = 4, min_len: int = 20,
                max_len: int = 60, two_skill_items: int = 2, seed: int = 0):
    """Long-format logs: student, item, skill ("a_b" for two-skill items), correct, time (seconds)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    skill_b = np.linspace(-1.0, 1.2, n_skills) + rng.normal(0, 0.2, n_skills)
    items = []  # (name, skills, difficulty)
    for k in range(n_skills):
        for j in range(items_per_skill):
            items.append((f"q{k + 1}{j + 1:02d}", [k], skill_b[k] + rng.normal(0, 0.4)))
    for j in range(two_skill_items):
        k = rng.integers(1, n_skills)
        items.append((f"q{k}{k + 1}x{j}", [k - 1, k], max(skill_b[k - 1], skill_b[k]) + 0.3))
    by_skill = {k: [i for i, it in enumerate(items) if k in it[1]] for k in range(n_skills)}
    rows = []
    for s in range(n_students):
        theta = rng.normal(0, 1)
        know = theta + rng.normal(0, 0.5, n_skills) - 1.0
        rate = np.exp(rng.normal(np.log(0.25), 0.4))
        n, t, k = int(rng.integers(min_len, max_len + 1)), float(rng.integers(0, 10**6)), 0
        for _ in range(n):
            if rng.random() < 0.15 and k > 0:  # review an earlier skill
                kk = int(rng.integers(0, k))
            else:
                kk = k
            i = int(rng.choice(by_skill[kk]))
            name, sks, b = items[i]
            m = min(know[x] for x in sks)
            p = 0.1 + 0.85 / (1 + np.exp(-1.7 * (m - b)))
            c = int(rng.random() < p)
            rows.append((f"u{s:04d}", name, "_".join(f"k{x + 1}" for x in sks), c, t))
            for x in sks:
                know[x] += rate * (1.0 if c else 0.5)
            t += float(rng.exponential(40)) + 5
            if kk == k and know[k] > skill_b[k] + 0.8 and rng.random() < 0.5 and k < n_skills - 1:
                k += 1  # mastered enough: move on
    return pd.DataFrame(rows, columns=["student", "item", "skill", "correct", "time"])


def builtin_splits(n: int | None = None, seed: int = 0):
    """`sample_logs` of n students (default 400) split 70/10/20 by student."""
    from ..core.task import Splits

    logs = sample_logs(n or 400, seed=seed)
    ids = sorted(logs.student.unique())
    a, b = ids[int(0.7 * len(ids))], ids[int(0.8 * len(ids))]
    return Splits(logs[logs.student < a].reset_index(drop=True),
                  logs[(logs.student >= a) & (logs.student < b)].reset_index(drop=True),
                  logs[logs.student >= b].reset_index(drop=True),
                  hparams=dict(d_model=64, window=100, max_epochs=15),
                  example=[("q101", 1), ("q102", 1), ("q103", 0), ("q201", 0)],
                  about=f"{len(ids)} simulated students, 6 skills, 26 items")

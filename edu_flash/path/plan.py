"""Open-loop practice paths (`plan_path`) and the readable result they come back as.

A path is planned before any answer is known: at each step the planner's look-ahead is averaged
over `samples` simulated answer sequences so far, the chosen item is the one whose plan ends
highest among items whose one-step expected gain is positive, and the sequences are then extended
with answers drawn from the model. The expected mastery after each step is the start mastery plus
the expected gain of each step (computed exactly given the sampled sequences, averaged over them),
so it can only rise; when no item raises it any more the path stops and says why.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .policy import Hist, Planner, Sim, expectimax, extend, judges, search_tree


def plan(sim: Sim, hist: Hist, cands: np.ndarray, goal: list[int], steps: int, planner: Planner,
         samples: int, seed: int) -> dict:
    """Index-level plan: start mastery per goal skill, and per step the item, its expected
    P(correct), expected gain and per-skill expected mastery; `stopped` says why it ended early."""
    rng = np.random.default_rng(seed)
    rolls = [hist] * samples
    skill_m = sim.mastery([hist], goal)[0]
    out = {"start": skill_m.copy(), "steps": [], "stopped": None}
    for t in range(steps):
        m_now = sim.mastery(rolls, goal)                                # [S, G]
        open_ = m_now.mean(0) < planner.mastered if planner.mastered is not None else np.ones(len(goal), bool)
        if not open_.any():
            out["stopped"] = f"every goal skill is at or above mastered={planner.mastered} after step {t}"
            break
        ok_item = np.array([any(open_[k] for k, s in enumerate(goal) if s in sim.q[c - 1]) for c in cands])
        ok_item &= planner.turn_mask(sim, rolls[0], cands, ok_item, goal)   # every roll holds the same items
        rows = np.tile(cands, (samples, 1))
        ok = np.tile(ok_item, (samples, 1))
        depth = max(1, min(planner.depth, steps - t))
        if len(cands) > planner.beam and depth > 1:
            g1 = expectimax(sim, rolls, rows, ok, [goal] * samples, 1).gain.mean(0)
            keep = np.argsort(-g1, kind="stable")[:planner.beam]
            rows, ok = rows[:, keep], ok[:, keep]
        tree = search_tree(sim, rolls, rows, ok, [goal] * samples, depth)
        gain = tree.gain.mean(0)
        score = np.where(gain > 0, tree.score.mean(0) + 1e-9 * gain, -np.inf)
        if not np.isfinite(score).any():
            out["stopped"] = f"no candidate item raises the expected goal mastery after step {t}"
            break
        j = int(np.argmax(score))
        item, p = int(rows[0, j]), tree.p[:, j]
        hyps = [extend(h, item, r) for h in rolls for r in (1.0, 0.0)]
        step, members = 0.0, judges(sim)   # the expected change of each goal skill, averaged like the planner's gain
        for m in members:
            pm = m.probs(rolls, np.array([item]))                       # [S, 1]
            after = m.mastery(hyps, goal)                               # [2S, G]
            before = m_now if m is sim else m.mastery(rolls, goal)     # rolls are unchanged since m_now
            step = step + (pm * after[0::2] + (1 - pm) * after[1::2] - before).mean(0)
        skill_m = skill_m + step / len(members)
        out["steps"].append({"step": t + 1, "item": item, "p_correct": float(p.mean()), "expected_gain": float(gain[j]),
                             "skill_mastery": skill_m.copy()})
        rolls = [extend(h, item, float(u < q)) for h, u, q in zip(rolls, rng.random(samples), p)]
    return out


@dataclass
class PathPlan:
    """A planned practice path: `str(plan)` is a table, `plan.table()` a DataFrame, `plan.plot()` a chart."""

    goal_skills: list[str]
    start_mastery: float
    start_skill_mastery: dict[str, float]
    steps: list[dict] = field(default_factory=list)
    stopped: str | None = None

    @property
    def final_mastery(self) -> float:
        return self.steps[-1]["expected_mastery"] if self.steps else self.start_mastery

    @property
    def items(self) -> list[str]:
        return [s["item"] for s in self.steps]

    def table(self):
        import pandas as pd

        rows = [{"step": 0, "item": "(start)", "skills": "", "P(correct)": float("nan"),
                 "expected goal mastery": self.start_mastery}]
        rows += [{"step": s["step"], "item": s["item"], "skills": ", ".join(s["skills"]),
                  "P(correct)": s["p_correct"], "expected goal mastery": s["expected_mastery"]} for s in self.steps]
        return pd.DataFrame(rows)

    def __str__(self) -> str:
        head = f"Path towards {', '.join(self.goal_skills)}: expected goal mastery " \
               f"{self.start_mastery:.3f} -> {self.final_mastery:.3f} in {len(self.steps)} steps"
        body = self.table().to_string(index=False, float_format=lambda v: f"{v:.3f}", na_rep="")
        return "\n".join([head, body] + ([f"stopped early: {self.stopped}"] if self.stopped else []))

    def to_dict(self) -> dict:
        return {"goal_skills": self.goal_skills, "start_mastery": self.start_mastery,
                "start_skill_mastery": self.start_skill_mastery, "final_mastery": self.final_mastery,
                "steps": self.steps, "stopped": self.stopped}

    def plot(self, path=None, ax=None):
        """Expected mastery of each goal skill (and of the goal, dashed) along the path; saved to
        `path` if given. Returns the matplotlib figure."""
        try:
            import matplotlib

            if ax is None and path is not None:
                matplotlib.use("Agg", force=False)
            import matplotlib.pyplot as plt
        except ImportError:
            from ..core.errors import ConfigError

            raise ConfigError("plot() needs matplotlib: pip install 'edu-flash[plot]'") from None
        fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(max(5, 0.6 * len(self.steps) + 3), 3.6))
        x = np.arange(len(self.steps) + 1)
        for k in self.goal_skills:
            ax.plot(x, [self.start_skill_mastery[k]] + [s["mastery"][k] for s in self.steps], marker="o", label=k)
        ax.plot(x, [self.start_mastery] + [s["expected_mastery"] for s in self.steps], "k--", lw=2,
                label="goal (mean)")
        ax.set_xticks(x, ["start"] + [f"{s['step']}\n{s['item']}" for s in self.steps], fontsize=8)
        ax.set_ylabel("expected mastery")
        ax.set_xlabel("step / item")
        ax.set_ylim(0, 1)
        ax.legend(fontsize=8, loc="lower right")
        ax.set_title("Planned path: expected mastery per goal skill")
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=120)
        return fig

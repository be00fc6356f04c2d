"""recommend / plan_path / evaluate_paths for PathRecommender: names in, names out, around the
index-level policy (policy.py), planning (plan.py), closed-loop rollouts (rollout.py) and bootstrap
intervals (stats.py)."""
from __future__ import annotations

import time

import numpy as np

from ..core.errors import ConfigError, DataError
from .evaluation import zone as _zone
from .policy import Planner, Sim, own_skill_gains
from .rollout import BASELINES, average, run
from .stats import fmt, mean_interval, share_interval


def planner(task) -> Planner:
    hp = task.hparams
    return Planner(depth=hp.plan_depth, beam=hp.plan_beam, mastered=hp.mastered, spacing=hp.plan_spacing)


def _one(task, history, columns, what: str):
    names, hists = task._histories(history, task._cols(**columns))
    if len(names) != 1:
        raise DataError(f"{what} takes one student's history, got {len(names)} students")
    return hists[0]


def _goal(task, goal_skills) -> list[int] | None:
    if goal_skills is None:
        return None
    goal = task._skill_ix([goal_skills] if isinstance(goal_skills, (str, int)) else list(goal_skills))
    if not len(goal):
        raise ConfigError("goal_skills is empty")
    return list(dict.fromkeys(int(g) for g in goal))   # the caller's order, without repeats


def recommend(task, history, k, target, goal_skills, candidates, strict, columns) -> list[dict]:
    hist = _one(task, history, columns, "recommend")
    goal = _goal(task, goal_skills)
    v, sim, pl = task.state["vocab"], task._sim(), planner(task)
    cand = (task._item_ix(candidates) if candidates is not None
            else sim.items_of(goal) if goal else np.arange(1, len(v["items"]) + 1))
    cand = np.unique(cand)
    if goal is None:   # each item judged on its own skills, one step ahead
        p, gain = own_skill_gains(sim, hist, cand)
        value = score = np.full(len(cand), np.nan)
        open_ = _own_open(sim, hist, cand, pl.mastered)
    else:
        rows, tree = pl.search(sim, [hist], [cand], [goal])
        pos = {int(c): j for j, c in enumerate(rows[0])}
        p, gain = _first_step(sim, hist, cand, goal)
        at = lambda a: np.array([a[0, pos[c]] if c in pos and np.isfinite(a[0, pos[c]]) else np.nan for c in cand])
        value, score = at(tree.value), at(tree.score)
        open_ = pl.open_mask(sim, [hist], [cand], [goal])[0]
    fresh = pl.turn_mask(sim, hist, cand, open_, goal or sorted({s for c in cand for s in sim.q[c - 1]}))
    lo, hi = _zone(target) if target is not None else (0.0, 1.0)
    good = open_ & fresh & (gain > 0) & (p >= lo) & (p <= hi)
    # planned items (the beam) by the planner's score, then the rest by one-step gain
    order = sorted(range(len(cand)), key=lambda j: (not good[j], bool(np.isnan(score[j])),
                                                    -(gain[j] if np.isnan(score[j]) else score[j])))
    rows_out = []
    for j in order:
        if strict and not good[j]:
            continue
        c = int(cand[j])
        row = {"item": v["items"][c - 1], "skills": [v["skills"][s - 1] for s in v["q"][c - 1]],
               "p_correct": float(p[j]), "expected_gain": float(gain[j])}
        if goal is not None:
            row["planned_gain"] = None if np.isnan(value[j]) else float(value[j])
        row["mastered"], row["just_answered"] = not bool(open_[j]), not bool(fresh[j])
        rows_out.append(row)
    return rows_out[:k]


def _first_step(sim: Sim, hist, cand, goal):
    """P(correct) and one-step expected gain of every candidate (members' means for an Ensemble)."""
    from .policy import pad, search_tree

    rows, ok = pad([cand])
    t = search_tree(sim, [hist], rows, ok, [goal], 1)
    return t.p[0, :len(cand)], t.gain[0, :len(cand)]


def _own_open(sim: Sim, hist, cand, mastered) -> np.ndarray:
    """True where an item still practises a skill below `mastered` (its own skills, no goal)."""
    if mastered is None:
        return np.ones(len(cand), bool)
    skills = sorted({s for c in cand for s in sim.q[c - 1]})
    m = dict(zip(skills, sim.mastery([hist], skills)[0]))
    return np.array([any(m[s] < mastered for s in sim.q[c - 1]) for c in cand], bool)


def plan_path(task, history, goal_skills, steps, candidates, samples, seed, columns):
    from .plan import PathPlan, plan

    hist = _one(task, history, columns, "plan_path")
    goal = _goal(task, goal_skills)
    if goal is None:
        raise ConfigError("goal_skills is required")
    if int(steps) < 1 or int(samples) < 1:
        raise ConfigError(f"steps and samples must be at least 1, got steps={steps}, samples={samples}")
    v, sim = task.state["vocab"], task._sim()
    cand = np.unique(task._item_ix(candidates)) if candidates is not None else sim.items_of(goal)
    out = plan(sim, hist, cand, goal, int(steps), planner(task), int(samples), int(seed))
    names = [v["skills"][s - 1] for s in goal]
    rows = []
    for st in out["steps"]:
        m = st.pop("skill_mastery")
        c = st["item"]
        rows.append({**st, "item": v["items"][c - 1], "skills": [v["skills"][s - 1] for s in v["q"][c - 1]],
                     "expected_mastery": float(m.mean()), "mastery": dict(zip(names, map(float, m)))})
    return PathPlan(names, float(out["start"].mean()), dict(zip(names, map(float, out["start"]))), rows,
                    out["stopped"])


# ------------------------------------------------------------------------------ evaluate_paths
def _simulators(task_cls, simulators) -> dict:
    if isinstance(simulators, dict):
        pairs = list(simulators.items())
    else:
        items = simulators if isinstance(simulators, (list, tuple)) else [simulators]
        pairs = [(None, s) for s in items]
    out = {}
    for name, s in pairs:
        if not isinstance(s, task_cls):
            s = task_cls.from_pretrained(s)
        s._require_fitted()
        key = name or s.backbone
        while key in out:
            key += "'"
        out[key] = s
    if not out:
        raise ConfigError("evaluate_paths needs at least one simulator")
    return out


def _pick_goals(logs, chosen, usable: list[int], q, n_goal: int, history_len: int, how: str, rng) -> list:
    """'next': the first n_goal usable skills the student practised after the start history (what
    their course gave them next), topped up at random; 'random': n_goal random usable skills."""
    ok = set(usable)
    goals = []
    for i in chosen:
        g: list[int] = []
        if how == "next":
            for it in logs.items[i][history_len:]:
                for s in q[it - 1]:
                    if s in ok and s not in g and len(g) < n_goal:
                        g.append(s)
        rest = [s for s in usable if s not in g]
        g += [int(s) for s in rng.choice(rest, n_goal - len(g), replace=False)] if len(g) < n_goal else []
        goals.append(sorted(g))
    return goals


def item_map(vocab: dict, other) -> np.ndarray:
    """Item index in `vocab` -> index in another PathRecommender's vocabulary (0: unknown to it)."""
    ix = {n: j + 1 for j, n in enumerate(other.state["vocab"]["items"])}
    return np.array([0] + [ix.get(n, 0) for n in vocab["items"]])


def student_sim(vocab: dict, other, mapping: np.ndarray | None = None) -> Sim:
    """Another PathRecommender's backbone as a Sim over `vocab`'s items (a simulated student)."""
    m = item_map(vocab, other) if mapping is None else mapping
    return Sim(lambda hs, c: other._probs([(m[i], r) for i, r in hs], m[np.asarray(c)]), vocab["q"])


def evaluate_paths(task, logs, simulators: dict, *, steps: int, n_goal: int, max_students: int,
                   history_len: int, goals: str, policies, seed: int, n_boot: int, rollouts: int = 1,
                   plan_with: tuple[Sim, Planner] | None = None) -> dict:
    """plan_with: (model, planner) that the `recommender` policy uses instead of the task's own
    (study.cross_oracles); students, goals and draws stay those of the same arguments.
    rollouts: independent practice runs per student (each with its own draws, shared by every
    policy), averaged per student before the intervals: a student's gain is an expectation over
    the simulated answers, and one run measures it with noise that is not between-student spread."""
    if goals not in ("next", "random"):
        raise ConfigError(f"goals must be 'next' or 'random', got {goals!r}")
    if int(rollouts) < 1:
        raise ConfigError(f"rollouts must be at least 1, got {rollouts!r}")
    rollouts = int(rollouts)
    policies = list(BASELINES if policies is None else policies)
    unknown = sorted(set(policies) - set(BASELINES))
    if unknown:
        raise ConfigError(f"unknown baseline policies {unknown}; known: {list(BASELINES)}")
    rec, v = task._sim(), task.state["vocab"]
    planning, pl = plan_with or (rec, planner(task))
    maps = {name: item_map(v, s) for name, s in simulators.items()}
    known = np.logical_and.reduce([m > 0 for m in maps.values()])
    usable = [s for s, its in sorted(rec.skill_items.items()) if known[its].all()]
    if len(usable) < n_goal:
        raise DataError(f"only {len(usable)} skills have every item known to every simulator; need {n_goal}")
    rng = np.random.default_rng(seed)
    chosen = rng.permutation(len(logs.students))[:max_students]
    starts = [(logs.items[i][:history_len], logs.correct[i][:history_len]) for i in chosen]
    starts = [(i[known[i]], r[known[i]]) for i, r in starts]
    goal_sets = _pick_goals(logs, chosen, usable, v["q"], n_goal, history_len, goals, rng)
    cands = [rec.items_of(g) for g in goal_sets]
    out = {"students": len(starts), "steps": steps, "goal_skills_per_student": n_goal, "goals": goals,
           "history_len": history_len, "rollouts": rollouts, "planner": vars(pl), "simulators": {},
           "per_student": {}}
    t0 = time.perf_counter()
    for name, s in simulators.items():
        stu = student_sim(v, s, maps[name])
        eps = {p: average([run(p, pl, planning if p == "recommender" else rec, stu, starts, cands, goal_sets, steps,
                               rollout_seed(seed, r)) for r in range(rollouts)])
               for p in ["recommender", *policies]}
        out["per_student"][name] = {p: e.gain for p, e in eps.items()}
        out["simulators"][name] = summarize(eps, n_boot=n_boot, seed=seed)
        out["simulators"][name]["about"] = f"{s.backbone} trained on {s.card.datasets[0] if s.card.datasets else '?'}"
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


def rollout_seed(seed: int, r: int) -> int:
    """Rollout 0 keeps `seed` (one rollout is the single run it always was); the others get
    independent streams."""
    return int(seed) if r == 0 else int(np.random.SeedSequence([int(seed), r]).generate_state(1)[0])


def summarize(eps: dict, *, n_boot: int, seed: int) -> dict:
    """Per policy: mean gain with its interval; the recommender's paired difference to each other
    policy; its gain over random as a share of the oracle's; whether the issue's bar is met."""
    rec = eps["recommender"].gain
    res = {"policies": {}, "recommender_minus": {}}
    for p, e in eps.items():
        res["policies"][p] = {"gain": mean_interval(e.gain, n_boot=n_boot, seed=seed),
                              "correct_rate": float(e.correct.mean()),
                              "distinct_goal_skills": float(e.distinct.mean()),
                              "longest_run": float(e.longest_run.mean())}
        if p != "recommender":
            res["recommender_minus"][p] = mean_interval(rec - e.gain, n_boot=n_boot, seed=seed)
    if "oracle" in eps and "random" in eps:
        res["oracle_share"] = share_interval(rec - eps["random"].gain, eps["oracle"].gain - eps["random"].gain,
                                             n_boot=n_boot, seed=seed)
    checks = bar_checks(res)
    if checks is not None:
        res["bar_met"] = all(checks.values())
    return res


BAR_BASELINES, BAR_SHARE = ("random", "round-robin"), 0.8


def bar_checks(res: dict) -> dict[str, bool] | None:
    """Issue 13's bar for one simulated student: the recommender's paired gain over each of
    BAR_BASELINES with a 95% interval above zero, and BAR_SHARE of the oracle's gain over random
    (None when the result lacks those policies)."""
    d, share = res["recommender_minus"], res.get("oracle_share")
    if not (set(BAR_BASELINES) <= set(d) and share):
        return None
    return {**{f"above {b}": bool(d[b]["low"] > 0) for b in BAR_BASELINES},
            f"{BAR_SHARE:.0%} of the oracle": bool(share["mean"] >= BAR_SHARE)}


def record(task, out: dict, dataset: str) -> None:
    """Put an evaluate_paths result on the task's card (replacing an earlier one of the same name)."""
    note = ("Path evaluation: the simulated students are separately trained KT models (" +
            ", ".join(f"`{k}`" for k in out["simulators"]) + "), not real learners; a gain is goal mastery under "
            "that model after the practice, not a learning outcome.")
    task.card.notes = [n for n in task.card.notes if not n.startswith("Path evaluation:")] + [note]
    metrics, tables = card_tables(out)
    task.card.add_evaluation(dataset, metrics, tables, split="simulation")


def card_tables(out: dict) -> tuple[dict, dict]:
    """(scalar metrics, tables) for the model card."""
    rows, bars, metrics = [], [], {}
    for name, r in out["simulators"].items():
        for p, x in r["policies"].items():
            diff = r["recommender_minus"].get(p)
            rows.append({"simulated student": name, "policy": p, "mean gain [95% CI]": fmt(x["gain"]),
                         "recommender minus this [95% CI]": fmt(diff) if diff else "",
                         "correct": round(x["correct_rate"], 3), "goal skills practised": round(x["distinct_goal_skills"], 2),
                         "longest repeat": round(x["longest_run"], 2)})
        if "oracle_share" in r:
            bars.append({"simulated student": name, "about": r["about"],
                         "share of the oracle's gain over random [95% CI]": fmt(r["oracle_share"], 3),
                         "bar met": "yes" if r.get("bar_met") else "no"})
            metrics[f"{name}_share_of_oracle"] = r["oracle_share"]["mean"]
        metrics[f"{name}_recommender_gain"] = r["policies"]["recommender"]["gain"]["mean"]
        for b in ("random", "round-robin"):
            if b in r["recommender_minus"]:
                metrics[f"{name}_recommender_minus_{b.replace('-', '_')}"] = r["recommender_minus"][b]["mean"]
    runs = out["rollouts"]
    title = (f"Gain in goal mastery after {out['steps']} practice items ({out['students']} students, "
             f"{out['goal_skills_per_student']} goal skills each, start: their first {out['history_len']} responses"
             + (f"; {runs} simulated runs per student, averaged per student" if runs > 1 else "") + ")")
    tables = {title: rows}
    if bars:
        tables["The bar: recommender above random and round-robin (95% CI), and at least 80% of the oracle's "
               "gain over random"] = bars
    return metrics, tables

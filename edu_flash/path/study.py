"""A simulation study of a trained recommender's practice paths, with three groups of students that
never overlap: the recommender's training students (already used), students that train the
simulated learners (DKT, PFA and BKT by default), and students whose first responses start the
simulated practice. Used by `edu-flash bench` for the card and by benchmarks/kt_assist2009.py.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.data import read_table
from . import data as D
from .paths import BAR_BASELINES, bar_checks, record
from .stats import fmt, share_interval

SIM_HPARAMS = {"dkt": {}, "pfa": {}, "bkt": {}}
SIM_DEFAULTS = {"plan_models": []}   # a simulated student answers; it does not plan


def split_students(rec, data, fraction: float, seed: int):
    """(simulator students, path students) as two DataFrames, split by student (seeded)."""
    df = read_table(D.as_table(data, "study"), name="study").df
    col = rec._cols().student
    ids = np.array(sorted(df[col].astype(str).unique()))
    pick = set(np.random.default_rng(seed).permutation(ids)[:int(round(fraction * len(ids)))])
    mask = df[col].astype(str).isin(pick)
    return df[mask].reset_index(drop=True), df[~mask].reset_index(drop=True)


def train_simulators(task_cls, data, names, *, seed: int = 0, models_dir=None, run_dir="runs/study",
                     hparams: dict | None = None, dataset_name: str | None = None) -> dict:
    """One PathRecommender per backbone name, trained on `data` (or loaded from models_dir/<name>
    when it is there: delete the folder to retrain); dataset_name: what their cards call `data`."""
    out = {}
    for name in names:
        folder = Path(models_dir) / f"sim-{name}" if models_dir else None
        if folder is not None and (folder / "config.json").exists():
            out[name] = task_cls.from_pretrained(folder)
            continue
        hp = {"seed": seed, **SIM_DEFAULTS, **SIM_HPARAMS.get(name, {}), **((hparams or {}).get(name, {}))}
        sim = task_cls(name, **hp).finetune(data, run_dir=Path(run_dir) / f"sim-{name}", progress=False,
                                            dataset_name=dataset_name)
        if folder is not None:
            sim.save_pretrained(folder)
        out[name] = sim
    return out


def path_study(rec, data, *, simulators=("dkt", "pfa", "bkt"), sim_fraction: float = 0.5, seed: int = 0,
               models_dir=None, run_dir="runs/study", sim_hparams: dict | None = None, name: str | None = None,
               data_name: str | None = None, **paths_kwargs) -> dict:
    """Split `data`'s students, train the simulated learners on one part, and run
    `rec.evaluate_paths` from the other; adds how well each simulator predicts the path students'
    real next responses (AUC), so a reader can judge the students the policies were tried on.
    Returns (result, the path students' rows, the simulated students)."""
    sim_df, path_df = split_students(rec, data, sim_fraction, seed)
    n_sim = sim_df[rec._cols().student].nunique()
    what = data_name or (Path(data).name if isinstance(data, (str, Path)) else "the study data")
    sims = train_simulators(type(rec), sim_df, simulators, seed=seed, models_dir=models_dir, run_dir=run_dir,
                            hparams=sim_hparams, dataset_name=f"{n_sim} simulator students of {what}")
    auc = {k: s.evaluate(path_df, unknown="skip", name="path students")["auc"] for k, s in sims.items()}
    out = rec.evaluate_paths(path_df, sims, seed=seed, name=name, **paths_kwargs)
    out["simulator_auc"] = auc
    out["simulator_students"] = int(n_sim)
    for k, r in out["simulators"].items():
        r["about"] += f"; next-response AUC on the path students {auc[k]:.3f}"
    record(rec, out, rec.card.evaluations[-1]["dataset"])   # again, now that each simulator's AUC is known
    return out, path_df, sims


def cross_oracles(rec, path_df, students: dict, base: dict, *, n_boot: int = 2000, seed: int = 0,
                  **paths_kwargs) -> dict:
    """Whether one policy can please every simulated student: each one's oracle plan (the `oracle`
    baseline's search, on that student's own model) scored under every simulated student, and plans
    made with all their exact models at once (averaged; minimax regret; agree) - the most a single policy
    could do knowing every simulator - and the recommender's own models of each simulator's family
    (same_family). Each cell: that plan's gain over random as a share of the
    scoring student's own oracle gain over random (interval over students). `base`: the
    evaluate_paths result with random and oracle, from the same students, goals and draws
    (paths_kwargs: the arguments it was run with)."""
    from .paths import evaluate_paths, planner, student_sim
    from .policy import Ensemble

    v = rec.state["vocab"]
    logs, _ = D.read_logs(read_table(path_df, name="path students"), rec._cols(), vocab=v, unknown="skip")
    own = {k: student_sim(v, s) for k, s in students.items()}
    plans = {f"oracle of {k}": m for k, m in own.items()}
    if len(own) > 1:
        plans["all exact models, averaged"] = Ensemble(list(own.values()), "mean")
        plans["all exact models, minimax regret"] = Ensemble(list(own.values()), "regret")
        plans["all exact models, interleaving unless all agree"] = Ensemble(list(own.values()), "agree")
    plans.update(same_family(rec, students))
    pl = planner(rec)
    search = pl.oracle()          # exactly the oracle baseline's search
    out = {}
    for name, model in plans.items():
        o = evaluate_paths(rec, logs, students, policies=[], plan_with=(model, search), n_boot=n_boot, seed=seed,
                           **paths_kwargs)
        out[name] = {k: share_interval(o["per_student"][k]["recommender"] - b["random"], b["oracle"] - b["random"],
                                       n_boot=n_boot, seed=seed) for k, b in base["per_student"].items()}
    return out


def same_family(rec, students: dict) -> dict:
    """The recommender's own models (its backbone, its planning companions), fitted on its training
    students, as plans for the simulated students of the same family: what the oracle's search
    gets when it has the right kind of model but not the simulator's parameters."""
    from .policy import Sim

    q = rec._q()
    fitted = {rec.backbone: Sim(rec._probs, q), **{k: Sim(m.next_probs, q) for k, m in rec.planners.items()}}
    families = {s.backbone for s in students.values()}
    return {f"{k}{FITTED}": m for k, m in fitted.items() if k in families}


FITTED = " fitted on the recommender's students"


def family_agreement(rec, students: dict) -> dict:
    """How far two fits of the same classical model on disjoint students agree, per skill (Spearman
    rank correlation over the skills both know): the recommender's planning companions against the
    simulated students of their family. BKT: learn rate, and the expected mastery gain of a first
    practice, (1 - prior) * learn * (1 - guess - slip); PFA: the slopes on prior successes and failures."""
    from scipy.stats import spearmanr

    names = rec.state["vocab"]["skills"]
    out = {}
    for k, sim in students.items():
        mine = rec.planners.get(sim.backbone)
        if mine is None:
            continue
        ix = {n: j + 1 for j, n in enumerate(sim.state["vocab"]["skills"])}
        a = np.array([j + 1 for j, n in enumerate(names) if n in ix])
        b = np.array([ix[names[j - 1]] for j in a])
        if sim.backbone == "bkt":
            gain = lambda p, i: (1 - p["prior"][i]) * p["learn"][i] * (1 - p["guess"][i] - p["slip"][i])
            pairs = {"learn rate": (mine.params["learn"][a], sim.model.params["learn"][b]),
                     "first-practice gain": (gain(mine.params, a), gain(sim.model.params, b))}
        else:
            S = lambda m: m.n_skills + 1
            pairs = {"success slope": (mine.coef[S(mine) + a], sim.model.coef[S(sim.model) + b]),
                     "failure slope": (mine.coef[2 * S(mine) + a], sim.model.coef[2 * S(sim.model) + b])}
        out[k] = {"skills": int(len(a)), **{n: float(spearmanr(x, y).correlation) for n, (x, y) in pairs.items()}}
    return out


def agreement_text(agree: dict) -> str:
    """family_agreement in words, for the card and the benchmark."""
    if not agree:
        return ""
    parts = [f"{k} ({a['skills']} skills): " + ", ".join(f"{n} {v:.2f}" for n, v in a.items() if n != "skills")
             for k, a in agree.items()]
    return ("The same model family fitted on two disjoint groups of students (the recommender's planning "
            "companions against the simulated students) ranks the skills' parameters with Spearman correlations "
            "of only " + "; ".join(parts) + ": which skill gains most from practice is poorly pinned down by "
            "the logs, so a planner's allocation of practice differs from the simulated student's.")


def bar_verdict(out: dict, cross: dict | None) -> str:
    """The issue-13 bar in plain words, from an evaluate_paths result (and cross_oracles)."""
    met, missed = [], []
    for k, r in out["simulators"].items():
        checks = bar_checks(r)
        if checks is None:
            continue
        shown = [fmt(r["recommender_minus"][b]) for b in BAR_BASELINES] + [fmt(r["oracle_share"], 3)]
        for (name, ok), figure in zip(checks.items(), shown):
            (met if ok else missed).append(f"{name} under {k} ({figure})")
    if not met + missed:
        return ""
    text = ("**The bar is met** under every simulated student: " + "; ".join(met) + "." if not missed else
            "**The bar is not met.** Required under every simulated student: the recommender's paired gain over "
            "random and over round-robin with a 95% interval above zero, and at least 80% of the oracle's gain "
            "over random. Not met: " + "; ".join(missed) + "." + (" Met: " + "; ".join(met) + "." if met else ""))
    if cross:
        worst = min((c["mean"], p, k) for p, row in cross.items() for k, c in row.items() if c["mean"] == c["mean"])
        floor = {p: min(v) for p, row in cross.items()   # each plan's worst share (NaN: no oracle gain to share)
                 if (v := [c["mean"] for c in row.values() if c["mean"] == c["mean"]])}
        best = max(floor, key=floor.get)
        text += ("\n\nThe table below asks whether any single plan could meet the 80% share under every simulated "
                 f"student at once. The plan with the best worst case, \"{best}\", reaches {floor[best]:.2f} of "
                 "some student's oracle gain over random" + (" - no plan here reaches 80% under all of them, even "
                 "with every simulator's exact model, which a recommender trained on other students does not have"
                 if floor[best] < 0.8 else "") + f". The lowest cell: the {worst[1]} gets {worst[0]:+.2f} of "
                 f"{worst[2]}'s oracle gain" + (" (worse than random)" if worst[0] < 0 else "") + ". The simulated "
                 "students disagree about what practice does; an oracle's gain is a ceiling, not a target.")
        fam = {k: c["mean"] for p, row in cross.items() for k, c in row.items() if p == f"{k}{FITTED}"}
        if fam:
            text += (" Even the oracle's own search with the right model family, fitted on the recommender's "
                     "training students instead of the simulator's, reaches only " + ", ".join(
                         f"{v:.2f} of {k}'s oracle" for k, v in fam.items()) + " (rows \"... fitted on the "
                     "recommender's students\"): part of each oracle's lead is its own parameters' noise.")
    return text


def cross_markdown(table: dict) -> str:
    sims = list(next(iter(table.values())))
    head = ("Each plan scored under each simulated student, as a share of that student's own oracle gain over "
            "random [95% CI] (1 = its oracle, 0 = random, below 0 = worse than random):\n\n"
            "| plans with | " + " | ".join(f"share of {k}'s oracle" for k in sims) + " |\n|---|" + "---|" * len(sims))
    return "\n".join([head] + [f"| {p} | " + " | ".join(fmt(row[k], 3) for k in sims) + " |" for p, row in table.items()])


def bench_report(rec, splits, *, run_dir: Path, simulators, sim_fraction: float, steps: int, n_goal: int,
                 history_len: int, max_students: int, samples: int, seed: int, cross: bool, rollouts: int = 1) -> None:
    args = dict(steps=steps, n_goal=n_goal, history_len=history_len, max_students=max_students, goals="next",
                rollouts=rollouts)
    out, path_df, sims = path_study(rec, splits.test, simulators=simulators, sim_fraction=sim_fraction, seed=seed,
                                    run_dir=run_dir, name=f"{splits.about or 'test'}: path students",
                                    data_name=splits.about or "the test split", **args)
    table = None
    if cross and len(sims) > 1:
        table = cross_oracles(rec, path_df, sims, out, seed=seed, **args)
    verdict = bar_verdict(out, table)
    if verdict:
        rec.card.add_section("Does the recommender beat the simple rules?", verdict + (
            "\n\n" + cross_markdown(table) if table else "") + "\n\n" + agreement_text(family_agreement(rec, sims)))
    rec.card.add_section("Sample recommendations and paths", (
        f"Students drawn at random (seed {seed}) from the path students, not chosen; each starts from their "
        f"first {history_len} real responses, towards the next skills they really practised.\n\n"
        + sample_outputs(rec, path_df, n=samples, history_len=history_len, n_goal=n_goal, seed=seed)))


def sample_outputs(rec, path_df, *, n: int = 3, history_len: int = 20, n_goal: int = 3, steps: int = 6,
                   seed: int = 0) -> str:
    """Markdown: `recommend` and `plan_path` for `n` students drawn at random (seeded, not chosen),
    from their first `history_len` responses towards the next skills they practised."""
    cols = rec._cols()
    logs, _ = D.read_logs(read_table(path_df, name="sample"), cols, vocab=rec.state["vocab"], unknown="skip")
    v = rec.state["vocab"]
    long_enough = [i for i, it in enumerate(logs.items) if len(it) > history_len + 5]
    rng = np.random.default_rng(seed)
    out = []
    for i in rng.choice(long_enough, min(n, len(long_enough)), replace=False):
        it, c = logs.items[i][:history_len], logs.correct[i][:history_len]
        history = [(v["items"][a - 1], int(b)) for a, b in zip(it, c)]
        goal: list[str] = []
        for a in logs.items[i][history_len:]:
            for s in v["q"][a - 1]:
                if v["skills"][s - 1] not in goal and len(goal) < n_goal:
                    goal.append(v["skills"][s - 1])
        shown = ", ".join(f"{a}{'✓' if b else '✗'}" for a, b in history[-8:])
        recs = rec.recommend(history, k=3, goal_skills=goal)
        path = rec.plan_path(history, goal, steps=steps, seed=seed)
        lines = [f"**Student {logs.students[i]}** — last 8 of {len(history)} responses: {shown}; goal skills "
                 f"(what they practised next): {', '.join(goal)}", "",
                 "`recommend(history, k=3, goal_skills=goal)`:", ""]
        lines += [f"- {r['item']} (skills {', '.join(r['skills'])}): P(correct) {r['p_correct']:.2f}, expected gain "
                  f"{r['expected_gain']:+.4f}, planned gain {r['planned_gain']:+.4f}" if r.get("planned_gain") is not None
                  else f"- {r['item']}: P(correct) {r['p_correct']:.2f}, expected gain {r['expected_gain']:+.4f}"
                  for r in recs] or ["- (nothing: no item has a positive expected gain)"]
        lines += ["", f"`plan_path(history, goal, steps={steps})`:", "", "```text", str(path), "```", ""]
        out.append("\n".join(lines))
    return "\n".join(out)

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
from .paths import record

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
                     hparams: dict | None = None) -> dict:
    """One PathRecommender per backbone name, trained on `data` (or loaded from models_dir/<name>
    when it is there: delete the folder to retrain)."""
    out = {}
    for name in names:
        folder = Path(models_dir) / f"sim-{name}" if models_dir else None
        if folder is not None and (folder / "config.json").exists():
            out[name] = task_cls.from_pretrained(folder)
            continue
        hp = {"seed": seed, **SIM_DEFAULTS, **SIM_HPARAMS.get(name, {}), **((hparams or {}).get(name, {}))}
        sim = task_cls(name, **hp).finetune(data, run_dir=Path(run_dir) / f"sim-{name}", progress=False)
        if folder is not None:
            sim.save_pretrained(folder)
        out[name] = sim
    return out


def path_study(rec, data, *, simulators=("dkt", "pfa", "bkt"), sim_fraction: float = 0.5, seed: int = 0,
               models_dir=None, run_dir="runs/study", sim_hparams: dict | None = None, name: str | None = None,
               **paths_kwargs) -> dict:
    """Split `data`'s students, train the simulated learners on one part, and run
    `rec.evaluate_paths` from the other; adds how well each simulator predicts the path students'
    real next responses (AUC), so a reader can judge the students the policies were tried on."""
    sim_df, path_df = split_students(rec, data, sim_fraction, seed)
    sims = train_simulators(type(rec), sim_df, simulators, seed=seed, models_dir=models_dir, run_dir=run_dir,
                            hparams=sim_hparams)
    auc = {k: s.evaluate(path_df, unknown="skip", name="path students")["auc"] for k, s in sims.items()}
    out = rec.evaluate_paths(path_df, sims, seed=seed, name=name, **paths_kwargs)
    out["simulator_auc"] = auc
    out["simulator_students"] = int(sim_df[rec._cols().student].nunique())
    for k, r in out["simulators"].items():
        r["about"] += f"; next-response AUC on the path students {auc[k]:.3f}"
    record(rec, out, rec.card.evaluations[-1]["dataset"])   # again, now that each simulator's AUC is known
    return out, path_df


def bench_report(rec, splits, *, run_dir: Path, simulators, sim_fraction: float, steps: int, n_goal: int,
                 history_len: int, max_students: int, samples: int, seed: int) -> None:
    _, path_df = path_study(rec, splits.test, simulators=simulators, sim_fraction=sim_fraction, seed=seed,
                            run_dir=run_dir, steps=steps, n_goal=n_goal, history_len=history_len,
                            max_students=max_students, name=f"{splits.about or 'test'}: path students")
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

"""The PathRecommender model card's fixed prose and its training-data summary."""
from __future__ import annotations

from ..core.card import CardText

CARD_TEXT = CardText(
    title="Knowledge tracing and learning-path recommendation",
    summary=("Traces a student's knowledge from their interaction log (which item, right or wrong) and predicts "
             "per-skill mastery and the probability of answering each item correctly next; on top of that it "
             "recommends next items towards a teacher's goal skills and plans multi-step practice paths, "
             "looking several answers ahead. Trained with edu-flash."),
    intended_use=("Adaptive practice in low-stakes settings: suggesting the next practice items, ordering "
                  "exercises towards a teacher's goal skills, flagging skills a student may not have mastered "
                  "yet, and research on knowledge tracing. A teacher or the student can always override it."),
    out_of_scope=("High-stakes decisions about a student (placement, grading, tracking, admission) from its "
                  "mastery estimates; any population, subject or item bank it was not trained on (items and "
                  "skills unseen in training are rejected); treating simulated path gains as evidence of real "
                  "learning gains, which needs a controlled study with real students."),
    limitations=("Mastery is the model's predicted chance of answering a typical item of the skill correctly next, "
                 "not a measured ability, and it inherits the biases of the platform and population that produced "
                 "the logs (e.g. which students used it, which skills were assigned to whom). Next-response AUC on "
                 "logs where one question tagged with several skills appears as several rows is inflated. "
                 "Recommendation and planning are simulated with the model that makes them, and "
                 "`evaluate_paths` only checks them against other KT models acting as students: all share the "
                 "data's blind spots and they disagree about what practice does, so a simulated gain is not a "
                 "learning gain; a KT model can even predict lower mastery after more practice (a known "
                 "inconsistency of DKT, Yeung & Yeung 2018), which is why a recommended item must have a positive "
                 "expected gain. Check planned paths before use. Context is the last `window` responses."),
    how_to_use=("from edu_flash import {cls}\n\nrec = {cls}.from_pretrained(\"{folder}\")\n"
                "start = rec.predict([])                 # before any answer: mastery per skill, P(correct) per item\n"
                "items, skills = list(start[\"p_correct\"]), list(start[\"mastery\"])\n"
                "history = [(items[0], 1), (items[0], 0), (items[-1], 1)]   # (item, correct) in time order\n"
                "rec.predict(history)                    # {{'mastery': {{skill: p}}, 'p_correct': {{item: p}}}}\n"
                "rec.recommend(history, k=5, goal_skills=skills[:2])   # best next items, expected gain > 0\n"
                "print(rec.plan_path(history, goal_skills=skills[:2], steps=10))  # step / item / P(correct) / mastery\n"
                "# rec.evaluate(\"test.csv\")            # your held-out logs: next-response AUC / ACC / RMSE"),
    hf_task_type="tabular-classification",
    tags=("knowledge-tracing", "education", "recommendation"),
    headline_metrics=("auc", "acc", "rmse"),
)


def items_are_skills_note() -> str:
    return ("Items are skills in this training data (no problem ids, e.g. the DKT three-line format of "
            "ASSISTments 2009): P(correct) and recommendations are per skill, not per problem.")


def describe(prep, vocab: dict, split_info: dict) -> dict:
    t = prep.train
    out = {"source": t.source, "students": len(t.students) + (len(prep.val.students) if prep.val else 0),
           "responses": t.responses + (prep.val.responses if prep.val else 0),
           "items": len(vocab["items"]), "skills": len(vocab["skills"]),
           "max skills per item": max(len(q) for q in vocab["q"]),
           "students dropped (fewer than 2 interactions)": t.dropped_students,
           "rows found out of time order (sorted)": t.sorted_rows}
    out.update(split_info)
    return out


_PLAN = ("plan_depth", "plan_beam", "mastered", "plan_spacing", "plan_models", "plan_rule")
_CLASSICAL = {"pfa": ("pfa_c",), "bkt": ("em_iters",)}
_ARCH = ("d_model", "dropout", "n_layers", "n_heads", "item_bias")   # the card's procedure gives the values used


def card_hparams(task) -> dict:
    """Only what this backbone (and its planning companions) use, plus the planner's settings."""
    hp = task.hparams.to_dict()
    extra = [k for m in hp["plan_models"] for k in _CLASSICAL.get(m, ())]
    if task.backbone in _CLASSICAL:
        keep = ["seed", *_CLASSICAL[task.backbone], *extra]
    else:
        skip = {k for ks in _CLASSICAL.values() for k in ks} | set(_ARCH) | set(_PLAN)
        keep = [k for k in hp if k not in skip] + extra
    return {k: hp[k] for k in dict.fromkeys([*keep, *_PLAN])}

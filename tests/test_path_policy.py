"""Issue 13, items 2-4: the baselines do what they say, with common random numbers; the recommender
never offers an item whose expected gain is not positive (unless strict=False) nor a mastered skill;
and evaluate_paths' intervals are over students, checked on a case whose answer is known."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from edu_flash.path import PathRecommender
from edu_flash.path.policy import Planner, Sim
from edu_flash.path.rollout import choose, run
from edu_flash.path.stats import mean_interval, share_interval

NAMES = list("abcdef")
pytestmark = pytest.mark.usefixtures("one_thread")


def _task(backbone: str) -> PathRecommender:
    """A model over items a-f (items = skills), fitted on a few rows, whose parameters a test then sets."""
    rng = np.random.default_rng(0)
    rows = [(f"u{s}", NAMES[j % 6], int(rng.random() < .5)) for s in range(12) for j in range(s, s + 12)]
    return PathRecommender(backbone, em_iters=1, plan_models=[]).finetune(
        pd.DataFrame(rows, columns=["student", "item", "correct"]))


def _set_bkt(rec: PathRecommender, **params) -> PathRecommender:
    """params: name -> {skill name: value} (skills not named keep `default` in that dict or 0.5)."""
    ix = {s: j + 1 for j, s in enumerate(rec.state["vocab"]["skills"])}
    for name, values in params.items():
        arr = np.full(len(ix) + 1, values.get("default", 0.5))
        for s, v in values.items():
            if s != "default":
                arr[ix[s]] = v
        rec.model.params[name] = arr
    return rec


def _ix(rec, names):
    v = rec.state["vocab"]
    return [v["skills"].index(n) + 1 for n in names]


def _setting(rec, n=40, seed=0):
    rng = np.random.default_rng(seed)
    starts = [(rng.integers(1, 7, 4).astype(np.int64), rng.integers(0, 2, 4).astype(np.float32)) for _ in range(n)]
    goals = [sorted(int(x) for x in rng.choice(np.arange(1, 7), 3, replace=False)) for _ in range(n)]
    sim = rec._sim()
    return sim, starts, goals, [sim.items_of(g) for g in goals]


@pytest.fixture(scope="module")
def bkt():
    rec = _task("bkt")
    return _set_bkt(rec, prior={"default": .2, "a": .05, "f": .7}, learn={"default": .3, "b": .05},
                    guess={"default": .2, "c": .35, "e": .1}, slip={"default": .1})


def test_easiest_first_weakest_first_and_random_choose_what_they_say(bkt):
    sim, starts, goals, cands = _setting(bkt)
    pick = np.random.default_rng(1).random(len(starts))
    pl = Planner()
    easiest = choose("easiest-first", pl, sim, sim, starts, starts, cands, goals, 0, pick, None)
    p = sim.probs(starts, np.arange(1, 7))
    assert easiest == [int(c[np.argmax(p[i, c - 1])]) for i, c in enumerate(cands)]
    weakest = choose("weakest-first", pl, sim, sim, starts, starts, cands, goals, 0, pick, None)
    m = sim.mastery(starts, [1, 2, 3, 4, 5, 6])
    assert weakest == [g[int(np.argmin(m[i, np.array(g) - 1]))] for i, g in enumerate(goals)]  # items = skills
    rand = choose("random", pl, sim, sim, starts, starts, cands, goals, 0, pick, None)
    assert rand == [int(c[int(u * len(c))]) for c, u in zip(cands, pick)]


def test_round_robin_interleaves_the_goal_skills(bkt):
    sim, starts, goals, cands = _setting(bkt)
    ep = run("round-robin", Planner(), sim, sim, starts, cands, goals, 7, seed=3)
    for items, g in zip(ep.items, goals):
        assert sorted(items[:3]) == g and items[3:6] == items[:3] and items[6] == items[0]
    assert (ep.distinct == 3).all() and (ep.longest_run == 1).all()


def test_oracle_plans_with_the_simulated_student_not_the_recommender(bkt):
    sim, starts, goals, cands = _setting(bkt)
    other = _set_bkt(_task("bkt"), prior={"default": .5, "c": .01}, learn={"default": .05, "c": .45},
                     guess={"default": .2}, slip={"default": .1})
    stu = other._sim()
    pick = np.zeros(len(starts))
    oracle = choose("oracle", Planner(), sim, stu, starts, starts, cands, goals, 0, pick, None)
    assert oracle == Planner(mastered=None).choose(stu, starts, cands, goals)
    assert oracle != Planner(mastered=None).choose(sim, starts, cands, goals)


def test_policies_meet_the_same_random_numbers(bkt):
    sim, starts, _, _ = _setting(bkt, n=30)
    goals = [[1]] * len(starts)                     # one goal item: every policy must choose it
    cands = [np.array([1])] * len(starts)
    eps = {p: run(p, Planner(), sim, sim, starts, cands, goals, 5, seed=7)
           for p in ["recommender", "random", "easiest-first", "round-robin", "weakest-first", "oracle"]}
    ref = eps["random"].gain
    assert ref.std() > 0
    for e in eps.values():
        assert np.array_equal(e.gain, ref) and np.array_equal(e.correct, eps["random"].correct)
    again = run("random", Planner(), sim, sim, starts, cands, goals, 5, seed=8).gain
    assert not np.array_equal(again, ref)           # other draws, other outcomes


def test_recommender_spreads_practice_where_each_skill_saturates(bkt):
    fast = _set_bkt(_task("bkt"), prior={"default": .1}, learn={"default": .6}, guess={"default": .2},
                    slip={"default": .1})
    sim, starts, goals, cands = _setting(fast)
    rec = run("recommender", Planner(), sim, sim, starts, cands, goals, 6, seed=0)
    easy = run("easiest-first", Planner(), sim, sim, starts, cands, goals, 6, seed=0)
    assert rec.distinct.mean() > 2.5 and rec.gain.mean() > easy.gain.mean()


# ------------------------------------------------------------------------------ recommend
@pytest.fixture(scope="module")
def pfa():
    """a: failures cost more than successes bring (negative expected gain at low P(correct)); b: learns;
    c: practice changes nothing; d: learns but is already mastered; e, f: learn slowly."""
    rec = _task("pfa")
    S = rec.model.n_skills + 1
    coef = np.zeros(3 * S)
    ix = dict(zip(NAMES, _ix(rec, NAMES)))
    for name, (beta, gamma, rho) in {"a": (-2.0, .2, -1.5), "b": (-.5, .8, .3), "c": (0, 0, 0), "d": (4, .5, .2),
                                     "e": (-1, .1, .05), "f": (.5, .2, .1)}.items():
        coef[ix[name]], coef[S + ix[name]], coef[2 * S + ix[name]] = beta, gamma, rho
    rec.model.coef, rec.model.intercept = coef, 0.0
    return rec


HIST = [("a", 0), ("b", 1), ("e", 0)]


def test_recommend_never_returns_a_non_positive_gain_unless_asked(pfa):
    strict = pfa.recommend(HIST, k=6)
    assert strict and all(r["expected_gain"] > 0 for r in strict)
    assert {r["item"] for r in strict} == {"b", "e", "f"}           # a loses, c stays, d is mastered
    gains = [r["expected_gain"] for r in strict]
    assert gains == sorted(gains, reverse=True)
    loose = pfa.recommend(HIST, k=6, strict=False)
    assert [r["item"] for r in loose[:3]] == [r["item"] for r in strict]
    bad = {r["item"]: r for r in loose[3:]}
    assert set(bad) == {"a", "c", "d"} and bad["a"]["expected_gain"] < 0 and bad["c"]["expected_gain"] == 0
    assert bad["d"]["mastered"] and bad["d"]["expected_gain"] > 0
    goal = pfa.recommend(HIST, k=5, goal_skills=["a", "b", "c"])
    assert [r["item"] for r in goal] == ["b"] and goal[0]["planned_gain"] > 0
    for _ in range(20):  # random histories: still nothing at or below zero
        rng = np.random.default_rng(_)
        h = [(NAMES[i], int(c)) for i, c in zip(rng.integers(0, 6, 8), rng.integers(0, 2, 8))]
        assert all(r["expected_gain"] > 0 for r in pfa.recommend(h, k=6))


def test_mastered_threshold_and_target_zone_filter(pfa):
    keep = pfa.hparams
    try:
        pfa.hparams = keep.replace(mastered=None)
        assert "d" in {r["item"] for r in pfa.recommend(HIST, k=6)}
    finally:
        pfa.hparams = keep
    zone = pfa.recommend(HIST, k=6, target=(0.3, 0.8))
    assert zone and all(0.3 <= r["p_correct"] <= 0.8 for r in zone)


# ------------------------------------------------------------------------------ intervals
def _deterministic(n_students=60):
    """Prior 0, learn 1, guess 0, slip 0: a skill's first answer is wrong and then it is mastered.
    Student i starts having practised i % 3 of its goal skills a, b, c; after three round-robin steps
    every goal skill is mastered, so its gain is exactly 1 - (i % 3) / 3."""
    rows = []
    for s in range(n_students):
        k = s % 3
        start = ["a", "b", "c"][:k] + ["d", "e", "f"][:3 - k]
        rows += [(f"u{s:03d}", it, 0) for it in start] + [(f"u{s:03d}", it, 1) for it in "abc"]
    df = pd.DataFrame(rows, columns=["student", "item", "correct"])
    make = lambda: _set_bkt(PathRecommender("bkt", em_iters=1, plan_models=[]).finetune(df), prior={"default": 0.0},
                            learn={"default": 1.0}, guess={"default": 0.0}, slip={"default": 0.0})
    return df, make(), make(), np.array([1 - (s % 3) / 3 for s in range(n_students)])


def test_evaluate_paths_intervals_are_over_students_with_a_known_answer():
    df, rec, student, want = _deterministic()
    out = rec.evaluate_paths(df, {"det": student}, steps=3, n_goal=3, history_len=3, max_students=60, n_boot=999,
                             policies=["random", "round-robin", "oracle"], seed=0)
    order = [int(s[1:]) for s in np.array(sorted(df.student.unique()))[np.random.default_rng(0).permutation(60)]]
    per = out["per_student"]["det"]
    assert np.allclose(per["round-robin"], want[order]) and np.allclose(per["oracle"], want[order])
    assert np.allclose(per["recommender"], want[order])
    r = out["simulators"]["det"]
    gain = r["policies"]["round-robin"]["gain"]
    assert gain["mean"] == pytest.approx(want.mean())
    assert gain == mean_interval(want[order], n_boot=999, seed=0)            # resampling students
    half = 1.96 * want.std(ddof=1) / np.sqrt(len(want))                        # the normal approximation
    assert gain["high"] - gain["low"] == pytest.approx(2 * half, rel=0.2)
    assert r["recommender_minus"]["round-robin"] == {"mean": 0.0, "low": 0.0, "high": 0.0}
    assert r["recommender_minus"]["random"]["mean"] >= 0
    assert "det" in r["about"] or "bkt" in r["about"]


def test_rollouts_average_each_students_runs_so_intervals_measure_students_not_draws():
    """Forty identical students (same start, same goals) under a stochastic BKT student: every
    difference between them is the simulator's draws. Averaging 16 runs per student shrinks that
    spread about 4-fold (1/sqrt(16)) and the interval with it, around the same mean; each student's
    figure is the mean of its runs, and every policy meets the same draws in each run."""
    from edu_flash.path.paths import rollout_seed

    rows = [(f"u{s:02d}", it, 0) for s in range(40) for it in "abc"] + [
        (f"u{s:02d}", it, 1) for s in range(40) for it in "def"]
    df = pd.DataFrame(rows, columns=["student", "item", "correct"])
    make = lambda: _set_bkt(PathRecommender("bkt", em_iters=1, plan_models=[]).finetune(df), prior={"default": .1},
                            learn={"default": .3}, guess={"default": .2}, slip={"default": .1})
    rec, student = make(), make()
    args = dict(steps=4, n_goal=3, history_len=3, max_students=40, n_boot=999, policies=["random", "round-robin"])
    one = rec.evaluate_paths(df, {"s": student}, seed=3, **args)
    many = rec.evaluate_paths(df, {"s": student}, seed=3, rollouts=16, **args)
    assert one["rollouts"] == 1 and many["rollouts"] == 16 and many["students"] == 40
    g1, g16 = one["per_student"]["s"]["round-robin"], many["per_student"]["s"]["round-robin"]
    assert len(g16) == 40 and g1.std() > 0.02
    assert 0.15 < g16.std() / g1.std() < 0.45
    w = lambda o: o["simulators"]["s"]["policies"]["round-robin"]["gain"]
    assert (w(many)["high"] - w(many)["low"]) < 0.45 * (w(one)["high"] - w(one)["low"])
    assert abs(w(many)["mean"] - w(one)["mean"]) < 3 * g1.std() / np.sqrt(40)
    runs = [rec.evaluate_paths(df, {"s": student}, seed=rollout_seed(3, r), **args)["per_student"]["s"]
            for r in range(16)]
    assert rollout_seed(3, 0) == 3 and len({rollout_seed(3, r) for r in range(16)}) == 16
    for p in ("recommender", "random", "round-robin"):
        assert np.allclose(many["per_student"]["s"][p], np.mean([r[p] for r in runs], axis=0))
    with pytest.raises(Exception, match="rollouts"):
        rec.evaluate_paths(df, {"s": student}, rollouts=0, **args)


def test_share_of_the_oracle_and_intervals_on_known_values():
    rng = np.random.default_rng(0)
    x = (rng.random(400) < 0.5).astype(float)
    ci = mean_interval(x, n_boot=2000, seed=1)
    se = x.std(ddof=1) / np.sqrt(len(x))
    assert ci["low"] == pytest.approx(x.mean() - 1.96 * se, abs=0.01) and ci["high"] == pytest.approx(
        x.mean() + 1.96 * se, abs=0.01)
    assert mean_interval(np.full(9, 0.25)) == {"mean": 0.25, "low": 0.25, "high": 0.25}
    s = share_interval(np.full(50, 0.8) + rng.normal(0, .01, 50), np.ones(50))
    assert s["mean"] == pytest.approx(0.8, abs=0.01) and s["low"] < 0.8 < s["high"]
    assert np.isnan(share_interval(np.ones(5), np.zeros(5))["mean"])


def test_evaluate_paths_rejects_unknown_policies_and_goal_modes(bkt):
    df, rec, student, _ = _deterministic(6)
    from edu_flash import ConfigError

    with pytest.raises(ConfigError, match="unknown baseline"):
        rec.evaluate_paths(df, student, policies=["coin-flip"], history_len=3)
    with pytest.raises(ConfigError, match="goals"):
        rec.evaluate_paths(df, student, goals="hardest", history_len=3)


def test_sim_goal_weights_average_items_then_skills():
    sim = Sim(lambda h, c: np.tile(np.asarray(c, float) / 10, (len(h), 1)), [[1], [1], [2], [1, 2]])
    items = sim.items_of([1, 2])
    W = sim.goal_weights([[1, 2]], items)
    p = np.asarray(items, float) / 10
    assert (p * W[0]).sum() == pytest.approx((np.mean([.1, .2, .4]) + np.mean([.3, .4])) / 2)


def test_minimax_regret_takes_the_item_no_member_minds_much():
    """Member A gains most from skill a, member B from skill b; both rate c a close second. The mean
    model follows whichever is louder; minimax regret takes c."""
    from edu_flash.path.policy import Ensemble

    a = _set_bkt(_task("bkt"), prior={"default": .2}, learn={"default": .01, "a": .9, "c": .3},
                 guess={"default": .2}, slip={"default": .1})
    b = _set_bkt(_task("bkt"), prior={"default": .2}, learn={"default": .01, "b": .45, "c": .3},
                 guess={"default": .2}, slip={"default": .1})
    sa, sb = a._sim(), b._sim()
    goal = _ix(a, ["a", "b", "c"])
    start = [(np.array(_ix(a, ["d"]), np.int64), np.zeros(1, np.float32))]
    cands = [np.array(sorted(goal))]
    one = lambda sim: Planner(depth=1).choose(sim, start, cands, [goal])[0]
    assert one(sa) == _ix(a, ["a"])[0] and one(sb) == _ix(a, ["b"])[0]
    assert one(Ensemble([sa, sb], "mean")) == _ix(a, ["a"])[0]
    assert one(Ensemble([sa, sb], "regret")) == _ix(a, ["c"])[0]
    with pytest.raises(ValueError, match="rule"):
        Ensemble([sa, sb], "vote")


def test_cross_oracles_score_each_students_best_plan_under_the_others():
    """Student A learns only from skill a, B only from b. Each oracle is itself (share 1) under its
    own student; A's oracle drills a, which B does not learn from, so under B it does worse than
    random (which practises b a third of the time): a share below zero. One identical copy: 1. The
    recommender's own BKT (same family) has A's parameters: A's oracle exactly, B's worse than random."""
    from edu_flash.path.study import bar_verdict, cross_oracles

    df, _, _, _ = _deterministic(30)
    make = lambda learn: _set_bkt(PathRecommender("bkt", em_iters=1, plan_models=[]).finetune(df),
                                  prior={"default": .1}, learn=learn, guess={"default": .2}, slip={"default": .1})
    sims = {"A": make({"default": 0.0, "a": .5}), "B": make({"default": 0.0, "b": .5}),
            "A2": make({"default": 0.0, "a": .5})}
    rec = make({"default": 0.0, "a": .5})
    args = dict(steps=4, n_goal=3, history_len=3, max_students=30, goals="next")   # goals a, b, c
    base = rec.evaluate_paths(df, sims, policies=["random", "round-robin", "oracle"], seed=0, **args)
    table = cross_oracles(rec, df, sims, base, **args)
    own = "bkt fitted on the recommender's students"
    assert set(table) == {"oracle of A", "oracle of B", "oracle of A2", "all exact models, averaged",
                          "all exact models, minimax regret", "all exact models, interleaving unless all agree", own}
    assert table["oracle of A"]["A"]["mean"] == pytest.approx(1.0) and table["oracle of B"]["B"]["mean"] == 1.0
    assert table[own]["A"]["mean"] == pytest.approx(1.0) and table[own]["B"]["high"] < 0
    assert table["oracle of A"]["A2"]["mean"] == pytest.approx(1.0)
    assert table["oracle of A"]["B"]["high"] < 0 and table["oracle of B"]["A"]["high"] < 0
    assert all(min(c["mean"] for c in row.values()) < 0.8 for row in table.values())   # a or b: one loses
    text = bar_verdict(base, table)
    assert text.startswith("**The bar is not met.**") and "80% of the oracle under B" in text
    assert "worse than random" in text and "no plan here reaches 80%" in text


def test_bar_verdict_reads_a_plans_worst_share_past_cells_without_one():
    """A cell is NaN where that student's oracle gains nothing over random: the plan's worst case is
    taken over the other cells (min() over a NaN gave an order-dependent answer)."""
    from edu_flash.path.study import bar_verdict

    cell = lambda m: {"mean": m, "low": m - 0.1, "high": m + 0.1}
    sims = {k: {"recommender_minus": {"random": cell(0.01), "round-robin": cell(-0.01)}, "oracle_share": cell(0.3)}
            for k in ("A", "B")}
    cross = {"plan P": {"A": cell(float("nan")), "B": cell(0.9)}, "plan Q": {"A": cell(0.5), "B": cell(0.6)}}
    text = bar_verdict({"simulators": sims}, cross)
    assert 'best worst case, "plan P", reaches 0.90' in text and "80% of the oracle under A (" in text
    assert "right model family" not in text
    cross["A fitted on the recommender's students"] = {"A": cell(0.62), "B": cell(0.1)}   # a same-family row
    assert "reaches only 0.62 of A's oracle" in bar_verdict({"simulators": sims}, cross)


def test_spacing_makes_goal_skills_take_turns():
    """Skill a learns fastest (learn .4 vs .02), so the planner without spacing drills a; with
    spacing=1 a skill just practised waits while another goal skill is open, unless it is the only one."""
    rec = _set_bkt(_task("bkt"), prior={"default": .05}, learn={"default": .02, "a": .4},
                   guess={"default": .2}, slip={"default": .1})
    sim = rec._sim()
    a, b, c = _ix(rec, ["a", "b", "c"])
    just_a = [(np.array([a], np.int64), np.zeros(1, np.float32))]      # a answered wrong: still far from mastered
    goal = [a, b, c]
    cands = [np.array(sorted(goal))]
    assert Planner(depth=1).choose(sim, just_a, cands, [goal]) == [a]
    spaced = Planner(depth=1, spacing=1)
    assert spaced.choose(sim, just_a, cands, [goal]) != [a]
    assert spaced.choose(sim, just_a, [np.array([a])], [[a]]) == [a]   # nothing else to take a turn
    assert Planner(depth=1, spacing=1).oracle().spacing == 0          # the oracle is never constrained
    assert (spaced.turn_mask(sim, just_a[0], cands[0], np.ones(3, bool), goal) == (cands[0] != a)).all()
    runs = {k: run("recommender", Planner(depth=1, spacing=k), sim, sim, just_a, cands, [goal], 6, seed=0) for k in (0, 1)}
    assert runs[1].longest_run[0] == 1 < runs[0].longest_run[0]


def test_agree_interleaves_unless_every_member_gains_by_leaving_it():
    """Goal a, b, c were practised in that order, so interleaving takes a. Member A rates c highest
    and B rates b highest, each ranking the other's favourite below a: the mean model leaves a,
    "agree" keeps it. When both members rate b above a, "agree" takes b."""
    from edu_flash.path.policy import Ensemble, interleaved

    def member(**learn):
        return _set_bkt(_task("bkt"), prior={"default": .05}, learn={"default": .1, **learn},
                        guess={"default": .2}, slip={"default": .1})._sim()

    ref = _task("bkt")
    a, b, c = _ix(ref, ["a", "b", "c"])
    hist = [(np.array([a, b, c], np.int64), np.zeros(3, np.float32))]
    cands, goal = [np.array(sorted([a, b, c]))], [[a, b, c]]
    one = lambda sim: Planner(depth=1).choose(sim, hist, cands, goal)[0]
    sa, sb = member(b=.02, c=.5), member(b=.5, c=.02)
    assert one(sa) == c and one(sb) == b
    assert one(Ensemble([sa, sb], "mean")) in (b, c)
    assert one(Ensemble([sa, sb], "agree")) == a
    assert interleaved(sa, hist, cands[0][None], np.ones((1, 3), bool), goal, np.zeros((1, 3)))[0] == list(cands[0]).index(a)
    assert one(Ensemble([member(b=.5, c=.02), member(b=.4, c=.05)], "agree")) == b

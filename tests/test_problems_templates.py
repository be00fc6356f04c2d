"""The template backbone: lifting worked problems into templates, re-choosing values under the
original's constraints, the bank's save / load, novelty modes, and checks on training lines."""
from __future__ import annotations

import json
import random
import warnings
from fractions import Fraction

import pytest

from conftest import has_pickle
from edu_flash.core.errors import CheckpointError, ConfigError, DataError
from edu_flash.problems.instantiate import Instantiator
from edu_flash.problems.lexicon import FEMALE, OBJECT_GROUPS
from edu_flash.problems.templates import LiftError, annotate_text_steps, lift
from edu_flash.problems.usability import check_problem
from edu_flash.problems.verify import STEP, parse_number, verify_solution

PENCILS = ("Maria sold 48 pencils in April and half as many pencils in May. How many pencils did Maria sell in "
           "April and May?",
           "Maria sold 48/2 = <<48/2=24>>24 pencils in May.\nMaria sold 48+24 = <<48+24=72>>72 pencils in April and "
           "May.\n#### 72")
GROUPS = ("A coach has 30 players and puts them in teams of 5 players. Then 2 teams go home. How many players are "
          "still training?",
          "There are 30/5 = <<30/5=6>>6 teams.\n6-2 = <<6-2=4>>4 teams are still training.\nThat is 4*5 = <<4*5=20>>20 "
          "players.\n#### 20")
RECORDS = [
    {"question": PENCILS[0], "answer": PENCILS[1]},
    {"question": GROUPS[0], "answer": GROUPS[1]},
    {"question": "Ben buys 3 bags of apples with 12 apples in each bag. He eats 5 apples. How many apples does Ben "
                 "have left?",
     "answer": "Ben buys 3*12 = <<3*12=36>>36 apples.\nHe has 36-5 = <<36-5=31>>31 apples left.\n#### 31"},
    {"question": "A shirt costs $20 and a hat costs $8. Omar buys 2 shirts and a hat. How much does Omar pay?",
     "answer": "The shirts cost 2*20 = $<<2*20=40>>40.\nIn all he pays 40+8 = $<<40+8=48>>48.\n#### 48"},
]


def _variants(problem, solution, n=60, seed=0):
    inst = Instantiator(lift(problem, solution))
    rng = random.Random(seed)
    return [s for s in (inst.sample(rng) for _ in range(n)) if s is not None]


def test_a_lifted_problem_with_new_values_passes_the_verifier_and_checks():
    t = lift(*PENCILS)
    assert [v["value"] for v in t["variables"]] == ["48"] and t["names"] == [{"text": "Maria", "gender": "f"}]
    assert t["objects"] == [{"group": "stationery", "index": 0}] and len(t["steps"]) == 2
    out = _variants(*PENCILS)
    assert len(out) >= 50
    for s in out:
        assert verify_solution(s["solution"]).ok, s["solution"]
        assert check_problem(s["problem"], s["solution"], s["answer"]).usable, s
        x = Fraction(s["values"][0])
        assert x != 48 and x.denominator == 1 and x % 2 == 0  # "half as many" keeps whole pencils
        assert Fraction(s["answer"]) == x * 3 / 2 and f" {s['values'][0]} " in s["problem"]
        name = s["problem"].split()[0]
        assert name in FEMALE and s["solution"].count(name) == 2  # one new name everywhere, a female one
        word = next(p for _, p in OBJECT_GROUPS["stationery"] if p in s["problem"])
        assert s["problem"].count(word) == 3 and s["solution"].count(word) == 2
    assert len({s["problem"] for s in out}) > 20


def test_variants_keep_the_originals_constraints():
    """No fractional people, no negative counts, the smaller quantity stays smaller, numbers stay plausible."""
    out = _variants(*GROUPS, n=200, seed=1)
    assert len(out) >= 100
    for s in out:
        players, size, gone = (Fraction(v) for v in s["values"])
        results = [parse_number(v) for _, v in STEP.findall(s["solution"])]
        assert all(r.denominator == 1 and r > 0 for r in results), s["solution"]
        assert players % size == 0 and gone < players / size  # whole teams, some still training
        assert size < players and 15 <= players <= 60 and gone >= 2
        assert verify_solution(s["solution"]).ok


@pytest.mark.parametrize("problem, solution, reason", [
    ("Ann has 5 apples. She buys 3 more. How many apples does she have?", "5+3 = <<5+3=9>>9\n#### 9",
     "fails the verifier"),
    ("Ann has 5 apples. She buys some more. How many apples does she have?", "5+7 = <<5+7=12>>12\n#### 12",
     "source fails 'grounded'"),
    ("Ann has 5 bags with 4 apples each and 20 pears. How many fruits does she have?",
     "5*4 = <<5*4=20>>20\n20+20 = <<20+20=40>>40\n#### 40", None),  # 20: a stated quantity or the result? kept equal
    ("There are 1 teacher and 1 room. How many teachers are there in the school?", "<<1*1=1>>1\n#### 1",
     "no quantity to re-choose"),
])
def test_why_a_problem_is_not_lifted(problem, solution, reason):
    if reason is None:
        t = lift(problem, solution)
        assert t["equal"]  # the ambiguous 20 must stay equal to 5*4 in every variant, so both readings stay right
        rng = random.Random(0)
        for s in filter(None, (Instantiator(t).sample(rng) for _ in range(50))):
            bags, apples, pears = (Fraction(v) for v in s["values"])
            assert bags * apples == pears
        return
    with pytest.raises(LiftError) as e:
        lift(problem, solution)
    assert e.value.reason == reason


def test_a_quantity_the_solution_writes_in_words_changes_with_it():
    problem = "John has 3 children. He buys 2 notebooks for each of his children. How many notebooks does he buy?"
    solution = "John buys 2 notebooks for his three children: 2 x 3 = <<2*3=6>>6 notebooks.\n#### 6"
    rng = random.Random(0)
    for s in filter(None, (Instantiator(lift(problem, solution)).sample(rng) for _ in range(20))):
        children = int(s["values"][0])
        words = {4: "four", 5: "five", 6: "six", 2: "two", 3: "three"}
        assert f"his {words[children]} children" in s["solution"] and str(children) in s["problem"]
    with pytest.raises(LiftError, match="number in words"):  # "two quantities" is not the 2 notebooks
        lift(problem, solution.replace("\n#### 6", "\nAdd the two amounts: <<6*1=6>>6\n#### 6"))


def test_unannotated_arithmetic_gets_an_annotation():
    s = annotate_text_steps("Mark has 100 cards - 10 cards = 90 cards.\nLloyd has 90/3 = <<90/3=30>>30.\n#### 30")
    assert "= <<100-10=90>>90 cards" in s and s.count("<<") == 2 and verify_solution(s).ok
    assert annotate_text_steps("He has 5*3 = 16 cards.\n#### 16") == "He has 5*3 = 16 cards.\n#### 16"  # wrong: left


def test_max_number_caps_every_number():
    inst = Instantiator(lift(*RECORDS[2].values()))
    rng = random.Random(0)
    for _ in range(30):
        s = inst.sample(rng, max_number=40)
        if s is not None:
            assert all(parse_number(v) <= 40 for _, v in STEP.findall(s["solution"]))


# ------------------------------------------------------------------ the backbone in the task
@pytest.fixture(scope="module")
def trained():
    from edu_flash import ProblemGenerator

    d = ProblemGenerator.builtin_data(300, seed=0)
    g = ProblemGenerator()  # the template backbone is the default
    g.finetune(d.train, d.val, progress=False)
    return g, d


def test_template_backbone_generates_only_checked_problems(trained):
    g, _ = trained
    assert g.backbone == "template" and 0.8 < g.model.report["template_rate"] <= 1.0
    out = g.generate(topic="baking", difficulty=3, n=6, seed=0)
    assert len(out) == 6 and g.last_generation["novelty"] == "variant"
    for p in out:
        assert p["verified"] and p["usable"] and p["surface_novel"] and p["topic"] == "baking"
        assert p["realised_difficulty"] == 3 and check_problem(p["problem"], p["solution"], p["answer"]).usable
    assert g.generate(topic="baking", difficulty=3, n=6, seed=0) == out  # seeded
    small = g.generate(n=10, seed=1, max_number=50)
    assert small and all(parse_number(v) <= 50 for p in small for _, v in STEP.findall(p["solution"]))
    with pytest.raises(ConfigError, match="variant"):
        g.generate(n=1, novelty="new")
    assert g.num_parameters() == g.model.num_numbers() > 0


def test_evaluate_reports_each_check_and_the_card_shows_random_problems(trained, tmp_path):
    g, d = trained
    m = g.evaluate(d.test, n_samples=25)
    for k in ("usable_rate", "verified_valid_rate", "question_rate", "grounded_rate", "numbers_used_rate",
              "no_repetition_rate", "plausible_answer_rate", "surface_novelty", "structural_novelty",
              "template_rate", "heldout_template_rate", "difficulty_spearman"):
        assert k in m, k
    assert m["usable_rate"] >= 0.95 and m["verified_valid_rate"] == 1.0 and m["surface_novelty"] == 1.0
    folder = g.save_pretrained(tmp_path / "m")
    card = (folder / "README.md").read_text()
    assert "10 problems drawn at random from generate()" in card and card.count("```text") == 10
    assert "usable_rate" in card and "verified_valid_rate" in card and "problems turned into templates" in card
    assert has_pickle(folder) == [] and {"templates.json", "model.safetensors", "novelty.safetensors"} <= \
        {p.name for p in folder.iterdir()}


def test_save_load_round_trip_and_hostile_templates(trained, tmp_path):
    from edu_flash import ProblemGenerator, Task

    g, _ = trained
    folder = g.save_pretrained(tmp_path / "m")
    g2 = Task.from_pretrained(folder)
    assert type(g2) is ProblemGenerator and g2.backbone == "template"
    assert g2.generate(n=4, seed=3) == g.generate(n=4, seed=3)
    data = json.loads((folder / "templates.json").read_text())
    data["templates"][0]["question"].append({"v": 99})
    (folder / "templates.json").write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match="template 0"):
        ProblemGenerator.from_pretrained(folder)
    data["templates"][0]["question"][-1] = {"v": 0}
    data["templates"][0]["steps"][0] = ["__import__('os').system('echo hacked')"]
    (folder / "templates.json").write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match="do not compile"):
        ProblemGenerator.from_pretrained(folder)
    (folder / "templates.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        ProblemGenerator.from_pretrained(folder)


# ------------------------------------------------------------------ training lines
def test_bad_training_lines_are_dropped_and_counted_or_refused(tmp_path):
    from edu_flash import ProblemGenerator
    from edu_flash.problems.sample import sample_problems

    rows = sample_problems(40, seed=2)
    rows[1] = {**rows[1], "answer": "x <<1e99999999*1=1>>1\n#### 1"}  # used to hang finetune for minutes
    rows[3] = {**rows[3], "answer": "Ann has 2*3 = <<2*3=7>>7 apples.\n#### 7"}  # a wrong step
    rows[5] = {**rows[5], "answer": "Ann has 2*3 = <<2*3=6>>5 apples.\n#### 6"}  # text disagrees with the step
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    g = ProblemGenerator()
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        g.finetune(str(path), run_dir=tmp_path / "run", progress=False)
    assert any("3 of 40 worked solutions fail the verifier" in str(x.message) and "row 2" in str(x.message)
               and x.filename == __file__ for x in w)  # points at the user's line
    assert g.card.training_data["solutions failing the verifier (left out)"] == 3
    with pytest.raises(DataError, match=r"row 2.*fails the verifier"):
        ProblemGenerator().finetune(str(path), run_dir=tmp_path / "run2", progress=False, bad_solutions="error")
    with pytest.raises(ConfigError, match="bad_solutions"):
        ProblemGenerator().finetune(str(path), run_dir=tmp_path / "run3", progress=False, bad_solutions="keep")


def test_language_model_training_data_gets_template_variants():
    from edu_flash import ProblemGenerator
    from edu_flash.core.data import read_table

    g = ProblemGenerator("gpt2-scratch", variants=3)
    prep = g._prepare(read_table(RECORDS), None)
    assert prep.added >= 9 and len(prep.records) == len(RECORDS) + prep.added
    for r in prep.records[len(RECORDS):]:
        assert check_problem(r["problem"], r["solution"], r["answer"]).usable
    assert len(ProblemGenerator("gpt2-scratch")._prepare(read_table(RECORDS), None).records) == len(RECORDS)


def test_novelty_modes_for_a_language_model(monkeypatch):
    """'variant' rejects copies of a training problem; 'new' also rejects its story with new numbers."""
    from edu_flash import ProblemGenerator
    from edu_flash.core.data import read_table
    from edu_flash.problems import generation as G

    g = ProblemGenerator("gpt2-scratch")
    g._prepare(read_table(RECORDS), None)
    g.model = object()  # generation below never touches it: the draws are given
    copy = {"problem": RECORDS[2]["question"], "solution": RECORDS[2]["answer"], "answer": "31"}
    variant = {**copy, "problem": copy["problem"].replace("12 apples", "10 apples"),
               "solution": "Ben buys 3*10 = <<3*10=30>>30 apples.\nHe has 30-5 = <<30-5=25>>25 apples left.\n#### 25",
               "answer": "25"}
    new = {"problem": "A farmer plants 7 rows of beans with 9 beans in every row. How many beans does she plant?",
           "solution": "7*9 = <<7*9=63>>63\n#### 63", "answer": "63"}
    queue = []
    monkeypatch.setattr(G, "draw_lm", lambda gen, slots, *a: [{"topic": t, "difficulty": d, "parsed": True,
                                                                 **queue.pop(0)} for t, d in slots])
    queue[:] = [copy, variant]
    out = g.generate(n=1, novelty="variant", seed=0)
    assert [p["problem"] for p in out] == [variant["problem"]]
    assert g.last_generation["rejected_by_reason"] == {"copy of a training problem": 1}
    queue[:] = [variant, new]
    out = g.generate(n=1, novelty="new", seed=0)
    assert [p["problem"] for p in out] == [new["problem"]] and out[0]["structural_novel"]
    assert g.last_generation["rejected_by_reason"] == {"not structurally new": 1}
    queue[:] = [variant] * g.hparams.max_attempts
    assert g.generate(n=1, seed=0) == [] and g.hparams.novelty == "auto"  # a language model defaults to "new"
    assert g.last_generation["rejected_by_reason"] == {"not structurally new": g.hparams.max_attempts}


def test_a_draw_refused_only_for_max_number_says_so():
    """A number the template keeps fixed (a year) can pass every usability check and still exceed
    max_number: generate names that reason (it raised StopIteration)."""
    from edu_flash.problems.generation import rejection
    from edu_flash.problems.usability import CHECKS

    row = {"parsed": True, "verified": True, "usable": False,
           "checks": {**{k: True for k in CHECKS}, "max_number": False}}
    assert rejection(row, verify=True, novelty="variant") == "unusable (max_number)"
    row["checks"][CHECKS[0]] = False
    assert rejection(row, verify=True, novelty="variant") == f"unusable ({CHECKS[0]})"

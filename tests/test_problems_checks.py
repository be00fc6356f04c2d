"""ProblemGenerator's checks: the bounded verifier, the visible arithmetic, and each usability check
(a failing and a passing example each)."""
from __future__ import annotations

import time

import pytest

from edu_flash.problems.usability import (agreement_issue, answer_issue, check_problem, grounding_issue, question_issue,
                                          repetition_issue, unused_issue)
from edu_flash.problems.verify import UnsafeExpression, safe_eval, verify_solution, visible_expression

HOSTILE = ["1e99999999*1", "1e-99999999", "1e99999999", "9" * 5000, "0." + "0" * 5000 + "1", "(10**30)**64",
           "2**64**64", "9**9**9", "(2**64)**64", "99999999999999999999**64", "1e40**64", "0x" + "f" * 100,
           "2**4096", "(" * 100 + "1" + ")" * 100, "1" + "*1" * 5000, "-" * 300 + "1", "7**64*7**64*7**64*7**64*7**64"]


def test_hostile_literals_and_powers_are_refused_fast():
    """`1e99999999` used to build a 10**99999999 Fraction (214 CPU-s); every cost is now bounded first."""
    t0 = time.perf_counter()
    for expr in HOSTILE:
        try:
            safe_eval(expr)
        except (UnsafeExpression, SyntaxError, ZeroDivisionError):
            pass
    line = "x <<1e99999999*1=1>>1\n#### 1"
    v = verify_solution(line)
    assert not v.ok and "too large" in v.errors[0]
    assert not verify_solution("<<1+1=2>>2\n#### " + "9" * 100_000).ok
    assert not verify_solution("<<1+1=2>>2 " * 5000 + "\n#### 2").ok  # longer than any solution checked
    assert time.perf_counter() - t0 < 5.0  # a hang shows as minutes; this takes milliseconds
    with pytest.raises(UnsafeExpression, match="too large"):
        safe_eval("1e99999999")
    with pytest.raises(UnsafeExpression, match="power"):
        safe_eval("(10**30)**64")
    assert safe_eval("1.5e3 + 2**10") == 2524  # ordinary literals and powers still work


def test_visible_arithmetic_must_agree_with_the_annotation():
    bad = "Triples means 15*3 = <<15*3=45>>6 apples.\nSelling them brings 5*2 = $<<5*3=15>>165.\n#### 15"
    errors = verify_solution(bad).errors
    assert any("says 6" in e for e in errors) and any("says 165" in e for e in errors)
    assert any("5 * 2 = 15" in e or "5*2" in e for e in errors)
    assert verify_solution("Triples means 15*3 = <<15*3=45>>45 apples.\n#### 45").ok
    assert not verify_solution("Ann has <<3*4=12>>.\n#### 12").ok  # the value never written for the student
    assert verify_solution("Ann has <<3*4=12>>12.\n#### 12", visible=False).ok
    assert verify_solution("-48/4 = <<-48/4=-12>>-12 degrees\n#### -12").ok


@pytest.mark.parametrize("text, expr", [
    ("Natalia sold 48/2 =", "48 / 2"), ("she earned 0.2 x 50 = $", "0.2 x 50"),
    ("After 1 day, the family drank 24 bottles * 1/3 =", "24 * 1 / 3"),
    ("complaints: 120 complaints/day * 4/3 =", "120 * 4 / 3"),
    ("He paid 20% of 50 =", None), ("1/4 cup + 1 and 1/4 cup =", None), ("4(7) - 10 =", None),
    ("Janet needs 35 lunches for the kids + 5 for the chaperones =", None), ("no equals sign 5*3", None)])
def test_visible_expression_reads_what_a_student_reads(text, expr):
    assert visible_expression(text) == expr


def test_question_check():
    assert question_issue("Ann has 5 apples and buys 3 more apples. How many apples does Ann have now?") is None
    assert question_issue("Ann has 5 apples and 3 pears, so she earned $20 in all, calculate her total.") is None
    assert question_issue("Mr. Lee has 4 floors with 5 units on each floor. How many units does Mr. Lee have?") is None
    assert "question" in question_issue("Ann has 5 apples and buys 3 more apples at the big market today.")
    assert "two" in question_issue("Ann has 5 apples and 3 pears in a bag. How many apples and how many pears?")
    assert "more than one" in question_issue("Ann has 5 apples in a bag. How many? How many pears does Bo have?")


def test_grounded_check():
    problem = "Each bag holds 9 apples. Ben buys 5 bags. How many apples does he have?"
    assert grounding_issue(problem, "5*9 = <<5*9=45>>45\n#### 45") is None
    assert "uses 7" in grounding_issue(problem, "5*7 = <<5*7=35>>35\n#### 35")
    hours = "Sue works 3 hours a day. How many minutes does she work in 2 days?"
    assert grounding_issue(hours, "<<3*60=180>>180 then <<180*2=360>>360\n#### 360") is None  # 60: a unit fact


def test_numbers_used_check():
    problem = "Ann has 5 apples and 7 pears. In 2019 she buys 3 more apples. How many apples does she have?"
    assert unused_issue(problem, "5+3 = <<5+3=8>>8\n#### 8") == "the problem states 7 but the solution never uses it"
    assert unused_issue(problem.replace(" and 7 pears", ""), "5+3 = <<5+3=8>>8\n#### 8") is None  # years are exempt


def test_repetition_check():
    bad = "A third of the number of the number of students are 10 students. How many students are there?"
    assert "of the number" in repetition_issue(bad)
    assert "repeats 'the'" in repetition_issue("Ann has the the apples. How many apples does she have?")
    assert "sentence" in repetition_issue("Ben buys 3 pens. Ben buys 3 pens. How many pens does he have?")
    good = "The number of boys is twice the number of girls. There are 4 girls. How many boys are there?"
    assert repetition_issue(good) is None


def test_number_agreement_check():
    assert "1 cookies" in agreement_issue("Farid then gives away 1 cookies. How many cookies are left?")
    assert "1 hours" in agreement_issue("It is fine.", "So it takes 1 hours in all.")
    assert agreement_issue("Farid gives away 1 cookie and 1 glass. He has 1 less. How many cookies are left?") is None
    assert agreement_issue("She paid $1 plus 11 apples and 1.5 hours. How many apples?") is None


def test_plausible_answer_check():
    people = "There are 7 students and 2 buses. How many students ride in each bus?"
    assert "whole number" in answer_issue(people, "3.5")
    assert answer_issue(people, "4") is None
    assert "negative" in answer_issue("Ann has 3 apples and eats 5. How many apples are left?", "-2")
    assert answer_issue("The temperature was 3 degrees and fell by 5 degrees. What is it now?", "-2") is None
    assert "age" in answer_issue("Tom is 200 years older than Ann. How old is Tom?", "210")
    assert "decimals" in answer_issue("A pen costs $1. How much money does Ann pay for 1/8 of it?", "0.125")
    assert answer_issue("Sue walks 3 miles in 2 hours. How many miles does she walk per hour?", "1.5") is None


def test_the_issue_examples_are_not_usable():
    """The published card's examples, marked verified before: each now fails a named check."""
    a = check_problem("A third of the number of the number of students are students in the number of students are 10 "
                      "students in the number of students. If there are 10 students are 1", "<<10/10=1>>1\n#### 1")
    assert not a.usable and not a.checks["question"] and not a.checks["no_repetition"]
    b = check_problem("Bo is 25 years old. She has 120 years old. If she has 10 years old, how many years old will "
                      "she have?", "<<120-10=110>>110\n#### 110")
    assert not b.usable and not b.checks["numbers_used"]
    c = check_problem("Each bag holds 9 apples. Ben buys 5 bags. How many apples does he have?",
                      "5*7 = <<5*7=35>>35\n#### 35")
    assert c.checks["verified"] and not c.checks["grounded"] and not c.usable
    ok = check_problem("Each bag holds 9 apples. Ben buys 5 bags. How many apples does he have?",
                       "5*9 = <<5*9=45>>45\n#### 45")
    assert ok.usable and ok.reasons == {}

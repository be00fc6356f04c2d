"""ProblemGenerator: verifier, parsers, procedural data, and a tiny model trained end to end."""
from __future__ import annotations

import json
from pathlib import Path
from fractions import Fraction

import pytest

from edu_flash.core.errors import ConfigError, DataError, MissingColumnError
from edu_flash.problems import formats as F
from edu_flash.problems.evaluation import NgramIndex, distinct_n, spearman
from edu_flash.problems.sample import TOPICS, sample_problems
from edu_flash.problems.verify import UnsafeExpression, parse_number, safe_eval, verify_solution

GOOD = "Ann has 3*4 = <<3*4=12>>12 apples.\nShe eats 2, so 12-2 = <<12-2=10>>10.\n#### 10"


# ------------------------------------------------------------------ verifier
def test_safe_eval_is_exact():
    assert safe_eval("0.1+0.2") == Fraction(3, 10)
    assert safe_eval("1,000/3*3") == 1000
    assert safe_eval("$12/60") == Fraction(1, 5)
    assert safe_eval("50%*8") == 4
    assert safe_eval("2**10-(3-5)") == 1026


@pytest.mark.parametrize("expr", ["__import__('os').system('echo hacked')", "open('/etc/passwd')", "x+1",
                                  "(1).__class__", "[1,2][0]", "9**9**9", "lambda: 1", "1 if 1 else 2",
                                  "10**100000"])
def test_safe_eval_cannot_execute_code(expr):
    with pytest.raises((UnsafeExpression, SyntaxError)):
        safe_eval(expr)


def test_verifier_accepts_right_and_rejects_wrong_steps():
    assert verify_solution(GOOD).ok
    wrong_step = GOOD.replace("<<12-2=10>>", "<<12-2=11>>").replace("#### 10", "#### 11")
    v = verify_solution(wrong_step)
    assert not v.ok and any("step 2" in e for e in v.errors)
    wrong_final = GOOD.replace("#### 10", "#### 12")
    assert not verify_solution(wrong_final).ok
    assert not verify_solution("She has 5 apples.\n#### 5").ok  # nothing checkable
    assert verify_solution("She has 5 apples.\n#### 5", require_steps=False).ok
    assert not verify_solution("<<__import__('os')=1>>1\n#### 1").ok
    assert verify_solution("<<10/3=3.33>>3.33\n#### 3.33").ok  # rounded as written
    assert parse_number("$1,200.50") == Fraction(240100, 200)
    assert parse_number("12 apples") == 12 and parse_number("3/4") == Fraction(3, 4)
    assert parse_number("4+2") is None and parse_number("4 5") is None and parse_number("4=4") is None
    assert not verify_solution(GOOD.replace("#### 10", "#### 10+2")).ok  # junk after the answer is no answer


def test_verifier_passes_most_real_gsm8k(tmp_path):
    path = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "gsm8k" / "test.jsonl"  # optional
    try:
        rows = [json.loads(line) for line in open(path)][:300]
    except OSError:
        pytest.skip("GSM8K not present")
    rate = sum(verify_solution(r["answer"]).ok for r in rows) / len(rows)
    assert rate > 0.85


# ------------------------------------------------------------------ data
def test_procedural_problems_verify_and_carry_their_difficulty():
    ps = sample_problems(140, seed=3)
    assert {p["topic"] for p in ps} == set(TOPICS) and {p["difficulty"] for p in ps} == {1, 2, 3, 4, 5}
    assert all(verify_solution(p["answer"]).ok for p in ps)
    assert all(F.derive_difficulty(p["answer"]) == p["difficulty"] for p in ps)
    assert len({p["question"] for p in ps}) == len(ps)


def test_gsm8k_math_and_generic_formats(tmp_path):
    from edu_flash.core.data import read_table

    gsm = tmp_path / "g.jsonl"
    gsm.write_text(json.dumps({"question": "Q?", "answer": GOOD}) + "\n")
    recs, fmt = F.read_records(read_table(str(gsm)))
    assert fmt == "gsm8k" and recs[0]["answer"] == "10" and recs[0]["difficulty"] == 2 and recs[0]["topic"] == "counting"
    math = [{"problem": "What is $1+1$?", "solution": "It is $\\boxed{\\frac{2}{1}}$.", "level": "Level 4",
             "type": "Algebra"}]
    recs, fmt = F.read_records(read_table(math))
    assert fmt == "math" and recs[0] == {"problem": "What is $1+1$?", "solution": math[0]["solution"],
                                         "answer": "\\frac{2}{1}", "topic": "Algebra", "difficulty": 4}
    recs, fmt = F.read_records(read_table([{"p": "Two plus two?", "s": "<<2+2=4>>4", "a": 4}]),
                               problem_column="p", solution_column="s", answer_column="a")
    assert fmt == "generic" and recs[0]["solution"].endswith("#### 4") and verify_solution(recs[0]["solution"]).ok


def test_bad_data_names_column_and_row():
    from edu_flash.core.data import read_table

    rows = [{"question": "Q?", "answer": GOOD}, {"question": "Q2?", "answer": "no final answer here"}]
    with pytest.raises(DataError, match="row 2"):
        F.read_records(read_table(rows))
    with pytest.raises(MissingColumnError, match="problem"):
        F.read_records(read_table([{"text": "x"}]), format="generic")
    with pytest.raises(DataError, match="level 1-5"):
        F.read_records(read_table([{"problem": "p", "solution": "<<1+1=2>>2\n#### 2", "difficulty": 9}]))


def test_split_generated():
    text = f"A question?{F.SOLUTION}{GOOD}{F.EOS}junk"
    assert F.split_generated(text) == {"problem": "A question?", "solution": GOOD, "answer": "10"}
    assert F.split_generated("no solution marker") is None


def test_ngram_novelty_and_diversity():
    idx = NgramIndex(3).add(["Ann has twelve red apples in a big basket today."])
    assert idx.overlap("Ann has twelve red apples in a big basket today.") == 1.0
    assert idx.overlap("Bob drives forty miles to the coast every week.") == 0.0
    again = NgramIndex.from_arrays(idx.to_arrays(), 3)
    assert again.overlap("Ann has twelve red apples in a big basket now.") == idx.overlap(
        "Ann has twelve red apples in a big basket now.")
    assert distinct_n(["a b c", "a b c"]) == 0.5 and distinct_n(["a b c", "d e f"]) == 1.0
    assert spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)


def test_hparams_are_validated():
    from edu_flash import ProblemGenerator

    with pytest.raises(ConfigError):
        ProblemGenerator(n_embd=30, n_head=4)
    with pytest.raises(ConfigError):
        ProblemGenerator(max_overlap=2.0)
    assert "gpt2-scratch" in ProblemGenerator.available_backbones()


# ------------------------------------------------------------------ calculator-assisted decoding
def test_calculator_formats_values_like_the_data():
    from edu_flash.problems.calculator import format_value, step_value

    assert format_value(Fraction(12)) == "12" and format_value(Fraction(-3)) == "-3"
    assert format_value(Fraction(1, 2)) == "0.5" and format_value(Fraction(9, 4)) == "2.25"
    assert format_value(Fraction(10, 3)) == "3.33" and format_value(Fraction(-2, 3)) == "-0.67"
    assert step_value("1,000*3") == "3000>>3000" and step_value("50%*8") == "4>>4"
    assert step_value("3/0") is None and step_value("apples*2") is None and step_value("9**9**9") is None
    # whatever it writes, the verifier accepts
    assert format_value(Fraction(1, 100000)) == "0.00" and format_value(Fraction(-1, 300)) == "0.00"
    for expr in ("10/3", "7/8", "2**-3", "1/7*100", "1/100000", "-1/300", "10**15/7"):
        written = step_value(expr)
        value = written.split(">>")[0]
        assert verify_solution(f"<<{expr}={written}\n#### {value}").ok, expr


@pytest.fixture(scope="module")
def bpe():
    from edu_flash.problems.model import train_tokenizer

    texts = [p["question"] + F.SOLUTION + p["answer"] for p in sample_problems(60, seed=0)]
    return train_tokenizer(texts, F.control_tokens(TOPICS), 400)


def _run_processor(tok, texts, steps):
    """Greedy decoding with all-zero model scores (argmax = token 0, <|pad|>) under the calculator."""
    import torch

    from edu_flash.problems.calculator import CalculatorLogitsProcessor
    from edu_flash.problems.model import _pad

    proc = CalculatorLogitsProcessor(tok)
    ids = _pad([tok(t, add_special_tokens=False)["input_ids"] for t in texts], tok.pad_token_id, left=True)
    for _ in range(steps):
        scores = proc(ids, torch.zeros(len(texts), len(tok)))
        ids = torch.cat([ids, scores.argmax(-1, keepdim=True)], 1)
    return [tok.decode(r, skip_special_tokens=True) for r in ids], proc


def test_calculator_processor_forces_the_value_per_row(bpe):
    out, proc = _run_processor(bpe, ["Ann has <<3*4=", "Ben has 7 apples.", "Cy has <<1,000/8="], 12)
    assert out[0] == "Ann has <<3*4=12>>12"  # the value, then the same number for the student
    assert out[1] == "Ben has 7 apples."  # nothing forced where no step is open
    assert out[2] == "Cy has <<1,000/8=125>>125"
    assert proc.forced_steps == 2 and proc.failed_steps == 0


def test_calculator_ends_the_number_the_student_reads(bpe):
    """A model that would keep writing zeros after the forced value cannot: the next token is no digit."""
    import torch

    from edu_flash.problems.calculator import CalculatorLogitsProcessor

    proc = CalculatorLogitsProcessor(bpe)
    zero = bpe.convert_tokens_to_ids("0")
    word = bpe(" apples", add_special_tokens=False)["input_ids"][0]
    ids = torch.tensor([bpe("Ann has <<5*2=", add_special_tokens=False)["input_ids"]])
    for _ in range(7):
        scores = torch.zeros(1, len(bpe))
        scores[0, zero] = 10.0  # the model's habit: more zeros
        scores[0, word] = 5.0
        ids = torch.cat([ids, proc(ids, scores).argmax(-1, keepdim=True)], 1)
    assert bpe.decode(ids[0], skip_special_tokens=True).startswith("Ann has <<5*2=10>>10" + bpe.decode([word]))


def test_calculator_processor_forces_nothing_for_a_bad_expression(bpe):
    out, proc = _run_processor(bpe, ["Ann has <<3*apples=", "Ben has <<5/0=", "done <<2+2=4>>4 ="], 4)
    assert out == ["Ann has <<3*apples=", "Ben has <<5/0=", "done <<2+2=4>>4 ="]
    assert proc.forced_steps == 0 and proc.failed_steps == 2


# ------------------------------------------------------------------ built-in data
def test_builtin_data_splits():
    from edu_flash import ProblemGenerator
    from edu_flash.core.task import Splits

    d = ProblemGenerator.builtin_data(n=30, seed=1)
    assert isinstance(d, Splits) and len(d.train) == 30 and len(d.val) == 20 and len(d.test) == 20
    rows = d.train + d.val + d.test
    assert len({r["question"] for r in rows}) == len(rows)  # no problem in two splits
    assert all(verify_solution(r["answer"]).ok for r in rows)
    assert d.example["topic"] in {r["topic"] for r in d.train} and d.example["difficulty"] in F.LEVELS
    assert d.backbone == "template" and ProblemGenerator(d.backbone, **d.hparams).backbone == "template"
    from edu_flash.problems.task import BUILTIN_LM_HPARAMS

    g = ProblemGenerator("gpt2-scratch", **BUILTIN_LM_HPARAMS)  # the language-model setting is valid too
    assert g.hparams.calculator and g.hparams.max_new_tokens <= g.hparams.max_length
    assert ProblemGenerator.builtin_data(n=30, seed=1).train == d.train != ProblemGenerator.builtin_data(n=30).train
    assert len(ProblemGenerator.builtin_data().train) == 2000
    with pytest.raises(ConfigError):
        ProblemGenerator.builtin_data(n=0)


def test_sampling_guard_bans_padding_and_ends_number_runs(bpe):
    import torch

    from edu_flash.problems.calculator import SamplingGuard

    guard = SamplingGuard(bpe, max_run=5)
    zero, word = bpe.convert_tokens_to_ids("0"), bpe("apples", add_special_tokens=False)["input_ids"][0]
    ids = torch.tensor([bpe("Ann has", add_special_tokens=False)["input_ids"]] * 2)
    for _ in range(12):
        scores = torch.zeros(2, len(bpe))
        scores[0, bpe.pad_token_id] = 10.0  # row 0 prefers padding, then "apples"
        scores[0, word] = 5.0
        scores[1, zero] = 10.0  # row 1 prefers "0" forever, then "apples"
        scores[1, word] = 5.0
        ids = torch.cat([ids, guard(ids, scores).argmax(-1, keepdim=True)], 1)
    assert bpe.pad_token_id not in ids[0].tolist()
    w = bpe.decode([word])
    assert bpe.decode(ids[1]) == f"Ann has00000{w}00000{w}"  # five digits, then the run is cut

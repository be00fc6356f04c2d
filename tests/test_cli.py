"""The edu-flash command line, driven through `main(argv)` as a shell would drive it."""
from __future__ import annotations

import json

import pytest

from edu_flash.cli import main
from edu_flash.core.registry import discover


def test_help_lists_every_registered_task_and_backbone(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for cls in discover().values():
        assert cls.__name__ in out
        for b in cls.available_backbones():
            assert b in out
    for command in ("finetune", "predict", "evaluate", "compare", "bench", "card", "demo"):
        assert command in out


def test_finetune_predict_evaluate_card(essays, tmp_path, capsys):
    essays.iloc[:160].to_csv(tmp_path / "train.csv", index=False)
    essays.iloc[160:].to_csv(tmp_path / "test.csv", index=False)
    model = tmp_path / "model"
    assert main(["finetune", "EssayScorer", str(tmp_path / "train.csv"), "--backbone", "tfidf-ridge", "--out",
                 str(model), "--test", str(tmp_path / "test.csv"), "--set", "text_column=essay", "--set",
                 "score_column=score", "--set", "prompt_column=prompt", "--set", "ngram_max=1",
                 "--run-dir", str(tmp_path / "run")]) == 0
    first = capsys.readouterr().out
    assert "qwk_avg" in first and (model / "config.json").exists()
    assert main(["predict", str(model), json.dumps([{"essay": essays.essay[170], "prompt": essays.prompt[170]}])]) == 0
    scores = json.loads(capsys.readouterr().out)
    lo, hi = {"1": (1, 6), "2": (0, 3), "3": (2, 12)}[str(essays.prompt[170])]
    assert len(scores) == 1 and lo <= scores[0] <= hi
    assert main(["evaluate", str(model), str(tmp_path / "test.csv"), "--set", "name=held-out", "--save"]) == 0
    metrics = json.loads(capsys.readouterr().out.split("card updated")[0])
    assert 0 < metrics["qwk_avg"] <= 1
    assert main(["card", str(model), "--validate"]) == 0
    assert "valid" in capsys.readouterr().out
    assert "held-out" in (model / "README.md").read_text()


def test_errors_exit_2_with_the_reason(tmp_path, capsys):
    assert main(["finetune", "EssayScorer", str(tmp_path / "missing.csv"), "--backbone", "tfidf-ridge",
                 "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert "missing.csv" in err and "error" in err
    assert not (tmp_path / "m").exists()
    assert main(["finetune", "NoSuchTask", "x.csv", "--out", str(tmp_path / "m")]) == 2
    assert "available" in capsys.readouterr().err
    (tmp_path / "README.md").write_text("---\nlibrary_name: edu-flash\n---\n# no results\n")
    assert main(["card", str(tmp_path / "README.md"), "--validate"]) == 2
    assert "no model-index results" in capsys.readouterr().err


def test_compare_builtin_and_demo(tmp_path, capsys):
    assert main(["compare", "DropoutPredictor", "--builtin", "--n", "240", "--backbones", "logreg", "gbm",
                 "--run-dir", str(tmp_path / "r"), "--csv", str(tmp_path / "board.csv")]) == 0
    out = capsys.readouterr().out
    assert "logreg" in out and "gbm" in out and "roc_auc" in out
    assert (tmp_path / "board.csv").read_text().startswith("backbone")
    assert main(["demo", "DropoutPredictor", "--n", "240", "--out", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    assert "roc_auc" in out and "saved with its card" in out
    assert main(["card", str(tmp_path / "demo" / "dropout_prediction"), "--validate"]) == 0


def test_finetune_without_test_writes_a_card_that_validates(essays, tmp_path, capsys):
    essays.iloc[:120].to_csv(tmp_path / "train.csv", index=False)
    assert main(["finetune", "EssayScorer", str(tmp_path / "train.csv"), "--backbone", "tfidf-ridge", "--out",
                 str(tmp_path / "m"), "--set", "text_column=essay", "--set", "prompt_column=prompt"]) == 0
    capsys.readouterr()
    assert main(["card", str(tmp_path / "m"), "--validate"]) == 0
    assert "no results recorded yet" in capsys.readouterr().out


def test_card_of_a_missing_folder_fails_at_once_without_the_hub(tmp_path, capsys):
    import time

    t0 = time.perf_counter()
    assert main(["card", "runs/nothing", "--validate"]) == 2
    assert main(["card", "runs/nothing"]) == 2
    assert time.perf_counter() - t0 < 5
    err = capsys.readouterr().err
    assert "runs/nothing" in err and "no such" in err and "Traceback" not in err


# ---------------------------------------------------------------- issue 16: no late errors; issue 17: one line
def _essay_files(essays, tmp_path):
    essays.iloc[:120].to_csv(tmp_path / "train.csv", index=False)
    essays.iloc[120:160].to_csv(tmp_path / "test.csv", index=False)
    return ["--set", "text_column=essay", "--set", "prompt_column=prompt", "--set", "ngram_max=1"]


def _ft(tmp_path, *extra):
    return main(["finetune", "EssayScorer", str(tmp_path / "train.csv"), "--backbone", "tfidf-ridge",
                 "--out", str(tmp_path / "m"), "--run-dir", str(tmp_path / "run"), *extra])


@pytest.mark.parametrize("problem", ["missing_test", "eval_set_typo", "out_is_a_file", "eval_set_without_test",
                                     "missing_val"])
def test_finetune_checks_every_input_before_training(problem, essays, tmp_path, capsys, monkeypatch):
    cols = _essay_files(essays, tmp_path)
    from edu_flash import EssayScorer

    monkeypatch.setattr(EssayScorer, "_prepare", lambda *a, **k: pytest.fail("training started"))
    extra = {"missing_test": ["--test", str(tmp_path / "tst.csv")],
             "eval_set_typo": ["--test", str(tmp_path / "test.csv"), "--eval-set", "nmae=x"],
             "out_is_a_file": [],
             "eval_set_without_test": ["--eval-set", "name=x"],
             "missing_val": ["--val", str(tmp_path / "dev.csv")]}[problem]
    if problem == "out_is_a_file":
        (tmp_path / "m").write_text("")
    assert _ft(tmp_path, *cols, *extra) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "run").exists() and (problem == "out_is_a_file" or not (tmp_path / "m").exists())
    assert {"missing_test": "tst.csv", "eval_set_typo": "did you mean 'name'", "out_is_a_file": "not a folder",
            "eval_set_without_test": "--test", "missing_val": "dev.csv"}[problem] in err


def test_evaluation_failing_after_training_keeps_the_model(essays, tmp_path, capsys):
    cols = _essay_files(essays, tmp_path)
    bad = essays.iloc[120:160].copy()
    bad["prompt"] = 99  # a prompt training never saw: only evaluate can find out
    bad.to_csv(tmp_path / "test.csv", index=False)
    assert _ft(tmp_path, *cols, "--test", str(tmp_path / "test.csv")) == 2
    err = capsys.readouterr().err
    assert "'99'" in err and f"saved, without results, at {tmp_path / 'm'}" in err
    from edu_flash import EssayScorer

    assert EssayScorer.from_pretrained(tmp_path / "m").predict("An essay.", prompt="1") is not None


def test_dropout_test_set_needs_its_own_activity(tmp_path, capsys, monkeypatch):
    from edu_flash import DropoutPredictor

    s = DropoutPredictor.builtin_data(120)
    s.train.students.to_csv(tmp_path / "students.csv", index=False)
    s.train.activity.to_csv(tmp_path / "activity.csv", index=False)
    s.test.students.to_csv(tmp_path / "test_students.csv", index=False)
    monkeypatch.setattr(DropoutPredictor, "_prepare", lambda *a, **k: pytest.fail("training started"))
    assert main(["finetune", "DropoutPredictor", str(tmp_path / "students.csv"), "--backbone", "logreg", "--out",
                 str(tmp_path / "m"), "--set", f"activity={tmp_path / 'activity.csv'}", "--test",
                 str(tmp_path / "test_students.csv")]) == 2
    assert "--eval-set activity=" in capsys.readouterr().err and not (tmp_path / "m").exists()


def test_a_misspelt_set_key_is_one_line(essays, tmp_path, capsys):
    cols = _essay_files(essays, tmp_path)
    assert _ft(tmp_path, *cols) == 0
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "m"), "An essay.", "--set", "promt=1"]) == 2
    err = capsys.readouterr().err
    assert "promt" in err and "did you mean 'prompt'" in err and "Traceback" not in err
    assert main(["evaluate", str(tmp_path / "m"), str(tmp_path / "test.csv"), "--set", "nmae=x"]) == 2
    assert "did you mean 'name'" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "m"), "An essay.", "--set", "prompt=1"]) == 0


def test_unreadable_and_malformed_inputs_are_one_line_and_exit_2(essays, tmp_path, capsys, unreadable):
    cols = _essay_files(essays, tmp_path)
    (tmp_path / "header.csv").write_text("essay,score,prompt\n")
    assert main(["finetune", "EssayScorer", str(tmp_path / "header.csv"), "--backbone", "tfidf-ridge", "--out",
                 str(tmp_path / "m"), *cols]) == 2
    assert "no data rows" in capsys.readouterr().err
    unreadable(tmp_path / "train.csv")
    assert _ft(tmp_path, *cols) == 2
    err = capsys.readouterr().err
    assert "train.csv" in err and "cannot be read" in err and len(err.strip().splitlines()) == 1

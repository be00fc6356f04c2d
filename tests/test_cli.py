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

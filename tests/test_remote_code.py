"""Issue 17, "Code execution": a model folder whose configs point transformers at a Python file in
the folder (`auto_map`) is refused with a CheckpointError, at once and without a prompt; the file
never runs (a marker-file payload must not appear), through from_pretrained, `edu-flash predict`
and a backbone folder handed to finetune, for EssayScorer and ProblemGenerator.
"""
from __future__ import annotations

import builtins
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edu_flash import CheckpointError, EssayScorer, ProblemGenerator

from conftest import reset_accelerate

_PAYLOAD = """import pathlib
pathlib.Path({marker!r}).write_text("the folder's code ran")
from transformers import PreTrainedTokenizerFast, PretrainedConfig


class EvilTokenizer(PreTrainedTokenizerFast):
    pass


class EvilConfig(PretrainedConfig):
    model_type = "evil"
"""


def _poison(folder: Path, marker: Path, where: str = "tokenizer") -> Path:
    """Add the payload and point transformers at it, as a hostile uploader would."""
    (folder / "evil.py").write_text(_PAYLOAD.format(marker=str(marker)))
    if where == "tokenizer":
        path = folder / "tokenizer_config.json"
        cfg = json.loads(path.read_text())
        cfg.update(tokenizer_class="EvilTokenizer", auto_map={"AutoTokenizer": [None, "evil.EvilTokenizer"]})
    elif where == "hf-config":  # a backbone folder's own config.json
        path = folder / "config.json"
        cfg = json.loads(path.read_text())
        cfg["auto_map"] = {"AutoConfig": "evil.EvilConfig", "AutoModel": "evil.EvilConfig"}
    else:  # the model config edu-flash embeds in its own config.json
        path = folder / "config.json"
        cfg = json.loads(path.read_text())
        key = "encoder_config" if "encoder_config" in cfg["weights"] else "model_config"
        cfg["weights"][key]["auto_map"] = {"AutoModel": "evil.EvilConfig", "AutoModelForCausalLM": "evil.EvilConfig"}
    path.write_text(json.dumps(cfg))
    return folder


@pytest.fixture
def no_prompt(monkeypatch):
    """Answer "y" to any prompt, and record that one was shown: none may be."""
    asked = []

    def answer(prompt=""):
        asked.append(prompt)
        return "y"

    monkeypatch.setattr(builtins, "input", answer)
    return asked


@pytest.fixture(scope="module")
def essay_folder(trained, tmp_path_factory):
    return trained.scorer.save_pretrained(tmp_path_factory.mktemp("essay") / "model")


@pytest.fixture(scope="module")
def problems_folder(tmp_path_factory):
    from edu_flash.problems.sample import sample_problems

    reset_accelerate()
    data = sample_problems(16, seed=0, topics=("farm",), difficulties=(1,))
    gen = ProblemGenerator("gpt2-scratch", n_layer=1, n_embd=32, n_head=2, vocab_size=300, max_length=96,
                           batch_size=8, precision="32", max_steps=1)
    root = tmp_path_factory.mktemp("problems")
    gen.finetune(data, run_dir=root / "run", progress=False)
    reset_accelerate()
    return gen.save_pretrained(root / "model")


@pytest.mark.parametrize("task", ["essay", "problems"])
@pytest.mark.parametrize("where", ["tokenizer", "embedded"])
def test_from_pretrained_refuses_a_folder_that_asks_for_its_own_code(task, where, request, tmp_path, no_prompt):
    src = request.getfixturevalue(f"{task}_folder")
    marker = tmp_path / "PWNED"
    folder = _poison(Path(shutil.copytree(src, tmp_path / "model")), marker, where)
    cls = EssayScorer if task == "essay" else ProblemGenerator
    with pytest.raises(CheckpointError, match="never runs code from a model folder") as e:
        cls.from_pretrained(folder)
    assert str(folder) in str(e.value)
    assert not marker.exists() and no_prompt == []


@pytest.mark.parametrize("task", ["essay", "problems"])
def test_cli_predict_refuses_it_even_when_the_user_would_say_yes(task, request, tmp_path):
    src = request.getfixturevalue(f"{task}_folder")
    marker = tmp_path / "PWNED"
    folder = _poison(Path(shutil.copytree(src, tmp_path / "model")), marker)
    text = "A short essay about computers." if task == "essay" else '{"topic": "farm", "difficulty": 1}'
    r = subprocess.run([sys.executable, "-m", "edu_flash", "predict", str(folder), text], input="y\ny\ny\n",
                       capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode != 0
    assert "never runs code from a model folder" in r.stderr
    assert "Do you wish to run the custom code" not in r.stdout + r.stderr
    assert not marker.exists()


@pytest.mark.parametrize("where", ["tokenizer", "hf-config"])
def test_a_backbone_folder_with_its_own_code_is_refused_before_training(where, tiny_encoder, essays, tmp_path,
                                                                      no_prompt):
    marker = tmp_path / "PWNED"
    enc = _poison(Path(shutil.copytree(tiny_encoder, tmp_path / "enc")), marker, where)
    with pytest.raises(CheckpointError, match="never runs code from a model folder"):
        EssayScorer(backbone=str(enc), max_steps=1, precision="32").finetune(
            essays.iloc[:16], text_column="essay", prompt_column="prompt", run_dir=tmp_path / "run", progress=False)
    assert not marker.exists() and no_prompt == []


def test_problem_generator_backbone_folder_with_its_own_code_is_refused(problems_folder, tmp_path, no_prompt):
    """A causal LM folder (here: the HF files of a saved generator, written as a backbone would be)."""
    from edu_flash.problems.sample import sample_problems

    gen = ProblemGenerator.from_pretrained(problems_folder)
    enc = tmp_path / "lm"
    gen.model.save_pretrained(str(enc))
    gen.tokenizer.save_pretrained(str(enc))
    marker = tmp_path / "PWNED"
    _poison(enc, marker, "tokenizer")
    with pytest.raises(CheckpointError, match="never runs code from a model folder"):
        ProblemGenerator(backbone=str(enc), max_steps=1, precision="32", max_length=96).finetune(
            sample_problems(8, seed=0, topics=("farm",), difficulties=(1,)), run_dir=tmp_path / "run", progress=False)
    assert not marker.exists() and no_prompt == []


def test_every_transformers_load_passes_trust_remote_code_false():
    """A source check, so a new load added later cannot forget it: the library loads tokenizers,
    configs and models only through core.hfload."""
    import re

    import edu_flash

    root = Path(edu_flash.__file__).parent
    direct = re.compile(r"\bAuto\w+\.(from_pretrained|from_config)\(")
    offenders = [f"{p.relative_to(root)}:{i}" for p in root.rglob("*.py") if p.name != "hfload.py"
                 for i, line in enumerate(p.read_text().splitlines(), 1) if direct.search(line)]
    assert offenders == []

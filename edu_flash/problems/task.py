"""ProblemGenerator: (topic, difficulty) -> a new practice problem whose worked solution checks out.

The model only proposes; every returned problem has passed the arithmetic verifier and is not a
near-copy of a training problem. Failing draws are re-sampled up to a budget and then dropped, and
how many were rejected (and why) is reported, because a generator that hides its failure rate
cannot be trusted in a classroom.
"""
from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ..core.card import CardText
from ..core.data import read_table
from ..core.errors import ConfigError, UnknownLabelError
from ..core.hparams import PRECISIONS, TrainHParams, bounded, choice
from ..core.registry import Backbone
from ..core.task import Splits, Task
from . import evaluation as E
from . import formats as F
from .verify import verify_solution


@dataclass
class ProblemHParams(TrainHParams):
    precision: str = choice("bf16-mixed", PRECISIONS)
    lr: float = bounded(5e-4, min=0.0)
    max_epochs: int = bounded(10, min=1)
    warmup_ratio: float = bounded(0.05, min=0.0, max=1.0)
    max_length: int = bounded(384, min=16)
    # the default backbone, a GPT-2 built from this config with a tokenizer trained on the data
    n_layer: int = bounded(4, min=1)
    n_embd: int = bounded(256, min=8)
    n_head: int = bounded(4, min=1)
    vocab_size: int = bounded(4000, min=300)
    dropout: float = bounded(0.1, min=0.0, max=1.0)
    # generation and filtering
    temperature: float = bounded(0.7, min=0.0)
    top_p: float = bounded(0.95, min=0.0, max=1.0)
    max_new_tokens: int = bounded(320, min=8)
    max_attempts: int = bounded(4, min=1)  # draws per requested problem before it is dropped
    calculator: bool = True  # the exact evaluator writes each `<<expr=` step's value while sampling
    ngram: int = bounded(4, min=1)
    max_overlap: float = bounded(0.8, min=0.0, max=1.0)  # n-gram share with one training problem
    require_steps: bool = True  # a solution with no <<expr=value>> step cannot be verified
    require_grounded: bool = False  # also reject verified draws whose first step uses numbers the problem lacks
    predict_batch_size: int = bounded(32, min=1)

    def validate(self) -> None:
        super().validate()
        if self.n_embd % self.n_head:
            raise ConfigError(f"n_embd={self.n_embd} must be divisible by n_head={self.n_head}")


# A model small enough to learn the procedural problems' format in about a minute on a 2-core CPU
# (measured: see BENCHMARKS.md); with the calculator it then returns verified problems.
BUILTIN_N = 2000
BUILTIN_HPARAMS = dict(n_layer=2, n_embd=128, n_head=4, vocab_size=1000, max_length=192, max_new_tokens=180,
                       batch_size=16, lr=3e-3, max_epochs=3, precision="32", dropout=0.0, temperature=0.5)


@dataclass
class _Prepared:
    records: list[dict]
    val: list[dict] | None
    source: str
    fmt: str


class ProblemGenerator(Task):
    """Practice problems with worked solutions, conditioned on topic and difficulty, verified."""

    task_name = "problem_generation"
    hparams_cls = ProblemHParams
    default_backbone = "gpt2-scratch"
    backbones = {
        "gpt2-scratch": Backbone("gpt2-scratch", "torch", None, "GPT-2-style causal LM built from config, BPE "
                                 "tokenizer trained on the data (no download)"),
        "gpt2": Backbone("openai-community/gpt2", "torch", "openai-community/gpt2", "GPT-2 small (124M)"),
        "t5-small": Backbone("google-t5/t5-small", "torch", "google-t5/t5-small", "T5 small seq2seq (60M)"),
        "flan-t5-small": Backbone("google/flan-t5-small", "torch", "google/flan-t5-small", "Flan-T5 small (77M)"),
    }
    card_text = CardText(
        title="Practice problem generation",
        summary=("Generates math word problems with worked solutions for a requested topic and difficulty; every "
                 "arithmetic step of a returned problem has been checked exactly, trained with edu-flash."),
        intended_use=("Drafting extra practice problems for a teacher to review; varied drill at a chosen difficulty; "
                      "research on controllable, verifiable generation."),
        out_of_scope=("Unreviewed use as assessment items or in high-stakes tests; topics beyond the arithmetic the "
                      "verifier can check (the verifier proves the arithmetic, not that the story makes sense, that "
                      "the question asks for what the solution computes, or that the language suits a child)."),
        limitations=("Verification covers each `<<expr=value>>` step and the final answer only; problems without "
                     "annotated steps (MATH style) are checked for a final answer, not for correctness. Generated "
                     "stories can be implausible or repeat the training set's names, places and cultural defaults. "
                     "Difficulty is measured as the number of solution steps (1-5), a coarse proxy. With the "
                     "calculator (default) each step's value is written by the exact evaluator while sampling "
                     "(Cobbe et al. 2021), so the verified rate reflects format and consistency more than the "
                     "model's own arithmetic (see verified_valid_rate_no_calculator)."),
        how_to_use=("from edu_flash import {cls}\n\ngen = {cls}.from_pretrained(\"{folder}\")\n"
                    "gen.generate(topic=\"shopping\", difficulty=3, n=5, seed=0)  # verified problems\n"
                    "gen.last_generation  # draws, rejections and why\n"
                    "gen.evaluate(\"test.jsonl\")  # perplexity, verified rate, novelty, distinct-2, control"),
        hf_task_type="text-generation",
        tags=("math-word-problems", "education", "text-generation", "verified-generation"),
        headline_metrics=("perplexity", "verified_valid_rate", "verified_valid_rate_no_calculator", "novelty",
                          "distinct_2", "difficulty_spearman"),
    )

    def __init__(self, backbone: str | None = None, **hparams):
        super().__init__(backbone, **hparams)
        self.tokenizer = None
        self.index: E.NgramIndex | None = None
        self.last_generation: dict | None = None

    @classmethod
    def builtin_data(cls, n: int | None = None, seed: int = 0) -> Splits:
        """Procedural word problems (sample.py) in GSM8K format: `n` training problems (default 2000),
        plus n/10 (at least 20) each for validation and test, all topics and difficulties 1-5."""
        from .sample import sample_problems

        n = BUILTIN_N if n is None else int(n)
        if n < 1:
            raise ConfigError(f"n must be a positive number of training problems, got {n}")
        k = max(n // 10, 20)
        rows = sample_problems(n + 2 * k, seed=seed)
        return Splits(train=rows[:n], val=rows[n:n + k], test=rows[n + k:], hparams=dict(BUILTIN_HPARAMS),
                      evaluate_args={"n_samples": 20}, example={"topic": "shopping", "difficulty": 2},
                      about=(f"{n} procedural arithmetic word problems (7 topics, 1-5 steps, GSM8K format) written "
                             "by edu_flash.problems.sample; every solution passes the verifier."))

    # ------------------------------------------------------------------ data
    def _records(self, table, **cols) -> tuple[list[dict], str]:
        saved = self.state.get("columns", {})
        merged = {k: (v if v is not None else saved.get(k)) for k, v in cols.items()}
        merged["format"] = merged.get("format") or self.state.get("format_arg", "auto")
        return F.read_records(table, **merged)

    def _prepare(self, train, val, *, format: str = "auto", problem_column=None, solution_column=None,
                 answer_column=None, topic_column=None, difficulty_column=None) -> _Prepared:
        cols = dict(problem_column=problem_column, solution_column=solution_column, answer_column=answer_column,
                    topic_column=topic_column, difficulty_column=difficulty_column)
        records, fmt = F.read_records(train, format=format, **cols)
        val_records = F.read_records(val, format=format, **cols)[0] if val is not None else None
        # all data checked: only now does state change
        old_topics = self.state.get("topics", {}) if self.model is not None else {}
        topics = Counter(old_topics)
        topics.update(r["topic"] for r in records)
        self.state.update(columns={k: v for k, v in cols.items() if v is not None}, format_arg=format, format=fmt,
                          topics=dict(sorted(topics.items())),
                          difficulties={str(d): sum(r["difficulty"] == d for r in records) for d in F.LEVELS})
        if self.index is None or self.model is None or self.index.n != self.hparams.ngram:
            self.index = E.NgramIndex(self.hparams.ngram)
        self.index.add(r["problem"] for r in records)
        return _Prepared(records, val_records, train.source, fmt)

    def _describe_data(self, prep: _Prepared) -> dict:
        steps = [verify_solution(r["solution"], require_steps=False) for r in prep.records]
        return {"source": prep.source, "format": prep.fmt, "problems": len(prep.records),
                "validation problems": len(prep.val or []),
                "topics (problems)": ", ".join(f"{t} ({c})" for t, c in self.state["topics"].items()),
                "difficulty 1-5 (problems)": ", ".join(f"{d}: {c}" for d, c in self.state["difficulties"].items()),
                "training solutions passing the verifier": f"{sum(v.ok for v in steps) / len(steps):.1%}"}

    # ------------------------------------------------------------------ training
    def _kind(self) -> str:
        from .model import model_kind

        return model_kind(self.model)

    def _encode(self, records: list[dict]) -> list[dict]:
        from .model import encode

        return encode(self.tokenizer, self._kind(), [F.prefix(r["topic"], r["difficulty"]) for r in records],
                      [F.target(r) for r in records], self.hparams.max_length)

    def _train_job(self, prep: _Prepared):
        from ..core.trainer import TrainJob
        from . import model as M

        hp = self.hparams
        specials = F.control_tokens(self.state["topics"])
        if self.model is None:
            source = self.backbone_spec().resolve()
            if source is None:
                texts = [F.target(r) for r in prep.records]
                self.model, self.tokenizer = M.build_scratch(texts, specials, hp)
            else:
                self.model, self.tokenizer = M.load_backbone(source)
        M.add_control_tokens(self.model, self.tokenizer, specials)
        kind, pad = self._kind(), self.tokenizer.pad_token_id
        train = self._encode(prep.records)
        validate = None
        if prep.val:
            val = self._encode(prep.val)

            def _validate(model):
                return M.perplexity(model, val, pad, kind, hp.predict_batch_size)

            validate = _validate

        return TrainJob(model=self.model, train=train, collate=lambda ex: M.collate(ex, pad, kind), loss=M.lm_loss,
                        lengths=[len(e["input_ids"]) + len(e.get("labels", ())) for e in train], validate=validate,
                        monitor="perplexity" if validate else None, mode="min")

    # ------------------------------------------------------------------ generation
    def _check_request(self, topic, difficulty) -> None:
        if topic is not None and str(topic) not in self.state["topics"]:
            raise UnknownLabelError(f"topic {topic!r} was never seen in training (known: {list(self.state['topics'])})")
        if difficulty is not None and difficulty not in F.LEVELS:
            raise ConfigError(f"difficulty must be one of {list(F.LEVELS)}, got {difficulty!r}")

    def _draw(self, slots: list[tuple[str, int]], seed: int, temperature, top_p, calculator=None) -> list[dict]:
        """One raw draw per (topic, difficulty) slot, parsed, verified and checked for novelty."""
        from .model import sample

        hp, tok = self.hparams, self.tokenizer
        limit = hp.max_new_tokens
        if self._kind() == "causal":
            limit = min(limit, getattr(self.model.config, "n_positions", 10**9) - 4)
        texts = sample(self.model, tok, self._kind(), [F.prefix(t, d) for t, d in slots],
                       temperature=hp.temperature if temperature is None else temperature,
                       top_p=hp.top_p if top_p is None else top_p, max_new_tokens=limit, seed=seed,
                       batch_size=hp.predict_batch_size,
                       calculator=hp.calculator if calculator is None else bool(calculator))
        out = []
        for (t, d), text in zip(slots, texts):
            p = F.split_generated(text, (tok.eos_token, tok.pad_token))
            row = {"topic": t, "difficulty": d, "parsed": p is not None, "verified": False, "overlap": 0.0,
                   "realised_difficulty": None, "errors": [], "grounded": False}
            if p is not None:
                v = verify_solution(p["solution"], require_steps=hp.require_steps)
                row.update(p, verified=v.ok, errors=v.errors, realised_difficulty=F.derive_difficulty(p["solution"]),
                           overlap=self.index.overlap(p["problem"]) if self.index is not None else 0.0,
                           grounded=E.grounded(p["problem"], p["solution"]))
            out.append(row)
        return out

    def _generate_slots(self, slots, *, seed: int, temperature=None, top_p=None, verify: bool = True,
                        dedup: bool = True, max_attempts: int | None = None,
                        calculator: bool | None = None) -> list[dict | None]:
        hp = self.hparams
        budget = max_attempts or hp.max_attempts
        results: list[dict | None] = [None] * len(slots)
        pending, attempts = list(range(len(slots))), [0] * len(slots)
        why = Counter()
        rnd = 0
        while pending:
            draws = self._draw([slots[i] for i in pending], seed + 7919 * rnd, temperature, top_p, calculator)
            rnd += 1
            still = []
            for i, row in zip(pending, draws):
                attempts[i] += 1
                reason = ("unparseable" if not row["parsed"] else "unverified" if verify and not row["verified"]
                          else "ungrounded" if hp.require_grounded and not row["grounded"]
                          else "near_duplicate" if dedup and row["overlap"] >= hp.max_overlap else None)
                if reason is None:
                    results[i] = {k: row[k] for k in ("topic", "difficulty", "problem", "solution", "answer",
                                                       "verified", "grounded", "realised_difficulty", "overlap")}
                    results[i]["attempts"] = attempts[i]
                    continue
                why[reason] += 1
                if attempts[i] < budget:
                    still.append(i)
            pending = still
        draws_total = sum(attempts)
        returned = sum(r is not None for r in results)
        self.last_generation = {"requested": len(slots), "returned": returned, "dropped": len(slots) - returned,
                                "draws": draws_total, "rejected": sum(why.values()),
                                "rejection_rate": sum(why.values()) / max(draws_total, 1),
                                "rejected_by_reason": dict(why), "max_attempts": budget,
                                "calculator": self.hparams.calculator if calculator is None else bool(calculator)}
        return results

    def generate(self, topic: str | None = None, difficulty: int | None = None, n: int = 1, *,
                 temperature: float | None = None, top_p: float | None = None, seed: int = 0, verify: bool = True,
                 dedup: bool = True, max_attempts: int | None = None, calculator: bool | None = None) -> list[dict]:
        """Up to `n` problems {topic, difficulty, problem, solution, answer, ...}, each verified and novel.

        A topic or difficulty left as None is drawn from the training distribution. Draws that fail
        are re-sampled up to `max_attempts` per problem, then dropped: fewer than `n` may come back;
        `self.last_generation` reports draws, rejections by reason and the rejection rate.
        `calculator` overrides the hyperparameter: True lets the exact evaluator write each step's value
        while sampling (the verifier still checks everything).
        """
        self._require_fitted()
        self._check_request(topic, difficulty)
        if not isinstance(n, int) or n < 1:
            raise ConfigError(f"n must be a positive int, got {n!r}")
        rng = random.Random(seed)
        tw, dw = self.state["topics"], self.state["difficulties"]
        slots = [(str(topic) if topic is not None else rng.choices(list(tw), list(tw.values()))[0],
                  int(difficulty) if difficulty is not None else
                  int(rng.choices(list(dw), [c + 1e-9 for c in dw.values()])[0])) for _ in range(n)]
        res = self._generate_slots(slots, seed=seed, temperature=temperature, top_p=top_p, verify=verify,
                                   dedup=dedup, max_attempts=max_attempts, calculator=calculator)
        return [r for r in res if r is not None]

    def predict(self, inputs, *, seed: int = 0, **kw):
        """Raw requests -> problems: a dict {topic, difficulty} -> one problem (or None if every draw
        failed); a list of dicts / a DataFrame -> a list, one per row."""
        self._require_fitted()
        single = isinstance(inputs, dict)
        rows = read_table([inputs] if single else inputs, name="predict input").df.to_dict("records")
        slots = []
        for r in rows:
            t, d = r.get("topic"), r.get("difficulty")
            self._check_request(t, d)
            slots.append((str(t) if t is not None else next(iter(self.state["topics"])), int(d or 3)))
        res = self._generate_slots(slots, seed=seed, **kw)
        return res[0] if single else res

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, data, *, n_samples: int = 50, seed: int = 0, name: str | None = None, format: str | None = None,
                 problem_column=None, solution_column=None, answer_column=None, topic_column=None,
                 difficulty_column=None, compare_calculator: bool = True) -> dict:
        """Held-out perplexity on `data`, plus `n_samples` raw draws (difficulties 1-5 in turn, topics
        of the training set) scored before any filtering: verified-valid rate, novelty against the
        training set, distinct-2, Spearman between requested and realised difficulty, and groundedness.

        The draws use the model's `calculator` setting; with `compare_calculator` the same slots are
        drawn again with the other setting, so `verified_valid_rate_calculator` and
        `verified_valid_rate_no_calculator` show what the calculator adds (and what the model's own
        arithmetic is worth)."""
        from .model import perplexity

        self._require_fitted()
        table = read_table(data, name=name or "eval", split="test")
        records, _ = self._records(table, format=format, problem_column=problem_column,
                                   solution_column=solution_column, answer_column=answer_column,
                                   topic_column=topic_column, difficulty_column=difficulty_column)
        known = [r for r in records if r["topic"] in self.state["topics"]] or records
        ppl = perplexity(self.model, self._encode(known), self.tokenizer.pad_token_id, self._kind(),
                         self.hparams.predict_batch_size)
        topics = list(self.state["topics"])
        slots = [(topics[(i // len(F.LEVELS)) % len(topics)], F.LEVELS[i % len(F.LEVELS)]) for i in range(n_samples)]
        calc = bool(self.hparams.calculator)
        draws = self._draw(slots, seed, None, None, calc)
        g = E.generation_metrics(draws, self.hparams.max_overlap)
        keep = sum(d["verified"] and d["overlap"] < self.hparams.max_overlap for d in draws)
        metrics = {"perplexity": ppl["perplexity"], "eval_problems": len(known), **g,
                   "accepted_per_draw": keep / max(len(draws), 1), "calculator": calc}
        rates = {calc: g["verified_valid_rate"]}
        if compare_calculator:
            other = self._draw(slots, seed, None, None, not calc)
            rates[not calc] = sum(d["verified"] for d in other) / max(len(other), 1)
        for on, rate in rates.items():
            metrics["verified_valid_rate_calculator" if on else "verified_valid_rate_no_calculator"] = rate
        scalars = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        tables = {"By requested difficulty (raw draws)": list(g["per_difficulty"].values()),
                  "Example generated problems": [{"difficulty": d["difficulty"], "verified": d["verified"],
                                                  "problem": d["problem"][:160]} for d in draws if d["parsed"]][:3]}
        self.card.add_evaluation(name or table.source, scalars, tables)
        return metrics

    # ------------------------------------------------------------------ persistence
    def _save_weights(self, folder: Path) -> dict:
        from safetensors.numpy import save_file
        from safetensors.torch import save_file as save_torch

        from ..core.checkpoint import _unshared

        # tied weights (GPT-2's lm_head = wte) are written under both names; the strict load re-fills both
        save_torch(_unshared(self.model.state_dict()), str(folder / "model.safetensors"))
        self.tokenizer.save_pretrained(str(folder))
        if self.index is not None:
            save_file(self.index.to_arrays(), str(folder / "ngram_index.safetensors"))
        return {"format": "hf-lm", "kind": self._kind(), "model_config": self.model.config.to_diff_dict(),
                "ngram": self.index.n if self.index is not None else None}

    def _load_weights(self, folder: Path, config: dict) -> None:
        from safetensors.numpy import load_file
        from safetensors.torch import load_file as load_torch

        from .model import rebuild

        w = config["weights"]
        self.model, self.tokenizer = rebuild(w["model_config"], folder)
        self.model.load_state_dict(load_torch(str(folder / "model.safetensors")))
        self.model.eval()
        if (folder / "ngram_index.safetensors").exists():
            self.index = E.NgramIndex.from_arrays(load_file(str(folder / "ngram_index.safetensors")), w["ngram"])

"""ProblemGenerator: (topic, difficulty) -> a practice problem with a worked solution a teacher could use.

Two kinds of backbone propose problems. The default, `template`, lifts each training problem into a
template (templates.py) and re-chooses its numbers, names and objects, recomputing the solution
exactly: it writes coherent English on a CPU with no training beyond the lifting. The language-model
backbones (a GPT-2 built from scratch, or any causal / seq2seq model folder) learn from the data,
optionally with template variants added (`variants`). Either way every draw is judged the same way
(generation.py): the verifier, the usability checks, novelty; failing draws are re-sampled up to a
budget and then dropped, and how many were rejected (and why) is reported, because a generator
that hides its failure rate cannot be trusted in a classroom.
"""
from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ..core.card import CardText
from ..core.data import read_table
from ..core.errors import ConfigError, DataError, UnknownLabelError, warn_user
from ..core.registry import Backbone
from ..core.task import Splits, Task
from . import evaluation as E
from . import formats as F
from . import generation as G
from . import persistence
from .hparams import ProblemHParams
from .novelty import NoveltyIndex


# The built-in data's demo trains the template backbone (seconds). For a language model on it,
# BUILTIN_LM_HPARAMS is a model small enough to learn the procedural problems' format in about a
# minute on a 2-core CPU (measured: see BENCHMARKS.md).
BUILTIN_N = 2000
BUILTIN_LM_HPARAMS = dict(n_layer=2, n_embd=128, n_head=4, vocab_size=1000, max_length=192, max_new_tokens=180,
                       batch_size=16, lr=3e-3, max_epochs=3, precision="32", dropout=0.0, temperature=0.5)
SHOWCASE_N = 10
_TEMPLATE_HPARAMS = ("seed", "max_attempts", "ngram", "max_overlap", "require_steps", "novelty")  # what templates use


@dataclass
class _Prepared:
    records: list[dict]
    val: list[dict] | None
    source: str
    fmt: str
    dropped: dict
    added: int = 0


class ProblemGenerator(Task):
    """Practice problems with worked solutions, conditioned on topic and difficulty, verified and checked."""

    task_name = "problem_generation"
    hparams_cls = ProblemHParams
    default_backbone = "template"
    backbones = {
        "template": Backbone("template", "python", None, "templates lifted from the training problems' "
                             "<<expr=value>> steps; numbers, names and objects re-chosen, solutions recomputed"),
        "gpt2-scratch": Backbone("gpt2-scratch", "torch", None, "GPT-2-style causal LM built from config, BPE "
                                 "tokenizer trained on the data (no download)"),
        "gpt2": Backbone("openai-community/gpt2", "torch", "openai-community/gpt2", "GPT-2 small (124M)"),
        "t5-small": Backbone("google-t5/t5-small", "torch", "google-t5/t5-small", "T5 small seq2seq (60M)"),
        "flan-t5-small": Backbone("google/flan-t5-small", "torch", "google/flan-t5-small", "Flan-T5 small (77M)"),
    }
    card_text = CardText(
        title="Practice problem generation",
        summary=("Generates math word problems with worked solutions for a requested topic and difficulty. Every "
                 "returned problem passed the verifier (each step's arithmetic, and the arithmetic written around "
                 "it) and the usability checks (one question, grounded and used numbers, no repetition, a "
                 "plausible answer); trained with edu-flash."),
        intended_use=("Drafting extra practice problems for a teacher to review; varied drill at a chosen topic and "
                      "difficulty; research on controllable, verifiable generation."),
        out_of_scope=("Unreviewed use as assessment items or in high-stakes tests; topics beyond the arithmetic the "
                      "verifier can check. The checks prove the arithmetic and catch common defects; they do not "
                      "prove that the story makes sense, that the question asks for what the solution computes, or "
                      "that the language suits a child."),
        limitations=("`verified` covers each `<<expr=value>>` step, the value written after it, an arithmetic "
                     "expression written before it, and the final answer; `usable` adds heuristic checks on English "
                     "text (see the README). The template backbone only re-words problems it was trained on: its "
                     "problems are variants (new numbers, names and objects on a training problem's story and "
                     "arithmetic), not new problems, and they inherit the training problems' stories, cultural "
                     "defaults and mistakes a check cannot see. Names are swapped only within lists the project "
                     "wrote, by the pronouns the story uses. Difficulty is the number of solution steps (1-5, 5 "
                     "meaning five or more). Language models trained from scratch on a CPU budget write few usable "
                     "problems; with the calculator (default) each step's value is written by the exact evaluator "
                     "while sampling (Cobbe et al. 2021), so their verified rate reflects format and consistency "
                     "more than their own arithmetic (see verified_valid_rate_no_calculator)."),
        how_to_use=("from edu_flash import {cls}\n\ngen = {cls}.from_pretrained(\"{folder}\")\n"
                    "problems = gen.generate(difficulty=2, n=3, seed=0)  # verified, usable problems\n"
                    "for p in problems:\n    print(p[\"problem\"])\n    print(p[\"solution\"])\n"
                    "print(gen.last_generation)  # draws, rejections and why"),
        hf_task_type="text-generation",
        tags=("math-word-problems", "education", "text-generation", "verified-generation"),
        headline_metrics=("usable_rate", "verified_valid_rate", "template_rate", "difficulty_spearman",
                          "surface_novelty", "structural_novelty", "perplexity", "verified_valid_rate_no_calculator",
                          "distinct_2"),
    )

    def __init__(self, backbone: str | None = None, **hparams):
        super().__init__(backbone, **hparams)
        self.tokenizer = None
        self.index: NoveltyIndex | None = None
        self.last_generation: dict | None = None

    @property
    def uses_templates(self) -> bool:
        return self.backbone_spec().engine == "python"

    @classmethod
    def builtin_data(cls, n: int | None = None, seed: int = 0) -> Splits:
        """Procedural word problems (sample.py) in GSM8K format: `n` training problems (default 2000),
        plus n/10 (at least 20) each for validation and test, all topics and difficulties 1-5; the demo
        trains the template backbone on them (BUILTIN_LM_HPARAMS is a setting for gpt2-scratch)."""
        from .sample import sample_problems

        n = BUILTIN_N if n is None else int(n)
        if n < 1:
            raise ConfigError(f"n must be a positive number of training problems, got {n}")
        k = max(n // 10, 20)
        rows = sample_problems(n + 2 * k, seed=seed)
        return Splits(train=rows[:n], val=rows[n:n + k], test=rows[n + k:], backbone="template",
                      evaluate_args={"n_samples": 50}, example={"topic": "shopping", "difficulty": 2},
                      about=(f"{n} procedural arithmetic word problems (7 topics, 1-5 steps, GSM8K format) written "
                             "by edu_flash.problems.sample; every solution passes the verifier."))

    def _card_hparams(self) -> dict:
        hp = self.hparams.to_dict()
        return {k: v for k, v in hp.items() if k in _TEMPLATE_HPARAMS} if self.uses_templates else hp

    def num_parameters(self) -> int:
        self._require_fitted()
        return self.model.num_numbers() if self.uses_templates else super().num_parameters()

    # ------------------------------------------------------------------ data
    def _records(self, table, **cols) -> tuple[list[dict], str]:
        saved = self.state.get("columns", {})
        merged = {k: (v if v is not None else saved.get(k)) for k, v in cols.items()}
        merged["format"] = merged.get("format") or self.state.get("format_arg", "auto")
        return F.read_records(table, **merged)

    def _prepare(self, train, val, *, format: str = "auto", problem_column=None, solution_column=None,
                 answer_column=None, topic_column=None, difficulty_column=None,
                 bad_solutions: str = "drop") -> _Prepared:
        if bad_solutions not in F.BAD_SOLUTIONS:
            raise ConfigError(f"bad_solutions must be one of {list(F.BAD_SOLUTIONS)}, got {bad_solutions!r}")
        cols = dict(problem_column=problem_column, solution_column=solution_column, answer_column=answer_column,
                    topic_column=topic_column, difficulty_column=difficulty_column)
        records, fmt = F.read_records(train, format=format, **cols)
        records, dropped = F.check_solutions(records, train, bad_solutions)
        val_records = None
        if val is not None:
            val_records = F.check_solutions(F.read_records(val, format=format, **cols)[0], val, bad_solutions)[0]
        if dropped["dropped"]:
            warn_user(f"{train.source}: {dropped['dropped']} of {dropped['dropped'] + len(records)} worked "
                      f"solutions fail the verifier and are left out of training (e.g. "
                      f"{'; '.join(dropped['examples'])}); bad_solutions='error' refuses such data instead")
        added = 0
        if not self.uses_templates and self.hparams.variants:
            from .bank import TemplateBank

            bank = TemplateBank.build(records, seed=self.hparams.seed)
            extra = bank.variants(self.hparams.variants, seed=self.hparams.seed)
            added = len(extra)
            records = records + extra
        # all data checked: only now does state change
        old_topics = self.state.get("topics", {}) if self.model is not None else {}
        topics = Counter(old_topics)
        topics.update(r["topic"] for r in records)
        self.state.update(columns={k: v for k, v in cols.items() if v is not None}, format_arg=format, format=fmt,
                          topics=dict(sorted(topics.items())),
                          difficulties={str(d): sum(r["difficulty"] == d for r in records) for d in F.LEVELS})
        if self.index is None or self.model is None or self.index.n != self.hparams.ngram:
            self.index = NoveltyIndex(self.hparams.ngram)
        self.index.add(records[:len(records) - added])
        return _Prepared(records, val_records, train.source, fmt, dropped, added)

    def _describe_data(self, prep: _Prepared) -> dict:
        out = {"source": prep.source, "format": prep.fmt, "problems": len(prep.records) - prep.added,
               "validation problems": len(prep.val or []),
               "solutions failing the verifier (left out)": prep.dropped["dropped"],
               "topics (problems)": ", ".join(f"{t} ({c})" for t, c in self.state["topics"].items()),
               "difficulty 1-5 (problems)": ", ".join(f"{d}: {c}" for d, c in self.state["difficulties"].items())}
        if prep.added:
            out["template variants added to training"] = prep.added
        if self.uses_templates and self.model is not None:
            rep = self.model.report
            out["problems turned into templates"] = f"{rep['templates']} of {rep['problems']} " \
                                                     f"({rep['template_rate']:.1%})"
            out["why the rest did not"] = ", ".join(f"{k} ({v})" for k, v in rep["not_lifted"].items()) or "-"
        return out

    # ------------------------------------------------------------------ training
    def _kind(self) -> str:
        from .model import model_kind

        return model_kind(self.model)

    def _encode(self, records: list[dict]) -> list[dict]:
        from .model import encode

        return encode(self.tokenizer, self._kind(), [F.prefix(r["topic"], r["difficulty"]) for r in records],
                      [F.target(r) for r in records], self.hparams.max_length)

    def _fit_classical(self, prep: _Prepared) -> None:
        from .bank import TemplateBank

        bank = TemplateBank.build(prep.records, seed=self.hparams.seed)
        bank.count_dropped(prep.dropped["dropped"])  # the share covered is of all the training problems
        if not bank.templates:
            raise DataError("no training problem could be turned into a template "
                            f"(why: {bank.report['not_lifted']})", source=prep.source)
        self.model = bank
        self.state.update(topics=dict(sorted(bank.topics().items())),
                          difficulties={str(d): bank.difficulties().get(d, 0) for d in F.LEVELS})

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
    def _check_request(self, topic, difficulty, novelty=None) -> str:
        if topic is not None and str(topic) not in self.state["topics"]:
            raise UnknownLabelError(f"topic {topic!r} was never seen in training (known: {list(self.state['topics'])})")
        if difficulty is not None and difficulty not in F.LEVELS:
            raise ConfigError(f"difficulty must be one of {list(F.LEVELS)}, got {difficulty!r}")
        mode = novelty or self.hparams.novelty
        if mode == "auto":
            mode = "variant" if self.uses_templates else "new"
        if mode not in G.NOVELTY:
            raise ConfigError(f"novelty must be one of {list(G.NOVELTY)}, got {mode!r}")
        if mode == "new" and self.uses_templates:
            raise ConfigError("the template backbone writes variants of its training problems (new numbers, names "
                              "and objects on a known story and arithmetic), never structurally new problems: use "
                              "novelty='variant', or a language-model backbone for novelty='new'")
        return mode

    def _draw(self, slots, seed: int, temperature=None, top_p=None, calculator=None, max_number=None) -> list[dict]:
        """One raw draw per (topic, difficulty) slot, judged (verifier, usability checks, novelty)."""
        if self.uses_templates:
            rows = G.draw_templates(self.model, slots, seed, max_number)
        else:
            rows = G.draw_lm(self, slots, seed, temperature, top_p, calculator)
        return [self._judge(r, max_number) for r in rows]

    def _judge(self, row: dict, max_number=None) -> dict:
        row = G.judge(row, self.index, self.hparams.max_overlap, self.hparams.require_steps)
        if max_number is not None and row["parsed"]:
            from .quantities import mentions

            big = [m.text for m in mentions(row["problem"] + " " + row["solution"], in_fractions=True)
                   if m.value > max_number]
            if big:
                row["usable"] = False
                row["checks"]["max_number"] = False
                row["errors"].append(f"numbers above max_number={max_number}: {big[:3]}")
        return row

    def _generate_slots(self, slots, *, seed: int, temperature=None, top_p=None, verify: bool = True,
                        novelty: str | None = None, max_attempts: int | None = None, calculator: bool | None = None,
                        max_number=None) -> list[dict | None]:
        mode = self._check_request(None, None, novelty)
        if max_number is not None and (not isinstance(max_number, (int, float)) or max_number < 1):
            raise ConfigError(f"max_number must be a number >= 1, got {max_number!r}")

        def draw(batch, s):
            if self.uses_templates:
                return G.draw_templates(self.model, batch, s, max_number)
            return G.draw_lm(self, batch, s, temperature, top_p, calculator)

        results, report = G.generate_slots(draw, slots, seed=seed, budget=max_attempts or self.hparams.max_attempts,
                                           verify=verify, novelty=mode,
                                           judge_row=lambda r: self._judge(r, max_number))
        if not self.uses_templates:
            report["calculator"] = self.hparams.calculator if calculator is None else bool(calculator)
        self.last_generation = report
        return results

    def _slots(self, topic, difficulty, n: int, rng: random.Random) -> list[tuple[str, int]]:
        tw, dw = self.state["topics"], self.state["difficulties"]
        return [(str(topic) if topic is not None else rng.choices(list(tw), list(tw.values()))[0],
                 int(difficulty) if difficulty is not None else
                 int(rng.choices(list(dw), [c + 1e-9 for c in dw.values()])[0])) for _ in range(n)]

    def generate(self, topic: str | None = None, difficulty: int | None = None, n: int = 1, *,
                 novelty: str | None = None, max_number: int | None = None, temperature: float | None = None,
                 top_p: float | None = None, seed: int = 0, verify: bool = True, max_attempts: int | None = None,
                 calculator: bool | None = None) -> list[dict]:
        """Up to `n` problems {topic, difficulty, problem, solution, answer, verified, usable, ...}.

        Each returned problem passed the verifier and every usability check (`verify=False` skips
        both) and is novel in the requested sense: `novelty="variant"` (not a copy of a training
        problem; the template backbone's only mode) or `"new"` (a story or expression graph no
        training problem has; language models). `max_number` caps every number in the problem and
        its solution (smaller numbers for younger students). A topic or difficulty left as None is
        drawn from the training distribution. Failing draws are re-sampled up to `max_attempts` per
        problem, then dropped, so fewer than `n` may come back; `self.last_generation` reports draws,
        rejections by reason and the rejection rate.
        """
        self._require_fitted()
        self._check_request(topic, difficulty, novelty)
        if not isinstance(n, int) or n < 1:
            raise ConfigError(f"n must be a positive int, got {n!r}")
        slots = self._slots(topic, difficulty, n, random.Random(seed))
        res = self._generate_slots(slots, seed=seed, temperature=temperature, top_p=top_p, verify=verify,
                                   novelty=novelty, max_attempts=max_attempts, calculator=calculator,
                                   max_number=max_number)
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
        """`n_samples` raw draws (difficulties 1-5 in turn, the training topics in turn), judged before any
        filtering: the verified rate, each usability check's rate and the usable rate, surface and
        structural novelty, distinct-2, and Spearman between requested and realised difficulty. On
        `data` (held-out problems): perplexity for a language model; for templates, the share that
        would lift into templates. A language model's draws are repeated with the calculator switched
        (`compare_calculator`). The card gets these figures and SHOWCASE_N problems from generate()."""
        return E.evaluate_task(self, data, n_samples=n_samples, seed=seed, name=name,
                               columns=dict(format=format, problem_column=problem_column,
                                            solution_column=solution_column, answer_column=answer_column,
                                            topic_column=topic_column, difficulty_column=difficulty_column),
                               compare_calculator=compare_calculator, showcase=SHOWCASE_N)

    # ------------------------------------------------------------------ persistence
    def _save_weights(self, folder: Path) -> dict:
        return persistence.save(self, folder)

    def _load_weights(self, folder: Path, config: dict) -> None:
        persistence.load(self, folder, config)

"""Helpers for the multi-process tests: a tiny encoder without dropout, and an EssayScorer that
records on every rank what the trainer really did (so a test can tell real DDP/FSDP apart from
ranks that silently train alone).

Worker processes import this module by name (they inherit sys.path), so it lives beside the tests.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from edu_flash.core import registry
from edu_flash.essay.task import EssayScorer

DUMP_ENV = "EDU_FLASH_TEST_DUMP"        # folder: each rank writes what it saw there
DIE_ENV = "EDU_FLASH_TEST_DIE"          # "rank:call": that rank calls os._exit(13) at that loss call
STOP_ENV = "EDU_FLASH_TEST_STOP"        # "rank:call": that rank stops itself with SIGSTOP at that loss call
HANG_ENV = "EDU_FLASH_TEST_HANG"        # "rank:call[,rank:call]": those ranks sleep for an hour at that loss call
EVENTS_ENV = "EDU_FLASH_TEST_EVENTS"    # folder: a rank writes <event>-rank<r>.json (pid, time) before acting
COLS = dict(text_column="essay", score_column="score", prompt_column="prompt")
# No dropout anywhere: a 2-process run must then match one process with the same global batch.
HP = dict(max_length=48, max_epochs=1, batch_size=8, lr=1e-3, precision="32", dropout=0.0, warmup_ratio=0.0,
          patience=None)


def tiny_encoder(folder: Path, texts) -> Path:
    from edu_flash.core.tiny import make_tiny_encoder

    folder = make_tiny_encoder(folder, texts, hidden=32, layers=2, heads=2, vocab_size=800, max_positions=64)
    cfg = json.loads((folder / "config.json").read_text())
    cfg.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (folder / "config.json").write_text(json.dumps(cfg))
    return folder


def describe_params(model) -> dict:
    """Per parameter: is it a DTensor, its global and local (this rank's) shape, a checksum."""
    from torch.distributed.tensor import DTensor

    out = {}
    for name, p in model.named_parameters():
        local = p.to_local() if isinstance(p, DTensor) else p
        out[name] = {"dtensor": isinstance(p, DTensor), "shape": list(p.shape), "local_shape": list(local.shape),
                     "local_sum": float(local.detach().double().abs().sum())}
    return out


class ProbeScorer(EssayScorer):
    """EssayScorer that, inside worker processes, dumps the model the loss sees at its first call
    and the final weights, and can be told to die at a given step."""

    def _train_job(self, prep):
        job = super()._train_job(prep)
        inner, calls, self._seen = job.loss, [0], {}

        def loss(model, batch):
            calls[0] += 1
            rank = os.environ.get("RANK")
            if rank is not None:
                _fault(f"{rank}:{calls[0]}", rank)
            if calls[0] == 1:
                self._seen = {"model_class": type(model).__name__, "params": describe_params(model)}
            return inner(model, batch)

        job.loss = loss
        return job

    def finetune(self, *args, **kwargs):
        out = super().finetune(*args, **kwargs)
        dump, rank = os.environ.get(DUMP_ENV), os.environ.get("RANK")
        if dump and rank is not None:
            from safetensors.torch import save_file

            state = {k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
            save_file(state, f"{dump}/final-rank{rank}.safetensors")
            rep = self.last_train_report
            Path(f"{dump}/seen-rank{rank}.json").write_text(json.dumps(
                {"world_size": rep.world_size, "strategy": rep.strategy, **self._seen}))
        return out


def _fault(here: str, rank: str) -> None:
    """Act out the fault the environment asks for at this rank and loss call (after noting it)."""
    import signal
    import time

    for env, event in ((DIE_ENV, "die"), (STOP_ENV, "stop"), (HANG_ENV, "hang")):
        if here not in os.environ.get(env, "").split(","):
            continue
        if os.environ.get(EVENTS_ENV):
            Path(os.environ[EVENTS_ENV], f"{event}-rank{rank}.json").write_text(
                json.dumps({"pid": os.getpid(), "time": time.time()}))
        if event == "die":
            os._exit(13)
        if event == "stop":
            os.kill(os.getpid(), signal.SIGSTOP)
        if event == "hang":
            time.sleep(3600)


# Subclassing registers a task under EssayScorer's name: put the real class back.
registry.TASKS[EssayScorer.task_name] = EssayScorer


def load_dump(folder: Path, rank: int):
    from safetensors.torch import load_file

    return (json.loads((folder / f"seen-rank{rank}.json").read_text()),
            load_file(str(folder / f"final-rank{rank}.safetensors")))

"""Warnings a user cannot act on, silenced where edu-flash knows they do not apply.

Each is dropped only when edu-flash's own code made the call that logs it, so the same warning from
the user's own transformers code in the same process still shows:

- transformers: "`loss_type=None` was set in the config but it is unrecognized. Using the default loss:
  `ForCausalLMLoss`" — GPT-2-style classes (GPT2LMHeadModel) are missing from transformers' loss
  table, and the fallback it names is the right loss for the causal LMs ProblemGenerator trains.
- transformers: "We strongly recommend passing in an `attention_mask`" — edu-flash passes the mask
  to `generate`; transformers' own decoding steps call the model without it.
- huggingface_hub: "Repo card metadata block was not found" — `edu-flash card --validate` reports a
  card without metadata itself, as an error naming the file.
"""
from __future__ import annotations

import logging
import os
import sys

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
KNOWN = {
    "transformers.modeling_utils": ("`loss_type=None` was set in the config but it is unrecognized",
                                    "We strongly recommend passing in an `attention_mask`"),
    "huggingface_hub.repocard": ("Repo card metadata block was not found",),
}


def _called_from_edu_flash() -> bool:
    f = sys._getframe(2)
    while f is not None:
        if f.f_code.co_filename.startswith(_PACKAGE) and not f.f_code.co_filename.endswith("quiet.py"):
            return True
        f = f.f_back
    return False


class _Known(logging.Filter):
    def __init__(self, texts: tuple[str, ...]):
        super().__init__()
        self.texts = texts

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not (any(t in msg for t in self.texts) and _called_from_edu_flash())


def install() -> None:
    """Once per process; cheap (no engine is imported: the loggers are looked up by name)."""
    for name, texts in KNOWN.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _Known) for f in logger.filters):
            logger.addFilter(_Known(texts))

"""Every transformers load the library does goes through here, with `trust_remote_code=False`.

Without it transformers asks "Do you wish to run the custom code? [y/N]" for a folder whose
configs carry `auto_map`, and runs the folder's Python file after a "y". Here a local folder that
asks for its own code is refused before transformers reads it, and a hub repository that does is
refused by transformers at once (no prompt); both end in a CheckpointError saying so.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

from .errors import CheckpointError
from .modelfolder import check_no_remote_code

NO_CODE = {"trust_remote_code": False}


def _guard(source) -> None:
    if isinstance(source, (str, os.PathLike)) and Path(source).is_dir():
        check_no_remote_code(source)


def _refused(e: ValueError, source) -> CheckpointError | None:
    text = str(e)
    if "trust_remote_code" in text or "custom code" in text:
        return CheckpointError(f"{source}: asks to run Python code from the model repository; edu-flash never "
                               "runs code from a model folder (trust_remote_code=False)")
    return None


@contextlib.contextmanager
def _no_load_bar():
    """transformers' "Loading weights" bar says nothing a user can act on (the weights come from a
    folder the library chose); the caller's own setting is restored afterwards."""
    from transformers.utils import logging as tf_logging

    was = tf_logging.is_progress_bar_enabled()
    tf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            tf_logging.enable_progress_bar()


def _call(fn, source, *args, **kwargs):
    _guard(source)
    try:
        with _no_load_bar():
            return fn(str(source) if isinstance(source, os.PathLike) else source, *args, **NO_CODE, **kwargs)
    except ValueError as e:
        refused = _refused(e, source)
        if refused is None:
            raise
        raise refused from None


def auto_config(source, **kwargs):
    from transformers import AutoConfig

    return _call(AutoConfig.from_pretrained, source, **kwargs)


def auto_tokenizer(source, **kwargs):
    from transformers import AutoTokenizer

    return _call(AutoTokenizer.from_pretrained, source, **kwargs)


def auto_model(auto_cls, source, **kwargs):
    """`auto_cls.from_pretrained(source)`, e.g. auto_model(AutoModelForCausalLM, folder)."""
    return _call(auto_cls.from_pretrained, source, **kwargs)


def config_from_dict(config_dict: dict):
    """A transformers config from a dict saved in config.json (its `model_type` picks the class)."""
    from transformers import AutoConfig

    cfg = dict(config_dict)
    if "auto_map" in cfg:
        raise CheckpointError("the saved model config asks to run Python code (auto_map); edu-flash never runs "
                              "code from a model folder")
    return AutoConfig.for_model(cfg.pop("model_type"), **cfg)


def model_from_config(auto_cls, config):
    """`auto_cls.from_config(config)`: random weights, to be filled from model.safetensors."""
    return auto_cls.from_config(config, **NO_CODE)

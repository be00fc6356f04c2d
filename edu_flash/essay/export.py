"""EssayScorer's ONNX export: the encoder + pooling + sigmoid head as one graph (input ids and
attention mask in, the scaled score in [0, 1] out), its tokenizer and score ranges beside it."""
from __future__ import annotations

from pathlib import Path

SNIPPET = '''```python
import json
import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

meta = json.load(open("{name}.json"))                      # written beside the model by export()
tok = Tokenizer.from_file("{name}.tokenizer.json")
tok.enable_truncation(meta["max_length"])
tok.enable_padding(pad_id=meta["pad_token_id"])
session = ort.InferenceSession("{name}")
essays, prompt = ["Computers help people learn because they can look things up."], "{prompt}"
enc = tok.encode_batch(essays)
feed = {{"input_ids": np.array([e.ids for e in enc], dtype=np.int64),
        "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64)}}
scaled = session.run(None, feed)[0].reshape(len(essays), -1)  # (essays, traits), in [0, 1]
scores = {{}}
for j, trait in enumerate(meta["traits"]):
    lo, hi, step = meta["grids"][trait][prompt]           # the prompt's grid: low, high, step
    raw = lo + np.clip(scaled[:, j], 0, 1) * (hi - lo)
    scores[trait] = np.clip(lo + np.floor((raw - lo) / step + 0.5 + 1e-6) * step, lo, hi)  # nearest grid point, halves up
print({show})
```'''


def spec(task):
    import torch

    from ..core.export import ExportSpec

    pad = task.tokenizer.pad_token_id or 0
    vocab = task.model.encoder.config.vocab_size
    traits, grids = task.traits, task.score_grids()
    several = len(traits) > 1
    axes = {0: "batch", 1: "length"}

    def example(sz):
        g = torch.Generator().manual_seed(sz["batch"] * 1009 + sz["length"])
        ids = torch.randint(0, vocab, (sz["batch"], sz["length"]), generator=g)
        mask = torch.ones_like(ids)
        if sz["batch"] > 1:  # a shorter, padded essay in the batch
            ids[-1, sz["length"] // 2 + 1:], mask[-1, sz["length"] // 2 + 1:] = pad, 0
        return {"input_ids": ids, "attention_mask": mask}

    def tokenizer_file(path: Path) -> None:
        task.tokenizer.backend_tokenizer.save(str(path.with_name(path.name + ".tokenizer.json")))

    prompt = next(iter(grids[traits[0]]))
    show = "scores" if several else f"scores[{traits[0]!r}]"
    return ExportSpec(
        module=task.model, example=example, sizes={"batch": 2, "length": 16},
        dynamic={"input_ids": axes, "attention_mask": axes}, output="score",
        output_axes={0: "batch", 1: "traits"} if several else {0: "batch"},
        meta={"task": task.task_name, "max_length": task.hparams.max_length, "pad_token_id": pad,
              "traits": traits, "score_ranges": task.state["score_ranges"],
              "grids": {t: {p: [g.lo, g.hi, g.step] for p, g in grids[t].items()} for t in traits},
              "output_is": ("one column per trait (in the order of 'traits'), each " if several else "")
              + "the score scaled to [0, 1] on the prompt's range: score = lo + s * (hi - lo), "
              "rounded to the grid lo, lo + step, ..., hi (halves up); 'grids' holds [lo, hi, step] per trait and prompt"},
        card=lambda name: SNIPPET.format(name=name, prompt=prompt, show=show),
        extra_files=tokenizer_file)

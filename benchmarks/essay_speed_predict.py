"""essay_speed.py's prediction rows: `transformers.pipeline` over an HF model holding the trained
EssayScorer's weights, `EssayScorer.predict` on torch (fp32, bf16) and on onnxruntime (the graph
`EssayScorer.export` writes), plus two onnxruntime variants measured for reference: the graph after
onnxruntime's transformer optimizer, and with int8 dynamic quantisation. Each returns (scores in
[0, 1], wall s, CPU s)."""
from __future__ import annotations

import time
from pathlib import Path


def hf_equivalent(scorer, folder: Path):
    """Save the trained EssayScorer's encoder + head as a Hugging Face model with the same forward."""
    import torch
    from torch import nn
    from transformers import BertModel, BertPreTrainedModel
    from transformers.modeling_outputs import SequenceClassifierOutput

    class MeanPoolSigmoidRegressor(BertPreTrainedModel):
        def __init__(self, config):
            super().__init__(config)
            self.bert = BertModel(config, add_pooling_layer=False)
            self.dropout = nn.Dropout(config.hidden_dropout_prob)
            self.head = nn.Linear(config.hidden_size, 1)
            self.post_init()

        def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, **kw):
            h = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                          token_type_ids=token_type_ids).last_hidden_state
            m = attention_mask.unsqueeze(-1).to(h.dtype)
            pooled = (h * m).sum(1) / m.sum(1).clamp(min=1.0)
            return SequenceClassifierOutput(logits=torch.sigmoid(self.head(self.dropout(pooled)).float()))

    enc = scorer.model.encoder
    config = enc.config.__class__.from_dict(enc.config.to_dict())
    config.num_labels, config.problem_type = 1, "regression"
    hf = MeanPoolSigmoidRegressor(config)
    sd = {("bert." + k[len("encoder."):] if k.startswith("encoder.") else k): v
          for k, v in scorer.model.state_dict().items()}
    missing, unexpected = hf.load_state_dict(sd, strict=False)
    assert not unexpected and all("position_ids" in k for k in missing), (missing, unexpected)
    hf.save_pretrained(str(folder))
    scorer.tokenizer.save_pretrained(str(folder))
    return MeanPoolSigmoidRegressor.from_pretrained(str(folder)).eval()


def bench_pipeline(pipe, texts, batch_size, max_length):
    pipe(texts[:4], batch_size=batch_size, truncation=True, max_length=max_length)  # warm-up
    t, c = time.perf_counter(), time.process_time()
    out = pipe(texts, batch_size=batch_size, truncation=True, max_length=max_length)
    dt, cpu = time.perf_counter() - t, time.process_time() - c
    return [o["score"] if isinstance(o, dict) else o[0]["score"] for o in out], dt, cpu


def bench_predict(scorer, pred_df, precision, runtime="torch"):
    kw = {"runtime": runtime} if runtime != "torch" else {}
    scorer.predict(pred_df.iloc[:4], rounded=False, precision=precision, **kw)  # warm-up (builds the ORT session)
    t, c = time.perf_counter(), time.process_time()
    out = scorer.predict(pred_df, rounded=False, precision=precision, **kw)
    return out, time.perf_counter() - t, time.process_time() - c


def onnx_variants(scorer, work: Path, threads: int | None) -> dict:
    """Sessions for the reference variants: {name: session} (a variant that cannot be built is left out)."""
    from edu_flash.core.export import session

    scorer.export(work / "essay.onnx")
    out = {}
    try:
        from onnxruntime.transformers.optimizer import optimize_model

        cfg = scorer.model.encoder.config
        opt = optimize_model(str(work / "essay.onnx"), model_type="bert", num_heads=cfg.num_attention_heads,
                             hidden_size=cfg.hidden_size)
        opt.save_model_to_file(str(work / "essay-optimized.onnx"))
        out["onnxruntime fp32, transformer optimizer"] = session(work / "essay-optimized.onnx", threads)
    except Exception as e:  # noqa: BLE001 - reported, the other rows still run
        print(f"  (onnxruntime transformer optimizer not measured: {type(e).__name__}: {e})")
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(work / "essay.onnx"), str(work / "essay-int8.onnx"), weight_type=QuantType.QInt8)
    out["onnxruntime int8 (dynamic quantisation)"] = session(work / "essay-int8.onnx", threads)
    return out


def bench_session(scorer, sess, texts, prompts_unused=None):
    """A session through EssayScorer's own batching (length-sorted, dynamic padding)."""
    from edu_flash.core.export import OnnxModule
    from edu_flash.essay.model import predict_scaled

    model = OnnxModule(sess)
    run = lambda t: predict_scaled(model, scorer.tokenizer, t, max_length=scorer.hparams.max_length,  # noqa: E731
                                   batch_size=scorer.hparams.predict_batch_size, device=__import__("torch").device("cpu"))
    run(texts[:4])
    t, c = time.perf_counter(), time.process_time()
    out = run(texts)
    return out, time.perf_counter() - t, time.process_time() - c

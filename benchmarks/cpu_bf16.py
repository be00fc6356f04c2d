"""Does bf16 pay on this CPU? Raw torch, side by side in one process: a training step of a
MiniLM-sized encoder (6 layers, hidden 384, from config) in fp32 and under bf16 autocast, an LSTM
(DKT's layer) under bf16 autocast, and what edu-flash's precision check picks here.

    python benchmarks/cpu_bf16.py --threads 1
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch


def step_times(model, opt, x, bf16: bool, steps: int) -> list[float]:
    out = []
    for _ in range(steps + 1):   # the first step warms up and is dropped
        t = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(input_ids=x).last_hidden_state.float().pow(2).mean()
        loss.backward()
        opt.step()
        opt.zero_grad()
        out.append(time.perf_counter() - t)
    return out[1:]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--length", type=int, default=256)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from transformers import BertConfig, BertModel

    from edu_flash.core.precision import effective, native_bf16

    print(f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}, "
          f"{args.threads} thread(s); native bf16 (oneDNN): {native_bf16('cpu')}; "
          f"edu-flash runs precision='bf16-mixed' as {effective('bf16-mixed', 'cpu')!r}")
    torch.manual_seed(0)
    cfg = BertConfig(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536)
    model = BertModel(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    x = torch.randint(0, cfg.vocab_size, (args.batch, args.length))
    med = {}
    for name, bf16 in (("fp32", False), ("bf16 autocast", True)):
        ts = step_times(model, opt, x, bf16, args.steps)
        med[name] = statistics.median(ts)
        print(f"encoder training step, batch {args.batch} x {args.length} tokens, {name}: "
              f"median {med[name]:.2f} s over {args.steps} steps ({', '.join(f'{t:.2f}' for t in ts)})")
    print(f"bf16 / fp32 step time: {med['bf16 autocast'] / med['fp32']:.2f}x")
    lstm, z = torch.nn.LSTM(64, 64, batch_first=True), torch.randn(32, 100, 64)
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            lstm(z)[0].float().sum().backward()
        print("LSTM under bf16 autocast: runs")
    except RuntimeError as e:
        print(f"LSTM under bf16 autocast: fails ({str(e).splitlines()[0][:100]})")


if __name__ == "__main__":
    main()

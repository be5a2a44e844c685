"""Training throughput on a GPU: tokens/s and MFU per size, kernel pair and execution mode.

    python -m minigpt.throughput --sizes 10m,100m,1b --kernels triton,torch --modes eager,compile

This times the trainer's own step (bf16 autocast, fused AdamW, gradient clipping) on random token
batches that already sit on the GPU, so the figure is the model's, not the data loader's. Each
combination warms up first (Triton autotuning, torch.compile), then times `--steps` steps with one
synchronisation at the end. The trainer itself reads the loss every step (`loss.item()`); the
`sync` mode does the same, to show what that host round trip costs at small sizes.

kernels: `triton` = our attention + LayerNorm, `torch` = SDPA + F.layer_norm.
modes: `eager`, `sync` (eager, reading the loss each step), `compile` (torch.compile default),
`reduce-overhead` (torch.compile with CUDA graphs).
MFU = model FLOPs per step (6N per token + attention, minigpt.flops.training_flops) / step time /
--peak-tflops (default 989: dense bf16 on an H100/H200 SXM by the datasheet).
One CSV row per combination goes to --out; a combination that fails (out of memory, a compile
error) is recorded with its error and the rest go on.
"""
from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import torch

from .config import SIZES, GPTConfig
from .flops import count_params, training_flops
from .model import GPT

KERNELS = {"triton": ("triton", "triton"), "torch": ("sdpa", "torch")}
MODES = ("eager", "sync", "compile", "reduce-overhead")
FIELDS = ["size", "params", "kernels", "mode", "batch_size", "seq_len", "tokens_per_step",
          "step_ms", "tokens_per_s", "mfu", "peak_mem_gib", "note"]


def _csv_list(text: str, valid, what: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in items if t not in valid]
    if not items or bad:
        raise argparse.ArgumentTypeError(f"unknown {what} {bad or text!r}; valid: {', '.join(valid)}")
    return list(dict.fromkeys(items))


def measure(size: str, kernels: str, mode: str, batch_size: int, seq_len: int, steps: int,
            warmup: int, peak_tflops: float, device: str = "cuda") -> dict:
    """Time `steps` training steps of one combination; `device="cpu"` (eager) is for tests."""
    cuda = torch.device(device).type == "cuda"
    attn, norm = KERNELS[kernels]
    torch.manual_seed(0)
    config = GPTConfig.from_size(size, block_size=seq_len, attn=attn, norm=norm)
    model = GPT(config, device)
    opt = torch.optim.AdamW(model.optimizer_groups(0.1), lr=1e-4, fused=cuda)
    gen = torch.Generator(device=device).manual_seed(0)
    x = torch.randint(0, config.vocab_size, (batch_size, seq_len), device=device, generator=gen)
    y = torch.roll(x, -1, dims=1)

    def loss_of(xb, yb):
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
            return model(xb, yb)[1]

    forward = loss_of
    if mode in ("compile", "reduce-overhead"):
        forward = torch.compile(loss_of, mode="reduce-overhead" if mode == "reduce-overhead" else None)

    def step():
        loss = forward(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item() if mode == "sync" else loss.detach()

    sync = torch.cuda.synchronize if cuda else (lambda: None)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    for _ in range(warmup):
        step()
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    step_s = (time.perf_counter() - start) / steps
    tokens = batch_size * seq_len
    flops = training_flops(config, tokens, seq_len)
    return dict(size=size, params=count_params(config)["total"], kernels=kernels, mode=mode,
                batch_size=batch_size, seq_len=seq_len, tokens_per_step=tokens,
                step_ms=round(step_s * 1e3, 3), tokens_per_s=round(tokens / step_s),
                mfu=round(flops / step_s / (peak_tflops * 1e12), 4),
                peak_mem_gib=round(torch.cuda.max_memory_allocated() / 2 ** 30, 2) if cuda else "", note="")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m minigpt.throughput", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--sizes", type=lambda s: _csv_list(s, SIZES, "size"), default="10m,100m",
                        help=f"comma-separated presets: {', '.join(SIZES)}")
    parser.add_argument("--kernels", type=lambda s: _csv_list(s, KERNELS, "kernels"),
                        default="triton,torch", help="triton (ours), torch (SDPA + F.layer_norm)")
    parser.add_argument("--modes", type=lambda s: _csv_list(s, MODES, "mode"), default="eager",
                        help=f"comma-separated: {', '.join(MODES)}")
    parser.add_argument("--tokens-per-step", type=int, default=65536,
                        help="batch size is this divided by --seq-len")
    parser.add_argument("--seq-len", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=10, help="timed steps")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--peak-tflops", type=float, default=989.0, help="bf16 peak for MFU")
    parser.add_argument("--out", type=Path, default=Path("throughput.csv"), help="CSV written here")
    args = parser.parse_args(argv)
    for name in ("tokens_per_step", "seq_len", "steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.warmup < 0:
        parser.error(f"--warmup must be 0 or more, got {args.warmup}")
    if not 0 < args.peak_tflops < float("inf"):
        parser.error(f"--peak-tflops must be a positive number, got {args.peak_tflops}")
    if args.tokens_per_step % args.seq_len:
        parser.error(f"--tokens-per-step {args.tokens_per_step} is not a multiple of --seq-len {args.seq_len}")
    if not torch.cuda.is_available():
        print("minigpt.throughput: no CUDA GPU is present; this benchmark measures GPU training only.",
              file=sys.stderr)
        return 2
    batch = args.tokens_per_step // args.seq_len
    print(f"{torch.cuda.get_device_name()} | torch {torch.__version__}", flush=True)
    rows = []
    for size in args.sizes:
        for kernels in args.kernels:
            for mode in args.modes:
                try:
                    row = measure(size, kernels, mode, batch, args.seq_len, args.steps, args.warmup,
                                  args.peak_tflops)
                except Exception as exc:  # OOM or a compile failure: record it, go on
                    first = str(exc).splitlines()[0][:160] if str(exc) else ""
                    row = dict(size=size, kernels=kernels, mode=mode, batch_size=batch,
                               seq_len=args.seq_len, note=f"failed: {type(exc).__name__}: {first}")
                torch.cuda.empty_cache()
                torch._dynamo.reset()
                rows.append(row)
                print(" ".join(f"{k}={row.get(k, '')}" for k in FIELDS if row.get(k, "") != ""),
                      flush=True)
                with args.out.open("w", newline="") as handle:  # rewritten each time: survives a kill
                    writer = csv.DictWriter(handle, fieldnames=FIELDS)
                    writer.writeheader()
                    writer.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())

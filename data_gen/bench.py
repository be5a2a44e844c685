"""Tokens per second of the training streams, the Python one against the numpy one, side by side.

    python -m data_gen.bench [--seconds 3]

Both streams build the same kind of batch (the sweeps' own batch shapes: the CPU mixture at 32 x 64
tokens, the GPU mixture at 256 x 64, the in-context episodes of the icl sweep at 32 x 64; each pair
chosen by data_gen.make_stream) on one thread; a token counts whether it is an example or
padding, as the model reads both. Run it with OMP_NUM_THREADS=1 for a one-core figure.
"""
from __future__ import annotations

import argparse
import sys
import time

import torch

from . import make_stream, make_task

MIXTURES = {
    "cpu (add2, add3; 32 x 64)": (("add2", "add3"), 32, 64),
    "gpu (add8, mul2, mul3, mod97-div; 256 x 64)": (("add8", "mul2", "mul3", "mod97-div"), 256, 64),
    "icl episodes (icl-op2, icl-rule7; 32 x 64)": (("icl-op2", "icl-rule7"), 32, 64),
}


def tokens_per_second(stream, seconds: float) -> float:
    stream.next_batch()  # first-call costs out of the figure
    batches, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        stream.next_batch()
        batches += 1
    elapsed = time.perf_counter() - start
    return batches * stream.batch_size * stream.seq_len / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data_gen.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="timing window per stream")
    args = parser.parse_args(argv)
    if not 0 < args.seconds < 3600:
        parser.error(f"--seconds must be a positive number of seconds below 3600, got {args.seconds}")
    torch.set_num_threads(1)
    print(f"{'mixture':<46}{'Python stream tok/s':>20}{'numpy stream tok/s':>24}{'ratio':>8}")
    for label, (names, batch, seq_len) in MIXTURES.items():
        tasks = [make_task(n) for n in names]
        old = tokens_per_second(make_stream(tasks, batch, seq_len, 0, fast=False), args.seconds)
        new = tokens_per_second(make_stream(tasks, batch, seq_len, 0, fast=True), args.seconds)
        print(f"{label:<46}{old:>20,.0f}{new:>24,.0f}{new / old:>8.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

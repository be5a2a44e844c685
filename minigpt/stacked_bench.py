"""Time per model per training step: S separate Trainer runs against one StackedTrainer run.

    OMP_NUM_THREADS=1 python -m minigpt.stacked_bench --sizes 6k,25k,50k,100k,200k --stacks 3,5,10

Both sides are the real trainers on the CPU sweep's mixture (add2, add3; one stream per seed), so
the figure includes what a sweep unit pays per step: data, forward, backward, clipping, AdamW.
The time is the CPU time of the trainers' `run()` (one torch thread, so the calling thread's CPU
time): on a machine shared with other jobs, wall time also counts the time slices given to them
(at load 9-10 on 2 cores, 25K with S=5 read 58-110 ms per model-step in wall time and 24-31 ms
in CPU time over ten runs). A third side, `vmap`, is the StackedTrainer with its batched forward
replaced by GPT.forward under torch.vmap (torch.func.functional_call over the stacked
parameters), the formulation minigpt.stacked did not take. The sides alternate within each
repeat, in one process; the medians of the repeats are reported, the ratios as medians of the
ratios within each repeat, with the load average before and after.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings

import torch
from torch.func import functional_call

from data_gen import TrainStream, make_task

from .config import SIZES, GPTConfig, TrainConfig
from .model import GPT
from .stacked import StackedTrainer
from .train import Trainer

TASKS = ("add2", "add3")


def vmap_loss(params, model, idx, targets, recompute=False):
    """Each model's loss (S,) by running GPT.forward under torch.vmap over the stacked params."""
    if recompute:
        raise ValueError("the vmap formulation does not recompute blocks")

    def one(p, x, y):
        return functional_call(model, p, (x, y))[1]

    return torch.vmap(one)(params, idx, targets)


class VmapStackedTrainer(StackedTrainer):
    loss_fn = staticmethod(vmap_loss)


def _streams(seeds, cfg):
    tasks = [make_task(t) for t in TASKS]
    return [TrainStream(tasks, cfg.batch_size, cfg.seq_len, seed) for seed in seeds]


def time_separate(config: GPTConfig, seeds: list[int], cfg: TrainConfig) -> tuple[float, list]:
    """CPU seconds of `run()` summed over one Trainer per seed, and the first losses."""
    total, first = 0.0, []
    for seed, stream in zip(seeds, _streams(seeds, cfg)):
        torch.manual_seed(seed)
        trainer = Trainer(GPT(config), stream, cfg, cfg.lr_for(config.n_embd), progress=False)
        start = time.thread_time()
        result = trainer.run()
        total += time.thread_time() - start
        first.append(result.losses[0])
    return total, first


def time_stacked(kind, config: GPTConfig, seeds: list[int], cfg: TrainConfig) -> tuple[float, list]:
    """CPU seconds of one stacked `run()`, and the first losses."""
    trainer = kind(config, seeds, _streams(seeds, cfg), cfg, cfg.lr_for(config.n_embd),
                   progress=False)
    start = time.thread_time()
    results = trainer.run()
    return time.thread_time() - start, [r.losses[0] for r in results]


SIDES = {"separate": time_separate,
         "stacked": lambda *a: time_stacked(StackedTrainer, *a),
         "vmap": lambda *a: time_stacked(VmapStackedTrainer, *a)}


def measure(size: str, stack: int, steps: int, repeats: int, batch_size: int = 32,
            seq_len: int = 64) -> dict[str, float]:
    """Median ms per model per step of each side; sides alternate within each repeat."""
    config = GPTConfig.from_size(size, block_size=seq_len)
    seeds = list(range(stack))
    cfg = TrainConfig(steps=steps, batch_size=batch_size, seq_len=seq_len, warmup_steps=1,
                      checkpoint_minutes=0)
    warm = TrainConfig(steps=2, batch_size=batch_size, seq_len=seq_len, warmup_steps=1,
                       checkpoint_minutes=0)
    first = {name: side(config, seeds, warm)[1] for name, side in SIDES.items()}
    for name in ("stacked", "vmap"):  # the same models on the same data: the same first losses
        worst = max(abs(a - b) for a, b in zip(first[name], first["separate"]))
        if worst > 1e-5:
            raise RuntimeError(f"{name} first losses differ from separate runs by {worst:.2e}")
    times: dict[str, list[float]] = {name: [] for name in SIDES}
    for _ in range(repeats):
        for name, side in SIDES.items():
            times[name].append(side(config, seeds, cfg)[0] / (stack * steps) * 1e3)
    out = {name: statistics.median(values) for name, values in times.items()}
    for name in ("stacked", "vmap"):  # ratios within a repeat: its sides ran under similar load
        out[name + "_ratio"] = statistics.median(
            a / b for a, b in zip(times[name], times["separate"]))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m minigpt.stacked_bench",
                                     description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--sizes", default="6k,25k,50k,100k,200k", help="comma-separated presets")
    parser.add_argument("--stacks", default="3,5,10", help="comma-separated models per stack")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per run")
    parser.add_argument("--repeats", type=int, default=3, help="alternating repeats; median kept")
    args = parser.parse_args(argv)
    sizes = args.sizes.split(",")
    bad = [s for s in sizes if s not in SIZES]
    if bad:
        parser.error(f"unknown size(s) {', '.join(bad)}; valid: {', '.join(SIZES)}")
    try:
        stacks = [int(s) for s in args.stacks.split(",")]
    except ValueError:
        parser.error(f"--stacks must be comma-separated whole numbers, got {args.stacks!r}")
    if min(stacks) < 1 or args.steps < 1 or args.repeats < 1:
        parser.error("--stacks, --steps and --repeats must be at least 1")
    torch.set_num_threads(1)
    # vmap has no batching rule for PyTorch's CPU attention kernel and says so once per call site
    warnings.filterwarnings("ignore", message="There is a performance drop")
    print(f"torch {torch.__version__}, 1 thread, batch 32 x 64, {args.steps} steps, "
          f"median of {args.repeats}; load before {os.getloadavg()[0]:.2f}", flush=True)
    print("| size | S | separate ms | stacked ms | stacked / separate | vmap ms | vmap / separate |")
    print("| --- | --- | --- | --- | --- | --- | --- |", flush=True)
    for size in sizes:
        for stack in stacks:
            ms = measure(size, stack, args.steps, args.repeats)
            print(f"| {size} | {stack} | {ms['separate']:.2f} | {ms['stacked']:.2f} | "
                  f"{ms['stacked_ratio']:.2f} | {ms['vmap']:.2f} | {ms['vmap_ratio']:.2f} |",
                  flush=True)
    print(f"load after {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

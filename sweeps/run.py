"""python -m sweeps.run SWEEP: train every size of a named sweep and show where abilities appear.

Picks the GPU ladder on a CUDA machine and the CPU ladder otherwise (and says which), writes
runs/<sweep>/<timestamp>/ (see sweeps.runner), prints one table per task, and builds the report.
Started again with the same --out, it resumes where it stopped.
"""
from __future__ import annotations

import signal
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from kernels import resolve_attention, resolve_norm
from minigpt.config import CPU_LADDER, GPTConfig, check_device
from minigpt.flops import estimate_run, memory_bytes, size_warnings
from minigpt.threads import configure_threads
from minigpt.train import STOP_REQUESTED

from . import ray_pool, report
from .catalog import SWEEPS
from .flags import apply_flags, build_parser, parse_shard, parse_workers
from .plan import plan_gate
from .pool import WorkerError, unit_groups
from .runner import run_sweep, unit_steps


def resolve_device(parser, name: str) -> str:
    try:
        return check_device(name)
    except ValueError as exc:
        parser.error(f"--device: {exc}")


def _say(message: str) -> None:
    """Print to stderr, ignoring a closed or broken stderr (a nohup run, a job scheduler): a
    signal handler that raised here would lose the checkpoint it is meant to protect."""
    try:
        print(message, file=sys.stderr, flush=True)
    except (OSError, ValueError, AttributeError):
        pass


def _request_stop(signum, frame):
    """First SIGINT/SIGTERM: stop after the current step, checkpointed. Second: stop at once."""
    if STOP_REQUESTED.is_set():
        raise KeyboardInterrupt
    STOP_REQUESTED.set()
    _say("\nstopping after the current step (signal again to stop at once)")


def check_budget(parser, cfg, device_type: str) -> None:
    """Warn about runs that will take hours; refuse one whose memory estimate exceeds the machine."""
    largest = max(cfg.sizes, key=lambda s: GPTConfig.from_size(s).n_embd * GPTConfig.from_size(s).n_layer)
    model = GPTConfig.from_size(largest, block_size=cfg.train.seq_len)
    t = cfg.train
    for warning in size_warnings(model, t.steps, t.batch_size, t.seq_len, device_type,
                                 label=f"size {largest}"):
        _say(f"warning: {warning}")
    have = memory_bytes(device_type)
    need = estimate_run(model, t.steps, t.batch_size, t.seq_len, device_type, True)["bytes"]
    if have and need > have:  # even with activation checkpointing, which the runner turns on
        parser.error(f"size {largest} at batch {t.batch_size} x {t.seq_len} tokens needs an estimated "
                     f"{need / 2**30:.0f} GiB even with activation checkpointing, more than the "
                     f"{have / 2**30:.0f} GiB here; lower --batch-size")


def _configure(parser, args):
    """(cluster or None, device, the validated config, shard), refusing bad input early."""
    cluster, device = ray_pool.join(parser, args) or (None, resolve_device(parser, args.device))
    cfg = apply_flags(parser, args, SWEEPS[args.sweep](torch.device(device).type))
    cfg = replace(cfg, train=replace(cfg.train, device=device))
    shard = parse_shard(parser, args.shard)
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        parser.error(f"--out: {args.out} is a file; give a folder (new, or a run folder to resume)")
    units = len(cfg.units())
    if shard[1] > units:
        parser.error(f"--shard {args.shard}: the sweep has only {units} runs, so at most {units} "
                     f"shards; use --shard i/{units} or fewer")
    return cluster, device, cfg, shard


def _kernels(parser, cfg, device: str) -> tuple[str, str]:
    """The attention and LayerNorm implementations the models will use; a bad explicit choice
    fails here, before any training."""
    try:
        return resolve_attention(cfg.attn, device)[0], resolve_norm(cfg.norm, device)[0]
    except ValueError as exc:
        parser.error(str(exc))


def _announce(cfg, device: str, out: Path, machine: str | None, kernels) -> None:
    if machine:  # (Ray's scheduler has described its cluster already)
        print(machine)
    auto = " (auto: Triton on CUDA, PyTorch elsewhere)" if "auto" in (cfg.attn, cfg.norm) else ""
    print(f"kernels: attention {kernels[0]}, LayerNorm {kernels[1]}{auto}")
    t = cfg.train
    print(f"sweep '{cfg.name}': {cfg.description}\nbudget per model: {t.steps} steps x "
          f"{t.batch_size} contexts x {t.seq_len} tokens = {t.steps * t.batch_size * t.seq_len:,} "
          f"tokens\ntasks: {', '.join(cfg.tasks)}; seeds: {', '.join(map(str, cfg.seeds))}; "
          f"run folder: {out}")
    if len(cfg.conditions) > 1 or cfg.conditions[0].name != "default":
        print(f"conditions: {', '.join(c.name for c in cfg.conditions)}; budget held equal in "
              f"training {cfg.budget}")
        if cfg.budget == "examples":  # the steps above are the reference condition's
            print("steps per condition (as many examples as "
                  f"{cfg.reference_condition.name} sees): " +
                  ", ".join(f"{c.name} {unit_steps(cfg, c.name)}" for c in cfg.conditions))


def _machine_line(cfg, device: str, threads: int, why: str, workers: int, per_worker: int) -> str:
    if torch.device(device).type != "cpu":
        return f"GPU: {torch.cuda.get_device_name(torch.device(device))}; sizes {', '.join(cfg.sizes)}"
    ladder = "the CPU ladder" if tuple(cfg.sizes) == CPU_LADDER else "sizes"
    split = (f", {workers} runs at a time ({per_worker} thread{'s' if per_worker > 1 else ''} "
             f"each)" if workers > 1 else "")
    return (f"No GPU in use: running {ladder} ({', '.join(cfg.sizes)}) on {threads} CPU threads "
            f"({why}){split}.")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    cluster, device, cfg, shard = _configure(parser, args)
    device_type = torch.device(device).type
    kernels = _kernels(parser, cfg, device) if cluster is None else None  # Ray: probed there
    threads, why = configure_threads() if device_type == "cpu" else (1, "")
    todo = cfg.units()[shard[0]::shard[1]]
    workers = parse_workers(parser, args.workers, device_type, threads, len(unit_groups(todo)))
    per_worker = max(1, threads // workers)
    code = plan_gate(cfg, device, workers, per_worker, todo, args.plan, args.max_minutes)
    if code is not None:
        return code
    scheduler, machine = None, _machine_line(cfg, device, threads, why, workers, per_worker)
    if cluster is None:
        check_budget(parser, cfg, device_type)
    else:  # each unit gets the threads it would get in the local pool
        scheduler, *kernels = ray_pool.scheduler(parser, cluster, cfg, device,
                                                 per_worker if device_type == "cpu" else 1,
                                                 args.storage)
        machine = None
    out = args.out or Path("runs") / cfg.name / time.strftime("%Y%m%d-%H%M%S")
    _announce(cfg, device, out, machine, kernels)
    signal.signal(signal.SIGTERM, _request_stop)
    signal.signal(signal.SIGINT, _request_stop)
    started = time.perf_counter()
    try:
        progress = sys.stderr.isatty() if args.progress is None else args.progress
        run_sweep(cfg, out, device, shard=shard, progress=progress, workers=workers,
                  threads=per_worker if workers > 1 else None, scheduler=scheduler)
    except KeyboardInterrupt:
        _say(f"\ninterrupted; finished runs are saved. Resume with: python -m sweeps.run "
             f"{args.sweep} --out {out} (and the same flags)")
        return 130
    except (ValueError, OSError, WorkerError) as exc:  # bad folder, lock held, full disk, ...
        _say(f"error: {exc}")
        return 2
    print(f"\nsweep finished in {time.perf_counter() - started:.0f}s wall time\n")
    return _report(out, args.no_report)


def _report(out: Path, skip: bool) -> int:
    """Print the run's tables and verdicts and, unless skipped, write its report (the sweep's
    own kind of report: sweeps.report)."""
    try:
        if skip:
            print(report.summarise(out))
            return 0
        folder, text = report.build(out)
    except (ValueError, OSError) as exc:
        _say(f"error: the sweep finished and its results are saved, but the report failed: {exc}")
        return 2
    print(text)
    print(f"report: {folder / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

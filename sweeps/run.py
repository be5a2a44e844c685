"""python -m sweeps.run SWEEP: train every size of a named sweep and show where abilities appear.

Picks the GPU ladder on a CUDA machine and the CPU ladder otherwise (and says which), writes
runs/<sweep>/<timestamp>/ (see sweeps.runner), prints one table per task, and builds the report.
Started again with the same --out, it resumes where it stopped.
"""
from __future__ import annotations

import argparse
import math
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from data_gen import TASK_NAME_HELP, heldout_task_name, make_task
from kernels import ATTENTION_CHOICES, NORM_CHOICES, resolve_attention, resolve_norm
from minigpt.config import CPU_LADDER, SIZES, GPTConfig, check_device
from minigpt.flops import estimate_run, memory_bytes, size_warnings
from minigpt.threads import configure_threads
from minigpt.train import STOP_REQUESTED

from . import ray_pool, report
from .catalog import SWEEPS
from .plan import minutes_arg, plan_gate
from .pool import WorkerError, unit_groups
from .runner import run_sweep, unit_steps
from .specs import BUDGETS, shot_plan


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m sweeps.run", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"sizes: {', '.join(SIZES)}\n{TASK_NAME_HELP}\n\n"
               "example: python -m sweeps.run arithmetic --sizes 25k,200k,1m --seeds 0,1")
    p.add_argument("sweep", choices=sorted(SWEEPS), help="which named sweep to run")
    p.add_argument("--sizes", help="comma-separated size names (default: the device's ladder)")
    p.add_argument("--tasks", help="comma-separated task names (default: the sweep's mixture)")
    p.add_argument("--seeds", help="comma-separated integer seeds (default: the sweep's)")
    p.add_argument("--conditions", help="comma-separated condition names to train (default: all "
                                        "of the sweep's conditions)")
    p.add_argument("--budget", choices=BUDGETS,
                   help="what is held equal across conditions: training tokens (the default) or "
                        "training examples seen (long formats then train more steps)")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=int, help="optimizer steps per model (same for every size)")
    budget.add_argument("--tokens", type=float, help="training tokens per model; sets --steps")
    p.add_argument("--batch-size", type=int, help="contexts per step")
    p.add_argument("--eval-size", type=int, help="evaluation problems per task")
    p.add_argument("--shots", help="comma-separated k: evaluate k-shot, k solved training examples "
                                   "before each query (default: the sweep's; 0 for arithmetic, "
                                   "0,1,2,4,8 for icl); k that do not fit the context are left out")
    p.add_argument("--out", type=Path, help="run folder (default runs/<sweep>/<timestamp>); "
                                            "an existing run folder is resumed")
    p.add_argument("--device", default="auto", help="auto (cuda if present), cpu, cuda or cuda:N")
    p.add_argument("--attn", choices=ATTENTION_CHOICES, default="auto",
                   help="attention implementation (auto: triton on CUDA, sdpa on CPU)")
    p.add_argument("--norm", choices=NORM_CHOICES, default="auto",
                   help="LayerNorm implementation (auto: triton on CUDA, torch on CPU)")
    p.add_argument("--shard", default="0/1", help="run part i of n of the (size, seed) runs, as i/n")
    p.add_argument("--workers", default="auto",
                   help="train this many runs at once, each in its own process with an equal "
                        "share of the CPU threads (auto: one per thread on a CPU, as long as "
                        "there are runs for them; 1 on a GPU). On 2 cores, 2 one-thread workers "
                        "train 1.15-1.6x as many steps per second as one two-thread process")
    p.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="run each (size, seed) as a Ray task: alone, on a local Ray instance; "
                        "auto, HOST:PORT or ray://HOST:PORT joins a running cluster (needs "
                        "pip install -e \".[ray]\"; docs/tutorial.md)")
    p.add_argument("--storage", type=Path,
                   help="with --ray: a folder every node sees, where runs keep their checkpoints "
                        "while they train, so a run retried on another node or resumed later "
                        "continues from its last one (default: the run folder when every node is "
                        "this machine, else none)")
    p.add_argument("--plan", action="store_true",
                   help="print every run's tokens, FLOPs, peak memory and estimated time, the "
                        "wall time with --workers, and what needs activation checkpointing or "
                        "does not fit, then exit without training (on a CPU: times a few steps "
                        "of each size here first)")
    p.add_argument("--max-minutes", type=minutes_arg,
                   help="refuse (exit 2, before training) a sweep estimated to take longer, "
                        "naming the runs that could be dropped to fit")
    p.add_argument("--no-report", action="store_true", help="skip plots and report.md")
    p.add_argument("--keep-checkpoints", action="store_true",
                   help="keep every trained model in RUN_DIR/ckpt/ (python -m minigpt.answer "
                        "CKPT loads one and answers prompts you type)")
    bars = p.add_mutually_exclusive_group()
    bars.add_argument("--progress", action="store_true", default=None,
                      help="draw progress bars even when stderr is not a terminal")
    bars.add_argument("--no-progress", action="store_false", dest="progress",
                      help="no progress bars (the default when stderr is not a terminal: a "
                           "redirected run prints one line per finished run and a status line "
                           "every few minutes)")
    return p


def resolve_device(parser, name: str) -> str:
    try:
        return check_device(name)
    except ValueError as exc:
        parser.error(f"--device: {exc}")


def _unique(flag: str, values: list) -> tuple:
    """The values without repeats (a repeat would train or count the same run twice), saying so."""
    unique = tuple(dict.fromkeys(values))
    if len(unique) < len(values):
        print(f"note: {flag} repeats a value; each is run once: {','.join(map(str, unique))}",
              file=sys.stderr)
    return unique


def apply_flags(parser, args, cfg):
    """The sweep's config with the command-line overrides applied and validated."""
    changes, train = {}, {}
    if args.sizes is not None:
        bad = [s for s in _csv(args.sizes) if s not in SIZES]
        if bad or not _csv(args.sizes):
            parser.error(f"--sizes: unknown size {', '.join(bad) or repr(args.sizes)}; valid: "
                         f"{', '.join(SIZES)}")
        changes["sizes"] = _unique("--sizes", _csv(args.sizes))
    if args.tasks is not None:
        if not _csv(args.tasks):
            parser.error(f"--tasks: no task named; {TASK_NAME_HELP}")
        for name in _csv(args.tasks):
            try:
                make_task(name, eval_size=args.eval_size or cfg.eval_size)
            except ValueError as exc:
                parser.error(f"--tasks: {exc}")
        changes["tasks"] = _unique("--tasks", _csv(args.tasks))
        # a hidden-rule task brings its held-out rules along, evaluated and never trained
        changes["eval_only"] = tuple(h for t in changes["tasks"] if (h := heldout_task_name(t)))
    if args.conditions:
        valid = [c.name for c in cfg.conditions]
        bad = [c for c in _csv(args.conditions) if c not in valid]
        if bad:
            parser.error(f"--conditions: unknown condition {', '.join(bad)} for sweep "
                         f"'{cfg.name}'; valid: {', '.join(valid)}")
        chosen = set(_unique("--conditions", _csv(args.conditions)))
        changes["conditions"] = tuple(c for c in cfg.conditions if c.name in chosen)
        changes["budget_reference"] = cfg.reference_condition  # a part matches the whole sweep
    if args.budget is not None:
        changes["budget"] = args.budget
    if args.seeds is not None:
        try:
            seeds = [int(s) for s in _csv(args.seeds)]
        except ValueError:
            seeds = []
        if not seeds or min(seeds) < 0:
            parser.error(f"--seeds: expected comma-separated non-negative integers, got '{args.seeds}'")
        changes["seeds"] = _unique("--seeds", seeds)
    if args.shots is not None:
        try:
            shots = [int(k) for k in _csv(args.shots)]
        except ValueError:
            shots = []
        if not shots or min(shots) < 0:
            parser.error(f"--shots: expected comma-separated non-negative integers such as 0,1,4, "
                         f"got '{args.shots}'")
        changes["shots"] = _unique("--shots", sorted(shots))
        if len(changes["shots"]) > 1:  # accuracy against k is the in-context report's view
            changes["report"] = "icl"
    if args.batch_size is not None:
        if args.batch_size < 1:
            parser.error(f"--batch-size must be a positive integer, got {args.batch_size}")
        train["batch_size"] = args.batch_size
    if args.steps is not None:
        train["steps"] = args.steps
    if args.tokens is not None:
        per_step = train.get("batch_size", cfg.train.batch_size) * cfg.train.seq_len
        if not math.isfinite(args.tokens) or args.tokens < per_step:
            parser.error(f"--tokens must be a finite number of at least one step's tokens "
                         f"({per_step:,} = batch size x {cfg.train.seq_len}), got {args.tokens:g}")
        train["steps"] = round(args.tokens / per_step)
    if args.eval_size is not None:
        changes["eval_size"] = args.eval_size
        changes["curve_eval_size"] = min(cfg.curve_eval_size, args.eval_size)
    if "steps" in train:
        train["warmup_steps"] = min(cfg.train.warmup_steps, max(1, train["steps"] // 10))
        if cfg.train.eval_every:
            train["eval_every"] = max(1, train["steps"] // 5)
    try:
        if args.keep_checkpoints:
            changes["keep_checkpoints"] = True
        cfg = replace(cfg, **changes, attn=args.attn, norm=args.norm,
                      train=replace(cfg.train, **train))
        for condition in cfg.conditions:
            for message in shot_plan(cfg, condition.name)[1]:
                print(f"note: {message}", file=sys.stderr)
        return cfg
    except ValueError as exc:
        parser.error(str(exc))


def parse_shard(parser, text: str) -> tuple[int, int]:
    try:
        index, count = (int(x) for x in text.split("/"))
    except ValueError:
        parser.error(f"--shard: expected i/n such as 0/2, got '{text}'")
    if not (count >= 1 and 0 <= index < count):
        parser.error(f"--shard: need 0 <= i < n, got '{text}'")
    return index, count


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


def parse_workers(parser, text: str, device_type: str, threads: int, groups: int) -> int:
    """--workers: a whole number >= 1, or auto (one per CPU thread, at most one per run group, so
    no worker idles from the start; 1 on a GPU, where the processes would share one device)."""
    if text == "auto":
        return 1 if device_type != "cpu" else max(1, min(threads, groups))
    if not text.isdigit() or int(text) < 1:
        parser.error(f"--workers: expected auto or a whole number of at least 1, got '{text}'")
    return int(text)


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


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    cluster, device = ray_pool.join(parser, args) or (None, resolve_device(parser, args.device))
    device_type = torch.device(device).type
    cfg = apply_flags(parser, args, SWEEPS[args.sweep](device_type))
    cfg = replace(cfg, train=replace(cfg.train, device=device))
    shard = parse_shard(parser, args.shard)
    if cluster is None:  # with Ray, the probe checks these where the units will run
        try:  # the model resolves kernels; a bad explicit choice should fail before any training
            attn, _ = resolve_attention(cfg.attn, device)
            norm, _ = resolve_norm(cfg.norm, device)
        except ValueError as exc:
            parser.error(str(exc))
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        parser.error(f"--out: {args.out} is a file; give a folder (new, or a run folder to resume)")
    units = len(cfg.units())
    if shard[1] > units:
        parser.error(f"--shard {args.shard}: the sweep has only {units} runs, so at most {units} "
                     f"shards; use --shard i/{units} or fewer")
    threads, why = configure_threads() if device_type == "cpu" else (1, "")
    todo_groups = len(unit_groups(cfg.units()[shard[0]::shard[1]]))
    workers = parse_workers(parser, args.workers, device_type, threads, todo_groups)
    per_worker = max(1, threads // workers)
    code = plan_gate(cfg, device, workers, per_worker, cfg.units()[shard[0]::shard[1]], args.plan,
                     args.max_minutes)
    if code is not None:
        return code
    if cluster is None:
        check_budget(parser, cfg, device_type)
    scheduler = None
    if cluster is not None:  # each unit gets the threads it would get in the local pool
        scheduler, attn, norm = ray_pool.scheduler(parser, cluster, cfg, device,
                                                   per_worker if device_type == "cpu" else 1,
                                                   args.storage)
    elif device_type == "cpu":
        ladder = "the CPU ladder" if tuple(cfg.sizes) == CPU_LADDER else "sizes"
        split = (f", {workers} runs at a time ({per_worker} thread"
                 f"{'s' if per_worker > 1 else ''} each)" if workers > 1 else "")
        print(f"No GPU in use: running {ladder} ({', '.join(cfg.sizes)}) on "
              f"{threads} CPU threads ({why}){split}.")
    else:
        print(f"GPU: {torch.cuda.get_device_name(torch.device(device))}; sizes {', '.join(cfg.sizes)}")
    out = args.out or Path("runs") / cfg.name / time.strftime("%Y%m%d-%H%M%S")
    auto = " (auto: Triton on CUDA, PyTorch elsewhere)" if "auto" in (cfg.attn, cfg.norm) else ""
    print(f"kernels: attention {attn}, LayerNorm {norm}{auto}")
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
    signal.signal(signal.SIGTERM, _request_stop)
    signal.signal(signal.SIGINT, _request_stop)
    started = time.perf_counter()
    try:
        progress = sys.stderr.isatty() if args.progress is None else args.progress
        run_sweep(cfg, out, device, shard=shard, progress=progress,
                  workers=workers, threads=per_worker if workers > 1 else None,
                  scheduler=scheduler)
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

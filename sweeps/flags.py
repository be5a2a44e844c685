"""The command line of `python -m sweeps.run`: its flags, grouped as --help shows them, and their
translation into a validated SweepConfig. Every bad value is refused through the parser (exit 2)
with a message naming the flag, what was wrong and what is valid, before anything is written."""
from __future__ import annotations

import argparse
import math
import sys
from dataclasses import replace
from pathlib import Path

from data_gen import TASK_NAME_HELP, heldout_task_name, make_task
from kernels import ATTENTION_CHOICES, NORM_CHOICES
from minigpt.config import SIZES

from .catalog import SWEEPS
from .plan import minutes_arg
from .specs import BUDGETS, shot_plan

DESCRIPTION = ("Train every size of a named sweep and show where abilities appear. Picks the GPU\n"
               "ladder on a CUDA machine and the CPU ladder otherwise; started again with the\n"
               "same --out, it resumes where it stopped.")


def csv_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m sweeps.run", description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"sizes: {', '.join(SIZES)}\n{TASK_NAME_HELP}\n\n"
               "example: python -m sweeps.run arithmetic --sizes 25k,200k,1m --seeds 0,1")
    p.add_argument("sweep", choices=sorted(SWEEPS), help="which named sweep to run")
    _what_flags(p.add_argument_group("what to train"))
    _where_flags(p.add_argument_group("where and how"))
    _output_flags(p.add_argument_group("output"))
    return p


def _what_flags(g) -> None:
    g.add_argument("--sizes", help="comma-separated size names (default: the device's ladder)")
    g.add_argument("--tasks", help="comma-separated task names (default: the sweep's mixture)")
    g.add_argument("--seeds", help="comma-separated integer seeds (default: the sweep's)")
    g.add_argument("--conditions", help="comma-separated condition names to train (default: all "
                                        "of the sweep's conditions)")
    g.add_argument("--budget", choices=BUDGETS,
                   help="what is held equal across conditions: training tokens (the default) or "
                        "training examples seen (long formats then train more steps)")
    budget = g.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=int, help="optimizer steps per model (same for every size)")
    budget.add_argument("--tokens", type=float, help="training tokens per model; sets --steps")
    g.add_argument("--batch-size", type=int, help="contexts per step")
    g.add_argument("--eval-size", type=int, help="evaluation problems per task")
    g.add_argument("--shots", help="comma-separated k: evaluate k-shot, k solved training examples "
                                   "before each query (default: the sweep's; 0 for arithmetic, "
                                   "0,1,2,4,8 for icl); k that do not fit the context are left out")


def _where_flags(g) -> None:
    g.add_argument("--device", default="auto", help="auto (cuda if present), cpu, cuda or cuda:N")
    g.add_argument("--attn", choices=ATTENTION_CHOICES, default="auto",
                   help="attention implementation (auto: triton on CUDA, sdpa on CPU)")
    g.add_argument("--norm", choices=NORM_CHOICES, default="auto",
                   help="LayerNorm implementation (auto: triton on CUDA, torch on CPU)")
    g.add_argument("--shard", default="0/1", help="run part i of n of the (size, seed) runs, as i/n")
    g.add_argument("--workers", default="auto",
                   help="train this many runs at once, each in its own process with an equal "
                        "share of the CPU threads (auto: one per thread on a CPU, as long as "
                        "there are runs for them; 1 on a GPU). On 2 cores, 2 one-thread workers "
                        "train 1.15-1.6x as many steps per second as one two-thread process. On "
                        "a GPU, N workers share it, each with 1/N of its memory (a unit that "
                        "would not fit its share trains with activation checkpointing)")
    g.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="run each (size, seed) as a Ray task: alone, on a local Ray instance; "
                        "auto, HOST:PORT or ray://HOST:PORT joins a running cluster (needs "
                        "pip install -e \".[ray]\"; docs/tutorial.md)")
    g.add_argument("--storage", type=Path,
                   help="with --ray: a folder every node sees, where runs keep their checkpoints "
                        "while they train, so a run retried on another node or resumed later "
                        "continues from its last one (default: the run folder when every node is "
                        "this machine, else none)")
    g.add_argument("--plan", action="store_true",
                   help="print every run's tokens, FLOPs, peak memory and estimated time, the "
                        "wall time with --workers, and what needs activation checkpointing or "
                        "does not fit, then exit without training (on a CPU: times a few steps "
                        "of each size here first)")
    g.add_argument("--max-minutes", type=minutes_arg,
                   help="refuse (exit 2, before training) a sweep estimated to take longer, "
                        "naming the runs that could be dropped to fit")


def _output_flags(g) -> None:
    g.add_argument("--out", type=Path, help="run folder (default runs/<sweep>/<timestamp>); "
                                            "an existing run folder is resumed")
    g.add_argument("--no-report", action="store_true", help="skip plots and report.md")
    g.add_argument("--keep-checkpoints", action="store_true",
                   help="keep every trained model in RUN_DIR/ckpt/ (python -m minigpt.answer "
                        "CKPT loads one and answers prompts you type)")
    bars = g.add_mutually_exclusive_group()
    bars.add_argument("--progress", action="store_true", default=None,
                      help="draw progress bars even when stderr is not a terminal")
    bars.add_argument("--no-progress", action="store_false", dest="progress",
                      help="no progress bars (the default when stderr is not a terminal: a "
                           "redirected run prints one line per finished run and a status line "
                           "every few minutes)")


def unique(flag: str, values: list) -> tuple:
    """The values without repeats (a repeat would train or count the same run twice), saying so."""
    unique = tuple(dict.fromkeys(values))
    if len(unique) < len(values):
        print(f"note: {flag} repeats a value; each is run once: {','.join(map(str, unique))}",
              file=sys.stderr)
    return unique


def _what(parser, args, cfg) -> dict:
    """--sizes, --tasks, --conditions, --budget."""
    changes = {}
    if args.sizes is not None:
        bad = [s for s in csv_list(args.sizes) if s not in SIZES]
        if bad or not csv_list(args.sizes):
            parser.error(f"--sizes: unknown size {', '.join(bad) or repr(args.sizes)}; valid: "
                         f"{', '.join(SIZES)}")
        changes["sizes"] = unique("--sizes", csv_list(args.sizes))
    if args.tasks is not None:
        if not csv_list(args.tasks):
            parser.error(f"--tasks: no task named; {TASK_NAME_HELP}")
        for name in csv_list(args.tasks):
            try:
                make_task(name, eval_size=args.eval_size or cfg.eval_size)
            except ValueError as exc:
                parser.error(f"--tasks: {exc}")
        changes["tasks"] = unique("--tasks", csv_list(args.tasks))
        # a hidden-rule task brings its held-out rules along, evaluated and never trained
        changes["eval_only"] = tuple(h for t in changes["tasks"] if (h := heldout_task_name(t)))
    if args.conditions:
        valid = [c.name for c in cfg.conditions]
        bad = [c for c in csv_list(args.conditions) if c not in valid]
        if bad:
            parser.error(f"--conditions: unknown condition {', '.join(bad)} for sweep "
                         f"'{cfg.name}'; valid: {', '.join(valid)}")
        chosen = set(unique("--conditions", csv_list(args.conditions)))
        changes["conditions"] = tuple(c for c in cfg.conditions if c.name in chosen)
        changes["budget_reference"] = cfg.reference_condition  # a part matches the whole sweep
    if args.budget is not None:
        changes["budget"] = args.budget
    return changes


def _whole_numbers(parser, flag: str, text: str, example: str) -> tuple:
    """A comma-separated list of whole numbers >= 0, without repeats, or a parser error."""
    try:
        values = [int(v) for v in csv_list(text)]
    except ValueError:
        values = []
    if not values or min(values) < 0:
        parser.error(f"{flag}: expected comma-separated non-negative integers such as {example}, "
                     f"got '{text}'")
    return unique(flag, values)


def _seeds_and_shots(parser, args) -> dict:
    changes = {}
    if args.seeds is not None:
        changes["seeds"] = _whole_numbers(parser, "--seeds", args.seeds, "0,1,2")
    if args.shots is not None:
        changes["shots"] = tuple(sorted(_whole_numbers(parser, "--shots", args.shots, "0,1,4")))
        if len(changes["shots"]) > 1:  # accuracy against k is the in-context report's view
            changes["report"] = "icl"
    if args.eval_size is not None:
        changes["eval_size"] = args.eval_size
    return changes


def _training(parser, args, cfg) -> dict:
    """--batch-size, --steps, --tokens: the training config's changes."""
    train = {}
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
    if "steps" in train:
        train["warmup_steps"] = min(cfg.train.warmup_steps, max(1, train["steps"] // 10))
        if cfg.train.eval_every:
            train["eval_every"] = max(1, train["steps"] // 5)
    return train


def apply_flags(parser, args, cfg):
    """The sweep's config with the command-line overrides applied and validated."""
    changes = {**_what(parser, args, cfg), **_seeds_and_shots(parser, args)}
    if "eval_size" in changes:
        changes["curve_eval_size"] = min(cfg.curve_eval_size, changes["eval_size"])
    if args.keep_checkpoints:
        changes["keep_checkpoints"] = True
    try:
        cfg = replace(cfg, **changes, attn=args.attn, norm=args.norm,
                      train=replace(cfg.train, **_training(parser, args, cfg)))
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


def parse_workers(parser, text: str, device_type: str, threads: int, groups: int) -> int:
    """--workers: a whole number >= 1, or auto (one per CPU thread, at most one per run group, so
    no worker idles from the start; 1 on a GPU, where the processes would share one device)."""
    if text == "auto":
        return 1 if device_type != "cpu" else max(1, min(threads, groups))
    if not text.isdigit() or int(text) < 1:
        parser.error(f"--workers: expected auto or a whole number of at least 1, got '{text}'")
    return int(text)

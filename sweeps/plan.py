"""A sweep's plan before it trains: every unit's tokens, FLOPs, peak memory and time on the chosen
device, the sweep's wall time as its workers would run it, and which units need activation
checkpointing to fit or do not fit at all (issue 21).

    python -m sweeps.run arithmetic --plan            print the plan and exit
    python -m sweeps.run arithmetic --max-minutes 20  refuse (exit 2) a longer sweep, naming what
                                                      could be dropped to fit

A unit's time:
- on a GPU, from measured rates (sweeps.rates): steps x the estimated step, a third more with
  activation checkpointing (the forward runs twice: 8N instead of 6N FLOPs a token). Start-up,
  Triton autotuning and evaluations are not counted: not measured yet.
- on a CPU, from a few steps timed here (sweeps.cpu_timing), since CPUs of one nominal kind differ
  about 2x: set-up + steps x a step + the evaluations during training and at the end + the
  checkpoints the runner writes.
A staged unit whose first stages another unit of its (size, seed) trains first starts from their
shared checkpoint (sweeps.stages) and trains only the rest.

Wall time: with one worker the units run one after another in this process. With more, each
worker starts (a spawned process's imports, timed here) and the groups of sweeps.pool (every
condition of one size and seed) go largest first by sweeps.pool.group_cost to whichever worker is
free first. The plan simulates that list schedule (Graham 1969) rather than dividing the sum.

Memory: minigpt.flops.estimate_run's peak; with per-block activation checkpointing,
checkpointed_peak_bytes. A unit fits when its estimate is within its worker's share of the
device's memory (all of it with one worker).
"""
from __future__ import annotations

import argparse
import heapq
import math
import sys
from dataclasses import dataclass
from typing import Sequence

from minigpt.config import GPTConfig
from minigpt.flops import estimate_run, training_flops

from . import cpu_timing
from .pool import group_cost, unit_groups
from .rates import DeviceSpec, describe_device, gpu_step_seconds, kernel_pair
from .runner import unit_steps
from .specs import SweepConfig
from .stages import prefix_key

Unit = tuple[str, str, int]  # (condition, size, seed)
RECOMPUTE = 8 / 6  # training FLOPs a token with the forward run twice, against without
GPU_NOT_COUNTED = ("start-up, Triton autotuning and evaluations (not yet measured on a GPU)")


def checkpointed_peak_bytes(config: GPTConfig, batch_size: int, seq_len: int,
                            device_type: str = "cpu") -> float:
    """Peak training bytes with per-block activation checkpointing (minigpt.flops.estimate_run's
    model of it: each block keeps its input, one block is recomputed in full)."""
    return estimate_run(config, 1, batch_size, seq_len, device_type, True)["bytes"]


@dataclass(frozen=True)
class UnitEstimate:
    """One unit's plan: its budget, memory and time on the plan's device."""
    condition: str
    size: str
    seed: int
    steps: int                # its training budget in steps
    trained_steps: int        # of which it trains itself (the rest come from a shared stage)
    tokens: int
    flops: float
    plain_bytes: float        # estimated peak memory without activation checkpointing
    checkpointed_bytes: float
    checkpointing: bool       # needs activation checkpointing to fit its memory share
    fits: bool                # fits it at all
    seconds: float
    basis: str                # what the time rests on

    @property
    def unit(self) -> Unit:
        return (self.condition, self.size, self.seed)

    @property
    def peak_bytes(self) -> float:
        return self.checkpointed_bytes if self.checkpointing else self.plain_bytes

    def label(self, conditions: bool = False) -> str:
        return f"{self.condition + ' ' if conditions else ''}{self.size} seed {self.seed}"


@dataclass(frozen=True)
class Plan:
    cfg: SweepConfig
    device: DeviceSpec
    workers: int               # worker processes (1: the units run in this process)
    threads: int | None        # torch threads each (CPU)
    units: tuple[UnitEstimate, ...]
    start_seconds: float       # before a worker's first step: its process start and imports
    total_seconds: float       # the simulated wall time from start to the last unit's end
    not_counted: str           # what the estimate leaves out


def trained_steps(cfg: SweepConfig, units: Sequence[Unit]) -> dict[Unit, int]:
    """Steps each unit trains itself: a staged unit starts from the end of the latest stage that
    an earlier unit of its (size, seed) group already trained (sweeps.stages shares them)."""
    out = {}
    for group in unit_groups(list(units)):
        seen: set[str] = set()
        for name, size, seed in group:
            cond, steps, start = cfg.condition(name), unit_steps(cfg, name), 0
            if cond.stages:
                keys = [prefix_key(cfg, cond, size, seed, steps, i)
                        for i in range(len(cond.stages) - 1)]
                shared = [i for i, key in enumerate(keys) if key in seen]
                start = cond.stage_ends(steps)[max(shared)] if shared else 0
                seen.update(keys)
            out[(name, size, seed)] = steps - start
    return out


def _multiples(every: int, first: int, last: int) -> int:
    """How many multiples of `every` lie in [first, last]."""
    return max(0, last // every - (first - 1) // every) if last >= first else 0


def cpu_unit_seconds(timing: cpu_timing.CpuTiming, cfg: SweepConfig, steps: int,
                     trained: int) -> float:
    """A CPU unit's seconds from its timed parts. It trains steps steps - trained + 1 .. steps,
    evaluates every eval_every steps before the last, and checkpoints as minigpt.train.Trainer
    does: every checkpoint_every steps (the runner's default: a tenth of the run) and whenever
    checkpoint_minutes have passed since the last save."""
    t, start = cfg.train, steps - trained + 1
    every = t.checkpoint_every or max(1, steps // 10)
    curves = _multiples(t.eval_every, start, steps - 1) if t.eval_every else 0
    saves = _multiples(every, start, steps)
    if t.checkpoint_minutes:  # timed saves between two step saves (each save restarts the clock)
        timed = int(min(every, trained) * timing.step_s // (60 * t.checkpoint_minutes))
        saves += timed * max(1, math.ceil(trained / every))
    return (timing.setup_s + timing.first_step_s + (trained - 1) * timing.step_s
            + curves * timing.curve_eval_s + timing.final_eval_s + saves * timing.checkpoint_s)


def _memory(cfg: SweepConfig, size: str, share: float | None,
            device_type: str = "cpu") -> tuple[float, float, bool, bool]:
    """(plain bytes, checkpointed bytes, needs checkpointing, fits) for one size."""
    t = cfg.train
    model = GPTConfig.from_size(size, block_size=t.seq_len)
    plain = estimate_run(model, 1, t.batch_size, t.seq_len, device_type)["bytes"]
    recomputed = checkpointed_peak_bytes(model, t.batch_size, t.seq_len, device_type)
    if share is None or plain <= share:
        return plain, recomputed, False, True
    return plain, recomputed, recomputed <= share, recomputed <= share


def dispatch_order(cfg: SweepConfig, units: Sequence[Unit], workers: int) -> list[list[Unit]]:
    """The order units start in: the sweep's own with one worker, else sweeps.pool's (groups,
    largest group_cost first; sorted() is stable, as the pool's is)."""
    if workers == 1:
        return [[u] for u in units]
    steps = {c.name: unit_steps(cfg, c.name) for c in cfg.conditions}
    return sorted(unit_groups(list(units)), key=lambda g: -group_cost(g, steps))


def simulate_schedule(durations: Sequence[float], workers: int, start_s: float = 0.0) -> float:
    """Wall time when jobs of `durations`, in this order, each go to the first worker free, every
    worker becoming free at `start_s`: a list schedule (Graham 1969)."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    free = [start_s] * workers
    for seconds in durations:
        heapq.heappush(free, heapq.heappop(free) + seconds)
    return max(free) if durations else 0.0


def wall_seconds(cfg: SweepConfig, units: Sequence[UnitEstimate], workers: int,
                 start_s: float) -> float:
    """The simulated wall time of running `units` (a plan's, or a part of them)."""
    seconds = {u.unit: u.seconds for u in units}
    groups = dispatch_order(cfg, list(seconds), workers)
    return simulate_schedule([sum(seconds[u] for u in g) for g in groups],
                             min(workers, len(groups)) or 1, start_s)


def timing_key(cfg: SweepConfig, condition: str, size: str) -> tuple:
    """Units alike in what the CPU timing measures: size, evaluated tasks, first mixture."""
    cond = cfg.condition(condition)
    return (size, cfg.eval_tasks(condition),
            cond.stages[0].tasks if cond.stages else cond.tasks(cfg.tasks))


def build_plan(cfg: SweepConfig, device: DeviceSpec, workers: int = 1, threads: int | None = None,
               units: Sequence[Unit] | None = None, cpu_measure=cpu_timing.measure) -> Plan:
    """The plan of `units` (default: all the sweep's) on `device` with `workers` at a time,
    `threads` torch threads each on a CPU. `cpu_measure(cfg, pairs, workers, threads)` times the
    (condition, size) pairs on a CPU and a worker's start (sweeps.cpu_timing.measure)."""
    units = list(cfg.units() if units is None else units)
    if not units:
        raise ValueError("a plan needs at least one unit")
    workers = 1 if workers <= 1 else min(workers, len(unit_groups(units)))
    share = device.memory_bytes / workers if device.memory_bytes else None
    trained = trained_steps(cfg, units)
    t = cfg.train
    start_s = 0.0
    if device.type == "cpu":
        pairs = {timing_key(cfg, c, s): (c, s) for c, s, _ in units}
        measured, start_s = cpu_measure(cfg, list(pairs.values()), workers, threads)
        timing = {key: measured[pair] for key, pair in pairs.items()}
    estimates = []
    for condition, size, seed in units:
        steps = unit_steps(cfg, condition)
        plain, recomputed, checkpointing, fits = _memory(cfg, size, share, device.type)
        if device.type == "cpu":
            seconds = cpu_unit_seconds(timing[timing_key(cfg, condition, size)], cfg, steps,
                                       trained[(condition, size, seed)])
            basis = f"timed here, {threads or 'all'} thread{'s' if threads != 1 else ''}"
        else:
            step = gpu_step_seconds(size, t.batch_size, t.seq_len, device.name,
                                    kernel_pair(cfg.attn, cfg.norm))
            seconds = trained[(condition, size, seed)] * step.seconds * (
                RECOMPUTE if checkpointing else 1.0)
            basis = step.basis + (", recomputed forward" if checkpointing else "")
        tokens = steps * t.batch_size * t.seq_len
        estimates.append(UnitEstimate(
            condition, size, seed, steps, trained[(condition, size, seed)], tokens,
            training_flops(GPTConfig.from_size(size, block_size=t.seq_len), tokens, t.seq_len),
            plain, recomputed, checkpointing, fits, seconds, basis))
    return Plan(cfg, device, workers, threads, tuple(estimates), start_s,
                wall_seconds(cfg, estimates, workers, start_s),
                "the report" if device.type == "cpu" else GPU_NOT_COUNTED)


# ------------------------------------------------------------------ what is printed
def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def _gib(count: float) -> str:
    return f"{count / 2**30:.1f} GiB" if count >= 2**30 else f"{count / 2**20:.0f} MiB"


def _si(count: float) -> str:
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if count >= scale:
            return f"{count / scale:.3g}{suffix}"
    return f"{count:.0f}"


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]


def _who(plan: Plan) -> str:
    if plan.device.type != "cpu":
        return ("one run at a time" if plan.workers == 1 else
                f"{plan.workers} runs at a time on one device, each as fast as alone (assumed)")
    threads = f"{plan.threads or 'all'} thread{'s' if plan.threads != 1 else ''}"
    return (f"{plan.workers} worker processes of {threads} each" if plan.workers > 1
            else f"one run at a time in this process, {threads}")


def format_plan(plan: Plan) -> str:
    """The plan as printed by --plan: one line per unit, then the totals and the warnings."""
    cfg, dev = plan.cfg, plan.device
    named = len(cfg.conditions) > 1 or cfg.conditions[0].name != "default"
    memory = f", {_gib(dev.memory_bytes)}" if dev.memory_bytes else ""
    rows = [(["condition"] if named else []) + ["size", "seed", "steps", "tokens", "FLOPs",
                                                "peak memory", "time", "basis"]]
    for u in plan.units:
        steps = str(u.steps) if u.trained_steps == u.steps else f"{u.trained_steps} of {u.steps}"
        memory_note = "" if u.fits and not u.checkpointing else (
            " (checkpointed)" if u.fits else " (does not fit)")
        rows.append(([u.condition] if named else []) + [
            u.size, str(u.seed), steps, _si(u.tokens), f"{u.flops:.2e}",
            _gib(u.peak_bytes) + memory_note, _duration(u.seconds), u.basis])
    busy = sum(u.seconds for u in plan.units)
    lines = [f"plan for sweep '{cfg.name}' on {dev.name} ({dev.type}{memory}), {_who(plan)}:"]
    lines += _table(rows)
    order = "largest first" if plan.workers > 1 else "in the sweep's order"
    start = f", {_duration(plan.start_seconds)} to start" if plan.start_seconds else ""
    lines.append(f"total: {len(plan.units)} runs, {_duration(busy)} of training; estimated wall "
                 f"time {_duration(plan.total_seconds)} ({order}{start})")
    lines.append(f"not counted: {plan.not_counted}")
    share = _gib(dev.memory_bytes / plan.workers) if dev.memory_bytes else "?"
    recomputed = [u for u in plan.units if u.checkpointing]
    lines.append(f"needs activation checkpointing to fit {share}: " + (", ".join(
        f"{u.label(named)} ({_gib(u.plain_bytes)} without, {_gib(u.checkpointed_bytes)} with; "
        f"time +{RECOMPUTE - 1:.0%})" for u in recomputed) or "none"))
    too_big = [u for u in plan.units if not u.fits]
    lines.append("will not fit at all: " + (", ".join(
        f"{u.label(named)} ({_gib(u.checkpointed_bytes)} even checkpointed)" for u in too_big)
        or "none"))
    return "\n".join(lines)


def drop_to_fit(plan: Plan, max_seconds: float) -> tuple[list[UnitEstimate], float]:
    """The units to leave out, longest first, until the simulated wall time is within
    `max_seconds` (or one unit is left), and the wall time then. A staged unit's shared stage
    stays counted where the plan put it, so dropping one of those is approximate."""
    kept, dropped, total = list(plan.units), [], plan.total_seconds
    while total > max_seconds and len(kept) > 1:
        longest = max(kept, key=lambda u: u.seconds)
        kept.remove(longest)
        dropped.append(longest)
        total = wall_seconds(plan.cfg, kept, plan.workers, plan.start_seconds)
    return dropped, total


def refusal(plan: Plan, max_minutes: float) -> str:
    """Why --max-minutes refuses the plan, and what could be dropped to fit."""
    cfg, limit = plan.cfg, 60 * max_minutes
    named = len(cfg.conditions) > 1
    dropped, total = drop_to_fit(plan, limit)
    lines = [f"error: sweep '{cfg.name}' is estimated at {_duration(plan.total_seconds)} wall "
             f"time, over --max-minutes {max_minutes:g}; nothing was trained.",
             "  drop, longest first: " + ", ".join(
                 f"{u.label(named)} ({_duration(u.seconds)})" for u in dropped) +
             f" -> {_duration(total)} ({'fits' if total <= limit else 'still over'})"]
    sizes = {u.size for u in dropped}
    if all(u in dropped for u in plan.units if u.size in sizes) and len(sizes) < len(cfg.sizes):
        lines[-1] += f"; that is --sizes {','.join(s for s in cfg.sizes if s not in sizes)}"
    first = [u for u in plan.units if u.seed == cfg.seeds[0]]
    if len(first) < len(plan.units):
        first_total = wall_seconds(cfg, first, plan.workers, plan.start_seconds)
        lines.append(f"  or drop the seeds above the first (--seeds {cfg.seeds[0]}): "
                     f"{len(plan.units) - len(first)} runs fewer -> {_duration(first_total)} "
                     f"({'fits' if first_total <= limit else 'still over'})")
    return "\n".join(lines)


def minutes_arg(text: str) -> float:
    """argparse type of --max-minutes: a positive, finite number of minutes."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number of minutes, got '{text}'")
    return value


def plan_gate(cfg: SweepConfig, device: str, workers: int, threads: int | None,
              units: Sequence[Unit], show: bool, max_minutes: float | None) -> int | None:
    """sweeps.run's one call: with --plan, print the plan; with --max-minutes, refuse a longer
    one. Returns the exit code when the command must stop before training (0 after --plan, 2 when
    refused), None to go on and train."""
    if not show and max_minutes is None:
        return None
    spec = describe_device(device)
    if spec.type == "cpu":
        print("planning: timing a few steps of each size on this CPU ...", file=sys.stderr,
              flush=True)
    plan = build_plan(cfg, spec, workers, threads, units)
    if show:
        print(format_plan(plan), flush=True)
    else:
        print(f"estimated wall time: {plan.total_seconds:.0f} s ({_duration(plan.total_seconds)}) "
              f"for {len(plan.units)} runs on {spec.name} (--plan shows each)", flush=True)
    if max_minutes is not None and plan.total_seconds > 60 * max_minutes:
        print(refusal(plan, max_minutes), file=sys.stderr, flush=True)
        return 2
    return 0 if show else None

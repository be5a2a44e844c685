"""Runs a sweep: one model per (condition, size, seed), trained on the task mixture, evaluated on
every task; the units run here one after another or in worker processes (sweeps.pool).

The run folder (sweeps.rundir) holds everything a report needs and survives a crash at any moment:

    config.json     the resolved sweep config (a resumed run must match it)
    results.jsonl   one row per (condition, task, size, seed, shots); a unit's rows are written in
                    one atomic replace
    curves.jsonl    evaluations during training, one row per (condition, task, size, seed, step)
    tb/<unit>/      TensorBoard scalars, <unit> = <condition>-<size>-s<seed>
    ckpt/<unit>.pt  the checkpoint of an unfinished unit (deleted once its rows exist)

A task with a scratchpad format (data_gen.scratchpad) is evaluated generatively: the model writes
until its end token and the final answer after the marker is scored (minigpt.gen_eval); its rows
add step_acc and no_answer. Plain tasks keep minigpt.evaluate's fixed-width decoding. Rows record
`examples`, the training examples seen.

A unit is one (condition, size, seed) training run. Under a token budget every condition trains
the same number of steps; under an example budget each condition's steps are set so that it sees
as many training examples as the first condition (SweepConfig.reference_condition) does in the
configured steps (long scratchpad examples then get more tokens).

Started again on the same folder, the runner skips units all of whose rows exist, continues an
unfinished unit from its checkpoint, retrains a unit with a row missing (its old rows are replaced,
never doubled), and never writes a row twice. While a sweep runs it holds the run folder's lock
(sweeps.rundir.run_lock), so a second sweep started on the same folder stops with a message
instead of writing the same rows again.
"""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

import torch

import data_gen
from data_gen import TrainStream, few_shot_set, make_task
from data_gen.tokenizer import EOS_ID
from minigpt.config import GPTConfig
from minigpt.evaluate import evaluate_examples
from minigpt.flops import memory_bytes, needs_activation_checkpointing, training_flops
from minigpt.gen_eval import evaluate_generative
from minigpt.model import GPT
from minigpt.train import Trainer

from . import records, stages
from .pool import run_parallel
from .provenance import provenance
from .records import sample_records
from .results import append_jsonl_atomic, read_jsonl, samples_path, write_sample_records
from .rundir import finished_units, prepare_run_dir, run_lock, write_unit_rows
from .specs import SweepConfig, ability_of, shot_plan


def make_stream(kind: str, device: str, tasks, batch_size: int, seq_len: int, seed: int,
                weights=None):
    """The training stream a sweep asked for; "auto" is the numpy stream on a GPU only. A mixture
    with a hidden-rule task always gets data_gen.icl.EpisodeStream: each row must hold one rule."""
    if kind == "auto":
        kind = "fast" if torch.device(device).type == "cuda" else "python"
    return data_gen.make_stream(tasks, batch_size, seq_len, seed, weights, fast=kind == "fast")


def unit_name(condition: str, size: str, seed: int) -> str:
    return f"{condition}-{size}-s{seed}"


def examples_per_context(tasks, batch_size: int, seq_len: int, samples: int = 256) -> float:
    """Mean number of whole examples packed into one context, measured on a throwaway stream.

    Every example ends with exactly one end token, which is always a target, so counting end
    tokens among the targets counts examples."""
    _, y = TrainStream(tasks, samples, seq_len, seed=12345).next_batch()
    return float((y == EOS_ID).sum()) / samples


def unit_steps(cfg: SweepConfig, condition: str) -> int:
    """Optimizer steps for one condition's runs under the sweep's budget (see the module doc)."""
    steps, ref = cfg.train.steps, cfg.reference_condition
    if cfg.budget == "tokens" or condition == ref.name:
        return steps
    per_context = {c.name: examples_per_context(
        [make_task(t, eval_size=cfg.eval_size) for t in c.tasks(cfg.tasks)],
        cfg.train.batch_size, cfg.train.seq_len) for c in (ref, cfg.condition(condition))}
    target = steps * per_context[ref.name]
    return max(1, round(target / per_context[condition]))


def checkpointing_needed(cfg: SweepConfig, model: GPT, device: str, log) -> bool:
    """Activation checkpointing when the sweep asks for it, or, on its own, when the unit's
    estimated peak memory exceeds the device's (minigpt.flops), saying so."""
    if cfg.train.activation_checkpointing:
        return True
    device_type = torch.device(device).type
    have = memory_bytes(device_type)
    t = cfg.train
    if not have or not needs_activation_checkpointing(model.config, t.batch_size, t.seq_len, have,
                                                      device_type):
        return False
    log(f"  {model.config.n_layer}-layer model: estimated peak memory over the "
        f"{have / 2**30:.0f} GiB here, so training with activation checkpointing")
    return True


def evaluate_task(model, task, examples, device) -> dict:
    """A task's metrics on `examples`, with the per-problem outcomes and outputs: a scratchpad
    task is decoded freely and its final answer parsed (minigpt.gen_eval, which adds step_acc and
    no_answer); a plain task keeps the fixed-width evaluation of minigpt.evaluate. The four
    shared metrics mean the same in both."""
    if task.marker is not None:
        return evaluate_generative(model, task, examples, device, per_problem=True)
    return evaluate_examples(model, examples, device, per_problem=True)


class CurveLog:
    """The unit's learning curves: appends rows to curves.jsonl, skipping the (task, step) points
    a resumed unit replays, and returns them as TensorBoard scalars."""

    def __init__(self, cfg: SweepConfig, run_dir: Path, condition: str, size: str, seed: int,
                 plan: dict[str, tuple[int, ...]], model: GPT, train_cfg):
        self.cfg, self.condition, self.size, self.seed = cfg, condition, size, seed
        self.plan, self.model, self.train_cfg = plan, model, train_cfg
        self.path = run_dir / "curves.jsonl"
        self.seen = {(r.get("condition", "default"), r["size"], r["seed"], r["task"], r["step"])
                     for r in read_jsonl(self.path)}

    def record(self, step: int, metrics_by_task: dict[str, dict], loss: float | None) -> dict:
        tokens = step * self.train_cfg.batch_size * self.train_cfg.seq_len
        key = (self.condition, self.size, self.seed)
        rows = [{"task_set": self.cfg.task_set, "condition": self.condition, "task": name,
                 "ability": ability_of(name), "size": self.size, "seed": self.seed, "step": step,
                 "shots": self.plan[name][-1], "tokens": tokens,
                 "flops": training_flops(self.model.config, tokens, self.train_cfg.seq_len),
                 **metrics, "train_loss": loss}
                for name, metrics in metrics_by_task.items() if (*key, name, step) not in self.seen]
        if rows:  # a resumed unit replays steps it had evaluated: those rows exist already
            append_jsonl_atomic(self.path, rows)
            self.seen.update((*key, r["task"], step) for r in rows)
        return {f"eval/{name}/{k}": v for name, m in metrics_by_task.items() for k, v in m.items()
                if v is not None}


def unit_stream(cfg: SweepConfig, condition: str, trained, train_cfg, steps: int, seed: int,
                device: str):
    """The unit's training stream: staged (pre-training, then tuning, ...: sweeps.stages) or one
    mixture of the trained tasks."""
    cond = cfg.condition(condition)
    if cond.stages:
        return stages.staged_stream(cfg, cond, steps, seed, make_stream, device)
    return make_stream(cfg.stream, device, trained, train_cfg.batch_size, train_cfg.seq_len, seed)


def final_evaluation(model, tasks, plan, run_dir: Path, unit: tuple[str, str, int],
                     device: str) -> dict:
    """Every (task, shots) of the plan on its full fixed problem set; writes the unit's per-problem
    samples and returns (task, shots) -> metrics with per-problem outcomes."""
    sets = {(t.name, k): few_shot_set(t, k) for t in tasks for k in plan[t.name]}
    metrics = {key: evaluate_task(model, task, sets[key], device)
               for task in tasks for key in [(task.name, k) for k in plan[task.name]]}
    samples = samples_path(run_dir, *unit)
    samples.parent.mkdir(parents=True, exist_ok=True)
    write_sample_records(samples, [rec for key, m in metrics.items()
                                   for rec in sample_records(key[0], key[1], sets[key], m)])
    return metrics


def train_unit(cfg: SweepConfig, condition: str, size: str, seed: int, run_dir: Path, device: str,
               progress: bool = True, log: Callable[[str], None] = print,
               position: int | None = None) -> list[dict]:
    """Train and evaluate one (condition, size, seed); returns its result rows (one per task).
    `position`: the progress bar's line (worker processes)."""
    cond = cfg.condition(condition)
    tasks = [make_task(name, eval_size=cfg.eval_size) for name in cfg.eval_tasks(condition)]
    trained = [t for t in tasks if t.name in cond.tasks(cfg.tasks)]
    plan = shot_plan(cfg, condition)[0]  # task -> the shot counts that fit its context
    # curves during training: each task at its largest shot count
    curve_sets = {t.name: few_shot_set(t, plan[t.name][-1], limit=cfg.curve_eval_size)
                  for t in tasks}
    unit = unit_name(condition, size, seed)

    torch.manual_seed(seed)
    model = GPT(GPTConfig.from_size(size, block_size=cfg.train.seq_len, attn=cfg.attn,
                                    norm=cfg.norm), device)
    steps = unit_steps(cfg, condition)
    train_cfg = replace(cfg.train, seed=seed, device=device, steps=steps,
                        checkpoint_every=cfg.train.checkpoint_every or max(1, steps // 10),
                        activation_checkpointing=checkpointing_needed(cfg, model, device, log))
    stream = unit_stream(cfg, condition, trained, train_cfg, steps, seed, device)
    curves = CurveLog(cfg, run_dir, condition, size, seed, plan, model, train_cfg)

    def on_eval(step: int) -> dict:
        metrics = {t.name: records.aggregate(evaluate_task(model, t, curve_sets[t.name], device))
                   for t in tasks}
        return curves.record(step, metrics, trainer.losses[-1] if trainer.losses else None)

    ckpt = run_dir / "ckpt" / f"{unit}.pt"
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    peak, lr_schedule, shared = train_cfg.lr_for(model.config.n_embd), None, []
    if cond.stages:
        lr_schedule = stages.staged_lr(train_cfg, peak, stream.bounds)
        shared = stages.shared_paths(cfg, cond, size, seed, steps, ckpt.parent)
        if (stage := stages.start_from_shared(ckpt, shared)) is not None:
            log(f"  {unit} starts from the shared checkpoint at the end of stage {stage + 1}")
    trainer = Trainer(model, stream, train_cfg, peak, checkpoint_path=ckpt,
                      tb_dir=run_dir / "tb" / unit, on_eval=on_eval, progress=progress,
                      desc=f"{condition} {size} seed {seed}", lr_schedule=lr_schedule,
                      position=position)
    if trainer.step:
        log(f"  resuming {unit} from its checkpoint at step {trainer.step}")
    result = stages.run_in_stages(trainer, stream.bounds, shared) if cond.stages else trainer.run()
    metrics = {}  # (task, shots) -> metrics with per-problem outcomes
    if result.status == "ok":
        metrics = final_evaluation(model, tasks, plan, run_dir, (condition, size, seed), device)
        trainer.log_scalars(curves.record(result.steps, {
            t.name: records.aggregate(metrics[t.name, plan[t.name][-1]]) for t in tasks},
            result.final_loss))
        if cfg.keep_checkpoints:  # the final model, not the last periodic checkpoint
            trainer.save_checkpoint()
    trainer.close()
    unit_facts = records.UnitFacts(cfg, condition, size, seed, model, result,
                                   getattr(stream, "examples_seen", None), device)
    return [records.result_row(unit_facts, t, k, metrics.get((t.name, k)))
            for t in tasks for k in plan[t.name]]


def run_sweep(cfg: SweepConfig, run_dir: Path, device: str, shard: tuple[int, int] = (0, 1),
              progress: bool = True, log: Callable[[str], None] = print, workers: int = 1,
              threads: int | None = None, scheduler: Callable[..., None] | None = None
              ) -> list[dict]:
    """Run every unit of this shard not already in results.jsonl; returns all rows of the run.

    With `workers` > 1 the units run in that many worker processes with `threads` torch threads
    each (default: this process's count divided among them); see sweeps.pool. A `scheduler`
    runs them elsewhere instead: `scheduler(cfg, run_dir, device, todo, progress, log, steps,
    job)` with `job` = train_unit, which returns a unit's rows for the scheduler to write
    (sweeps.ray_pool, `--ray`); this process holds the run folder's lock meanwhile."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise ValueError(f"{run_dir} is a file, not a run folder")
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a whole number >= 1, got {workers!r}")
    if not cfg.train.checkpoint_every:  # record the interval really used, not "0"
        cfg = replace(cfg, train=replace(cfg.train, checkpoint_every=max(1, cfg.train.steps // 10)))
    with run_lock(run_dir):
        return _run_locked(cfg, run_dir, device, shard, progress, log, workers, threads,
                           scheduler)


def train_and_record(cfg: SweepConfig, condition: str, size: str, seed: int, run_dir: Path,
                     device: str, progress: bool = True, log: Callable[[str], None] = print,
                     position: int | None = None) -> str:
    """Train one unit, write its rows and drop its checkpoint; returns the line that reports it.
    The job of one unit, in this process or in a worker (sweeps.pool)."""
    started = time.perf_counter()
    rows = train_unit(cfg, condition, size, seed, run_dir, device, progress=progress, log=log,
                      position=position)
    return _finish_unit(cfg, run_dir, rows, time.perf_counter() - started)


def _finish_unit(cfg: SweepConfig, run_dir: Path, rows: list[dict], seconds: float) -> str:
    """Write a trained unit's rows, drop its checkpoint; returns the line that reports it."""
    condition, size, seed = rows[0]["condition"], rows[0]["size"], rows[0]["seed"]
    write_unit_rows(run_dir / "results.jsonl", rows)
    ckpt = run_dir / "ckpt" / f"{unit_name(condition, size, seed)}.pt"
    if not cfg.keep_checkpoints and ckpt.exists():
        ckpt.unlink()
    return unit_line(rows, seconds)


def unit_line(rows: list[dict], seconds: float) -> str:
    """The line that reports a finished unit: its time and each task's exact match."""
    by_task: dict[str, list[str]] = {}
    for r in rows:
        by_task.setdefault(r["task"], []).append(
            (f"{r['exact_match']:.0%}" if r["status"] == "ok" else "diverged")
            + (f" ({r['shots']}-shot)" if r["shots"] else ""))
    summary = ", ".join(f"{task} {' '.join(v)}" for task, v in by_task.items())
    return f"done in {seconds:.0f}s: exact match {summary}"


def _run_locked(cfg: SweepConfig, run_dir: Path, device: str, shard: tuple[int, int],
                progress: bool, log: Callable[[str], None], workers: int = 1,
                threads: int | None = None, scheduler: Callable[..., None] | None = None
                ) -> list[dict]:
    resumed = prepare_run_dir(cfg, run_dir, device, shard, provenance(device))
    results_path = run_dir / "results.jsonl"
    index, count = shard
    units = cfg.units()[index::count]
    if not units:
        raise ValueError(f"shard {index}/{count} gets no runs: the sweep has {len(cfg.units())}")
    done = finished_units(cfg, read_jsonl(results_path))
    todo = [u for u in units if u not in done]
    if resumed:
        log(f"resuming {run_dir}: {len(units) - len(todo)} of {len(units)} runs already finished")
    if (scheduler is not None or workers > 1) and todo:  # even for one unit left: it trains
        steps = {c.name: unit_steps(cfg, c.name) for c in cfg.conditions}  # as it began
        if scheduler is not None:
            scheduler(cfg, run_dir, device, todo, progress, log, steps, train_unit)
        else:
            run_parallel(cfg, run_dir, device, todo, workers, threads, progress, log,
                         train_and_record, steps)
    else:
        for number, (condition, size, seed) in enumerate(todo, 1):
            where = f"condition {condition}, " if len(cfg.conditions) > 1 else ""
            log(f"[{number}/{len(todo)}] {where}size {size}, seed {seed}")
            log("      " + train_and_record(cfg, condition, size, seed, run_dir, device,
                                            progress=progress, log=log))
    if not cfg.keep_checkpoints:
        stages.remove_shared(run_dir / "ckpt")  # every unit that could start from them is done
    return read_jsonl(results_path)

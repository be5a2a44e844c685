"""The parts of a sweep unit's time, measured on this CPU in a few seconds, for sweeps.plan.

CPU speed varies about 2x between machines of one kind of cloud instance (issue 20: the CPU
default took 6 min 38 s on one 2-core machine, 12 min 21 s on another), so the planner does not
trust a table here: it builds one unit of each size as sweeps.runner would (the sweep's batch and
context length, its stream, the Trainer with its TensorBoard writer), at the thread count each
worker will have, and times

    set-up        tasks, evaluation sets, model, stream, optimizer and trainer built
    a step        a fresh model's first step, then the steps after it (at least MIN_STEPS, and
                  more up to MAX_STEPS until MIN_SECONDS have passed: on a loaded machine a
                  longer window averages out the scheduler's bursts), as the Trainer counts them
    evaluations   one during training (every task on its curve set) and the final one (every
                  task at every shot count), each on at most EVAL_SAMPLE problems per task and
                  scaled to the full count (decoding cost grows about linearly with problems)
    a checkpoint  one written, optimizer state included

The model is untrained, so a scratchpad task decodes to its length limit: an upper bound on a
trained model's decoding. With several workers the parts are timed in as many processes at
once, as the sweep will run (`measure`), which also times a worker's start: spawn, imports, and
the optimizer's first construction, which imports torch._dynamo.
"""
from __future__ import annotations

import tempfile
import time
from contextlib import contextmanager
from dataclasses import astuple, dataclass, replace
from pathlib import Path

import torch

from data_gen import few_shot_set, make_task
from minigpt.config import GPTConfig
from minigpt.model import GPT
from minigpt.train import Trainer

from .runner import evaluate_task, make_stream
from .specs import SweepConfig, shot_plan

EVAL_SAMPLE = 64  # problems per (task, shots) actually evaluated when timing
MIN_STEPS, MAX_STEPS, MIN_SECONDS = 5, 50, 1.0  # the steps timed after the first


@dataclass(frozen=True)
class CpuTiming:
    """Measured seconds of the parts of one unit (the module doc says what each covers)."""
    setup_s: float
    first_step_s: float  # a fresh model's first step (allocations, lazy initialisation)
    step_s: float
    curve_eval_s: float
    final_eval_s: float
    checkpoint_s: float


@contextmanager
def torch_threads(threads: int | None):
    """torch's intra-op thread count set for the block, restored after."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _trained_tasks(cfg: SweepConfig, condition: str):
    """The tasks a unit's stream trains on first: the condition's, or its first stage's."""
    cond = cfg.condition(condition)
    names = cond.stages[0].tasks if cond.stages else cond.tasks(cfg.tasks)
    weights = (list(cond.stages[0].weights) or None) if cond.stages else None
    return [make_task(name, eval_size=cfg.eval_size) for name in names], weights


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _eval_seconds(model, task, examples) -> float:
    """Seconds to evaluate `task` on `examples`, timed on at most EVAL_SAMPLE of them."""
    sample = examples[:EVAL_SAMPLE]
    return _timed(lambda: evaluate_task(model, task, sample, "cpu")) * len(examples) / len(sample)


def _time_steps(trainer, train_cfg) -> float:
    """Seconds a step, over the steps after the first (see MIN_STEPS), one Trainer.run each."""
    start, done = trainer.elapsed, 0
    while done < MIN_STEPS or (done < MAX_STEPS and trainer.elapsed - start < MIN_SECONDS):
        trainer.cfg = replace(train_cfg, steps=trainer.step + 1)
        trainer.run()
        done += 1
    return (trainer.elapsed - start) / done


def time_unit_parts(cfg: SweepConfig, condition: str, size: str,
                    threads: int | None = None) -> CpuTiming:
    """Time one unit's parts on this CPU with `threads` torch threads (None: as set now)."""
    with torch_threads(threads), tempfile.TemporaryDirectory(prefix="minigpt-plan-") as tmp:
        started = time.perf_counter()
        tasks = [make_task(name, eval_size=cfg.eval_size) for name in cfg.eval_tasks(condition)]
        shots = shot_plan(cfg, condition)[0]
        curve_sets = {t.name: few_shot_set(t, shots[t.name][-1], limit=cfg.curve_eval_size)
                      for t in tasks}
        torch.manual_seed(0)
        model = GPT(GPTConfig.from_size(size, block_size=cfg.train.seq_len, attn=cfg.attn,
                                        norm=cfg.norm), "cpu")
        trained, weights = _trained_tasks(cfg, condition)
        stream = make_stream(cfg.stream, "cpu", trained, cfg.train.batch_size, cfg.train.seq_len,
                             0, weights)
        train_cfg = replace(cfg.train, device="cpu", steps=1, eval_every=0, checkpoint_every=0,
                            checkpoint_minutes=0)
        trainer = Trainer(model, stream, train_cfg, train_cfg.lr_for(model.config.n_embd),
                          checkpoint_path=Path(tmp) / "unit.pt", tb_dir=Path(tmp) / "tb",
                          progress=False)
        setup_s = time.perf_counter() - started
        trainer.run()  # the first step
        first_step_s = trainer.elapsed
        step_s = _time_steps(trainer, train_cfg)
        curve_s = sum(_eval_seconds(model, t, curve_sets[t.name]) for t in tasks) \
            if cfg.train.eval_every else 0.0
        final_s = sum(_eval_seconds(model, t, few_shot_set(t, k)) for t in tasks
                      for k in shots[t.name])
        checkpoint_s = _timed(trainer.save_checkpoint)
        trainer.close()
    return CpuTiming(setup_s, first_step_s, step_s, curve_s, final_s, checkpoint_s)


def import_worker_modules() -> None:
    """What a worker imports before its first step, beyond what starting it imported."""
    import torch._dynamo  # noqa: F401 - AdamW's first construction imports it
    from torch.utils.tensorboard import SummaryWriter  # noqa: F401


_SIDE_BY_SIDE: list = []  # in a timing process: the barrier it shares with the others


def _join_timers(barrier) -> None:
    _SIDE_BY_SIDE.append(barrier)


def time_units(cfg: SweepConfig, pairs: list[tuple[str, str]], threads: int | None,
               ) -> tuple[float, list[CpuTiming]]:
    """In one process: the wall-clock time at which it is ready to train (its imports done),
    then the parts of each (condition, size) of `pairs`, timed after one untimed run of the
    first: a process's first unit pays one-time costs (thread pools, lazy initialisation) that a
    worker pays once, not in every unit."""
    import_worker_modules()
    ready = time.time()
    if _SIDE_BY_SIDE:  # wait for the other timing processes: all time their units together
        _SIDE_BY_SIDE[0].wait(timeout=600)
    time_unit_parts(cfg, *pairs[0], threads)
    return ready, [time_unit_parts(cfg, condition, size, threads) for condition, size in pairs]


def _mean(timings: list[CpuTiming]) -> CpuTiming:
    return CpuTiming(*(sum(values) / len(values) for values in zip(*(astuple(t) for t in timings))))


def measure(cfg: SweepConfig, pairs: list[tuple[str, str]], workers: int, threads: int | None,
            ) -> tuple[dict[tuple[str, str], CpuTiming], float]:
    """Each (condition, size) of `pairs` timed as the sweep will run it, and the seconds a worker
    takes to start. With one worker, in this process (the runner trains there). With more, in as
    many processes started as sweeps.pool starts them (spawned), timing side by side: units that
    run together slow each other (shared cores, caches, memory bandwidth, other load), and a
    lone timing would not see it. Their figures are averaged."""
    if workers == 1:
        started = time.time()
        ready, timings = time_units(cfg, pairs, threads)
        return dict(zip(pairs, timings)), ready - started
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")  # as sweeps.pool starts its workers
    started = time.time()
    barrier = context.Barrier(workers)  # one timing job per process, all timing at once
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_join_timers,
                             initargs=(barrier,)) as pool:
        results = list(pool.map(time_units, *zip(*[(cfg, pairs, threads)] * workers)))
    start_s = sum(ready for ready, _ in results) / workers - started
    return {pair: _mean([timings[i] for _, timings in results])
            for i, pair in enumerate(pairs)}, start_s

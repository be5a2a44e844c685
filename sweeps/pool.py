"""Worker processes: several units of a sweep trained at once (`--workers`), each in its own
process with an equal, fixed share of the CPU threads.

Units are grouped so that every condition of one (size, seed) runs in one worker, in order (a
staged condition starts from the pre-training checkpoint another condition of the same (size,
seed) wrote: sweeps.stages), and groups start largest first so that no worker is left with a large
model at the end while the others idle. Each worker writes its units' rows itself, under the
folder lock (sweeps.results.folder_lock), the moment a unit finishes, and prints its line. A stop
request (the first SIGINT/SIGTERM, or minigpt.train.STOP_REQUESTED in the main process) makes
every worker finish its step, checkpoint and stop; a worker dies with the main process (Linux's
parent-death signal, and a poll of the parent's pid elsewhere), so a resumed sweep never meets a
stray writer. What one unit's job is comes from the caller (sweeps.runner.train_and_record), so
this module knows nothing of training.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Callable

import torch

from minigpt.config import GPTConfig
from minigpt.flops import count_params, set_gpu_memory_share

Unit = tuple[str, str, int]  # (condition, size, seed)
STATUS_EVERY_S = 120  # without progress bars, a status line this often


class WorkerError(RuntimeError):
    """A worker process died without reporting (killed, out of memory); finished units are kept."""


def unit_groups(units: list[Unit]) -> list[list[Unit]]:
    """Units that one worker runs in order: every condition of one (size, seed). A staged
    condition starts from the pre-training checkpoint that another condition of the same
    (size, seed) wrote (sweeps.stages), so they must not run side by side."""
    groups: dict[tuple[str, int], list] = {}
    for unit in units:
        groups.setdefault((unit[1], unit[2]), []).append(unit)
    return list(groups.values())


def group_cost(group: list[Unit], steps: dict[str, int]) -> float:
    """A rough relative cost, to start the longest groups first (so that no worker is left with
    a large model at the end while the others idle): steps x (parameters + a fixed overhead),
    `steps` per condition. The overhead (60K parameters' worth) fits the CPU step times of the
    ladder within ~25%."""
    return sum(steps[c] * (count_params(GPTConfig.from_size(size))["non_embedding"] + 60_000)
               for c, size, _ in group)


_WORKER: dict = {}  # per worker process: its progress-bar line


def gpu_share_of(device: str, workers: int) -> tuple[float, str] | None:
    """(fraction, device) of the GPU's memory each of `workers` processes on one GPU may use: an
    even split, so that each unit fits its share or trains with activation checkpointing; None
    off the GPU."""
    return (1.0 / workers, device) if torch.device(device).type == "cuda" else None


def _die_with_parent(parent: int) -> None:
    """End this worker at once if the main process dies (kill -9, out of memory): its run lock is
    gone then, and a resumed sweep must not find a worker still writing to the folder. Linux's
    parent-death signal does it immediately; a poll of the parent's pid covers other systems."""
    import ctypes
    import signal
    import threading

    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
        except (OSError, AttributeError):
            pass

    def poll():
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=poll, daemon=True).start()


def _worker_init(threads: int, stop_event, slots, bar_lock, parent: int, finished,
                 gpu_share: tuple[float, str] | None = None) -> None:
    """Runs once in each worker process: torch threads, its share of the GPU's memory when the
    workers share one (minigpt.flops.set_gpu_memory_share), a progress-bar line of its own, and
    the same stop protocol as the main process (first SIGINT/SIGTERM or the main process's stop
    event: finish the step, checkpoint, stop; a second signal: stop at once)."""
    import signal
    import threading

    _die_with_parent(parent)
    if gpu_share is not None:
        set_gpu_memory_share(*gpu_share)

    from tqdm.auto import tqdm

    from minigpt.train import STOP_REQUESTED

    torch.set_num_threads(threads)
    tqdm.set_lock(bar_lock)
    with slots.get_lock():
        _WORKER["position"] = slots.value
        slots.value += 1
    _WORKER["finished"] = finished  # units done so far, over all workers

    def on_signal(signum, frame):
        if STOP_REQUESTED.is_set():
            raise KeyboardInterrupt
        STOP_REQUESTED.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    def watch():
        stop_event.wait()
        STOP_REQUESTED.set()

    threading.Thread(target=watch, daemon=True).start()


def _run_group(cfg, group: list[Unit], run_dir: Path, device: str, progress: bool, total: int,
               job: Callable[..., str]) -> int:
    """In a worker: run the group's units in order through `job` (which trains a unit, writes
    its rows and returns its line), printing each unit's line ("[k/total] ...") the moment it
    finishes; returns how many it ran."""
    from tqdm.auto import tqdm

    for condition, size, seed in group:
        line = job(cfg, condition, size, seed, run_dir, device, progress=progress,
                   log=tqdm.write, position=_WORKER.get("position"))
        counter = _WORKER["finished"]
        with counter.get_lock():
            counter.value += 1
            number = counter.value
        where = f"condition {condition}, " if len(cfg.conditions) > 1 else ""
        tqdm.write(f"[{number}/{total}] {where}size {size}, seed {seed}: {line}")
        sys.stdout.flush()
    return len(group)


def run_parallel(cfg, run_dir: Path, device: str, todo: list[Unit], workers: int,
                 threads: int | None, progress: bool, log: Callable[[str], None],
                 job: Callable[..., str], steps: dict[str, int]) -> None:
    """Run `todo` in `workers` processes, longest groups first (see unit_groups, group_cost):
    `job(cfg, condition, size, seed, run_dir, device, progress=, log=, position=)` runs one unit
    (a module-level function, so that it reaches the spawned workers), `steps` are each
    condition's training steps (for the cost order).

    Each worker writes its units' rows itself, under the folder lock, so a unit's rows are saved
    the moment it finishes, whatever happens to the others, and prints the unit's line to stdout
    (`log` carries this process's own messages). On a stop request (minigpt.train.
    STOP_REQUESTED) every worker finishes its step, checkpoints and stops, groups not yet started
    are dropped, and KeyboardInterrupt is raised here. A worker's error stops the others the same
    way and is raised here once they have stopped; a worker that dies raises WorkerError."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from tqdm.auto import tqdm

    from minigpt.train import STOP_REQUESTED

    groups = sorted(unit_groups(todo), key=lambda g: -group_cost(g, steps))
    threads = threads or max(1, torch.get_num_threads() // workers)  # fixed by the run, not by
    workers = min(workers, len(groups))  # what is left: a resumed unit trains as it began
    log(f"{len(todo)} runs in {workers} worker processes, {threads} torch "
        f"thread{'s' if threads > 1 else ''} each, largest models first")
    ctx = multiprocessing.get_context("spawn")  # fork after torch has started threads can hang
    stop_event, slots, bar_lock = ctx.Event(), ctx.Value("i", 0), ctx.RLock()
    finished = ctx.Value("i", 0)
    tqdm.set_lock(bar_lock)  # the bars of all processes draw under one lock
    gpu_share = gpu_share_of(device, workers)
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_init,
                               initargs=(threads, stop_event, slots, bar_lock, os.getpid(), finished,
                                         gpu_share))
    try:
        pending = {pool.submit(_run_group, cfg, g, run_dir, device, progress, len(todo), job): g
                   for g in groups}
        error, stopped = _collect(pending, stop_event, finished, len(todo), progress, log)
    except KeyboardInterrupt:  # a second signal here: stop the workers at once
        for process in list(getattr(pool, "_processes", {}).values()):
            process.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    if error is not None:
        raise error
    if stopped or STOP_REQUESTED.is_set():
        raise KeyboardInterrupt("stopped; finished runs are saved")


def _collect(pending: dict, stop_event, finished, total: int, progress: bool,
             log: Callable[[str], None]) -> tuple[BaseException | None, bool]:
    """Wait for the submitted groups; returns (the first worker error, whether a worker was
    stopped). Without progress bars, logs a status line every STATUS_EVERY_S. On a stop request or
    an error, tells every worker to stop and cancels the groups no worker has started."""
    from concurrent.futures import FIRST_COMPLETED, wait
    from concurrent.futures.process import BrokenProcessPool

    from minigpt.train import STOP_REQUESTED

    error, stopped = None, False
    started = last = time.monotonic()
    while pending:
        done, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
        if not progress and time.monotonic() - last >= STATUS_EVERY_S:
            last = time.monotonic()
            log(f"status: {finished.value} of {total} runs finished, "
                f"{(last - started) / 60:.0f} min elapsed")
        if (STOP_REQUESTED.is_set() or error is not None) and not stop_event.is_set():
            stop_event.set()
            for future in pending:
                future.cancel()  # only groups no worker has started
        for future in done:
            pending.pop(future)
            if future.cancelled():
                continue
            try:
                future.result()  # the worker printed its units' lines as they finished
            except KeyboardInterrupt:
                stopped = True
            except BrokenProcessPool as exc:
                error = error or WorkerError(
                    f"a worker process died ({exc}); the runs that finished are saved, and "
                    "running the same command again resumes the rest from their checkpoints")
            except Exception as exc:  # noqa: BLE001 - raised after the others stopped
                error = error or exc
    return error, stopped

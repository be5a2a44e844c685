"""Units of a sweep as Ray tasks (`python -m sweeps.run --ray`): the local worker pool's contract
(sweeps.pool) across the nodes of a Ray cluster.

The same groups: every condition of one (size, seed) runs in one task, in order, so a staged
condition's second stage runs where its pre-training checkpoint is (sweeps.stages); groups are
submitted largest first. The same job: sweeps.runner.train_unit trains a unit and returns its
rows. Each task is a Ray generator that yields one message per unit as it finishes, and this
process (the driver) writes it into the run folder under the folder's lock: the rows in one atomic
replace (sweeps.rundir.write_unit_rows: exactly one row per (condition, task, size, seed, shots)),
then prints the unit's line with the node that ran it, the count and the estimated time left.

Where a task keeps its checkpoints, curves and TensorBoard files while it trains (its work folder):
- `--storage DIR` (a filesystem every node mounts): DIR/<run folder name>-<hash of its path>/; a
  unit retried on another node, or resumed later with --ray, continues from its checkpoint there;
  the finished unit's curves and TensorBoard files are copied into the run folder;
- no --storage, every node this machine (a local instance, a one-node cluster): the run folder
  itself, as the local pool does, so a stopped sweep resumes from its checkpoints with or without
  Ray;
- no --storage on a cluster of several nodes: a temporary folder of the node, returned to the
  driver with the rows; a unit whose worker dies restarts from its first step, and the driver says so.

Faults: a task whose worker or node dies is run again by Ray (`max_retries`, Ray's "Task fault
tolerance"); a Ray generator that is run again skips the messages it had already delivered, and a
task that sees the run folder skips units whose rows are there. An exception in the job is not
retried: it stops the other tasks and is raised here, as in the pool.

Stopping: on a stop request here (minigpt.train.STOP_REQUESTED: the first SIGINT/SIGTERM), a
switch (a small Ray actor) is set that every task watches; each finishes its step, checkpoints and
ends, tasks not yet started are cancelled, finished units are kept and KeyboardInterrupt is raised.
A second signal cancels every task at once. The tasks also treat a SIGINT or SIGTERM of their own
(`ray stop`) as the first one.
"""
from __future__ import annotations

import asyncio
import functools
import hashlib
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

from minigpt.train import STOP_REQUESTED

from . import stages
from .pool import Unit, WorkerError, group_cost, unit_groups
from .ray_cluster import (Cluster, RayUnavailable, check_resources, connect, import_ray, probe,
                          sweep_memory, task_resources)
from .results import (append_jsonl_atomic, curve_row_key, read_curves, read_jsonl, samples_path,
                      unit_key)
from .rundir import finished_units, write_unit_rows
from .runner import unit_line, unit_name

RETRIES = 3     # times Ray runs a task again after its worker or node died
POLL_S = 0.5    # how often the driver looks at the stop request and the tasks' messages


class StopSwitch:
    """A Ray actor: set once by the driver on a stop request; every task waits on it."""

    def __init__(self):
        self.event = asyncio.Event()

    async def set(self) -> None:
        self.event.set()

    async def wait(self) -> bool:
        await self.event.wait()
        return True


def work_folder(run_dir: Path, storage: Path | None, cluster: Cluster) -> Path | None:
    """Where tasks keep checkpoints while they train (see the module doc); None: a temporary
    folder of each node."""
    if storage is not None:
        tag = hashlib.sha1(str(Path(run_dir).resolve()).encode()).hexdigest()[:8]
        return Path(storage).resolve() / f"{Path(run_dir).name}-{tag}"
    return Path(run_dir).resolve() if cluster.local else None


def _node() -> dict:
    import ray
    return {"host": socket.gethostname(), "ip": ray.util.get_node_ip_address(), "pid": os.getpid()}


def _watch(switch, done: threading.Event) -> None:
    """In a task: set STOP_REQUESTED when the driver's switch is set (or the driver is gone)."""
    import ray
    ref = switch.wait.remote()
    while not done.is_set():
        ready, _ = ray.wait([ref], timeout=POLL_S)
        if ready:
            STOP_REQUESTED.set()
            return
    ray.cancel(ref)


def _on_signal(signum, frame):
    """In a task: the pool's protocol; the first signal stops after the step, a second at once."""
    if STOP_REQUESTED.is_set():
        raise KeyboardInterrupt
    STOP_REQUESTED.set()


def _unit_files(folder: Path, unit: Unit) -> dict:
    """A finished unit's curve rows, TensorBoard files and per-example log in a work folder, for
    the driver."""
    tb = folder / "tb" / unit_name(*unit)
    samples = samples_path(folder, *unit)
    return {"curves": [r for r in read_curves(folder) if unit_key(r) == tuple(unit)],
            "tb": {str(p.relative_to(tb)): p.read_bytes() for p in sorted(tb.rglob("*"))
                   if p.is_file()},
            "samples": samples.read_bytes() if samples.is_file() else None}


def run_group(cfg, group: list[Unit], run_dir: str, workdir: str | None, device: str,
              threads: int, switch, job: Callable[..., list[dict]]):
    """A Ray task: train a group's units in order in `workdir` (a temporary folder when None) with
    `threads` torch threads, yielding a message as it starts and one per unit ("done" with its
    rows, "stopped" on a stop request, "skipped" when its rows are already in the run folder)."""
    import torch

    yield {"event": "start", **_node()}
    STOP_REQUESTED.clear()  # the worker process may have run a stopped task before
    torch.set_num_threads(threads)
    folder = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="minigpt-ray-"))
    done = threading.Event()
    threading.Thread(target=_watch, args=(switch, done), daemon=True).start()
    handlers = ({s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
                if threading.current_thread() is threading.main_thread() else {})
    try:
        for unit in group:
            if STOP_REQUESTED.is_set():  # between two units: the next one never starts
                yield {"event": "stopped", "unit": unit, "log": [], **_node()}
                return
            if Path(run_dir, "config.json").exists() and \
                    tuple(unit) in finished_units(cfg, read_jsonl(Path(run_dir, "results.jsonl"))):
                yield {"event": "skipped", "unit": unit}
                continue
            messages, started = [], time.perf_counter()
            try:
                rows = job(cfg, *unit, folder, device, progress=False, log=messages.append)
            except KeyboardInterrupt:
                yield {"event": "stopped", "unit": unit, "log": messages, **_node()}
                return
            message = {"event": "done", "unit": unit, "rows": rows, "log": messages,
                       "seconds": time.perf_counter() - started, **_node()}
            if folder != Path(run_dir):
                message.update(_unit_files(folder, unit))
            yield message
    finally:
        done.set()
        for s, handler in handlers.items():
            signal.signal(s, handler)
        if not workdir:
            shutil.rmtree(folder, ignore_errors=True)


def _write_bytes_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def record_unit(cfg, run_dir: Path, workdir: Path | None, message: dict) -> None:
    """Write a finished unit into the run folder: its curves and TensorBoard files when they were
    trained elsewhere, then its rows (which mark it finished), then drop its checkpoint."""
    unit = tuple(message["unit"])
    if "curves" in message:
        have = {curve_row_key(r) for r in read_curves(run_dir)}
        new = [r for r in message["curves"] if curve_row_key(r) not in have]
        if new:
            append_jsonl_atomic(run_dir / "curves.jsonl", new)
        for relative, data in message["tb"].items():
            _write_bytes_atomic(run_dir / "tb" / unit_name(*unit) / relative, data)
        if message.get("samples"):
            _write_bytes_atomic(samples_path(run_dir, *unit), message["samples"])
    write_unit_rows(run_dir / "results.jsonl", message["rows"])
    if workdir is not None and not cfg.keep_checkpoints:
        (workdir / "ckpt" / f"{unit_name(*unit)}.pt").unlink(missing_ok=True)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return "under a minute"
    return f"about {seconds / 60:.0f} min" if seconds < 5400 else f"about {seconds / 3600:.1f} h"


class Progress:
    """Counts finished units and estimates the time left from the cost of what is done
    (sweeps.pool.group_cost: steps x parameters), so one large unit is not read as one small."""

    def __init__(self, todo: list[Unit], steps: dict[str, int], conditions: int):
        self.cost = {tuple(u): group_cost([u], steps) for u in todo}
        self.left_cost, self.done_cost = sum(self.cost.values()), 0.0
        self.count, self.total, self.conditions = 0, len(todo), conditions
        self.began = time.perf_counter()

    def line(self, message: dict) -> str:
        condition, size, seed = unit = tuple(message["unit"])
        self.count += 1
        self.done_cost += self.cost[unit]
        self.left_cost -= self.cost[unit]
        rate = self.done_cost / max(1e-9, time.perf_counter() - self.began)
        left = self.total - self.count
        tail = f"{left} left, {_duration(self.left_cost / rate)} to go" if left else "all done"
        where = f"condition {condition}, " if self.conditions > 1 else ""
        return (f"[{self.count}/{self.total}] {where}size {size}, seed {seed} on {message['host']} "
                f"({message['ip']}): {unit_line(message['rows'], message['seconds'])}; {tail}")


def _retry_note(message: dict, previous: dict, workdir: Path | None) -> str:
    """What the driver says when a unit's message comes from another worker than its task began
    on: Ray ran the task again after that worker died."""
    if any(m.strip().startswith("resuming") for m in message["log"]):
        how = "resumed from its checkpoint"
    elif workdir is None:
        how = "restarted from its first step (no --storage: its checkpoint was on the lost worker)"
    else:
        how = "restarted from its first step (it had written no checkpoint yet)"
    return (f"  the worker that began {unit_name(*message['unit'])} (pid {previous['pid']} on "
            f"{previous['host']}) died; Ray ran its task again on {message['host']} and it {how}")


def _storage_note(run_dir: Path, workdir: Path | None) -> str:
    if workdir is None:
        return ("no --storage: each run keeps its checkpoints on its node, so a run whose worker "
                "dies restarts from its first step, and so do the unfinished runs of a stopped sweep")
    if workdir == run_dir:
        return "checkpoints in the run folder (every node is this machine)"
    return f"checkpoints in {workdir}"


def _handle(message: dict, group: int, began: dict, progress: Progress, cfg, run_dir: Path,
            workdir: Path | None, log: Callable[[str], None]) -> bool:
    """Act on one message of a task; True when it stopped on request."""
    event = message["event"]
    if event == "start":
        began[group] = message
    elif event == "done":
        first = began.get(group, message)
        if (message["ip"], message["pid"]) != (first["ip"], first["pid"]):
            log(_retry_note(message, first, workdir))
            began[group] = message
        for line in message["log"]:
            log(line)
        record_unit(cfg, run_dir, workdir, message)
        log(progress.line(message))
    return event == "stopped"


def _drain(ray, pending: dict, switch, progress: Progress, cfg, run_dir: Path,
           workdir: Path | None, log: Callable[[str], None]) -> tuple[bool, BaseException | None]:
    """Take the tasks' messages as they come until every task has ended; on a stop request (or a
    task's error) set the switch and cancel the tasks not yet started. Returns (stopped, error)."""
    began: dict[int, dict] = {}  # group -> the message its task (last) began with
    stopping, stopped, error = False, False, None
    while pending:
        if not stopping and (STOP_REQUESTED.is_set() or error is not None):
            stopping = True
            switch.set.remote()
            for gen, group in pending.items():
                if group not in began:
                    ray.cancel(gen)
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_S)
        for gen in ready:
            group = pending[gen]
            try:
                message = ray.get(next(gen))
            except (StopIteration, ray.exceptions.TaskCancelledError):
                del pending[gen]
                continue
            except ray.exceptions.RayTaskError as exc:  # the job raised: not a fault to retry
                error = error or exc.cause or exc
                del pending[gen]
                continue
            except ray.exceptions.RayError as exc:  # the worker or node died, retries spent
                error = error or WorkerError(
                    f"a Ray task failed past its {RETRIES} retries ({exc.__class__.__name__}); "
                    f"the runs that finished are saved, and running the same command again "
                    f"resumes the rest")
                del pending[gen]
                continue
            stopped |= _handle(message, group, began, progress, cfg, run_dir, workdir, log)
    return stopped, error


def _clean(cfg, run_dir: Path, workdir: Path | None, todo: list[Unit]) -> None:
    """After a complete sweep: drop the work folder kept apart from the run folder, or in the run
    folder the checkpoints a task run again may have left of units already recorded."""
    if workdir is None or cfg.keep_checkpoints or not workdir.is_dir():
        return
    if workdir != run_dir:
        shutil.rmtree(workdir, ignore_errors=True)
        return
    for unit in todo:
        (workdir / "ckpt" / f"{unit_name(*unit)}.pt").unlink(missing_ok=True)
    stages.remove_shared(workdir / "ckpt")


def run_on_ray(cfg, run_dir: Path, device: str, todo: list[Unit], progress: bool,
               log: Callable[[str], None], steps: dict[str, int],
               job: Callable[..., list[dict]], *, cluster: Cluster, threads: int,
               storage: Path | None = None) -> None:
    """Run `todo` as Ray tasks on `cluster` (a sweeps.runner scheduler; see the module doc):
    `job(cfg, condition, size, seed, folder, device, progress=, log=)` returns a unit's rows,
    `steps` are each condition's steps (for the order and the time left), `threads` each unit's
    torch threads. Progress bars are not drawn (each unit prints its line as it finishes)."""
    ray = import_ray()
    run_dir = Path(run_dir).resolve()
    workdir = work_folder(run_dir, storage, cluster)
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
    device_type = "cuda" if device.startswith("cuda") else "cpu"
    groups = sorted(unit_groups(todo), key=lambda g: -group_cost(g, steps))
    asks = "one GPU" if device_type == "cuda" else f"{threads} CPU{'s' if threads > 1 else ''}"
    log(f"{len(todo)} runs in {len(groups)} Ray tasks on {cluster.describe()}; each asks for "
        f"{asks}, largest models first; {_storage_note(run_dir, workdir)}")
    switch = ray.remote(StopSwitch).options(num_cpus=0).remote()
    task = ray.remote(run_group).options(max_retries=RETRIES, retry_exceptions=False,
                                         **task_resources(device_type, threads,
                                                          sweep_memory(cfg, device_type)[1]))
    pending = {task.remote(cfg, group, str(run_dir), workdir and str(workdir), device, threads,
                           switch, job): number for number, group in enumerate(groups)}
    try:
        stopped, error = _drain(ray, pending, switch, Progress(todo, steps, len(cfg.conditions)),
                                cfg, run_dir, workdir, log)
    except KeyboardInterrupt:  # a second signal: end every task at once
        for gen in pending:
            ray.cancel(gen, force=True)
        raise
    finally:
        ray.kill(switch)
    if error is not None:
        raise error
    if stopped or STOP_REQUESTED.is_set():
        if workdir is not None and workdir != run_dir:
            log(f"the runs in progress checkpointed to {workdir}; run the same command (with --ray "
                f"and this --storage) to continue them")
        raise KeyboardInterrupt("stopped; finished runs are saved")
    _clean(cfg, run_dir, workdir, todo)


def join(parser, args) -> tuple[Cluster, str] | None:
    """For sweeps.run: with --ray, the cluster the units will run on (a local instance is started
    when no address is given) and the device for --device; None without --ray. Ray missing, no
    cluster at the address, or a device it lacks: exit 2 with the message."""
    if args.ray is None:
        if args.storage is not None:
            parser.error("--storage is where Ray tasks keep their checkpoints; give it with --ray")
        return None
    try:
        cluster = connect(args.ray)
        return cluster, cluster.device(args.device)
    except (RayUnavailable, ValueError) as exc:
        parser.error(str(exc))


def scheduler(parser, cluster: Cluster, cfg, device: str, threads: int, storage: Path | None):
    """For sweeps.run: check that the cluster can run every unit (exit 2 if not, before anything
    is written), print what it is, and return (the runner's scheduler, attention, LayerNorm) with
    the kernels that the probe resolved where the units will run."""
    try:
        check_resources(cluster, cfg, "cuda" if device.startswith("cuda") else "cpu", threads)
        if storage is not None:
            storage.mkdir(parents=True, exist_ok=True)
        found = probe(cluster, cfg, device, threads, storage)
    except (ValueError, OSError) as exc:
        parser.error(str(exc))
    print(f"Ray: {cluster.describe()}" + (f"; GPU {found['gpu']}" if "gpu" in found else ""))
    if "note" in found:
        print(f"note: {found['note']}")
    return (functools.partial(run_on_ray, cluster=cluster, threads=threads, storage=storage),
            found.get("attn", cfg.attn), found.get("norm", cfg.norm))

"""A sweep's run folder: the lock that keeps one sweep per folder, config.json, and which units
are finished.

    config.json     the resolved sweep config (a resumed run must match it) and, beside it, the
                    record of where it ran (`provenance`), which may differ between resumed parts
    results.jsonl   one row per (condition, task, size, seed, shots); a unit's rows are written
                    in one atomic replace
    .lock           held by the sweep's main process while it runs

The lock (`run_lock`) is the `filelock` package's, which works on Linux, macOS and Windows and is
released by the operating system when its holder dies, even by kill -9: a killed sweep never
leaves a stale lock. The holder's pid is written beside it so that a refused second sweep can
name it.
"""
from __future__ import annotations

import json
import os
from contextlib import contextmanager
from dataclasses import MISSING, asdict, fields
from pathlib import Path

import torch
from filelock import FileLock, Timeout

from minigpt.config import TrainConfig

from .results import FOLDER_LOCK, folder_lock, jsonl_text, read_jsonl, unit_key, write_text_atomic
from .specs import SweepConfig, shot_plan

LOCK_NAME = ".lock"
PID_NAME = ".lock.pid"
# config keys that record where and how a run was made, not what it computes: a resumed run may
# differ in them (another machine, a later commit), and the report kind does not change results
UNCOMPARED_KEYS = frozenset({"provenance", "resumed_on", "report", "keep_checkpoints"})
_OURS = frozenset({LOCK_NAME, PID_NAME, FOLDER_LOCK})


@contextmanager
def run_lock(run_dir: Path):
    """Hold RUN_DIR/.lock exclusively, or raise a ValueError naming the process that holds it."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(run_dir / LOCK_NAME))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        try:
            holder = (run_dir / PID_NAME).read_text().strip() or "unknown"
        except OSError:
            holder = "unknown"
        raise ValueError(f"{run_dir} is in use by another sweep (pid {holder}); wait for it to "
                         f"finish, or choose another --out") from None
    try:
        (run_dir / PID_NAME).write_text(str(os.getpid()))
        yield
    finally:
        lock.release()


def config_record(cfg: SweepConfig, device: str, shard: tuple[int, int] = (0, 1),
                  provenance: dict | None = None) -> dict:
    record = asdict(cfg)
    if cfg.budget == "tokens":  # the reference condition matters only under an examples budget
        del record["budget_reference"]
    else:
        record["budget_reference"] = asdict(cfg.reference_condition)
    record["device_type"] = torch.device(device).type
    if shard != (0, 1):
        record["shard"] = f"{shard[0]}/{shard[1]}"  # a part of a sweep; sweeps.merge joins parts
    if provenance is not None:
        record["provenance"] = provenance
    return json.loads(json.dumps(record))  # tuples -> lists, as they read back from disk


def config_differences(old: dict, record: dict) -> list[str]:
    """The config keys in which a folder's run differs from `record` (a field added after the run
    was written reads as its default, in the training config too; keys that do not decide
    results are not compared)."""
    defaults = json.loads(json.dumps({f.name: f.default for f in fields(SweepConfig)
                                      if f.default is not MISSING}))
    train_defaults = json.loads(json.dumps(asdict(TrainConfig())))
    old = {**old, "train": {**train_defaults, **(old.get("train") or {})}}
    record = {**record, "train": {**train_defaults, **(record.get("train") or {})}}
    return sorted(k for k in (set(old) | set(record)) - UNCOMPARED_KEYS
                  if old.get(k, defaults.get(k)) != record.get(k, defaults.get(k)))


def prepare_run_dir(cfg: SweepConfig, run_dir: Path, device: str,
                    shard: tuple[int, int] = (0, 1), provenance: dict | None = None) -> bool:
    """Write config.json, or check it matches on resume. True if the folder held a run already."""
    run_dir = Path(run_dir)
    path = run_dir / "config.json"
    record = config_record(cfg, device, shard, provenance)
    if path.exists():
        old = json.loads(path.read_text())
        differing = config_differences(old, record)
        if differing:
            raise ValueError(f"{run_dir} holds a run with a different config (keys differ: "
                             f"{', '.join(differing)}); resume with the same flags or choose "
                             f"another --out")
        if provenance and provenance != old.get("provenance") \
                and provenance not in old.get("resumed_on", []):
            old["resumed_on"] = old.get("resumed_on", []) + [provenance]  # another machine or
            write_text_atomic(path, json.dumps(old, indent=2, sort_keys=True) + "\n")  # commit
        return True
    if run_dir.exists() and any(p.name not in _OURS for p in run_dir.iterdir()):
        raise ValueError(f"{run_dir} exists, is not empty and holds no config.json: refusing to "
                         f"write a run into it")
    write_text_atomic(path, json.dumps(record, indent=2, sort_keys=True) + "\n")
    return False


def finished_units(cfg: SweepConfig, rows: list[dict]) -> set[tuple[str, str, int]]:
    """Units that have a row for every (task, shots) they evaluate (a unit missing one is not
    finished)."""
    have: dict[tuple, set[tuple[str, int]]] = {}
    for r in rows:
        have.setdefault(unit_key(r), set()).add((r["task"], r.get("shots", 0)))
    expected = {c.name: {(t, k) for t, ks in shot_plan(cfg, c.name)[0].items() for k in ks}
                for c in cfg.conditions}
    return {u for u, tasks in have.items() if u[0] in expected and expected[u[0]] <= tasks}


def write_unit_rows(path: Path, rows: list[dict]) -> None:
    """Add one unit's rows, replacing any rows that unit had (a partial unit being redone)."""
    key = unit_key(rows[0])
    with folder_lock(path.parent):  # worker processes add rows side by side
        kept = [r for r in read_jsonl(path) if unit_key(r) != key]
        write_text_atomic(path, jsonl_text(kept + rows))

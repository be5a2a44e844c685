"""Run-folder files: every reader and writer of results.jsonl, curves.jsonl and config.json, and
the one definition of a row's key.

Writes never tear or duplicate a line: every write replaces the whole file with a new one
(temporary file, fsync, os.replace), so a reader sees either the old rows or the old rows plus
the new ones, never half a line. Files stay small (one row per task, size and seed), so the
rewrite costs nothing next to training. A read-modify-write (adding rows) holds an exclusive lock
on the file's folder (`folder_lock`, the `filelock` package's portable lock on a hidden file), so
the worker processes of one sweep (sweeps.pool) never lose each other's rows.

A **row key** names what a result row measures: (condition, task, size, seed, shots). A run folder
holds exactly one row per key (the runner writes them, sweeps.validate refuses repeats,
sweeps.repair drops them, sweeps.merge joins parts by them). Rows written before conditions or
shots existed read as condition "default" and 0 shots.
"""
from __future__ import annotations

import gzip
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable

from filelock import FileLock

KEY_FIELDS = ("condition", "task", "size", "seed", "shots")
FOLDER_LOCK = ".rows.lock"
SAMPLES = "samples"  # RUN_DIR/samples/<condition>-<size>-s<seed>.jsonl.gz: per-example logs


class ResultsError(ValueError):
    """A run folder's file is missing, unreadable or malformed; the message names file and line."""


def _plain(value):
    """A hashable stand-in for a JSON value (a damaged row may hold a list where a name belongs)."""
    return json.dumps(value, sort_keys=True) if isinstance(value, (list, dict)) else value


def row_key(row: dict) -> tuple:
    """(condition, task, size, seed, shots) of a result row; the defaults of older rows filled in."""
    return (row.get("condition") or "default", _plain(row.get("task")), _plain(row.get("size")),
            _plain(row.get("seed")), row.get("shots") or 0)


def curve_row_key(row: dict) -> tuple:
    """The key of a curves.jsonl row: a result row's key and the training step."""
    return row_key(row) + (row.get("step"),)


def unit_key(row: dict) -> tuple:
    """(condition, size, seed): the training run a row came from."""
    return row.get("condition") or "default", row["size"], row["seed"]


@contextmanager
def folder_lock(folder: Path):
    """Hold an exclusive lock on `folder` while adding rows to a file in it. Independent of the
    run lock (RUN_DIR/.lock), which the sweep's main process holds for the whole run. The lock
    lives on a hidden file beside the rows and is released when its holder dies."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder / FOLDER_LOCK)):
        yield


def read_jsonl_located(path: Path, required: tuple[str, ...] = ()) -> tuple[list[dict], list[str]]:
    """All rows of a JSON-lines file and where each came from ("path:line"); ([], []) if the file
    does not exist. A line that is not a JSON object, or lacks a `required` key, raises
    ResultsError naming the line and pointing at sweeps.repair."""
    path = Path(path)
    if not path.exists():
        return [], []
    rows, wheres = [], []
    repair = (f"a crash cannot tear this file, so it was edited or damaged by hand; repair it with "
              f"`python -m sweeps.repair {path.parent}` (keeps a backup, drops the bad lines; a "
              f"resumed sweep then retrains the runs they held)")
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ResultsError(f"{path}:{number}: invalid JSON ({exc.msg}); {repair}") from None
        if not isinstance(row, dict):
            raise ResultsError(f"{path}:{number}: expected a JSON object; {repair}")
        missing = [k for k in required if k not in row]
        if missing:
            raise ResultsError(f"{path}:{number}: missing key(s) {', '.join(missing)}; {repair}")
        rows.append(row)
        wheres.append(f"{path}:{number}")
    return rows, wheres


def read_jsonl(path: Path, required: tuple[str, ...] = ()) -> list[dict]:
    """The rows of a JSON-lines file ([] if it does not exist); see read_jsonl_located."""
    return read_jsonl_located(path, required)[0]


def read_curves(run_dir: Path) -> list[dict]:
    """RUN_DIR/curves.jsonl (empty when absent): evaluations during training."""
    return read_jsonl(Path(run_dir) / "curves.jsonl", required=("task", "size", "step"))


def read_config(run_dir: Path) -> dict:
    """RUN_DIR/config.json as a dict ({} when absent; ResultsError when unreadable)."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        return {}
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{path}: invalid JSON ({exc.msg})") from None
    if not isinstance(config, dict):
        raise ResultsError(f"{path}: expected a JSON object")
    return config


def flatten_config(config: dict, prefix: str = "") -> dict:
    """Nested config dicts as one level with dotted keys ({"train": {"lr": 1}} -> {"train.lr": 1})."""
    out = {}
    for k, v in config.items():
        if isinstance(v, dict):
            out.update(flatten_config(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def write_text_atomic(path: Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:  # a full disk or read-only folder: keep the old file, drop the partial one
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise OSError(f"could not write {path}: {exc.strerror or exc}; the file as it was before "
                      f"is intact") from None


def jsonl_text(rows: Iterable[dict]) -> str:
    return "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows)


def append_jsonl_atomic(path: Path, rows: Iterable[dict]) -> None:
    """Add rows to a JSON-lines file in one atomic replace (under folder_lock)."""
    path = Path(path)
    new = jsonl_text(rows)
    with folder_lock(path.parent):
        old = path.read_text() if path.exists() else ""
        if old and not old.endswith("\n"):
            old += "\n"
        write_text_atomic(path, old + new)


def samples_path(run_dir: Path, condition: str, size: str, seed) -> Path:
    """Where one unit's per-example log lives: as lm-evaluation-harness's --log_samples keeps
    them, gzip-compressed JSON lines, one record per evaluated problem, e.g.

        {"task": "add3", "shots": 0, "i": 0, "prompt": "123+045=", "target": "0168",
         "output": "0158", "correct": 0, "per_digit_acc": 0.75, "edit_distance": 1,
         "answer_logprob": -3.2041}

    (`i` the problem's index in the task's fixed order; sweeps.records.sample_records builds
    them). One file holds every (task, shots) of the unit; written atomically, the same records
    giving the same bytes."""
    return Path(run_dir) / SAMPLES / f"{condition}-{size}-s{seed}.jsonl.gz"


def write_sample_records(path: Path, records: Iterable[dict]) -> None:
    """Write records as a gzip JSON-lines file, atomically (module docstring)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as raw:
            # mtime 0 and no file name in the header: the same records give the same bytes
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
                for record in records:
                    gz.write(json.dumps(record, separators=(",", ":")).encode() + b"\n")
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_samples(path: Path) -> list[dict]:
    """The records of a log written by write_samples, in file order. ValueError, naming the file
    and line, for one that is not gzip JSON lines (damaged or cut short)."""
    path = Path(path)
    records = []
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}, line {n}: not a JSON record ({exc.msg})") from None
    except (gzip.BadGzipFile, EOFError, UnicodeDecodeError, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ValueError(f"{path} is not a complete gzip-compressed sample log "
                         f"({type(exc).__name__}: {exc})") from None
    return records

"""Result files: JSON lines written so that a crash never tears or duplicates a line.

Every write replaces the whole file with a new one (temporary file, fsync, os.replace), so a
reader sees either the old rows or the old rows plus the new ones, never half a line. Files stay
small (one row per task, size and seed), so the rewrite costs nothing next to training.

A read-modify-write (adding rows) holds an exclusive lock on the file's folder (`folder_lock`), so
that the worker processes of one sweep (sweeps.runner, --workers) never lose each other's rows.
"""
from __future__ import annotations

import fcntl
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable


@contextmanager
def folder_lock(folder: Path):
    """Hold an exclusive flock on `folder` itself (no lock file is created) while adding rows to
    a file in it. Independent of the run lock (RUN_DIR/.lock), which the sweep's main process
    holds for the whole run; the kernel drops this one if its holder dies."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def read_jsonl(path: Path) -> list[dict]:
    """All rows of a JSON-lines file ([] if it does not exist); ValueError names a bad line."""
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: line {number} is not valid JSON ({exc.msg}); a crash cannot "
                             f"tear this file, so it was edited or damaged by hand. Repair it with "
                             f"`python -m sweeps.repair {path.parent}` (keeps a backup, drops the "
                             f"bad lines; a resumed sweep then retrains the runs they held)") from None
        if not isinstance(rows[-1], dict):
            raise ValueError(f"{path}: line {number} is not a JSON object; repair with "
                             f"`python -m sweeps.repair {path.parent}`")
    return rows


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


def append_jsonl_atomic(path: Path, rows: Iterable[dict]) -> None:
    """Add rows to a JSON-lines file in one atomic replace (under folder_lock)."""
    path = Path(path)
    new = "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows)
    with folder_lock(path.parent):
        old = path.read_text() if path.exists() else ""
        if old and not old.endswith("\n"):
            old += "\n"
        write_text_atomic(path, old + new)

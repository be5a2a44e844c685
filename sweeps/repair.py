"""Repair a run folder whose results were damaged outside the runner (a hand edit, a copy cut short).

    python -m sweeps.repair RUN_DIR

The runner never tears results.jsonl (every write replaces the whole file), so a bad line means
the file was changed by something else. This keeps a backup of each file it changes
(`results.jsonl.bak-<time>`), drops lines that are not JSON objects with the keys a row needs and
rows that repeat a row key (sweeps.results.row_key: condition, task, size, seed, shots), and
removes leftover temporary files. A sweep
resumed on the folder afterwards retrains every run that lost a row, and only those.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from .results import curve_row_key, row_key, write_text_atomic

# file -> (the keys a row must have, the function giving its key)
ROW_KEYS = {"results.jsonl": (("task", "size", "seed"), row_key),
            "curves.jsonl": (("task", "size", "seed", "step"), curve_row_key)}


def repair_file(path: Path, fields: tuple[str, ...], key=row_key) -> list[str]:
    """Rewrite `path` without bad or repeated lines; returns one sentence per line dropped."""
    if not path.is_file():
        return []
    kept, dropped, seen = [], [], set()
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            dropped.append(f"{path.name} line {number}: not valid JSON ({exc.msg})")
            continue
        if not isinstance(row, dict) or any(k not in row for k in fields):
            dropped.append(f"{path.name} line {number}: not a row with {', '.join(fields)}")
            continue
        if key(row) in seen:
            dropped.append(f"{path.name} line {number}: repeats an earlier row's key")
            continue
        seen.add(key(row))
        kept.append(line)
    if dropped:
        backup = path.with_name(f"{path.name}.bak-{time.strftime('%Y%m%d-%H%M%S')}")
        shutil.copy2(path, backup)
        write_text_atomic(path, "".join(line + "\n" for line in kept))
        dropped.append(f"backup of the original: {backup}")
    return dropped


def repair(run_dir: Path) -> list[str]:
    if not run_dir.is_dir():
        raise ValueError(f"{run_dir}: not a folder; give a run folder holding results.jsonl")
    if not (run_dir / "results.jsonl").is_file():
        raise ValueError(f"{run_dir}: holds no results.jsonl, so there is nothing to repair")
    notes = []
    for name, (fields, key) in ROW_KEYS.items():
        notes += repair_file(run_dir / name, fields, key)
    for tmp in list(run_dir.glob("*.tmp")) + list((run_dir / "ckpt").glob("*.tmp")):
        tmp.unlink()
        notes.append(f"removed the partial file {tmp}")
    return notes


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sweeps.repair", description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path, help="the run folder to repair")
    args = ap.parse_args(argv)
    try:
        notes = repair(args.run_dir)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("\n".join(notes) if notes else f"{args.run_dir}: nothing to repair")
    if notes:
        print("resume the sweep with the same --out to retrain the runs whose rows were dropped")
    return 0


if __name__ == "__main__":
    sys.exit(main())

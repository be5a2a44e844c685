"""Published per-size results into a run folder, so `sweeps.report` analyses them like our sweeps.

    python -m sweeps.ingest results.csv OUT_DIR [--percent] [--force]
    python -m sweeps.report OUT_DIR

The CSV has a header row and one line per (family, model, task, metric):

    family   model family (GPT-3, LLaMA, ...); becomes the row's `condition`, so families are
             compared like conditions
    model    the model's name (becomes `size`)
    params   parameter count (a number; empty for an undisclosed size: the row is kept in
             results.jsonl and listed as excluded by the report)
    flops    optional: training FLOPs
    task     the task (also its `ability`)
    metric   exact_match, per_digit_acc, edit_distance, answer_logprob, or another name
    value    the score (a fraction for exact_match / per_digit_acc, unless --percent)
    n_eval   optional: number of evaluation problems (needed for intervals)
    chance   optional: the metric's chance level (same units as value)

Lines of one (family, model, task) become one result row with `seed: null` (one published
model). The schema of the rows is docs/results-schema.md. Faults name the CSV line and column.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path

from .results import write_text_atomic
from .results import ResultsError
from .validate import FRACTION_METRICS, check_rows, raise_errors

REQUIRED = ("family", "model", "params", "task", "metric", "value")
OPTIONAL = ("flops", "n_eval", "chance")


def _number(text: str, where: str, column: str, errors: list[str]) -> float | None:
    text = text.strip()
    if text == "":
        return None
    try:
        v = float(text.replace("_", ""))
    except ValueError:
        errors.append(f"{where}: column {column} = {text!r}: expected a number")
        return None
    if not math.isfinite(v):
        errors.append(f"{where}: column {column} = {text!r}: expected a finite number")
        return None
    return v


def read_csv(path: Path, percent: bool = False) -> tuple[list[dict], list[str]]:
    """Result rows from a CSV of published results, and each row's first CSV line ("path:line")."""
    path = Path(path)
    if not path.is_file():
        raise ResultsError(f"{path}: file not found")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        header = [h.strip() for h in (reader.fieldnames or [])]
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise ResultsError(f"{path}:1: header lacks column(s) {', '.join(missing)}; required: "
                               f"{', '.join(REQUIRED)}; optional: {', '.join(OPTIONAL)}")
        unknown = [h for h in header if h not in REQUIRED + OPTIONAL and h != "source"]
        if unknown:
            raise ResultsError(f"{path}:1: unknown column(s) {', '.join(unknown)}; valid: "
                               f"{', '.join(REQUIRED + OPTIONAL)} (and an optional source)")
        rows: dict[tuple, dict] = {}
        wheres: dict[tuple, str] = {}
        models: dict[tuple, tuple] = {}
        errors: list[str] = []
        for lineno, raw in enumerate(reader, 2):
            line = {k.strip(): (v or "") for k, v in raw.items() if k is not None}
            where = f"{path}:{lineno}"
            if not any(v.strip() for v in line.values()):
                continue
            for c in ("family", "model", "task", "metric"):
                if not line.get(c, "").strip():
                    errors.append(f"{where}: column {c} is empty")
            if errors and errors[-1].startswith(where):
                continue
            family, model, task, metric = (line[c].strip() for c in
                                           ("family", "model", "task", "metric"))
            nums = {c: _number(line.get(c, ""), where, c, errors)
                    for c in ("params", "flops", "value", "n_eval", "chance")}
            if line["value"].strip() == "":
                errors.append(f"{where}: column value is empty")
                continue
            if percent and metric in FRACTION_METRICS:
                nums["value"] = nums["value"] / 100 if nums["value"] is not None else None
                nums["chance"] = nums["chance"] / 100 if nums["chance"] is not None else None
            ident = (family, model)
            prev = models.setdefault(ident, (nums["params"], nums["flops"], where))
            if prev[:2] != (nums["params"], nums["flops"]):
                errors.append(f"{where}: {family} {model} has params/flops {nums['params']}/"
                              f"{nums['flops']} here but {prev[0]}/{prev[1]} at {prev[2]}")
                continue
            key = (family, model, task)
            row = rows.get(key)
            if row is None:
                row = rows[key] = {"sweep": "ingested", "condition": family, "task": task,
                                   "ability": task, "size": model, "seed": None,
                                   "params": nums["params"], "flops": nums["flops"],
                                   "n_eval": None, "chance": {}, "status": "ok",
                                   "source": line.get("source", "").strip() or None}
                wheres[key] = where
            if metric in row and metric not in ("chance",):
                errors.append(f"{where}: {family} {model} {task} has {metric} twice")
                continue
            if metric in ("sweep", "condition", "task", "ability", "size", "seed", "params",
                          "flops", "n_eval", "chance", "status", "source"):
                errors.append(f"{where}: column metric = {metric!r} is a reserved field name")
                continue
            row[metric] = nums["value"]
            if nums["n_eval"] is not None:
                if row["n_eval"] not in (None, nums["n_eval"]):
                    errors.append(f"{where}: n_eval {nums['n_eval']:g} differs from "
                                  f"{row['n_eval']:g} given earlier for {family} {model} {task}")
                row["n_eval"] = nums["n_eval"]
            if nums["chance"] is not None:
                row["chance"][metric] = nums["chance"]
    raise_errors(errors)
    out, out_wheres = [], []
    for key, row in rows.items():
        if row["n_eval"] is not None:
            row["n_eval"] = int(row["n_eval"]) if float(row["n_eval"]).is_integer() else row["n_eval"]
        row["chance"] = row["chance"] or None
        out.append(row)
        out_wheres.append(wheres[key])
    if not out:
        raise ResultsError(f"{path}: no result lines")
    raise_errors(check_rows(out, out_wheres)[0])
    return out, out_wheres


def ingest(csv_path: Path, out_dir: Path, percent: bool = False, force: bool = False) -> Path:
    """Write OUT_DIR/config.json and OUT_DIR/results.jsonl from the CSV; returns OUT_DIR."""
    out_dir = Path(out_dir)
    rows, _ = read_csv(csv_path, percent)
    if out_dir.exists() and not out_dir.is_dir():
        raise ResultsError(f"{out_dir}: exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not force:
        raise ResultsError(f"{out_dir}: exists and is not empty (use --force to overwrite)")
    config = {"sweep": "ingested", "source": str(csv_path), "percent_converted": percent,
              "conditions": sorted({r["condition"] for r in rows}),
              "tasks": sorted({r["task"] for r in rows})}
    write_text_atomic(out_dir / "config.json", json.dumps(config, indent=2) + "\n")
    write_text_atomic(out_dir / "results.jsonl",
                      "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    return out_dir


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sweeps.ingest",
                                 description="Turn a CSV of published per-size results into a run "
                                             "folder that python -m sweeps.report reads.")
    ap.add_argument("csv", type=Path, help="CSV with columns " + ", ".join(REQUIRED) +
                    " and optionally " + ", ".join(OPTIONAL))
    ap.add_argument("out_dir", type=Path, help="the run folder to write")
    ap.add_argument("--percent", action="store_true",
                    help="exact_match / per_digit_acc values and chance are percentages: divide "
                         "them by 100")
    ap.add_argument("--force", action="store_true", help="overwrite a non-empty OUT_DIR")
    args = ap.parse_args(argv)
    try:
        out = ingest(args.csv, args.out_dir, args.percent, args.force)
    except (ResultsError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out / 'results.jsonl'}; now run: python -m sweeps.report {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

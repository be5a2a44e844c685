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
    seed     optional: the training seed, for families published with several seeds per size
             (empty: null, one published model)
    shots    optional: examples in context (k-shot; empty: 0); each k is its own curve

Lines of one (family, model, seed, task, shots) become one result row. The schema of the rows is
docs/results-schema.md. Faults name the CSV line and column.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path

from .results import ResultsError, write_text_atomic
from .validate import FRACTION_METRICS, check_rows, raise_errors

REQUIRED = ("family", "model", "params", "task", "metric", "value")
OPTIONAL = ("flops", "n_eval", "chance", "seed", "shots")
RESERVED = ("sweep", "condition", "task", "ability", "size", "seed", "shots", "params", "flops",
            "n_eval", "chance", "status", "source")


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


def _check_header(path: Path, fieldnames) -> None:
    header = [h.strip() for h in (fieldnames or [])]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise ResultsError(f"{path}:1: header lacks column(s) {', '.join(missing)}; required: "
                           f"{', '.join(REQUIRED)}; optional: {', '.join(OPTIONAL)}")
    unknown = [h for h in header if h not in REQUIRED + OPTIONAL and h != "source"]
    if unknown:
        raise ResultsError(f"{path}:1: unknown column(s) {', '.join(unknown)}; valid: "
                           f"{', '.join(REQUIRED + OPTIONAL)} (and an optional source)")


def _seed_and_shots(line: dict, where: str, errors: list[str]) -> tuple[object, int]:
    """The line's seed (an integer when it reads as one, else the text; empty: None) and shots."""
    seed = line.get("seed", "").strip() or None
    if seed is not None and seed.lstrip("-").isdigit():
        seed = int(seed)
    shots = line.get("shots", "").strip() or "0"
    if not shots.isdigit():
        errors.append(f"{where}: column shots = {shots!r}: expected a whole number >= 0")
        return seed, 0
    return seed, int(shots)


def _parse_line(line: dict, where: str, percent: bool, errors: list[str]) -> dict | None:
    """One CSV line as {names..., numbers...}, or None (errors appended) when it is unusable."""
    empty = [c for c in ("family", "model", "task", "metric") if not line.get(c, "").strip()]
    if empty or line["value"].strip() == "":
        errors += [f"{where}: column {c} is empty" for c in empty + (
            ["value"] if line["value"].strip() == "" else [])]
        return None
    out = {c: line[c].strip() for c in ("family", "model", "task", "metric")}
    if out["metric"] in RESERVED:
        errors.append(f"{where}: column metric = {out['metric']!r} is a reserved field name")
        return None
    nums = {c: _number(line.get(c, ""), where, c, errors)
            for c in ("params", "flops", "value", "n_eval", "chance")}
    if percent and out["metric"] in FRACTION_METRICS:
        nums["value"] = nums["value"] / 100 if nums["value"] is not None else None
        nums["chance"] = nums["chance"] / 100 if nums["chance"] is not None else None
    out["seed"], out["shots"] = _seed_and_shots(line, where, errors)
    return {**out, **nums, "source": line.get("source", "").strip() or None}


def _add(rows: dict, wheres: dict, models: dict, p: dict, where: str, errors: list[str]) -> None:
    """Fold one parsed line into its row (one per family, model, seed, task, shots)."""
    ident = (p["family"], p["model"])
    prev = models.setdefault(ident, (p["params"], p["flops"], where))
    if prev[:2] != (p["params"], p["flops"]):
        errors.append(f"{where}: {p['family']} {p['model']} has params/flops {p['params']}/"
                      f"{p['flops']} here but {prev[0]}/{prev[1]} at {prev[2]}")
        return
    key = (p["family"], p["model"], json.dumps(p["seed"]), p["task"], p["shots"])
    if key not in rows:
        rows[key] = {"sweep": "ingested", "condition": p["family"], "task": p["task"],
                     "ability": p["task"], "size": p["model"], "seed": p["seed"],
                     "shots": p["shots"], "params": p["params"], "flops": p["flops"],
                     "n_eval": None, "chance": {}, "status": "ok", "source": p["source"]}
        wheres[key] = where
    row, metric, name = rows[key], p["metric"], f"{p['family']} {p['model']} {p['task']}"
    if metric in row:
        errors.append(f"{where}: {name} has {metric} twice")
        return
    row[metric] = p["value"]
    if p["n_eval"] is not None:
        if row["n_eval"] not in (None, p["n_eval"]):
            errors.append(f"{where}: n_eval {p['n_eval']:g} differs from {row['n_eval']:g} "
                          f"given earlier for {name}")
        row["n_eval"] = p["n_eval"]
    if p["chance"] is not None:
        row["chance"][metric] = p["chance"]


def read_csv(path: Path, percent: bool = False) -> tuple[list[dict], list[str]]:
    """Result rows from a CSV of published results, and each row's first CSV line ("path:line")."""
    path = Path(path)
    if not path.is_file():
        raise ResultsError(f"{path}: file not found")
    rows, wheres, models, errors = {}, {}, {}, []
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        _check_header(path, reader.fieldnames)
        for lineno, raw in enumerate(reader, 2):
            line = {k.strip(): (v or "") for k, v in raw.items() if k is not None}
            if any(v.strip() for v in line.values()):
                parsed = _parse_line(line, f"{path}:{lineno}", percent, errors)
                if parsed is not None:
                    _add(rows, wheres, models, parsed, f"{path}:{lineno}", errors)
    raise_errors(errors)
    for row in rows.values():
        if row["n_eval"] is not None and float(row["n_eval"]).is_integer():
            row["n_eval"] = int(row["n_eval"])
        row["chance"] = row["chance"] or None
    if not rows:
        raise ResultsError(f"{path}: no result lines")
    out, out_wheres = list(rows.values()), [wheres[k] for k in rows]
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

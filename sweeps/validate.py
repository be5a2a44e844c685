"""Checks on result rows (the schema is docs/results-schema.md), with messages naming the row.

Two kinds of fault:
- errors refuse the whole input: a value that cannot be what the schema says (a string where a
  number belongs, a fraction above 1, a malformed chance level). Analysing around them would
  give wrong verdicts silently (exact match in percent flips every "above chance").
- exclusions drop one row or one value and are listed in the report: `params: null` (a model
  whose size was never disclosed), a null or NaN metric in a row marked ok.

Two rows with one key (sweeps.results.row_key: condition, task, size, seed, shots) are an error
too, naming both lines: a repeated row would count one model twice.

    python -m sweeps.validate RUN_DIR      # exit 0 and the exclusions, or exit 2 and the errors
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

from .results import ResultsError, read_jsonl_located, row_key

REQUIRED_KEYS = ("task", "size", "seed", "params")
# metric -> (lowest valid value, highest valid value)
METRIC_RANGES = {
    "exact_match": (0.0, 1.0),
    "per_digit_acc": (0.0, 1.0),
    "edit_distance": (0.0, math.inf),
    "answer_logprob": (-math.inf, 0.0),
}
FRACTION_METRICS = ("exact_match", "per_digit_acc")
# keys of a row that are numbers but not metrics (anything else numeric counts as a metric)
NON_METRIC_KEYS = {"seed", "params", "params_total", "flops", "tokens", "examples", "steps",
                   "wall_time_s", "n_eval", "answer_len", "final_loss", "n_layer", "n_head",
                   "n_embd", "lr", "batch_size", "seq_len"}


def is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def is_finite(v) -> bool:
    return is_number(v) and math.isfinite(v)


def metric_keys(row: dict) -> list[str]:
    """The row's metrics: the known ones it has, plus any other numeric or null key named in its
    chance dict (e.g. a scratchpad's step_acc)."""
    keys = [m for m in METRIC_RANGES if m in row]
    chance = row.get("chance")
    if isinstance(chance, dict):
        keys += [k for k in chance if k not in METRIC_RANGES and k in row and k not in keys]
    return keys


def _range_msg(metric: str, v, lo: float, hi: float) -> str:
    msg = f"{metric} = {v!r} is outside its range [{lo:g}, {hi:g}]"
    if metric in FRACTION_METRICS and 1 < v <= 100:
        msg += (" (it looks like a percentage: the schema wants a fraction; divide by 100, or "
                "ingest the CSV with --percent)")
    return msg


def _identity_errors(row: dict, where: str) -> list[str]:
    """What names the row: task, size, condition, ability, seed, status."""
    errors = []
    for key in ("task", "size"):
        if not isinstance(row[key], (str, int)) or isinstance(row[key], bool) or row[key] == "":
            errors.append(f"{where}: field {key} = {row[key]!r}: expected a non-empty string")
    for key in ("condition", "ability"):
        if key in row and row[key] is not None and not isinstance(row[key], str):
            errors.append(f"{where}: field {key} = {row[key]!r}: expected a string")
    seed = row["seed"]
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, str))):
        errors.append(f"{where}: field seed = {seed!r}: expected an integer, a string or null")
    shots = row.get("shots")
    if shots is not None and (not isinstance(shots, int) or isinstance(shots, bool) or shots < 0):
        errors.append(f"{where}: field shots = {shots!r}: expected a whole number >= 0")
    if not isinstance(row.get("status", "ok"), str):
        errors.append(f"{where}: field status = {row['status']!r}: expected a string such as \"ok\"")
    return errors


def _count_errors(row: dict, where: str) -> tuple[list[str], list[str]]:
    """params (null: excluded), flops, n_eval, answer_len."""
    errors, excl = [], []
    p = row["params"]
    if p is None:
        excl.append(f"{where}: params is null (size undisclosed): row excluded from the scale "
                    "analysis")
    elif not is_finite(p) or p <= 0:
        errors.append(f"{where}: field params = {p!r}: expected a positive number, or null for an "
                      "undisclosed size")
    for key in ("flops", "n_eval", "answer_len"):
        v = row.get(key)
        if v is None:
            continue
        if not is_finite(v) or v <= 0:
            errors.append(f"{where}: field {key} = {v!r}: expected a positive number or null")
        elif key != "flops" and float(v) != int(v):
            errors.append(f"{where}: field {key} = {v!r}: expected a whole number")
    return errors, excl


def _chance_errors(row: dict, where: str) -> list[str]:
    chance = row.get("chance")
    if chance is None:
        return []
    if is_number(chance):
        chance = {"exact_match": chance}
    if not isinstance(chance, dict):
        return [f"{where}: field chance = {row['chance']!r}: expected an object "
                "{metric: chance level}, a number (the exact-match chance) or null"]
    errors = []
    for m, c in chance.items():
        if c is None:
            continue
        if not is_finite(c):
            errors.append(f"{where}: field chance.{m} = {c!r}: expected a finite number or null")
        elif m in METRIC_RANGES and not METRIC_RANGES[m][0] <= c <= METRIC_RANGES[m][1]:
            errors.append(f"{where}: field chance.{m}: " + _range_msg(m, c, *METRIC_RANGES[m]))
    return errors


def _metric_errors(row: dict, where: str) -> tuple[list[str], list[str]]:
    errors, excl = [], []
    for m in metric_keys(row):
        v = row[m]
        if v is None or (is_number(v) and not math.isfinite(v)):
            if row.get("status", "ok") == "ok":
                excl.append(f"{where}: {m} is {'null' if v is None else v}: value excluded")
            continue
        if not is_number(v):
            errors.append(f"{where}: field {m} = {v!r}: expected a number or null")
            continue
        lo, hi = METRIC_RANGES.get(m, (-math.inf, math.inf))
        if not lo <= v <= hi:
            errors.append(f"{where}: field {m}: " + _range_msg(m, v, lo, hi))
    return errors, excl


def _per_problem_errors(row: dict, where: str) -> list[str]:
    """`correct` (a string of 0/1, one per problem, agreeing with n_eval and exact_match) and
    `per_problem` ({metric: one finite number per problem})."""
    errors, n = [], row.get("n_eval")
    correct = row.get("correct")
    if correct is not None:
        if not isinstance(correct, str) or not correct or set(correct) - {"0", "1"}:
            return [f"{where}: field correct: expected a non-empty string of 0 and 1 (problem i's "
                    "exact-match outcome), got " + repr(correct)[:40]]
        if is_finite(n) and len(correct) != n:
            errors.append(f"{where}: field correct has {len(correct)} outcomes but n_eval is {n}")
        em = row.get("exact_match")
        if is_finite(em) and abs(correct.count("1") / len(correct) - em) > 1e-9:
            errors.append(f"{where}: field correct gives exact match "
                          f"{correct.count('1')}/{len(correct)}, but exact_match is {em}")
        n = len(correct)
    per_problem = row.get("per_problem")
    if per_problem is None:
        return errors
    if not isinstance(per_problem, dict):
        return errors + [f"{where}: field per_problem: expected an object {{metric: [values]}}"]
    for m, values in per_problem.items():
        if not isinstance(values, list) or not all(is_finite(v) for v in values):
            errors.append(f"{where}: field per_problem.{m}: expected a list of finite numbers")
        elif is_finite(n) and len(values) != n:
            errors.append(f"{where}: field per_problem.{m} has {len(values)} values, expected "
                          f"{int(n)} (one per problem)")
    return errors


def check_row(row, where: str) -> tuple[list[str], list[str]]:
    """(errors, exclusions) for one row; each message starts with `where` (file:line)."""
    if not isinstance(row, dict):
        return [f"{where}: expected a JSON object, got {type(row).__name__}"], []
    missing = [k for k in REQUIRED_KEYS if k not in row]
    if missing:
        return [f"{where}: missing key(s) {', '.join(missing)} (required: "
                f"{', '.join(REQUIRED_KEYS)}; use null for an unknown seed or params)"], []
    count_errors, excl = _count_errors(row, where)
    metric_errors, metric_excl = _metric_errors(row, where)
    errors = (_identity_errors(row, where) + count_errors + _chance_errors(row, where)
              + metric_errors + _per_problem_errors(row, where))
    return errors, excl + metric_excl


def check_rows(rows: list, wheres: list[str] | None = None) -> tuple[list[str], list[str]]:
    wheres = wheres or [f"row {i}" for i in range(1, len(rows) + 1)]
    errors, excl = [], []
    for row, where in zip(rows, wheres):
        e, x = check_row(row, where)
        errors += e
        excl += x
    return errors, excl


def raise_errors(errors: list[str], limit: int = 10) -> None:
    if errors:
        more = f"\n... and {len(errors) - limit} more" if len(errors) > limit else ""
        raise ResultsError("invalid results (see docs/results-schema.md):\n" +
                           "\n".join(errors[:limit]) + more)


def duplicate_errors(rows: list, wheres: list[str]) -> list[str]:
    """One message per row whose key an earlier row already has, naming both lines."""
    first: dict[tuple, str] = {}
    errors = []
    for row, where in zip(rows, wheres):
        if not isinstance(row, dict):
            continue
        key = row_key(row)
        if key in first:
            errors.append(f"{where}: repeats the row of {first[key]} (condition, task, size, seed, "
                          f"shots = {', '.join(map(str, key))}); each model is counted once: "
                          "drop one of them (python -m sweeps.repair RUN_DIR keeps the first)")
        else:
            first[key] = where
    return errors


def read_results(run_dir: str | Path) -> tuple[list[dict], list[str]]:
    """RUN_DIR/results.jsonl as rows and each row's location ("path:line"), checked; a fault
    raises ResultsError naming file, line and field."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ResultsError(f"{run_dir}: run folder does not exist")
    path = run_dir / "results.jsonl"
    if not path.is_file():
        raise ResultsError(f"{path}: file not found")
    rows, wheres = read_jsonl_located(path)
    if not rows:
        raise ResultsError(f"{path}: no result rows (file is empty)")
    errors = check_rows(rows, wheres)[0]
    raise_errors(errors or duplicate_errors(rows, wheres))
    return rows, wheres


def main(argv: list[str] | None = None) -> int:
    import argparse
    ap = argparse.ArgumentParser(prog="python -m sweeps.validate",
                                 description="Check RUN_DIR/results.jsonl against the schema.")
    ap.add_argument("run_dir", type=Path)
    args = ap.parse_args(argv)
    try:
        rows, wheres = read_results(args.run_dir)
    except (ResultsError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    excl = check_rows(rows, wheres)[1]
    print(f"{len(rows)} rows valid; {len(excl)} exclusion(s)")
    for x in excl:
        print(f"  {x}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Per-example evaluation logs, as lm-evaluation-harness's `--log_samples` keeps them: for every
evaluated problem, its prompt, what the model wrote, the target and the problem's own metrics, so
a reader sees what a small model answers and a paired analysis can be checked by hand.

A log is gzip-compressed JSON lines, one record per problem:

    {"task": "add3", "shots": 0, "i": 0, "prompt": "123+045=", "target": "0168",
     "output": "0158", "correct": 0, "per_digit_acc": 0.75, "edit_distance": 1,
     "answer_logprob": -3.2041}

`i` is the problem's index in the task's fixed order; the metric keys are those of the
evaluator's per-problem values (minigpt.evaluate.PER_PROBLEM_KEYS, plus step_acc and no_answer
for a scratchpad task, whose `output` is the whole text written). answer_logprob is rounded to
LOGPROB_DECIMALS places (0.0001 nats): 300 add3 problems of an untrained 25k model took 4.7 KB
so, 6.6 KB unrounded; 13.5 KB at 4 shots (the prompts hold the solved examples). One file may
hold several (task, shots) blocks, all of a unit's. Files are written atomically: a temporary
file in the same folder, flushed and fsynced, then renamed over the target.
"""
from __future__ import annotations

import gzip
import json
import os
import tempfile
from pathlib import Path
from typing import Iterable, Sequence

LOGPROB_DECIMALS = 4


def sample_records(task_name: str, shots: int, examples: Sequence, result: dict) -> list[dict]:
    """One record per example from an evaluation run with per_problem=True (module docstring)."""
    if "per_problem" not in result or "outputs" not in result:
        raise ValueError("the evaluation result holds no per-problem values: evaluate with "
                         "per_problem=True (minigpt.evaluate / minigpt.gen_eval)")
    rows, outputs = result["per_problem"], result["outputs"]
    lengths = {key: len(values) for key, values in rows.items()} | {"outputs": len(outputs)}
    if any(n != len(examples) for n in lengths.values()):
        raise ValueError(f"{task_name}: {len(examples)} examples but per-problem lengths {lengths}")
    records = []
    for i, ex in enumerate(examples):
        record = {"task": task_name, "shots": shots, "i": i, "prompt": ex.prompt,
                  "target": ex.answer, "output": outputs[i]}
        for key, values in rows.items():
            value = values[i]
            record[key] = round(value, LOGPROB_DECIMALS) if key == "answer_logprob" else value
        records.append(record)
    return records


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


def write_samples(path: Path, task_name: str, shots: int, examples: Sequence,
                  result_dict: dict) -> None:
    """Write one (task, shots) evaluation's per-example log to `path` (module docstring)."""
    write_sample_records(path, sample_records(task_name, shots, examples, result_dict))


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

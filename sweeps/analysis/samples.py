"""What the models answered: a few evaluated problems per size from the per-example logs
(RUN_DIR/samples/, written by the runner), so that a reader sees what a 25K model writes and what
a 200K one does. Older run folders have no logs; the section then says so."""
from __future__ import annotations

from pathlib import Path

from sweeps.results import read_samples, samples_path

PER_SIZE = 3


def _read(path: Path) -> list[dict]:
    """A unit's log, or nothing when it is missing or damaged (the report does not depend on it)."""
    try:
        return read_samples(path)
    except (OSError, ValueError):
        return []


def _cell(text) -> str:
    return "`" + str(text).replace("|", "\\|").replace("`", "'") + "`"


def samples_section(run_dir: Path, analysis: dict, per_size: int = PER_SIZE) -> list[str]:
    if not (Path(run_dir) / "samples").is_dir():
        return ["## What the models answered", "",
                "No per-example logs in this run folder (runs made before they existed, or "
                "ingested results).", ""]
    lines = ["## What the models answered", "",
             f"The first {per_size} evaluation problems of the first seed of each size "
             "(all problems of every unit are in samples/).", ""]
    for label, c in analysis["curves"].items():
        em = c["metrics"].get("exact_match")
        if em is None:
            continue
        rows = []
        for s in em["per_size"]:
            seed = s["seeds"][0]["seed"] if s.get("seeds") else None
            records = [r for r in _read(samples_path(run_dir, c["condition"], s["size"], seed))
                       if r.get("task") == c["task"] and (r.get("shots") or 0) == c["shots"]]
            rows += [f"| {s['size']} | {_cell(r.get('prompt', ''))} | {_cell(r.get('output', ''))} "
                     f"| {_cell(r.get('target', ''))} | {'yes' if r.get('correct') else 'no'} |"
                     for r in records[:per_size]]
        if rows:
            lines += [f"### {label}", "", "| size | prompt | output | target | right |",
                      "| --- | --- | --- | --- | --- |"] + rows + [""]
    return lines

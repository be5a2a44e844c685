"""What the instructions report measures, built from result rows: which task is which, and the
pooled measures of FLAN and T0 as curves the shared rules can judge.

An instructions sweep (sweeps.catalog) evaluates every phrasing as its own task: `add2-words-t05`
is template 5 of add2. From the task names (data_gen.templates) come:

    symbolic              tasks without "-words" (trained in every condition)
    tuned tasks           bases tuned in words, scored on their held-out templates (never trained)
    held-out task         the base never tuned in words, scored zero-shot through all its
                          templates (a task whose per-template rows include training templates)

Three **measures** pool tasks: the held-out task over its templates, the tuned tasks' held-out
templates, and the symbolic tasks. A measure is a curve like any other: per (condition, size,
seed) one model, whose per-problem value is its exact match on that problem averaged over the
measure's tasks (the same problems appear in every phrasing, so problems, not (phrasing, problem)
pairs, are the independent units: phrasings of one problem are a cluster). Rows without
per-problem outcomes fall back to answers pooled over phrasings (phrasings then count as
independent, which they are not: the report says so).
"""
from __future__ import annotations

import re
import statistics
from dataclasses import dataclass

import numpy as np

from data_gen import make_task
from data_gen.templates import family_of, split_templates

from .curves import Point, SeedScore, condition_of, is_ok, seed_score

UNTUNED = "untuned"
TUNED = re.compile(r"^tuned-k(\d+)(-.+)?$")
PER_TEMPLATE = re.compile(r"^(.+)-words-t(\d+)$")
MEASURES = ("held-out task", "held-out templates", "symbolic tasks")


class ReportError(ValueError):
    """The run folder cannot give this report; the message says why."""


@dataclass
class Kinds:
    symbolic: list[str]
    tuned_tasks: list[str]                # bases tuned in words
    held_out_task: str | None             # base never tuned in words
    held_phrasings: dict[str, list[str]]  # tuned base -> its per-template task names
    task_phrasings: list[str]             # the held-out task's per-template task names

    def measure_tasks(self) -> dict[str, list[str]]:
        return {"held-out task": self.task_phrasings,
                "held-out templates": [t for ts in self.held_phrasings.values() for t in ts],
                "symbolic tasks": self.symbolic}


def classify(tasks: set[str]) -> Kinds:
    per_template: dict[str, list[str]] = {}
    for name in sorted(tasks):
        if m := PER_TEMPLATE.match(name):
            per_template.setdefault(m.group(1), []).append(name)
    held_out, tuned = [], {}
    for base, names in per_template.items():
        train_ids = {t.index for t in split_templates(family_of(make_task(base, eval_size=1)))[0]}
        ids = {int(PER_TEMPLATE.match(n).group(2)) for n in names}
        (held_out.append(base) if ids & train_ids else tuned.__setitem__(base, names))
    if len(held_out) > 1:
        raise ReportError(f"more than one task is scored through training templates "
                          f"({', '.join(held_out)}); expected one held-out task")
    return Kinds(symbolic=sorted(t for t in tasks if "-words" not in t), tuned_tasks=sorted(tuned),
                 held_out_task=held_out[0] if held_out else None, held_phrasings=tuned,
                 task_phrasings=per_template.get(held_out[0], []) if held_out else [])


def check_rows(rows: list[dict], where: str) -> list[dict]:
    ok = [r for r in rows if is_ok(r) and r.get("exact_match") is not None]
    if not ok:
        raise ReportError(f"{where} holds no finished rows")
    if not any(PER_TEMPLATE.match(r["task"]) for r in ok):
        raise ReportError(f"{where} has no per-template rows (task names like add2-words-t05): "
                          "not an instructions run")
    if UNTUNED not in {condition_of(r) for r in ok}:
        raise ReportError(f"{where} has no '{UNTUNED}' condition to compare against")
    return ok


def k_of(condition: str) -> int | None:
    if condition == UNTUNED:
        return 0
    m = TUNED.match(condition)
    return int(m.group(1)) if m else None


def headline_condition(conditions: list[str]) -> str | None:
    """The tuned condition the help/hurt question is asked of: the most templates, no variant."""
    plain = [c for c in conditions if (m := TUNED.match(c)) and not m.group(2)]
    return max(plain, key=k_of) if plain else None


def pooled_seed(rows: list[dict]) -> SeedScore | None:
    """One model's score on a measure: its rows (one per task) pooled. With every row's per-
    problem outcomes over the same problems, the per-problem value is the mean over tasks."""
    scores = [seed_score(r, "exact_match") for r in rows]
    if not scores or any(s is None for s in scores):
        return None
    value = float(np.mean([s.value for s in scores]))
    sizes = {s.outcomes.size if s.outcomes is not None else None for s in scores}
    if None not in sizes and len(sizes) == 1:
        return SeedScore(rows[0].get("seed"), value, np.mean([s.outcomes for s in scores], axis=0))
    if all(s.n for s in scores):
        return SeedScore(rows[0].get("seed"), value, None, sum(s.k for s in scores),
                         sum(s.n for s in scores))
    return SeedScore(rows[0].get("seed"), value)


def measure_points(rows: list[dict], condition: str, tasks: list[str]) -> list[Point]:
    """The measure's curve for one condition: one point per size, one pooled score per seed
    (a seed missing one of the tasks is left out)."""
    mine = [r for r in rows if condition_of(r) == condition and r["task"] in tasks]
    by_size: dict[str, dict] = {}
    for r in mine:
        by_size.setdefault(r["size"], {}).setdefault(r.get("seed"), []).append(r)
    points = []
    for size, seeds in by_size.items():
        scores = [s for rs in seeds.values() if len(rs) == len(tasks)
                  and (s := pooled_seed(sorted(rs, key=lambda r: r["task"]))) is not None]
        if scores:
            first = next(iter(seeds.values()))[0]
            points.append(Point(size, float(first["params"]), first.get("flops"), scores))
    return sorted(points, key=lambda p: p.params)


def chance_of_tasks(rows: list[dict], tasks: list[str]) -> float | None:
    """A measure's chance: the mean over its tasks of their exact-match chance."""
    values = {}
    for r in rows:
        c = r.get("chance")
        if r["task"] in tasks and isinstance(c, dict) and c.get("exact_match") is not None:
            values[r["task"]] = c["exact_match"]
    return statistics.fmean(values.values()) if values else None


def spread(rows: list[dict], kinds: Kinds, sizes: list[str], conditions: list[str]) -> list[dict]:
    """Per size and condition, exact match on each held-out template of the tuned tasks (mean
    over seeds): median, lowest, highest (T0's robustness across phrasings)."""
    held = kinds.measure_tasks()["held-out templates"]
    out = []
    for size in sizes:
        for c in conditions:
            accs = [statistics.fmean(r["exact_match"] for r in rs) for t in held
                    if (rs := [r for r in rows if r["task"] == t and r["size"] == size
                               and condition_of(r) == c])]
            if accs:
                out.append({"size": size, "condition": c, "k": k_of(c),
                            "median": statistics.median(accs), "min": min(accs),
                            "max": max(accs), "n_templates": len(accs)})
    return out

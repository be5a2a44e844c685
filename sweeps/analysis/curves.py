"""Result rows as curves: what one (condition, task, shots, metric) scored at each size, per seed.

A **curve** is keyed by (condition, task, shots, metric): rows at different shot counts are never
pooled as if they were seeds, and conditions never share a curve. Its points are the measured
model sizes, by parameter count (two size names with one count are one point, with a note), and
each point holds one `SeedScore` per model trained at that size.

A seed's score carries what its sampling error needs: for exact match the per-problem outcomes
(`correct`, a string of 0/1 in the task's fixed problem order) or at least the count right of
`n_eval`; for a continuous metric its per-problem values (`per_problem[metric]`) when the row
records them. Rows written before per-problem outcomes existed (and ingested published results)
fall back to counts, and the analysis says so. The schema is docs/results-schema.md.

Metric directions and perfect scores, and the chance level a curve is judged against, are here
too: all judgements work on a normalised score q = (y - chance) / (perfect - chance), 0 at chance
and 1 at perfect whatever the metric's direction.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from sweeps.validate import is_finite, metric_keys


class Metric(NamedTuple):
    higher_is_better: bool
    label: str
    perfect: float | None  # the best possible value; with chance it fixes the q scale


METRICS: dict[str, Metric] = {
    "exact_match": Metric(True, "exact match (fraction)", 1.0),
    "per_digit_acc": Metric(True, "per-digit accuracy (fraction)", 1.0),
    "edit_distance": Metric(False, "edit distance (tokens, lower is better)", 0.0),
    "answer_logprob": Metric(True, "answer log-prob (nats)", 0.0),
}
CONTINUOUS_METRICS = ("per_digit_acc", "edit_distance", "answer_logprob")
BOUNDED_METRICS = ("exact_match", "per_digit_acc")  # fractions: axes and intervals in [0, 1]


def metric_spec(name: str, values=()) -> Metric:
    """The spec of a known metric, or of an unknown numeric one (higher is better; a fraction,
    perfect = 1, when every value lies in [0, 1]; otherwise no known perfect score)."""
    if name in METRICS:
        return METRICS[name]
    frac = all(0.0 <= v <= 1.0 for v in values)
    return Metric(True, f"{name} (fraction)" if frac else name, 1.0 if frac else None)


def is_ok(row: dict) -> bool:
    return row.get("status", "ok") == "ok"


def condition_of(row: dict) -> str:
    return row.get("condition") or "default"


def shots_of(row: dict) -> int:
    return int(row.get("shots") or 0)


def curve_label(condition: str | None, task: str, shots: int = 0) -> str:
    """How a curve is named in tables: `add3`, `add3 [scratchpad]`, `icl-op2 k=4`."""
    label = str(task) + (f" k={shots}" if shots else "")
    return label if condition in (None, "", "default") else f"{label} [{condition}]"


@dataclass
class SeedScore:
    """One model's score on one metric. `outcomes`: per-problem values (0/1 for exact match) when
    recorded; `k`/`n`: successes and trials for a binomial score (exact match's problems, or
    per-digit accuracy's digits when its per-problem values were not recorded: approximate,
    since the digits of one answer are not independent)."""
    seed: object
    value: float
    outcomes: np.ndarray | None = None
    k: int | None = None
    n: int | None = None
    digits_approx: bool = False


def _outcomes(row: dict, metric: str) -> np.ndarray | None:
    if metric == "exact_match":
        text = row.get("correct")
        if isinstance(text, str) and text and set(text) <= {"0", "1"}:
            return np.frombuffer(text.encode(), np.uint8) - ord("0")
        return None
    values = (row.get("per_problem") or {}).get(metric)
    if isinstance(values, list) and len(values) > 1 and all(is_finite(v) for v in values):
        return np.asarray(values, float)
    return None


def seed_score(row: dict, metric: str) -> SeedScore | None:
    """The row's score on `metric`, with what its sampling error needs; None if it has none."""
    value = row.get(metric)
    if not is_finite(value):
        return None
    out = SeedScore(row.get("seed"), float(value), _outcomes(row, metric))
    n_eval = row.get("n_eval")
    n_eval = int(n_eval) if is_finite(n_eval) and n_eval > 0 else None
    if metric == "exact_match":
        if out.outcomes is not None:
            out.k, out.n = int(out.outcomes.sum()), int(out.outcomes.size)
        elif n_eval:
            k = row.get("n_correct")
            out.k = int(k) if is_finite(k) else int(round(float(value) * n_eval))
            out.n = n_eval
    elif metric == "per_digit_acc" and out.outcomes is None and n_eval:
        length = row.get("answer_len")
        if is_finite(length) and length > 0:
            out.n = n_eval * int(length)
            out.k = int(round(min(max(float(value), 0.0), 1.0) * out.n))
            out.digits_approx = True
    return out


@dataclass
class Point:
    """One measured size of a curve."""
    size: str
    params: float
    flops: float | None
    seeds: list[SeedScore]

    @property
    def values(self) -> list[float]:
        return [s.value for s in self.seeds]


def _seed_order(seed) -> tuple:
    return (seed is None, str(type(seed)), seed if isinstance(seed, (int, str)) else 0)


def scale_points(rows: list[dict], metric: str) -> tuple[list[Point], list[str]]:
    """One curve's rows (ok, params known) as points sorted by params, and notes. Several size
    names with one parameter count are not a step in scale: they are merged into one point."""
    by_params: dict[float, dict[str, list[dict]]] = {}
    for r in rows:
        p = float(r["params"])
        key = next((k for k in by_params if math.isclose(k, p, rel_tol=1e-9)), p)
        by_params.setdefault(key, {}).setdefault(str(r["size"]), []).append(r)
    points, notes = [], []
    for p in sorted(by_params):
        named = by_params[p]
        group = sorted((r for rs in named.values() for r in rs),
                       key=lambda r: _seed_order(r.get("seed")))
        scores = [s for s in (seed_score(r, metric) for r in group) if s is not None]
        if not scores:
            continue
        if len(named) > 1:
            notes.append(f"sizes {', '.join(sorted(named))} have the same parameter count "
                         f"({p:.3g}); merged into one scale point")
        flops = [r.get("flops") for r in group]
        points.append(Point("=".join(sorted(named)), p,
                            float(np.mean(flops)) if all(is_finite(f) for f in flops) else None,
                            scores))
    return points, notes


def chance_of(rows: list[dict], metric: str) -> tuple[float | None, str | None]:
    """The rows' chance level for `metric` (a plain number means exact match), and a note when
    rows disagree (their mean is used)."""
    vals = []
    for r in rows:
        c = r.get("chance")
        if is_finite(c):
            c = {"exact_match": c}
        if isinstance(c, dict) and is_finite(c.get(metric)):
            vals.append(float(c[metric]))
    if not vals:
        return None, None
    note = None
    if max(vals) - min(vals) > 1e-12:
        note = (f"rows disagree on the {metric} chance level ({min(vals):.3g}..{max(vals):.3g}); "
                "their mean is used")
    return float(np.mean(vals)), note


def group_curves(rows: list[dict]) -> dict[tuple[str, str, int], list[dict]]:
    """Rows with a known parameter count by (condition, task, shots), in first-seen order."""
    out: dict[tuple[str, str, int], list[dict]] = {}
    for r in rows:
        if r.get("params") is not None:
            out.setdefault((condition_of(r), str(r["task"]), shots_of(r)), []).append(r)
    return out


def curve_metrics(rows: list[dict]) -> list[str]:
    """The metrics a curve's rows record: the four known ones first, in their order."""
    names = list(dict.fromkeys(m for r in rows if is_ok(r) for m in metric_keys(r)))
    return [m for m in METRICS if m in names] + [m for m in names if m not in METRICS]

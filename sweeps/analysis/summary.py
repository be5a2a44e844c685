"""report/summary.json: the machine-readable verdicts every report kind writes.

    {"kind": "emergence" | "icl" | "instructions", "schema": 2, "options": {...},
     "curves": [ one object per (condition, task, shots, metric) curve:
        {"condition", "task", "shots", "metric", "chance",
         "verdict": "emergent" | "present_at_smallest" | "never_above_chance" | "undetermined",
         "reason", "emergent_size", "emergent_params", "last_below_size", "last_below_params",
         "last_below_status": "consistent_with_chance" | "above_chance_under_floor" | null,
         "scale_interval": [lo, hi] (parameters; null for an open end),
         "scale_interval_kind": "stability_range" | null,
         "learning_scale": {"params", "lo", "hi", "interval_kind", "separated", "ok", "reason"},
         "shape", "shape_reason",
         "per_size": [{"size", "params", "n_seeds", "n_learned", "learned_interval", "mean",
                       "interval", "interval_kind", "p_value", "above_chance", "status"}]} ],
     "metric_question": [ per (condition, task, shots): {"answer", "reason", ...} ],
     "comparisons": [ ... as sweeps.analysis.compare returns them ... ]}

The full field list, with what each number means, is docs/results-schema.md. Numbers that are not
finite are written as null; numpy scalars become plain JSON numbers.
"""
from __future__ import annotations

import json
import math

import numpy as np

SCHEMA = 2
SIZE_FIELDS = ("size", "params", "flops", "n_seeds", "n_learned", "learned_interval", "mean",
               "min", "max", "interval", "interval_kind", "p_value", "above_chance", "status")


def clean(obj):
    """JSON-safe: numpy scalars to Python, NaN and inf to None."""
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return float(obj) if math.isfinite(float(obj)) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.ndarray):
        return clean(obj.tolist())
    return obj


def curve_entry(curve: dict, metric: str, r: dict) -> dict:
    """One curve object of summary.json (see the module doc)."""
    ls = r.get("learning_scale") or {}
    return {"condition": curve["condition"], "task": curve["task"], "shots": curve["shots"],
            "metric": metric, "chance": r["chance"], "verdict": r["verdict"], "reason": r["reason"],
            "emergent_size": r["emergent_size"], "emergent_params": r["emergent_params"],
            "last_below_size": r["last_below"], "last_below_params": r["last_below_params"],
            "last_below_status": r["last_below_status"], "scale_interval": r["scale_interval"],
            "scale_interval_kind": r["scale_interval_kind"],
            "learning_scale": {k: ls.get(k) for k in ("params", "lo", "hi", "interval_kind",
                                                      "separated", "ok", "reason")},
            "shape": r["shape"], "shape_reason": r.get("shape_reason"),
            "per_size": [{k: s.get(k) for k in SIZE_FIELDS} for s in r["per_size"]]}


def summary(kind: str, analysis: dict, comparisons: list[dict] | None = None,
            extra: dict | None = None) -> dict:
    """The summary.json object of a report of `kind`."""
    curves, questions = [], []
    for label, curve in analysis["curves"].items():
        for metric, r in curve["metrics"].items():
            curves.append(curve_entry(curve, metric, r))
        mq = curve["metric_question"]
        questions.append({"condition": curve["condition"], "task": curve["task"],
                          "shots": curve["shots"], "answer": mq["answer"], "reason": mq["reason"],
                          "digits_summary": mq["digits_summary"], "widths": mq["widths"],
                          "exact_vs_digits": mq["exact_vs_digits"]})
    return clean({"kind": kind, "schema": SCHEMA, "options": analysis["options"],
                  "curves": curves, "metric_question": questions,
                  "comparisons": comparisons or [], "excluded": analysis["excluded"],
                  "diverged": analysis["diverged"], **(extra or {})})


def dumps(obj: dict) -> str:
    return json.dumps(clean(obj), indent=1, sort_keys=False) + "\n"

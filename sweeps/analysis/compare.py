"""Conditions compared: per ability, each condition's emergent scale and the ratios between them.

A condition is one way of training the same ladder (plain answers, a scratchpad, ...) or, for
ingested published results, one model family. For every ability measured under two or more
conditions this gives each condition's emergent scale (Wei et al.: first size clearly above
chance) with its bootstrap interval, and the ratio of emergent scales for every pair, with an
interval from the two bootstraps (independent samples, so replicates are paired at random).

A ratio interval whose end is unbounded means that in more than 2.5% of replicates one condition
showed no emergence within the measured sizes (or already at the smallest one).
"""
from __future__ import annotations

import math

import numpy as np

from .stats import CONF


def _draws(m: dict, n: int, rng: np.random.Generator) -> np.ndarray | None:
    """Emergent params per bootstrap replicate (inf: not within the measured sizes)."""
    boot = (m.get("emergent") or {}).get("bootstrap")
    if not boot:
        return None
    vals = [o["params"] for o in boot["outcomes"]] + [math.inf]
    p = np.array([o["count"] for o in boot["outcomes"]] + [boot["none"]], float)
    return rng.choice(np.array(vals, float), size=n, p=p / p.sum())


def compare(analysis: dict, metric: str = "exact_match", conf: float = CONF,
            n: int = 4000, seed: int = 0) -> list[dict]:
    """One entry per ability measured under >= 2 conditions (see the module doc)."""
    by_ability: dict[str, list[tuple[str, dict]]] = {}
    for label, t in analysis["tasks"].items():
        by_ability.setdefault(t.get("ability") or t["task"], []).append((label, t))
    rng = np.random.default_rng(seed)
    a = (1 - conf) / 2
    out = []
    for ability, curves in by_ability.items():
        conds = {t["condition"] for _, t in curves}
        if len(conds) < 2:
            continue
        rows, draws = [], {}
        for label, t in curves:
            m = t["metrics"].get(metric) or {}
            em = m.get("emergent") or {}
            rows.append({"curve": label, "condition": t["condition"], "task": t["task"],
                         "verdict": m.get("verdict", "no data"), "reason": m.get("reason"),
                         "emergent_size": em.get("size"), "last_below": em.get("last_below"),
                         "emergent_params": m.get("emergent_params"),
                         "emergent_flops": m.get("emergent_flops"),
                         "interval_params": em.get("interval_params"),
                         "interval_flops": em.get("interval_flops"),
                         "metric_question": t["metric_question"]["summary"]})
            d = _draws(m, n, rng)
            if d is not None:
                draws[label] = d
        ratios = []
        for i in range(len(rows)):
            for j in range(i + 1, len(rows)):
                ra, rb = rows[i], rows[j]
                r = {"a": ra["curve"], "b": rb["curve"], "ratio": None, "interval": None}
                if ra["emergent_params"] and rb["emergent_params"]:
                    r["ratio"] = ra["emergent_params"] / rb["emergent_params"]
                else:
                    r["note"] = "no ratio: " + "; ".join(
                        f"{x['curve']} is '{x['verdict']}'" for x in (ra, rb)
                        if not x["emergent_params"])
                if r["ratio"] is not None and ra["curve"] in draws and rb["curve"] in draws:
                    with np.errstate(invalid="ignore", divide="ignore"):
                        q = draws[ra["curve"]] / draws[rb["curve"]]
                    q = np.where(np.isnan(q), np.inf, q)  # inf/inf: neither emerged; unbounded
                    lo, hi = np.quantile(q, [a, 1 - a], method="inverted_cdf")
                    r["interval"] = [float(lo) if 0 < lo < math.inf else None,
                                     float(hi) if 0 < hi < math.inf else None]
                elif r["ratio"] is not None:
                    r["note"] = "no interval: no bootstrap for one of the curves"
                ratios.append(r)
        out.append({"ability": ability, "metric": metric, "curves": rows, "ratios": ratios})
    return out

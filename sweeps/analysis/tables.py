"""Plain-text result tables: one per (condition, task), sizes down the side, metrics across.

Several seeds are averaged per size. Exact match carries its 95% interval (Clopper-Pearson over
the n_eval problems, pooled over seeds, widened by the seed spread where there are several
seeds; sweeps.stats). The last line names the first size clearly above chance (the lower end of
an interval simultaneous over the sizes above chance, and at least 5% of the way to perfect), as
sweeps.emergence defines the emergent scale; the full analysis, with bootstrap intervals and shape, is in the report.
"""
from __future__ import annotations

import math
from statistics import mean

from .emergence import FLOOR, curve_label
from .stats import size_interval

HEADERS = ("size", "params", "FLOPs", "seeds", "n_eval", "exact", "95% interval", "per-digit",
           "edit dist", "log-prob")


def _num(v) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def _fmt(v, spec: str) -> str:
    return "—" if v is None else format(v, spec)


def task_table(rows: list[dict], task: str, condition: str | None = None) -> str:
    """The table of one task (in one condition; all conditions pooled when None and the task has
    only one)."""
    rs = [r for r in rows if str(r.get("task")) == str(task)
          and (condition is None or (r.get("condition") or "default") == condition)]
    by_size: dict[str, list[dict]] = {}
    for r in rs:
        by_size.setdefault(str(r["size"]), []).append(r)
    title = curve_label(condition, task) if condition else str(task)
    lines = [f"task {title}", "  " + " ".join(f"{h:>12}" for h in HEADERS)]
    first = None

    def order(kv):
        p = _num(kv[1][0].get("params"))
        return (p is None, p or 0.0, kv[0])

    n_sizes = max(1, len({_num(g[0].get("params")) for g in by_size.values()
                          if any(_num(r.get("exact_match")) is not None for r in g)}))
    for size, group in sorted(by_size.items(), key=order):
        ok = [r for r in group if r.get("status", "ok") == "ok"]
        p, f = _num(group[0].get("params")), _num(group[0].get("flops"))
        n_eval = _num(group[0].get("n_eval"))
        cells = [size, _fmt(p, ",.0f"), _fmt(f, ".2e"), f"{len(ok)}/{len(group)}",
                 _fmt(n_eval, ".0f")]
        means = {m: [v for v in (_num(r.get(m)) for r in ok) if v is not None]
                 for m in ("exact_match", "per_digit_acc", "edit_distance", "answer_logprob")}
        if means["exact_match"]:
            iv = size_interval(means["exact_match"], int(n_eval) if n_eval else None)
            cells += [f"{iv['mean']:.1%}",
                      f"[{iv['lo']:.1%}, {iv['hi']:.1%}]" if iv["lo"] is not None else "—"]
            chance = group[0].get("chance")
            c = _num(chance.get("exact_match")) if isinstance(chance, dict) else _num(chance)
            # judged as sweeps.emergence does: intervals simultaneous over the curve's sizes
            jv = size_interval(means["exact_match"], int(n_eval) if n_eval else None,
                               1 - 0.05 / n_sizes)
            lo_ok = jv["lo"] is None or jv["lo"] > c if c is not None else False
            if (first is None and c is not None and p is not None and lo_ok
                    and (iv["mean"] - c) / (1 - c) >= FLOOR):
                first = size
        elif ok:
            cells += ["—", "—"]
        else:
            cells += ["diverged", ""]
        for m, spec in (("per_digit_acc", ".1%"), ("edit_distance", ".2f"),
                        ("answer_logprob", ".2f")):
            cells.append(_fmt(mean(means[m]), spec) if means[m] else "")
        lines.append("  " + " ".join(f"{c:>12}" for c in cells))
    lines.append(f"  first size clearly above chance (exact match): {first or 'none'}")
    return "\n".join(lines)


def task_tables(rows: list[dict]) -> str:
    """Every (condition, task)'s table."""
    curves = dict.fromkeys(((r.get("condition") or "default"), str(r["task"])) for r in rows)
    return "\n\n".join(task_table(rows, task, condition) for condition, task in curves)

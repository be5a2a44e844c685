"""Tables of an analysis (sweeps.analysis.emergence), for the terminal and for report.md.

Nothing is recomputed here: every number, interval and verdict comes from the analysis, so a
table can never disagree with the report or summary.json.

- `task_tables`: per curve, sizes down the side: exact match with its interval, how many seeds
  learned, the size's status against chance, and the continuous metrics;
- `emergence_table`: one line per curve, like Wei et al. 2022's Table 1, with the stability range
  of the emergent scale, the last size below it and its status, the size at which half the seeds
  learn, the shape and the metric question's answer;
- `seed_table`: per curve and size, seeds that learned / seeds trained with its exact interval.
"""
from __future__ import annotations

from .fmt import interval, num, pct, scale_range

STATUS_TEXT = {"consistent_with_chance": "consistent with chance",
               "above_chance_under_floor": "above chance, under the floor",
               "clearly_above_chance": "clearly above chance", "untested": "untested"}
CONTINUOUS = (("per_digit_acc", pct), ("edit_distance", num), ("answer_logprob", num))


def learned_text(s: dict) -> str:
    """Seeds that learned / seeds trained; a dash where learning cannot be judged (no chance)."""
    return "—" if s.get("n_learned") is None else f"{s['n_learned']}/{s['n_seeds']}"


def verdict_line(r: dict) -> str:
    """The verdict of one (curve, metric) in a sentence."""
    if r["verdict"] == "emergent":
        rng = scale_range(r["scale_interval"])
        return (f"emergent at {r['emergent_size']} (last below: {r['last_below']}, "
                f"{STATUS_TEXT[r['last_below_status']]})"
                + (f"; stability range {rng}" if rng else ""))
    if r["verdict"] == "present_at_smallest":
        return f"present at the smallest size, {r['emergent_size']}"
    return r["verdict"].replace("_", " ") + f": {r['reason']}"


def task_table(label: str, curve: dict) -> str:
    em = curve["metrics"].get("exact_match")
    if em is None:
        return f"curve {label}: no exact-match values"
    others = {m: curve["metrics"][m] for m, _ in CONTINUOUS if m in curve["metrics"]}
    head = ["size", "params", "seeds", "learned", "exact", "95% interval", "status"]
    head += [m for m in others]
    lines = [f"curve {label} (exact match; chance {pct(em['chance'])})",
             "  " + " | ".join(head)]
    by_size = {m: {s["size"]: s for s in r["per_size"]} for m, r in others.items()}
    for s in em["per_size"]:
        cells = [s["size"], num(s["params"], ",.0f"), str(s["n_seeds"]),
                 learned_text(s), pct(s["mean"]), interval(s["interval"]),
                 STATUS_TEXT.get(s.get("status"), "—")]
        for m, f in CONTINUOUS:
            if m in others:
                t = by_size[m].get(s["size"])
                cells.append(f(t["mean"]) if t else "—")
        lines.append("  " + " | ".join(cells))
    lines.append(f"  verdict: {verdict_line(em)}")
    return "\n".join(lines)


def task_tables(analysis: dict) -> str:
    return "\n\n".join(task_table(label, c) for label, c in analysis["curves"].items())


def _learning(r: dict) -> str:
    ls = r.get("learning_scale") or {}
    if not ls.get("ok"):
        return "—"
    return f"{num(ls['params'])} {scale_range([ls['lo'], ls['hi']], 'open', 'open')}"


def emergence_table(analysis: dict, metric: str = "exact_match") -> str:
    lines = [f"| curve | n_eval | sizes | verdict ({metric}) | emergent scale: params "
             "[stability range] | FLOPs | last below → first above (status below) | half the "
             "seeds learn at [profile range] | shape | metric question |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for label, c in analysis["curves"].items():
        r = c["metrics"].get(metric)
        if r is None:
            continue
        step = "—"
        if r["verdict"] == "emergent":
            step = (f"{r['last_below']} → {r['emergent_size']} "
                    f"({STATUS_TEXT[r['last_below_status']]})")
        scale = "—" if r["emergent_params"] is None else \
            f"{num(r['emergent_params'])} {scale_range(r['scale_interval'])}"
        n_eval = ", ".join(map(str, c.get("n_eval") or [])) or "unknown"
        lines.append(f"| {label} | {n_eval} | {len(r['per_size'])} | {r['verdict']} | {scale} "
                     f"| {num(r['emergent_flops'])} | {step} | {_learning(r)} | {r['shape']} "
                     f"| {c['metric_question']['answer']} |")
    return "\n".join(lines)


def seed_table(analysis: dict, metric: str = "exact_match") -> str:
    """Seeds that learned / seeds trained per size, with the exact interval on the share; empty
    when no size has two or more seeds."""
    curves = {label: c["metrics"].get(metric) for label, c in analysis["curves"].items()}
    if not any(s["n_seeds"] > 1 for r in curves.values() if r for s in r["per_size"]):
        return ""
    sizes = list(dict.fromkeys(s["size"] for r in curves.values() if r for s in r["per_size"]))
    lines = [f"| curve | {' | '.join(sizes)} |", "| --- |" + " --- |" * len(sizes)]
    for label, r in curves.items():
        if not r:
            continue
        by = {s["size"]: s for s in r["per_size"]}
        cells = []
        for size in sizes:
            s = by.get(size)
            cells.append("—" if s is None else
                         f"**{learned_text(s)}** {interval(s['learned_interval'])}"
                         f" mean {pct(s['mean'])} ({pct(s['min'])}–{pct(s['max'])})")
        lines.append(f"| {label} | {' | '.join(cells)} |")
    return "\n".join(lines)

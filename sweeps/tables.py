"""Plain-text result tables: one per task, sizes down the side, the four metrics across.

Several seeds are averaged per size. The last line names the first size whose mean exact match
crosses 50%, the simplest reading of "where the ability appears"; sweeps.emergence does the
careful one (interpolation, fits, seed bands).
"""
from __future__ import annotations

from collections import defaultdict
from statistics import mean

from minigpt.evaluate import METRIC_NAMES

HEADERS = ("size", "params", "FLOPs", "seeds", "exact", "per-digit", "edit dist", "log-prob")


def task_table(rows: list[dict], task: str) -> str:
    by_size: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        if r["task"] == task:
            by_size[r["size"]].append(r)
    lines = [f"task {task}", "  " + " ".join(f"{h:>10}" for h in HEADERS)]
    first_crossing = None
    for size, group in sorted(by_size.items(), key=lambda kv: kv[1][0]["params"]):
        ok = [r for r in group if r["status"] == "ok"]
        cells = [size, f"{group[0]['params']:,}", f"{group[0]['flops']:.2e}", f"{len(ok)}/{len(group)}"]
        if ok:
            means = {m: mean(r[m] for r in ok) for m in METRIC_NAMES}
            cells += [f"{means['exact_match']:.1%}", f"{means['per_digit_acc']:.1%}",
                      f"{means['edit_distance']:.2f}", f"{means['answer_logprob']:.2f}"]
            if first_crossing is None and means["exact_match"] > 0.5:
                first_crossing = size
        else:
            cells += ["diverged"] + [""] * 3
        lines.append("  " + " ".join(f"{c:>10}" for c in cells))
    lines.append(f"  first size with exact match > 50%: {first_crossing or 'none'}")
    return "\n".join(lines)


def print_tables(rows: list[dict]) -> None:
    for task in dict.fromkeys(r["task"] for r in rows):
        print(task_table(rows, task) + "\n")

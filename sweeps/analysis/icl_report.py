"""The in-context learning report: accuracy against the number of shots k, per size, with intervals.

For every task and every size: exact match at each k, pooled over seeds, with a 95% Wilson score
interval (the number right out of the problems asked). For tasks evaluated on held-out rules (rows
with `trained` false, e.g. icl-rule7-new: rules no model ever trained on) it names the **ICL
emergent scale**: the first size, smallest first, at which the interval's lower bound at the
decisive k (the largest k evaluated for that task, fixed before looking) clears the bar, judged on
Wilson intervals simultaneous over the sizes (Bonferroni: each at 1 - 0.05/n, as sweeps.emergence
judges "above chance"); the tables and plots show plain 95% intervals. When no
size clears it, the report says so with each size's numbers. Pooling seeds into one binomial count
ignores seed-to-seed spread: with several seeds the per-seed values are listed too.

Figures (report/icl_<task>.png): accuracy against k, one line per size; accuracy against size, one
line per k; chance as a dashed line (and, for operator recognition, the accuracy of a model that
knows + - * but guesses which is hidden).

Built by `python -m sweeps.report RUN_DIR` for sweeps whose report kind is "icl".
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from scipy.stats import norm  # noqa: E402

from data_gen import HiddenOpTask, make_task  # noqa: E402
from sweeps.results import read_jsonl, write_text_atomic  # noqa: E402

from . import stats  # noqa: E402

Z95 = 1.959963984540054  # the 97.5% standard normal quantile


def wilson_interval(correct: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval for a binomial proportion (95% by default), from sweeps.stats."""
    if n <= 0 or not 0 <= correct <= n:
        raise ValueError(f"need 0 <= correct <= n and n > 0, got {correct} of {n}")
    lo, hi = stats.wilson(correct, n, conf=2 * norm.cdf(z) - 1)
    return float(lo), float(hi)


def _correct(row: dict) -> int:
    if row.get("n_correct") is not None:
        return int(row["n_correct"])
    return round(row["exact_match"] * row["n_eval"])


def summarise_rows(rows: list[dict]) -> dict:
    """{task: {"cells": {(size, k): cell}, "sizes": [...], "ks": [...], "chance": c, ...}} where a
    cell pools the size's seeds: correct, n, acc, lo, hi, per_seed."""
    ok = [r for r in rows if r.get("status") == "ok" and r.get("exact_match") is not None]
    out = {}
    for task in dict.fromkeys(r["task"] for r in rows):
        mine = [r for r in ok if r["task"] == task]
        groups: dict[tuple, list[dict]] = defaultdict(list)
        for r in mine:
            groups[r["size"], r.get("shots", 0)].append(r)
        params = {r["size"]: r["params"] for r in mine}
        cells = {}
        for key, group in groups.items():
            correct, n = sum(_correct(r) for r in group), sum(r["n_eval"] for r in group)
            lo, hi = wilson_interval(correct, n)
            cells[key] = {"correct": correct, "n": n, "acc": correct / n, "lo": lo, "hi": hi,
                          "per_seed": {r["seed"]: r["exact_match"] for r in group}}
        chances = [r["chance"]["exact_match"] for r in mine if r.get("chance")]
        all_rows = [r for r in rows if r["task"] == task]
        chance = max(chances) if chances else None
        no_context = _no_context(task, mine[0]["n_eval"]) if mine else None
        out[task] = {
            "cells": cells, "sizes": sorted(params, key=params.get), "params": params,
            "ks": sorted({k for _, k in cells}), "chance": chance, "no_context": no_context,
            # what k-shot accuracy must clear: chance, or a guesser that ignores the examples
            "bar": None if chance is None else max([chance] + list((no_context or {}).values())),
            "heldout": any(r.get("trained") is False for r in all_rows),
            "failed": len(all_rows) - len(mine),
        }
    return out


def _no_context(task: str, n_eval: int) -> dict | None:
    """The task's no-context baselines (see LinearRuleTask.no_context_baselines) on the same
    evaluation set (rebuilt from its size), or None for a task without them."""
    try:
        t = make_task(task, eval_size=n_eval)
    except ValueError:
        return None
    if not hasattr(t, "no_context_baselines") or len(t.eval_set()) != n_eval:
        return None
    return t.no_context_baselines()


def icl_emergent_scale(task_summary: dict, k: int | None = None) -> dict:
    """The first size (smallest first) whose Wilson lower bound at shot count k (default: the
    largest k evaluated) exceeds the bar: chance, or for rule tasks the best guesser that ignores
    the examples if that is higher. With the evidence for every size."""
    ks, chance = task_summary["ks"], task_summary.get("bar", task_summary["chance"])
    k = ks[-1] if k is None else k
    evidence = []
    for size in task_summary["sizes"]:
        cell = task_summary["cells"].get((size, k))
        if cell is not None:
            evidence.append((size, cell))
    # judged on intervals simultaneous over the curve's sizes (Bonferroni, as sweeps.emergence
    # does): asking each of n sizes at 95% would name a false scale far more often than 5%
    conf = 1 - 0.05 / max(1, len(evidence))
    z = float(norm.ppf(1 - (1 - conf) / 2))
    for _, cell in evidence:
        cell["judge_lo"] = wilson_interval(cell["correct"], cell["n"], z)[0]
    first = next((size for size, cell in evidence
                  if chance is not None and cell["judge_lo"] > chance), None)
    return {"k": k, "chance": chance, "size": first, "conf": conf,
            "params": task_summary["params"].get(first) if first else None, "evidence": evidence}


def _op_baseline(task: str, n_eval: int) -> float | None:
    try:
        t = make_task(task, eval_size=n_eval)
    except ValueError:
        return None
    return t.op_guess_baseline() if isinstance(t, HiddenOpTask) else None


def format_icl_tables(rows: list[dict]) -> str:
    """Plain-text tables: per task, sizes down, k across, exact match with its 95% interval."""
    lines = []
    summary = summarise_rows(rows)
    for task, s in summary.items():
        kind = "held-out rules, never trained" if s["heldout"] else "trained task"
        chance = "—" if s["chance"] is None else _pct(s["chance"])
        baseline = _op_baseline(task, next(r["n_eval"] for r in rows if r["task"] == task))
        extra = "" if baseline is None else f"; knowing + - * but guessing which: {baseline:.1%}"
        if s["no_context"]:
            nc = s["no_context"]
            extra += (f"; ignoring the examples: best constant answer {nc['constant']:.1%}, "
                      f"training-rule prior {nc['rule_prior']:.1%}")
        lines.append(f"task {task} ({kind}): exact match by shots k, 95% Wilson interval; "
                     f"chance {chance}{extra}")
        lines.append("  " + f"{'size':>6} {'params':>9} " + " ".join(f"{f'k={k}':>19}" for k in s["ks"]))
        for size in s["sizes"]:
            cells = [s["cells"].get((size, k)) for k in s["ks"]]
            text = [f"{c['acc']:6.1%} [{c['lo']:5.1%},{c['hi']:6.1%}]" if c else "—" for c in cells]
            lines.append("  " + f"{size:>6} {s['params'][size]:>9,} " + " ".join(f"{t:>19}" for t in text))
        if s["failed"]:
            lines.append(f"  ({s['failed']} rows diverged and are left out)")
        if s["heldout"]:
            lines.append("  " + _verdict(task, s, summary.get(task.removesuffix("-new"))))
        lines.append("")
    return "\n".join(lines)


def _pct(x: float) -> str:
    return f"{x:.1%}" if x >= 0.01 else f"{x:.3%}"


def _verdict(task: str, s: dict, trained: dict | None = None) -> str:
    e = icl_emergent_scale(s)
    if e["chance"] is None or not e["evidence"]:
        return f"ICL emergent scale for {task}: not computable (no chance level or no results)"
    if e["size"]:
        cell = dict(e["evidence"])[e["size"]]
        return (f"ICL emergent scale for {task}: {e['size']} ({e['params']:,} params): at k={e['k']} "
                f"exact match {cell['acc']:.1%}, lower bound {cell['judge_lo']:.1%} of its "
                f"{e['conf']:.2%} interval (simultaneous over {len(e['evidence'])} sizes) > "
                f"{e['chance']:.1%} (chance, or a guesser ignoring the examples if higher)")
    best_size, best = max(e["evidence"], key=lambda sc: sc[1]["lo"])
    return (f"ICL emergent scale for {task}: none. No size's lower bound at k={e['k']} ({e['conf']:.2%} "
            f"intervals, simultaneous over {len(e['evidence'])} sizes) clears "
            f"{e['chance']:.1%} (chance, or a guesser ignoring the examples if higher); the best is {best_size} at {best['acc']:.1%} "
            f"[{best['lo']:.1%}, {best['hi']:.1%}] ({best['correct']}/{best['n']}). Held-out-rule "
            f"learning did not appear at this budget." + _trained_note(trained))


def _trained_note(trained: dict | None) -> str:
    """Whether the training rules were learned: if not, the budget falls short of the task itself,
    before any question of generalising to new rules."""
    if not trained or not trained["cells"]:
        return ""
    e = icl_emergent_scale(trained)
    if e["chance"] is None:
        return ""
    if e["size"]:
        return (f" The training rules were learned in context from {e['size']} on (k={e['k']}): "
                f"the models use the examples for rules they trained on, not yet for new ones.")
    return (f" The training rules are not above {e['chance']:.1%} at k={e['k']} either, at any size: the "
            f"budget falls short of the task itself, before any question of new rules.")


def _yerr(cells: list[dict]) -> list[list[float]]:
    return [[max(0.0, c["acc"] - c["lo"]) for c in cells], [max(0.0, c["hi"] - c["acc"]) for c in cells]]


def _plot(task: str, s: dict, path: Path, baseline: float | None) -> None:
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    cmap = plt.get_cmap("viridis")
    for i, size in enumerate(s["sizes"]):
        ks = [k for k in s["ks"] if (size, k) in s["cells"]]
        cells = [s["cells"][size, k] for k in ks]
        colour = cmap(i / max(1, len(s["sizes"]) - 1))
        left.errorbar(ks, [c["acc"] for c in cells],
                      yerr=_yerr(cells),
                      marker="o", capsize=3, color=colour, label=f"{size}")
    for j, k in enumerate(s["ks"]):
        sizes = [z for z in s["sizes"] if (z, k) in s["cells"]]
        cells = [s["cells"][z, k] for z in sizes]
        colour = plt.get_cmap("plasma")(j / max(1, len(s["ks"]) - 1))
        right.errorbar([s["params"][z] for z in sizes], [c["acc"] for c in cells],
                       yerr=_yerr(cells),
                       marker="o", capsize=3, color=colour, label=f"k={k}")
    right.set_xscale("log")
    for ax, xlabel in ((left, "shots k (solved examples before the query)"),
                       (right, "non-embedding parameters")):
        if s["chance"] is not None:
            ax.axhline(s["chance"], color="grey", ls="--", lw=1, label="chance")
        if baseline is not None:
            ax.axhline(baseline, color="black", ls=":", lw=1, label="knows + - *, guesses which")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("exact match (95% Wilson interval)")
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=7)
    left.set_title(f"{task}: accuracy against k, per size")
    right.set_title(f"{task}: accuracy against size, per k")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def build_icl_report(run_dir: Path) -> Path:
    """Write RUN_DIR/report/report.md, icl.json and one figure per task; returns the .md."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ValueError(f"{run_dir} does not exist or is not a folder")
    rows = read_jsonl(run_dir / "results.jsonl")
    if not rows:
        raise ValueError(f"{run_dir} holds no results (results.jsonl is missing or empty)")
    config = json.loads((run_dir / "config.json").read_text()) if (run_dir / "config.json").is_file() else {}
    out = run_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    summary = summarise_rows(rows)
    train = config.get("train", {})
    md = ["# In-context learning report", ""]
    if train:
        md += [f"Sweep `{config.get('name')}`, tasks {', '.join(config.get('tasks', []))} trained; "
               f"{', '.join(config.get('eval_only', [])) or 'none'} evaluated only. Budget per model "
               f"{train.get('steps')} steps x {train.get('batch_size')} contexts x "
               f"{train.get('seq_len')} tokens; seeds {', '.join(map(str, config.get('seeds', [])))}.",
               ""]
    md += ["Exact match by number of shots k, pooled over seeds, with 95% Wilson intervals. The ICL "
           "emergent scale of a held-out-rule task is the first size whose lower bound at the "
           "largest k (on intervals simultaneous over the sizes) clears chance, or the exact score "
           "of a guesser that ignores the examples if that is higher.", "", "```", format_icl_tables(rows), "```", ""]
    record = {}
    for task, s in summary.items():
        if not s["cells"]:
            continue
        baseline = _op_baseline(task, config.get("eval_size") or next(
            r["n_eval"] for r in rows if r["task"] == task))
        png = out / f"icl_{task}.png"
        _plot(task, s, png, baseline)
        md += [f"## {task}", "", f"![{task}]({png.name})", ""]
        if baseline is not None:
            md += [f"A model that computes + - * perfectly but guesses which is hidden scores "
                   f"{baseline:.1%} on these problems; clearing that needs the examples.", ""]
        if s["heldout"]:
            md += [_verdict(task, s, summary.get(task.removesuffix("-new"))), ""]
        record[task] = {"chance": s["chance"], "heldout": s["heldout"], "op_guess_baseline": baseline,
                        "no_context": s["no_context"], "bar": s["bar"],
                        "cells": [{"size": z, "k": k, **c} for (z, k), c in s["cells"].items()]}
        if s["heldout"]:
            e = icl_emergent_scale(s)
            record[task]["icl_emergent_scale"] = {"k": e["k"], "size": e["size"], "params": e["params"]}
    write_text_atomic(out / "icl.json", json.dumps(record, indent=1, sort_keys=True, default=str) + "\n")
    write_text_atomic(out / "report.md", "\n".join(md) + "\n")
    return out / "report.md"


def summarise(run_dir: Path, **_) -> str:
    """The report's terminal text, writing nothing (sweeps.report's protocol)."""
    return format_icl_tables(read_jsonl(Path(run_dir) / "results.jsonl"))


def build(run_dir: Path, **_) -> tuple[Path, str]:
    """Write RUN_DIR/report/ and return it with the terminal text (sweeps.report's protocol)."""
    path = build_icl_report(run_dir)
    return path.parent, summarise(run_dir)

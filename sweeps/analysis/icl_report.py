"""The in-context learning report: accuracy against the number of shots k, per size.

Every (condition, task, k) is its own curve, judged by the same rules as every other report
(sweeps.analysis.emergence: the pooled exact test per size with Holm's correction over sizes, the
floor, seed counts, Clopper-Pearson intervals over problems), except for its bar: a curve of a
task with examples in context is judged against the best guesser that ignores the examples
(chance, the best constant answer, the answer most training rules give, a model that knows + - *
but guesses which is hidden: data_gen.icl), since clearing chance alone needs no examples.

For each task it gives:
- accuracy by k and size, with intervals (one interval per number, as every report prints it);
- k shots against 0 shots, per size, paired on the same problems and seeds
  (sweeps.analysis.compare): where the examples help;
- for tasks on held-out rules (rows with `trained` false: rules no model trained on), the **ICL
  emergent scale**: the verdict of the curve at the largest k evaluated (fixed before looking).

Figures (report/icl_<task>.png): accuracy against k, one line per size; accuracy against size,
one line per k; the bars as lines. Built by `python -m sweeps.report RUN_DIR` for sweeps whose
report kind is "icl".
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from data_gen import HiddenOpTask, make_task  # noqa: E402
from sweeps.results import read_config, write_text_atomic  # noqa: E402
from sweeps.validate import read_results  # noqa: E402

from . import sections  # noqa: E402
from .compare import compare_pair, curve_handle, judge_family  # noqa: E402
from .curves import group_curves, is_ok, scale_points  # noqa: E402
from .emergence import analyse, options_of  # noqa: E402
from .fmt import interval, pct  # noqa: E402
from .hparams import safe_name  # noqa: E402
from .summary import dumps, summary  # noqa: E402
from .tables import verdict_line  # noqa: E402


def bars(task: str, n_eval: int, chance: float | None) -> dict[str, float]:
    """What k-shot accuracy must clear for `task`: chance and the guessers that ignore the
    examples (for tasks data_gen knows; rebuilt on the same evaluation set, from its size)."""
    out = {} if chance is None else {"chance": chance}
    try:
        t = make_task(task, eval_size=n_eval)
    except ValueError:
        return out
    if len(t.eval_set()) != n_eval:
        return out
    if hasattr(t, "no_context_baselines"):
        nc = t.no_context_baselines()
        out.update({"best constant answer": nc["constant"],
                    "answer most training rules give": nc["rule_prior"]})
    if isinstance(t, HiddenOpTask):
        out["knows + - *, guesses which"] = t.op_guess_baseline()
    return out


def task_bars(rows: list[dict]) -> dict[str, dict[str, float]]:
    out = {}
    for r in rows:
        if r["task"] not in out and is_ok(r) and isinstance(r.get("n_eval"), int):
            chance = r.get("chance")
            c = chance.get("exact_match") if isinstance(chance, dict) else chance
            out[r["task"]] = bars(r["task"], r["n_eval"], c)
    return out


def k_comparisons(rows: list[dict], analysis: dict, bar: dict, options: dict, rng) -> list:
    """k shots against 0 shots, per (condition, task), paired per size."""
    handles: dict[tuple, dict[int, dict]] = {}
    for (condition, task, shots), rs in group_curves(rows).items():
        curve = next(c for c in analysis["curves"].values()
                     if (c["condition"], c["task"], c["shots"]) == (condition, task, shots))
        if "exact_match" in curve["metrics"]:
            points, _ = scale_points([r for r in rs if is_ok(r)], "exact_match")
            handles.setdefault((condition, task), {})[shots] = curve_handle(
                condition, task, shots, points, curve["metrics"]["exact_match"])
    out = []
    for (condition, task), by_k in handles.items():
        if 0 in by_k:
            family = [compare_pair(by_k[k], by_k[0], options, rng,
                                   max(bar.get(task, {}).values(), default=None))
                      for k in sorted(by_k) if k > 0]
            judge_family(family, 1.0 - options["conf"])  # one question: do examples help?
            out += family
    return out


def _curves_of(analysis: dict, task: str) -> dict[int, dict]:
    return {c["shots"]: c for c in analysis["curves"].values() if c["task"] == task}


def task_text(task: str, analysis: dict, bar: dict, heldout: bool) -> list[str]:
    """One task's table (sizes down, k across) and, on held-out rules, its ICL verdict."""
    by_k = {k: c["metrics"]["exact_match"] for k, c in sorted(_curves_of(analysis, task).items())
            if "exact_match" in c["metrics"]}
    if not by_k:
        return []
    sizes = list(dict.fromkeys(s["size"] for r in by_k.values() for s in r["per_size"]))
    kind = "held-out rules, never trained" if heldout else "trained task"
    bar_txt = "; ".join(f"{name} {pct(v)}" for name, v in bar.items()) or "no chance recorded"
    lines = [f"task {task} ({kind}): exact match by shots k [95% interval]; bars: {bar_txt}",
             "| size | " + " | ".join(f"k={k}" for k in by_k) + " |",
             "| --- |" + " --- |" * len(by_k)]
    for size in sizes:
        cells = []
        for r in by_k.values():
            s = next((s for s in r["per_size"] if s["size"] == size), None)
            cells.append("—" if s is None else f"{pct(s['mean'])} {interval(s['interval'])}")
        lines.append(f"| {size} | " + " | ".join(cells) + " |")
    if heldout:
        k = max(by_k)
        lines.append(f"ICL emergent scale of {task} (k={k}, against the highest bar): "
                     + verdict_line(by_k[k]))
    return lines + [""]


def _plot(task: str, analysis: dict, bar: dict, path: Path) -> Path | None:
    by_k = {k: c["metrics"]["exact_match"] for k, c in sorted(_curves_of(analysis, task).items())
            if "exact_match" in c["metrics"]}
    if not by_k:
        return None
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.4))
    sizes = list(dict.fromkeys(s["size"] for r in by_k.values() for s in r["per_size"]))
    for i, size in enumerate(sizes):
        pts = [(k, s) for k, r in by_k.items() for s in r["per_size"] if s["size"] == size]
        _errorbar(left, [k for k, _ in pts], [s for _, s in pts],
                  plt.get_cmap("viridis")(i / max(1, len(sizes) - 1)), size)
    for j, (k, r) in enumerate(by_k.items()):
        _errorbar(right, [s["params"] for s in r["per_size"]], r["per_size"],
                  plt.get_cmap("plasma")(j / max(1, len(by_k) - 1)), f"k={k}")
    right.set_xscale("log")
    for ax, xlabel in ((left, "shots k (solved examples before the query)"),
                       (right, "non-embedding parameters")):
        for n, (name, v) in enumerate(bar.items()):
            ax.axhline(v, color="grey" if name == "chance" else "black",
                       ls=("--", ":", "-.", (0, (1, 3)))[n % 4], lw=1, label=name)
        ax.set(xlabel=xlabel, ylabel="exact match (95% interval over problems)", ylim=(-0.02, 1.02))
        ax.legend(fontsize=7)
    left.set_title(f"{task}: accuracy against k, per size")
    right.set_title(f"{task}: accuracy against size, per k")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _errorbar(ax, x, per_size, colour, label):
    y = np.array([s["mean"] for s in per_size])
    lo = np.array([s["interval"][0] if s["interval"] else s["mean"] for s in per_size])
    hi = np.array([s["interval"][1] if s["interval"] else s["mean"] for s in per_size])
    ax.errorbar(x, y, yerr=[np.maximum(y - lo, 0), np.maximum(hi - y, 0)], marker="o",
                capsize=3, color=colour, label=label)


def _analysis(run_dir: Path, floor: float, n_boot: int, threshold_frac: float = 0.5):
    rows, wheres = read_results(run_dir)
    bar = task_bars(rows)
    options = options_of(threshold_frac, floor, n_boot=n_boot)
    overrides = {t: max(b.values()) for t, b in bar.items() if b}
    analysis = analyse(rows, options, wheres, chance_overrides=overrides)
    for c in analysis["curves"].values():
        if "exact_match" in c["metrics"]:
            c["metrics"]["exact_match"]["bars"] = bar.get(c["task"], {})
    comps = k_comparisons(rows, analysis, bar, options, np.random.default_rng(1))
    heldout = {r["task"] for r in rows if r.get("trained") is False}
    return rows, analysis, comps, bar, heldout


def text(analysis, comps, bar, heldout) -> str:
    tasks = list(dict.fromkeys(c["task"] for c in analysis["curves"].values()))
    lines = [line for t in tasks for line in task_text(t, analysis, bar.get(t, {}), t in heldout)]
    return "\n".join(lines + [c["headline"] for c in comps])


def summarise(run_dir: Path, threshold_frac: float = 0.5, floor: float = 0.05, n_boot: int = 1000,
              **_) -> str:
    """The report's terminal text, writing nothing (sweeps.report's protocol)."""
    _, analysis, comps, bar, heldout = _analysis(Path(run_dir), floor, n_boot, threshold_frac)
    return text(analysis, comps, bar, heldout)


def build(run_dir: Path, threshold_frac: float = 0.5, floor: float = 0.05, n_boot: int = 1000,
          **_) -> tuple[Path, str]:
    """Write RUN_DIR/report/ (report.md, summary.json, analysis.json, one figure per task) and
    return it with the terminal text (sweeps.report's protocol)."""
    run_dir = Path(run_dir)
    rows, analysis, comps, bar, heldout = _analysis(run_dir, floor, n_boot, threshold_frac)
    config = read_config(run_dir)
    out = run_dir / "report"
    out.mkdir(exist_ok=True)
    body = text(analysis, comps, bar, heldout)
    md = ["# In-context learning report", "",
          "Exact match by shots k, each (task, k) judged against the highest bar a guesser that "
          "ignores the examples reaches (and chance), by the rules below.", "", body, ""]
    md += sections.meaning(analysis["options"])
    for task in dict.fromkeys(c["task"] for c in analysis["curves"].values()):
        png = _plot(task, analysis, bar.get(task, {}), out / f"icl_{safe_name(task)}.png")
        if png:
            md += [f"## {task}", "", f"![{task}]({png.name})", ""]
    md += sections.comparisons(comps) + sections.reasons(analysis)
    md += sections.per_size(analysis) + sections.excluded(analysis)
    md += sections.configuration(config, rows)
    extra = {"bars": bar, "heldout_tasks": sorted(heldout)}
    write_text_atomic(out / "summary.json", dumps(summary("icl", analysis, comps, extra)))
    write_text_atomic(out / "analysis.json", dumps({**analysis, "comparisons": comps}))
    write_text_atomic(out / "report.md", "\n".join(md) + "\n")
    return out, body

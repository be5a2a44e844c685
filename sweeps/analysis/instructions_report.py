"""The instruction-tuning report: tuned against untuned models of each size, from results alone.

Built by `python -m sweeps.report RUN_DIR` for sweeps whose report kind is "instructions": reads
RUN_DIR/results.jsonl (written by `python -m sweeps.run instructions`) and writes RUN_DIR/report/
(report.md, summary.json, analysis.json, spread.png, held_out_task.png, effect.png). It asks
the questions of FLAN and T0 in miniature, on the measures of sweeps.analysis.instructions_measures:

1. **Robustness across phrasings (T0).** Per size and condition, the median, lowest and highest
   exact match across the held-out templates of the tuned tasks (phrasings no condition trained
   on), against the number of templates per task seen in tuning (0 = untuned, 1, 3, 10).
2. **Zero-shot on a held-out task (T0's protocol).** The held-out task pooled over all its
   templates, per condition and size, judged like every curve (sweeps.analysis.emergence).
3. **Where tuning helps and where it hurts (FLAN).** Per size and measure, tuned minus untuned,
   paired on the same seeds (they share pre-training) and problems (sweeps.analysis.compare):
   "helps" and "hurts" need the Holm-corrected test and the range; where both score under the
   measure's chance, the table says so. The headline sentence is read off that table.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from sweeps.results import read_config, write_text_atomic  # noqa: E402
from sweeps.validate import read_results  # noqa: E402

from . import sections  # noqa: E402
from .compare import compare_pair, judge_family  # noqa: E402
from .curves import condition_of, group_curves  # noqa: E402
from .emergence import analyse_curve, analyse_safely, options_of  # noqa: E402
from .fmt import pct  # noqa: E402
from .instructions_measures import (MEASURES, UNTUNED, ReportError, chance_of_tasks,  # noqa: E402
                                    check_rows, classify, headline_condition, k_of,
                                    measure_points, spread)
from .plots import ability_figure  # noqa: E402
from .summary import dumps, summary  # noqa: E402

__all__ = ["ReportError", "analyse", "build", "summarise"]


def analyse(rows: list[dict], options: dict, rng) -> dict:
    """Measures as curves per condition, the symbolic tasks' own curves, the spread across
    phrasings, and every tuned condition against untuned per measure."""
    kinds = classify({r["task"] for r in rows})
    conditions = sorted({condition_of(r) for r in rows},
                        key=lambda c: (k_of(c) is None, k_of(c) or 0, c))
    curves, handles = {}, {}
    for measure, tasks in kinds.measure_tasks().items():
        chance = chance_of_tasks(rows, tasks)
        for c in conditions:
            points = measure_points(rows, c, tasks)
            if not tasks or not points:
                continue
            result = analyse_safely(points, "exact_match", chance, options, rng)
            label = f"{measure} [{c}]"
            curves[label] = {"condition": c, "task": measure, "shots": 0, "ability": measure,
                             "metrics": {"exact_match": result},
                             "notes": pooling_notes(points, len(tasks)),
                             "metric_question": {"answer": "undetermined", "reason":
                                                 "a pooled measure has no per-digit curve",
                                                 "side_by_side": [], "digits_summary": "—",
                                                 "widths": None, "exact_vs_digits": []}}
            handles[measure, c] = {"label": label, "points": points, "result": result}
    for (condition, task, shots), rs in group_curves(rows).items():
        if task in kinds.symbolic:
            curve = analyse_curve(rs, options, rng)
            curve.update(condition=condition, task=task, shots=shots, ability=task)
            curves[f"{task} [{condition}]"] = curve
    comps = [compare_pair(handles[m, c], handles[m, UNTUNED], options, rng,
                          bar=handles[m, UNTUNED]["result"]["chance"])
             for m in MEASURES for c in conditions
             if c != UNTUNED and (m, c) in handles and (m, UNTUNED) in handles]
    judge_family(comps, 1.0 - options["conf"])  # one question: every measure, condition
    sizes = sorted({r["size"] for r in rows}, key=lambda s: min(r["params"] for r in rows
                                                                if r["size"] == s))
    return {"options": options, "curves": curves, "comparisons": comps, "kinds": kinds.__dict__,
            "conditions": conditions, "sizes": sizes, "headline_condition":
                headline_condition(conditions), "spread": spread(rows, kinds, sizes, conditions),
            "excluded": [], "diverged": []}


def pooling_notes(points: list, n_tasks: int) -> list[str]:
    """Say where a measure's intervals treat phrasings as independent: a model whose rows carry
    no per-problem outcomes has its answers pooled over the measure's tasks as one count."""
    if n_tasks < 2 or all(s.outcomes is not None for p in points for s in p.seeds):
        return []
    return [f"no per-problem outcomes: each model's answers are pooled over its {n_tasks} "
            "phrasings as if independent, which they are not (every phrasing asks the same "
            "problems), so these intervals are too narrow"]


def _load(run_dir: Path, floor: float, n_boot: int, threshold_frac: float
          ) -> tuple[list[dict], dict]:
    rows = check_rows(read_results(run_dir)[0], str(Path(run_dir) / "results.jsonl"))
    return rows, analyse(rows, options_of(threshold_frac, floor, n_boot=n_boot),
                         np.random.default_rng(1))


def headlines(a: dict) -> list[str]:
    cond = a["headline_condition"]
    return [f"**{c['headline']}**" for c in a["comparisons"]
            if c["treatment"].endswith(f"[{cond}]")]


def spread_table(a: dict) -> list[str]:
    lines = ["| size | condition | templates per task | median | lowest | highest |",
             "| --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {s['size']} | {s['condition']} | {s['k'] if s['k'] is not None else '—'} | "
              f"{pct(s['median'])} | {pct(s['min'])} | {pct(s['max'])} |" for s in a["spread"]]
    return lines


def summarise(run_dir: Path, threshold_frac: float = 0.5, floor: float = 0.05, n_boot: int = 1000,
              **_) -> str:
    """The answers and the spread for the terminal, writing nothing (sweeps.report's protocol)."""
    return text(_load(Path(run_dir), floor, n_boot, threshold_frac)[1])


def text(a: dict) -> str:
    return "\n".join([f"From which size does tuning help, and below which does it hurt? "
                      f"(`{a['headline_condition']}` against `{UNTUNED}`)", ""]
                     + [f"- {h}" for h in headlines(a)] + ["", "Held-out templates across "
                                                           "phrasings:"] + spread_table(a))


def plots(a: dict, out: Path) -> list[str]:
    made = []
    fig, ax = plt.subplots(figsize=(6, 4))
    for size in a["sizes"]:
        pts = sorted((s for s in a["spread"] if s["size"] == size and s["k"] is not None),
                     key=lambda s: s["k"])
        if pts:
            xs = [s["k"] for s in pts]
            line, = ax.plot(xs, [s["median"] for s in pts], "o-", label=size)
            ax.fill_between(xs, [s["min"] for s in pts], [s["max"] for s in pts], alpha=0.15,
                            color=line.get_color())
    ax.set(xscale="symlog", xlabel="templates per task in tuning (0 = untuned)",
           ylabel="exact match on held-out templates",
           title="median; band: lowest..highest held-out template")
    ax.legend(title="size")
    made.append(_save(fig, out / "spread.png"))
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for c in a["comparisons"]:
        xs = [d["params"] for d in c["sizes"] if d["interval"]]
        ds = [d for d in c["sizes"] if d["interval"]]
        ax.errorbar(xs, [d["diff"] for d in ds], yerr=[[d["diff"] - d["interval"][0] for d in ds],
                                                       [d["interval"][1] - d["diff"] for d in ds]],
                    marker="o", capsize=3, label=c["treatment"])
    ax.axhline(0, color="grey", lw=0.8)
    ax.set(xscale="log", xlabel="non-embedding parameters", ylabel="tuned minus untuned",
           title="where tuning helps (>0) and hurts (<0); bars: range over seeds and problems")
    ax.legend(fontsize=6)
    made.append(_save(fig, out / "effect.png"))
    held = {label: c for label, c in a["curves"].items() if c["task"] == "held-out task"}
    fig = ability_figure("held-out task, zero-shot through all its templates", held) \
        if held else None
    if fig is not None:  # laid out by ability_figure: saved as it is
        fig.savefig(out / "held_out_task.png", dpi=90)
        plt.close(fig)
        made.append("held_out_task.png")
    return made


def _save(fig, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def build(run_dir: Path, threshold_frac: float = 0.5, floor: float = 0.05, n_boot: int = 1000,
          **_) -> tuple[Path, str]:
    """Write RUN_DIR/report/ and return it with the terminal text (sweeps.report's protocol)."""
    run_dir = Path(run_dir)
    rows, a = _load(run_dir, floor, n_boot, threshold_frac)
    out = run_dir / "report"
    out.mkdir(exist_ok=True)
    figures = plots(a, out)
    k = a["kinds"]
    md = ["# Instruction tuning: tuned against untuned", "",
          f"Sizes {', '.join(a['sizes'])}; conditions {', '.join(a['conditions'])}. Tuned in "
          f"words: {', '.join(k['tuned_tasks'])}; held-out task: {k['held_out_task'] or 'none'}.",
          "", "## From which size does tuning help, and below which does it hurt?", "",
          *[f"- {h}" for h in headlines(a)], "", "## Held-out templates across phrasings (T0)",
          "", *spread_table(a), "", *[f"![{f}]({f})" for f in figures], ""]
    md += sections.comparisons(a["comparisons"]) + sections.meaning(a["options"])
    md += sections.reasons(a) + sections.per_size(a)
    md += sections.configuration(read_config(run_dir), rows)
    extra = {"spread": a["spread"], "kinds": k}
    write_text_atomic(out / "summary.json", dumps(summary("instructions", a, a["comparisons"],
                                                          extra)))
    write_text_atomic(out / "analysis.json", dumps(a))
    write_text_atomic(out / "report.md", "\n".join(md) + "\n")
    return out, text(a)

"""The emergence report: where each ability appears, rebuilt from a run folder's results alone.

Follows "Emergent Abilities of Large Language Models" (Wei et al. 2022): each ability's score
against parameters and training FLOPs on a log axis, and a table of emergent scales like their
Table 1, judged by sweeps.analysis.emergence (per-size tests against chance, seed counts, the
verdict and its stability range). Beside exact match it weighs the continuous metrics that "Are
Emergent Abilities of Large Language Models a Mirage?" (Schaeffer et al. 2023) asks about
(sweeps.analysis.metric_question), and compares conditions on the same problems
(sweeps.analysis.compare). Figures come from sweeps.analysis.plots; this file writes.

    RUN_DIR/report/report.md      the report
    RUN_DIR/report/summary.json   the verdicts, machine-readable (sweeps.analysis.summary)
    RUN_DIR/report/analysis.json  every number behind them
    RUN_DIR/report/*.png          figures; RUN_DIR/tb/hparams for TensorBoard

Built by `python -m sweeps.report RUN_DIR` for sweeps whose report kind is "emergence".
"""
from __future__ import annotations

from pathlib import Path

from sweeps.results import read_config, read_curves, write_text_atomic
from sweeps.validate import read_results

from . import sections
from .compare import compare_pair, curve_handle
from .curves import condition_of, group_curves, is_ok, scale_points
from .emergence import analyse, options_of
from .hparams import write_hparams
from .plots import plot_ability, plot_seeds, plot_training
from .samples import samples_section
from .summary import dumps, summary
from .tables import emergence_table, seed_table, task_tables


def reference_order(config: dict, rows: list[dict]) -> list[str]:
    """Conditions in the sweep's own order (its first is the reference others are compared to)."""
    named = [c.get("name") if isinstance(c, dict) else c for c in config.get("conditions") or []]
    seen = list(dict.fromkeys(condition_of(r) for r in rows))
    return [c for c in named if c in seen] + [c for c in seen if c not in named]


def comparisons(rows: list[dict], analysis: dict, config: dict, options: dict, rng) -> list[dict]:
    """Every non-reference condition against the reference, per ability and shot count."""
    order = reference_order(config, rows)
    groups: dict[tuple, dict[str, dict]] = {}
    for (condition, task, shots), rs in group_curves(rows).items():
        curve = next(c for c in analysis["curves"].values() if (c["condition"], c["task"],
                                                                c["shots"]) == (condition, task, shots))
        result = curve["metrics"].get("exact_match")
        if result is None:
            continue
        points, _ = scale_points([r for r in rs if is_ok(r)], "exact_match")
        groups.setdefault((curve["ability"], shots), {})[condition] = curve_handle(
            condition, task, shots, points, result)
    out = []
    for handles in groups.values():
        conds = [c for c in order if c in handles]
        for treatment in conds[1:]:
            ref = handles[conds[0]]
            out.append(compare_pair(handles[treatment], ref, options, rng,
                                    bar=ref["result"]["chance"]))
    return out


def terminal_text(analysis: dict, comps: list[dict]) -> str:
    """What a sweep prints when it ends: per-curve tables, the emergence table, the seed counts,
    and each comparison's headline."""
    parts = [task_tables(analysis), emergence_table(analysis)]
    seeds = seed_table(analysis)
    if seeds:
        parts.append("seeds that learned / seeds trained [exact interval on the share], mean "
                     "(lowest-highest seed):\n" + seeds)
    parts += [c["headline"] for c in comps]
    return "\n\n".join(parts)


def _analysis(run_dir: Path, threshold_frac, floor, n_boot):
    import numpy as np

    rows, wheres = read_results(run_dir)
    config = read_config(run_dir)
    options = options_of(threshold_frac, floor, n_boot=n_boot)
    analysis = analyse(rows, options, wheres)
    comps = comparisons(rows, analysis, config, options, np.random.default_rng(1))
    return rows, config, analysis, comps


def summarise(run_dir: Path, threshold_frac: float = 0.5, floor: float = 0.05,
              n_boot: int = 1000, **_) -> str:
    """The report's terminal text, writing nothing (sweeps.report's protocol)."""
    _, _, analysis, comps = _analysis(Path(run_dir), threshold_frac, floor, n_boot)
    return terminal_text(analysis, comps)


def figures(run_dir: Path, out: Path, analysis: dict) -> dict[str, list[Path]]:
    by_ability: dict[str, dict] = {}
    for label, c in analysis["curves"].items():
        by_ability.setdefault(c["ability"], {})[label] = c
    curves = read_curves(run_dir)
    made: dict[str, list[Path]] = {}
    for ability, group in by_ability.items():
        made.setdefault(ability, []).append(plot_ability(ability, group, out))
    for label, c in analysis["curves"].items():
        mine = [r for r in curves if str(r.get("task")) == c["task"]
                and condition_of(r) == c["condition"] and (r.get("shots") or 0) == c["shots"]]
        sizes = [s["size"] for s in (c["metrics"].get("exact_match") or {}).get("per_size", [])]
        made.setdefault(c["ability"], []).append(plot_training(label, mine, sizes, out))
        made[c["ability"]].append(plot_seeds(label, c, out))
    return {a: [p for p in ps if p is not None] for a, ps in made.items()}


def report_md(run_dir: Path, rows, config, analysis, comps, figs) -> str:
    lines = [f"# Emergence report: {run_dir.name}", "",
             f"{len(rows)} result rows, {len(analysis['curves'])} curves (one per condition, "
             "task and shot count).", ""]
    lines += sections.meaning(analysis["options"])
    lines += ["## Emergence table", "", emergence_table(analysis), ""]
    seeds = seed_table(analysis)
    if seeds:
        lines += ["## Across seeds (exact match)", "",
                  "Per size: **seeds that learned / seeds trained**, the exact (Clopper-Pearson) "
                  "interval on the share of seeds of that size that learn, and the mean with the "
                  "lowest and highest seed.", "", seeds, ""]
    lines += sections.reasons(analysis) + sections.comparisons(comps)
    lines += sections.metric_question(analysis)
    lines += ["## Figures", ""]
    for ability, paths in figs.items():
        lines += [f"### {ability}"] + [f"![{ability}]({p.name})" for p in paths] + [""]
    lines += samples_section(run_dir, analysis)
    lines += sections.per_size(analysis) + sections.excluded(analysis)
    return "\n".join(lines + sections.configuration(config, rows))


def build(run_dir: Path, threshold_frac: float = 0.5, floor: float = 0.05, n_boot: int = 1000,
          tensorboard: bool = True, **_) -> tuple[Path, str]:
    """Write RUN_DIR/report/ and return it with the terminal text (sweeps.report's protocol)."""
    run_dir = Path(run_dir)
    rows, config, analysis, comps = _analysis(run_dir, threshold_frac, floor, n_boot)
    out = run_dir / "report"
    out.mkdir(exist_ok=True)
    figs = figures(run_dir, out, analysis)
    write_text_atomic(out / "summary.json", dumps(summary("emergence", analysis, comps)))
    write_text_atomic(out / "analysis.json", dumps({**analysis, "comparisons": comps}))
    write_text_atomic(out / "report.md", report_md(run_dir, rows, config, analysis, comps, figs))
    if tensorboard:
        write_hparams(run_dir, [r for r in rows if r.get("params") is not None], config)
    return out, terminal_text(analysis, comps)

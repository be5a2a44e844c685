"""The sweep report: tables, figures and TensorBoard hparams rebuilt from a run folder's results.

Follows "Emergent Abilities of Large Language Models" (Wei et al. 2022): each ability's score
against parameters and training FLOPs on a log axis, and a table of emergent scales (their
Table 1), where the emergent scale is the first measured size clearly above chance. Every score
carries its sampling error (sweeps.stats), every emergent scale a bootstrap interval. Beside
exact match it judges the continuous metrics that "Are Emergent Abilities of Large Language
Models a Mirage?" (Schaeffer et al. 2023) asks about. Detection lives in `sweeps.emergence`,
conditions are compared in `sweeps.compare`, figures in `sweeps.plots`; this file writes.

Built by `python -m sweeps.report RUN_DIR` for sweeps whose report kind is "emergence".
"""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

from sweeps.results import ResultsError, flatten_config, read_config, read_curves, write_text_atomic
from sweeps.validate import read_results

from .compare import compare
from .emergence import FLOOR, METRICS, N_BOOT, analyse, emergence_table, is_ok, load_results
from .plots import plot_ability, plot_training, safe_name
from .tables import task_tables


def _fmt(v, spec: str = ".3g") -> str:
    return "—" if v is None else format(v, spec)


def _interval_txt(iv: dict | None) -> str:
    """A bootstrap interval of an emergent scale, in words where an end is open."""
    if not iv:
        return ""
    lo = "≤ " + _fmt(iv["lo"]) if iv.get("lo_at_smallest") else _fmt(iv["lo"])
    hi = "beyond the largest size" if iv.get("hi_beyond_largest") else _fmt(iv["hi"])
    return f" [{lo}, {hi}]"


def _scale_txt(value, iv) -> str:
    return "—" if value is None else f"{value:.3g}{_interval_txt(iv)}"


def format_table(source, threshold_frac: float = 0.5) -> str:
    """The emergence table (exact match) as Markdown. `source` is `emergence_table(...)` rows,
    a full analysis, or a run folder (its report/emergence.json when built, else analysed from
    results.jsonl)."""
    table = source
    if isinstance(source, (str, Path)):
        built = Path(source) / "report" / "emergence.json"
        table = (json.loads(built.read_text()) if built.is_file()
                 else analyse(load_results(source), threshold_frac))
    if isinstance(table, dict):
        table = emergence_table(table)
    lines = ["| curve | n_eval | sizes | verdict | emergent scale: params [95% CI] "
             "| FLOPs [95% CI] | last below → first above | 50%-of-best crossing (between; "
             "interpolated) | shape (10–90% width, decades) | metric question |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in table:
        step = (f"{r['last_below']} → {r['emergent_size']}" if r.get("emergent_size") else "—")
        if r.get("falls_back"):
            step += f" (not clearly above chance again at {', '.join(r['falls_back'])})"
        cross = "—"
        if r.get("crossing_bracket"):
            cross = (f"{' → '.join(r['crossing_bracket'])}; ≈{_fmt(r['crossing_params'])} "
                     "interpolated, not measured")
        elif r.get("crossing_note"):
            cross = r["crossing_note"]
        shape = r.get("shape") or "—"
        if r.get("width_decades") is not None and shape in ("sharp", "gradual"):
            shape += f" ({r['width_decades']:.2f})"
        n_eval = ", ".join(str(n) for n in r.get("n_eval") or []) or "unknown"
        lines.append(f"| {r['task']} | {n_eval} | {r.get('n_sizes', '—')} | {r['verdict']} "
                     f"| {_scale_txt(r['emergent_params'], r.get('interval_params'))} "
                     f"| {_scale_txt(r['emergent_flops'], r.get('interval_flops'))} | {step} "
                     f"| {cross} | {shape} | {r['metric_question']} |")
    return "\n".join(lines)


def format_seed_table(source, metric: str = "exact_match") -> str:
    """Per curve and size, how many seeds have the ability on their own, with the mean and the
    seeds' range: the across-seeds view a single mean hides (Markdown). `source`: an analysis or
    a run folder (its report/emergence.json when built, else analysed from results.jsonl). Empty
    when no size has two or more seeds."""
    analysis = source
    if isinstance(source, (str, Path)):
        built = Path(source) / "report" / "emergence.json"
        analysis = (json.loads(built.read_text()) if built.is_file()
                    else analyse(load_results(source)))
    sizes = list(dict.fromkeys(p["size"] for t in analysis["tasks"].values()
                               for p in (t["metrics"].get(metric) or {}).get("per_size") or []))
    curves = {label: t["metrics"].get(metric) for label, t in analysis["tasks"].items()}
    if not any(p["n_seeds"] > 1 for m in curves.values() if m for p in m.get("per_size") or []):
        return ""
    lines = [f"| curve | a seed counts from | {' | '.join(sizes)} |",
             "| --- | --- |" + " --- |" * len(sizes)]
    for label, m in curves.items():
        if not m or not m.get("per_size"):
            continue
        by_size = {p["size"]: p for p in m["per_size"]}
        cells = []
        for size in sizes:
            p = by_size.get(size)
            if p is None:
                cells.append("—")
                continue
            past = "?" if p.get("seeds_past") is None else p["seeds_past"]
            spread = (f" ({_pct(p['min'])}–{_pct(p['max'])})" if p["n_seeds"] > 1 else "")
            cells.append(f"**{past}/{p['n_seeds']}** {_pct(p['mean'])}{spread}")
        thr = m.get("seed_threshold")
        lines.append(f"| {label} | {_pct(thr) if thr is not None else 'no threshold'} "
                     f"| {' | '.join(cells)} |")
    return "\n".join(lines)


def _pct(v) -> str:
    return "—" if v is None else f"{100 * v:.0f}%"


def _seeds_section(analysis: dict) -> list[str]:
    table = format_seed_table(analysis)
    if not table:
        return []
    return ["## Across seeds (exact match)", "",
            "Each cell: **seeds that have the ability / seeds trained**, then the mean and, in "
            "brackets, the lowest and highest seed. A seed has the ability when its own score "
            f"reaches the 50%-of-best crossing's height (the threshold in the second column: "
            f"chance plus {analysis['threshold_frac']:g} of the best size's mean above chance, "
            f"at least {analysis['floor']:g} of the way to perfect) and, where the number of "
            "problems is known, its own interval over them clears chance. A rising count shows how reliably each size learns the "
            "ability; a mean alone can hide one lucky seed.", "", table, ""]


def _reasons_section(analysis: dict) -> list[str]:
    lines = ["### Why each verdict (exact match)", ""]
    for label, t in analysis["tasks"].items():
        m = t["metrics"].get("exact_match")
        if not m:
            lines.append(f"- **{label}**: no exact-match values")
            continue
        lines.append(f"- **{label}**: {m['verdict']}: {m.get('reason')}. Shape: {m.get('shape')} "
                     f"({m.get('shape_reason', '')}).")
        em = m.get("emergent") or {}
        if em.get("bootstrap_note"):
            lines.append(f"  - {em['bootstrap_note']}")
        iv = em.get("interval_params")
        if iv:
            lines.append(f"  - bootstrap ({analysis['n_boot']} replicates): no emergence within "
                         f"the measured sizes in {iv['p_none']:.1%}, already at the smallest size "
                         f"in {iv['p_at_smallest']:.1%} of replicates")
        for note in t.get("notes", []) + m.get("notes", []):
            lines.append(f"  - note: {note}")
    return lines + [""]


def _metric_question_section(analysis: dict) -> list[str]:
    lines = ["## The metric question (Schaeffer et al. 2023)", "",
             "Is a sharp jump in exact match also a sharp jump in the continuous metrics, between "
             "the same two sizes? If exact match alone is sharp, the 'emergence' may be a product "
             "of the all-or-nothing metric. 'sharp in all' needs every continuous metric sharp "
             "*and* jumping between the same pair of sizes.", "",
             "| curve | metric | verdict | shape | 10–90% width (decades) | largest rise between |",
             "| --- | --- | --- | --- | --- | --- |"]
    paragraphs = []
    for label, t in analysis["tasks"].items():
        mq = t["metric_question"]
        for s in mq["side_by_side"]:
            jump = " → ".join(s["jump_interval"]) if s.get("jump_interval") else "—"
            lines.append(f"| {label} | {s['metric']} | {s['verdict']} | {s['shape']} "
                         f"| {_fmt(s.get('width_decades'), '.2f')} | {jump} |")
        paragraphs.append(f"- **{label}: {mq['summary']}.** {mq['detail']}.")
    return lines + [""] + paragraphs + [""]


def _compare_section(comparison: list[dict]) -> list[str]:
    if not comparison:
        return []
    lines = ["## Conditions compared", "",
             "Per ability, each condition's emergent scale (exact match) with its 95% bootstrap "
             "interval, and the ratio of emergent scales between conditions, with an interval "
             "from the two bootstraps. An open end ('—') means that in over 2.5% of replicates "
             "one side showed no emergence within its measured sizes.", ""]
    for c in comparison:
        lines += [f"### {c['ability']}", "",
                  "| curve | verdict | emergent scale: params [95% CI] | FLOPs [95% CI] "
                  "| last below → first above | metric question |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for r in c["curves"]:
            step = f"{r['last_below']} → {r['emergent_size']}" if r.get("emergent_size") else "—"
            lines.append(f"| {r['curve']} | {r['verdict']} "
                         f"| {_scale_txt(r['emergent_params'], r.get('interval_params'))} "
                         f"| {_scale_txt(r['emergent_flops'], r.get('interval_flops'))} | {step} "
                         f"| {r['metric_question']} |")
        lines.append("")
        for r in c["ratios"]:
            if r["ratio"] is None:
                lines.append(f"- {r['a']} / {r['b']}: {r.get('note')}")
            else:
                iv = r.get("interval")
                ivt = f" [{_fmt(iv[0])}, {_fmt(iv[1])}]" if iv else f" ({r.get('note')})"
                lines.append(f"- emergent params {r['a']} / {r['b']} = {r['ratio']:.3g}{ivt}")
        lines.append("")
    return lines


def _per_size_section(analysis: dict) -> list[str]:
    lines = ["## Per-size results with intervals", "",
             "Exact match and per-digit accuracy: Clopper–Pearson 95% interval over the n_eval "
             "problems (per-digit: over n_eval × answer length digits, approximate because digits "
             "of one answer are not independent), pooled over seeds, widened by a Student-t "
             "interval on the seed means where a size has several seeds. Other metrics: seed "
             "interval only. 'above' = clearly above chance (the rule of the emergent scale).", ""]
    for label, t in analysis["tasks"].items():
        lines += [f"### {label}", "",
                  "| size | params | FLOPs | seeds | seeds past threshold | metric | mean "
                  "| 95% interval | basis | chance | above chance |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for name, m in t["metrics"].items():
            for p in m.get("per_size") or []:
                iv = (f"[{p['lo']:.3g}, {p['hi']:.3g}]" if p.get("lo") is not None else "—")
                above = {True: "yes", False: "no", None: "—"}[p.get("above_chance")]
                past = "—" if p.get("seeds_past") is None else p["seeds_past"]
                lines.append(f"| {p['size']} | {p['params']:.3g} | {_fmt(p['flops'])} "
                             f"| {p['n_seeds']} | {past} | {name} | {p['mean']:.3g} | {iv} "
                             f"| {(p.get('interval') or {}).get('basis', '—')} "
                             f"| {_fmt(m.get('chance'))} | {above} |")
        lines.append("")
    return lines


def _report_md(run_dir: Path, analysis: dict, comparison, config: dict, rows,
               figures: dict) -> str:
    a = analysis
    lines = [f"# Emergence report: {run_dir.name}", "",
             f"{len(rows)} result rows, {len(a['tasks'])} curves (one per condition and task).", "",
             "## What the numbers mean", "",
             "- **Emergent scale** (Wei et al. 2022): the first measured size *clearly above "
             "chance*: the lower end of its interval (problems and seeds) is above chance and its "
             f"mean is at least {a['floor']:g} of the way from chance to a perfect score. The "
             f"intervals used for this test are simultaneous over the curve's sizes ({a['conf']:.0%} "
             "for the curve as a whole, Bonferroni), so pure noise rarely clears chance somewhere; "
             f"tables and plots show ordinary per-size {a['conf']:.0%} intervals. The last size below it is given too: the ability appeared somewhere "
             "between the two. The interval in brackets is a bootstrap over problems and seeds "
             f"({a['n_boot']} replicates): the range of sizes at which the rule fires when the "
             "measurements are redrawn.",
             "- **Verdicts**: *emergent* (below chance at small sizes, clearly above from the "
             "emergent scale on); *zig-zag* (as emergent, but a larger size falls back to chance); "
             "*above chance at smallest size* (no scale can be named: it lies at or below the "
             "smallest model); *never above chance* (no emergent scale; the best score and its "
             "interval are given); *too few sizes*; *unknown chance* (no chance level recorded; "
             "never replaced by the worst score).",
             f"- **50%-of-best crossing**: where the curve first reaches {a['threshold_frac']:g} of "
             "its best height above chance, as the two measured sizes it lies between; the "
             "log-linear interpolation between them is shown for comparison with earlier reports "
             "and was not measured.",
             "- **Shape**: a bounded logistic fit (scipy curve_fit) of the normalised score against "
             "log10 parameters; *sharp* when its 10–90% width is no wider than the gap between the "
             "two measured sizes around its midpoint, *gradual* when wider, *flat* when it rises "
             f"less than {a['constants']['MIN_RISE']:g}; *undefined* with fewer than "
             f"{a['constants']['MIN_SHAPE_SIZES']} sizes or a midpoint outside the measured sizes; "
             "*fit failed* says why.", "",
             "## Emergence table (exact match)", "", format_table(a), ""]
    lines += _seeds_section(a)
    lines += _reasons_section(a)
    lines += _compare_section(comparison)
    lines += _metric_question_section(a)
    lines += ["## Figures", ""]
    for name, figs in figures.items():
        paths = [p for p in figs.values() if p is not None]
        if paths:
            lines.append(f"### {name}")
            lines += [f"![{name}]({p.relative_to(run_dir / 'report').as_posix()})" for p in paths]
            lines.append("")
    lines += _per_size_section(a)
    lines += ["## Excluded rows and values", ""]
    lines += [f"- {x}" for x in a["excluded"]] or ["None."]
    lines += ["", "## Diverged runs", ""]
    lines += [f"- {d['task']} / {d['size']} / seed {d['seed']}"
              + (f" ({d['condition']})" if d.get("condition") not in (None, "default") else "")
              + f" (final loss {d['final_loss']})" for d in a["diverged"]] or ["None."]
    return "\n".join(lines + [""] + _config_section(config, rows))


# -------------------------------------------------------------------------------- TensorBoard
_SIZE_HPARAMS = ("size", "seed", "params", "params_total", "n_layer", "n_head", "n_embd", "attn",
                 "norm", "steps", "tokens", "flops", "status")


def write_hparams(run_dir: Path, rows: list[dict], config: dict) -> int:
    """One hparams entry per (condition, size, seed) under RUN_DIR/tb/hparams, final metrics per task.

    The folder is ours alone and is rebuilt from scratch, so reruns do not pile up duplicates."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard missing: the rest of the report still stands
        return 0
    root = run_dir / "tb" / "hparams"
    shutil.rmtree(root, ignore_errors=True)
    scalars = {k: v for k, v in flatten_config(config).items() if isinstance(v, (int, float, str, bool))}
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r.get("condition") or "default", str(r["size"]), r["seed"]), []).append(r)
    with SummaryWriter(str(root)) as writer:
        for (condition, size, seed), rs in groups.items():
            hp = dict(scalars)
            hp.update({k: rs[0][k] for k in _SIZE_HPARAMS
                       if isinstance(rs[0].get(k), (int, float, str, bool))})
            metrics = {f"{r['task']}/{m}": float(r[m]) for r in rs if is_ok(r) for m in METRICS
                       if isinstance(r.get(m), (int, float)) and math.isfinite(r[m])}
            writer.add_hparams(hp, metrics or {"diverged": 1.0}, run_name=safe_name(f"{condition}-{size}_seed{seed}"))
    return len(groups)

def _config_section(config: dict, rows: list[dict]) -> list[str]:
    keys = ("sweep", "task_set", "tasks", "sizes", "seeds", "conditions", "source")
    summary = {k: config.get(k) for k in keys}
    for k in ("sweep", "task_set"):  # the runner's config may call the sweep "name"
        summary[k] = summary[k] or config.get("name" if k == "sweep" else k) or rows[0].get(k)
    lines = ["## Run configuration", ""]
    lines += [f"- **{k}**: {json.dumps(summary[k]) if not isinstance(summary[k], str) else summary[k]}"
              for k in keys if summary[k] is not None]
    rest = {k: v for k, v in flatten_config(config).items() if k not in keys}
    if rest:
        lines += ["", "| setting | value |", "| --- | --- |"]
        lines += [f"| {k} | {json.dumps(v) if not isinstance(v, str) else v} |" for k, v in rest.items()]
    return lines + [""]


def build_report(run_dir: str | Path, threshold_frac: float = 0.5, floor: float = FLOOR,
                 n_boot: int = N_BOOT, tensorboard: bool = True) -> Path:
    """Rebuild RUN_DIR/report/ (figures, emergence.json, emergence_table.md, report.md) and the
    TensorBoard hparams from results.jsonl (+ config.json, curves.jsonl when present)."""
    run_dir = Path(run_dir)
    rows, wheres = read_results(run_dir)
    config = read_config(run_dir)
    curves = read_curves(run_dir)
    analysis = analyse(rows, threshold_frac, floor=floor, n_boot=n_boot, wheres=wheres)
    comparison = compare(analysis)
    analysis["comparison"] = comparison
    out = run_dir / "report"
    out.mkdir(exist_ok=True)
    figures: dict[str, dict] = {}
    by_ability: dict[str, dict] = {}
    for label, t in analysis["tasks"].items():
        by_ability.setdefault(t["ability"], {})[t["condition"] if len({
            u["condition"] for u in analysis["tasks"].values() if u["ability"] == t["ability"]}) > 1
            else label] = t
    for ability, group in by_ability.items():
        figures.setdefault(ability, {})["scale"] = plot_ability(ability, group, out)
    for label, t in analysis["tasks"].items():
        mine = [c for c in curves if str(c.get("task")) == t["task"]
                and (c.get("condition") or "default") == t["condition"]]
        figures.setdefault(t["ability"], {})[f"training {label}"] = plot_training(
            label, mine, t["sizes"], out, dict(zip(t["sizes"], t["params"])))
    write_text_atomic(out / "emergence.json", json.dumps(analysis, indent=1))
    write_text_atomic(out / "emergence_table.md", format_table(analysis) + "\n")
    write_text_atomic(out / "report.md", _report_md(run_dir, analysis, comparison, config, rows,
                                                    figures))
    if tensorboard:
        write_hparams(run_dir, [r for r in rows if r.get("params") is not None], config)
    return out


def terminal_text(rows: list[dict], analysis: dict) -> str:
    """What a sweep prints when it ends: one table per curve, the emergence table, the seeds."""
    parts = [task_tables(rows), format_table(analysis)]
    seeds = format_seed_table(analysis)
    if seeds:
        parts.append("seeds that have the ability / seeds trained (exact match), mean (lowest-"
                     "highest seed):\n" + seeds)
    return "\n\n".join(parts)


def summarise(run_dir: Path, threshold_frac: float = 0.5, floor: float = FLOOR,
              n_boot: int = N_BOOT, **_) -> str:
    """The report's terminal text, writing nothing (sweeps.report's protocol)."""
    rows, wheres = read_results(run_dir)
    return terminal_text(rows, analyse(rows, threshold_frac, floor=floor, n_boot=n_boot,
                                       wheres=wheres))


def build(run_dir: Path, threshold_frac: float = 0.5, floor: float = FLOOR, n_boot: int = N_BOOT,
          tensorboard: bool = True, **_) -> tuple[Path, str]:
    """Write RUN_DIR/report/ and return it with the terminal text (sweeps.report's protocol)."""
    out = build_report(run_dir, threshold_frac, floor, n_boot, tensorboard)
    rows = read_results(run_dir)[0]
    analysis = json.loads((out / "emergence.json").read_text())
    return out, terminal_text(rows, analysis)

"""Markdown sections that every report kind shares: what the numbers mean, why each verdict, the
metric question, conditions compared, per-size results, excluded rows, the run's configuration and
provenance. Each function returns a list of lines; nothing is computed here."""
from __future__ import annotations

import json

from sweeps.results import flatten_config

from .fmt import interval, num, p_value, pct, scale_range
from .tables import STATUS_TEXT, learned_text


def meaning(options: dict) -> list[str]:
    conf, floor = options["conf"], options["floor"]
    return ["## What the numbers mean", "",
            f"- **Above chance** (per size): the pooled exact binomial test of all the size's "
            "answers over all its seeds against chance (a t test on per-problem values for a "
            "continuous metric), with Holm's procedure over the curve's sizes so that the chance "
            f"of calling any at-chance size 'above' stays under {1 - conf:.0%}. Chance is the best "
            "guesser that knows the answer format (docs/results-schema.md lists each task's).",
            f"- **Clearly above chance**: above chance *and* a mean at least {floor:g} of the way "
            "from chance to perfect. Under that a size is *consistent with chance* (the test does "
            "not reject) or *above chance, under the floor* (it does: not random, but near it).",
            "- **Emergent scale** (Wei et al. 2022): the first size clearly above chance, when every "
            "smaller size is consistent with chance or under the floor; the last size below is "
            "named with which of the two it is. Its **stability range** is the spread of that "
            "first size when the rule is replayed on bootstrap replicates (seeds and problems "
            "redrawn once): how stable the answer is, not a confidence interval.",
            f"- **Seeds learned**: a seed learned when its own score is at least half way from "
            "chance to perfect and its own test clears chance; the count has an exact "
            "(Clopper-Pearson) interval on the share of seeds that learn at that size, and a "
            "dose-response fit across sizes gives the size at which half the seeds learn, with a "
            "profile-likelihood range.",
            f"- **Intervals on a score** ({conf:.0%}): over the evaluation problems with the trained "
            "models fixed: Clopper-Pearson on the answers pooled over seeds for exact match, a "
            "bootstrap over problems for continuous metrics with per-problem values. The spread "
            "between seeds is shown by the seed counts, never folded into this interval.",
            "- **Shape**: a bounded logistic fit of the normalised score against log10 parameters: "
            "*sharp* (rises within one ladder step), *gradual*, *flat*, *unresolved* (sharper "
            "than the ladder can resolve: no evidence either way), *undefined* (under 4 sizes), "
            "or *fit failed*.", ""]


def reasons(analysis: dict, metric: str = "exact_match") -> list[str]:
    lines = [f"## Why each verdict ({metric.replace('_', ' ')})", ""]
    for label, c in analysis["curves"].items():
        r = c["metrics"].get(metric)
        if r is None:
            continue
        lines.append(f"- **{label}**: {r['verdict']}: {r['reason']}. Shape: {r['shape']} "
                     f"({r.get('shape_reason') or ''}).")
        st = r.get("stability")
        if st:
            lines.append(f"  - stability ({st['n_boot']} replicates): the first size clearly "
                         f"above chance was the smallest in {st['share_smallest']:.0%} and none "
                         f"in {st['share_none']:.0%} of replicates")
        ls = r.get("learning_scale") or {}
        if ls.get("ok"):
            lines.append(f"  - half the seeds learn at {num(ls['params'])} parameters, profile "
                         f"range {scale_range([ls['lo'], ls['hi']], 'open', 'open')}"
                         + (" (the seed counts separate: every size is all or nothing)"
                            if ls.get("separated") else ""))
        elif ls.get("reason"):
            lines.append(f"  - no learning scale: {ls['reason']}")
        for note in c.get("notes", []) + r.get("notes", []):
            lines.append(f"  - note: {note}")
    return lines + [""]


def metric_question(analysis: dict) -> list[str]:
    lines = ["## The metric question (Schaeffer et al. 2023)", "",
             "Does exact match jump where the ability jumps, or where an all-or-nothing score of "
             "several digits turns a smooth per-digit rise into a sudden one? Each metric's "
             "verdict side by side, exact match against what independent digits predict, and the "
             "fitted widths compared over shared bootstrap replicates.", "",
             "| curve | metric | verdict | first clearly above | shape | 10-90% width |",
             "| --- | --- | --- | --- | --- | --- |"]
    answers = []
    for label, c in analysis["curves"].items():
        mq = c["metric_question"]
        for s in mq["side_by_side"]:
            lines.append(f"| {label} | {s['metric']} | {s['verdict']} | "
                         f"{s['emergent_size'] or '—'} | {s['shape']} | "
                         f"{num(s['width_decades'], '.2f')} |")
        answers.append(f"- **{label}: {mq['answer']}**: {mq['reason']}. Exact match against "
                       f"independent digits: {mq['digits_summary']}.")
    return lines + [""] + answers + [""]


def comparisons(comps: list[dict]) -> list[str]:
    if not comps:
        return []
    lines = ["## Conditions compared", "",
             "Treatment minus reference in exact match, on the same problems (and the same seeds "
             "where both trained them); a size *helps* or *hurts* only when the mid-p McNemar test "
             "rejects after Holm's correction over the sizes and the range excludes 0.", ""]
    for comp in comps:
        lines += [f"### {comp['treatment']} against {comp['reference']}", "",
                  f"**{comp['headline']}.** ({comp['multiplicity']}"
                  + (f"; {comp['note']}" if comp.get("note") else "") + ")", "",
                  "| size | treatment | reference | difference | interval | kind | p (McNemar) "
                  "| verdict |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for d in comp["sizes"]:
            verdict = d["verdict"] + (f" ({d['note']})" if d.get("note") else "")
            lines.append(f"| {d['size']} | {pct(d['treatment'])} | {pct(d['reference'])} "
                         f"| {d['diff']:+.1%} | {interval(d['interval'])} | {d['interval_kind']} "
                         f"| {p_value(d['p_value'])} | {verdict} |")
        shift = comp["scale_shift"]
        if shift["ratio"] is None:
            lines.append(f"\nEmergent scale: {shift['note']}.")
        else:
            lines.append(f"\nEmergent scale, treatment / reference = {shift['ratio']:.3g}"
                         + (f", stability range {scale_range(shift['range'], 'open', 'open')}"
                            if shift.get("range") else f" ({shift.get('note')})"))
        lines.append("")
    return lines


def per_size(analysis: dict) -> list[str]:
    lines = ["## Per-size results", "",
             "Every score with its interval (kind given), the size's test against chance after "
             "Holm's correction, and the seeds that learned.", ""]
    for label, c in analysis["curves"].items():
        lines += [f"### {label}", "", "| metric | size | params | seeds learned | mean | "
                  "interval | kind | p | status |", "| --- | --- | --- | --- | --- | --- | --- "
                  "| --- | --- |"]
        for name, r in c["metrics"].items():
            for s in r["per_size"]:
                lines.append(f"| {name} | {s['size']} | {num(s['params'])} | {learned_text(s)} "
                             f"| {num(s['mean'], '.4g')} | "
                             f"{interval(s['interval'], False)} | {s['interval_kind']} | "
                             f"{p_value(s['p_value'])} | {STATUS_TEXT.get(s['status'], '—')} |")
        lines.append("")
    return lines


def excluded(analysis: dict) -> list[str]:
    lines = ["## Excluded rows and values", ""]
    lines += [f"- {x}" for x in analysis["excluded"]] or ["None."]
    lines += ["", "## Diverged runs", ""]
    lines += [f"- {d['task']} / {d['size']} / seed {d['seed']}"
              + (f" ({d['condition']})" if d.get("condition") not in (None, "default") else "")
              + f" (final loss {d['final_loss']})" for d in analysis["diverged"]] or ["None."]
    return lines + [""]


def configuration(config: dict, rows: list[dict]) -> list[str]:
    keys = ("name", "sweep", "task_set", "tasks", "sizes", "seeds", "report", "source")
    lines = ["## Run configuration", ""]
    lines += [f"- **{k}**: {v if isinstance(v, str) else json.dumps(v)}"
              for k in keys if (v := config.get(k)) is not None]
    prov = config.get("provenance")
    if prov:
        lines += ["", "### Where it ran", "", "| what | value |", "| --- | --- |"]
        lines += [f"| {k} | {v} |" for k, v in flatten_config(prov).items()]
    rest = {k: v for k, v in flatten_config(config).items()
            if k.split(".")[0] not in keys + ("provenance",)}
    if rest:
        lines += ["", "| setting | value |", "| --- | --- |"]
        lines += [f"| {k} | {v if isinstance(v, str) else json.dumps(v)} |"
                  for k, v in rest.items()]
    return lines + [""]

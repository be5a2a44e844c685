"""The instruction-tuning report: tuned against untuned models of each size, from results alone.

Built by `python -m sweeps.report RUN_DIR` for sweeps whose report kind is "instructions": reads
RUN_DIR/results.jsonl (written by `python -m sweeps.run instructions`) and writes
RUN_DIR/report/{report.md, summary.json, spread.png, held_out_task.png, effect.png}. It
answers the questions of FLAN and T0 in miniature:

1. **Robustness across phrasings (T0).** Per size and condition, the median, minimum and maximum
   exact match across the held-out templates of the tuned tasks (phrasings no condition trained
   on), against the number of templates per task seen in tuning (0 = untuned, 1, 3, 10).
2. **Zero-shot on a held-out task (T0's protocol).** The held-out task's exact match through its
   word forms, pooled over all its templates, tuned against untuned, with 95% Clopper-Pearson
   intervals.
3. **Where tuning helps and where it hurts (FLAN).** Per size, tuned-minus-untuned exact match with
   a 95% Newcombe interval (the difference of two Wilson intervals), on the held-out task, on the
   held-out templates and on the symbolic tasks. "Helps" needs the interval above 0, "hurts"
   below 0; anything else is reported as no clear effect.

Which rows are which follows from the task names (data_gen.templates): `add2-words-t05` is one
phrasing; a task whose per-template rows include *training* templates of its family is the
held-out task (tuned tasks are only scored per phrasing on their held-out templates); `add2-words`
is a tuned task through its training templates; names without "-words" are symbolic.

Intervals treat every (problem, phrasing, seed) as an independent trial. Phrasings of one problem
are not independent, so pooled intervals are narrower than they should be; the per-template
spread is the honest view of that variation.
"""
from __future__ import annotations

import json
import math
import re
import statistics
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from scipy.stats import norm  # noqa: E402

from data_gen import make_task  # noqa: E402
from data_gen.templates import family_of, split_templates  # noqa: E402

from sweeps.results import read_jsonl, write_text_atomic  # noqa: E402

from . import stats  # noqa: E402

UNTUNED = "untuned"
_TUNED = re.compile(r"^tuned-k(\d+)(-.+)?$")
_PER_TEMPLATE = re.compile(r"^(.+)-words-t(\d+)$")
Z95 = norm.ppf(0.975)


class ReportError(ValueError):
    """The run folder cannot give this report; the message says why."""


# -- intervals --------------------------------------------------------------------------------
def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """The exact binomial interval for k successes in n trials (sweeps.stats), (0, 1) for n = 0."""
    if n <= 0:
        return (0.0, 1.0)
    lo, hi = stats.clopper_pearson(k, n, conf=level)
    return float(lo), float(hi)


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson interval at normal quantile z (sweeps.stats), (0, 1) for n = 0."""
    if n <= 0:
        return (0.0, 1.0)
    lo, hi = stats.wilson(k, n, conf=2 * norm.cdf(z) - 1)
    return float(lo), float(hi)


def newcombe(k1: int, n1: int, k2: int, n2: int) -> tuple[float, float, float]:
    """p1 - p2 and its 95% interval (Newcombe 1998, method 10: from the two Wilson intervals)."""
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson(k1, n1)
    l2, u2 = wilson(k2, n2)
    d = p1 - p2
    return d, d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)


def verdict(lo: float, hi: float) -> str:
    return "helps" if lo > 0 else "hurts" if hi < 0 else "no clear effect"


# -- reading rows -----------------------------------------------------------------------------
@dataclass
class Kinds:
    symbolic: list[str]
    tuned_tasks: list[str]               # bases tuned in words
    held_out_task: str | None            # base never tuned in words
    held_phrasings: dict[str, list[str]]  # tuned base -> its per-template task names
    task_phrasings: list[str]            # the held-out task's per-template task names


def classify(tasks: set[str]) -> Kinds:
    per_template: dict[str, list[str]] = {}
    for name in sorted(tasks):
        if m := _PER_TEMPLATE.match(name):
            per_template.setdefault(m.group(1), []).append(name)
    held_out, tuned = [], {}
    for base, names in per_template.items():
        train_ids = {t.index for t in split_templates(family_of(make_task(base, eval_size=1)))[0]}
        ids = {int(_PER_TEMPLATE.match(n).group(2)) for n in names}
        (held_out.append(base) if ids & train_ids else tuned.__setitem__(base, names))
    if len(held_out) > 1:
        raise ReportError(f"more than one task is scored through training templates "
                          f"({', '.join(held_out)}); expected one held-out task")
    return Kinds(symbolic=sorted(t for t in tasks if "-words" not in t), tuned_tasks=sorted(tuned),
                 held_out_task=held_out[0] if held_out else None, held_phrasings=tuned,
                 task_phrasings=per_template.get(held_out[0], []) if held_out else [])


def load(run_dir: Path) -> list[dict]:
    path = Path(run_dir) / "results.jsonl"
    if not Path(run_dir).is_dir():
        raise ReportError(f"{run_dir} is not a run folder (expected a folder holding results.jsonl)")
    if not path.exists():
        raise ReportError(f"{path} does not exist: run `python -m sweeps.run instructions --out "
                          f"{run_dir}` first")
    rows = [r for r in read_jsonl(path) if r.get("status") == "ok" and r.get("exact_match") is not None]
    if not rows:
        raise ReportError(f"{path} holds no finished rows")
    if not any(_PER_TEMPLATE.match(r["task"]) for r in rows):
        raise ReportError(f"{path} has no per-template rows (task names like add2-words-t05): not "
                          f"an instructions run")
    if UNTUNED not in {r.get("condition") for r in rows}:
        raise ReportError(f"{path} has no '{UNTUNED}' condition to compare against")
    return rows


def k_of(condition: str) -> int | None:
    if condition == UNTUNED:
        return 0
    m = _TUNED.match(condition)
    return int(m.group(1)) if m else None


class Tally:
    """Exact-match successes and trials per (condition, size, task), summed over seeds."""

    def __init__(self, rows: list[dict]):
        self.k: dict[tuple, int] = {}
        self.n: dict[tuple, int] = {}
        self.params: dict[str, float] = {}
        self.seeds: dict[tuple, set] = {}
        self.chance: dict[str, float] = {}
        for r in rows:
            self.chance[r["task"]] = (r.get("chance") or {}).get("exact_match", 0.0)
            key = (r["condition"], r["size"], r["task"])
            n = int(r["n_eval"])
            self.k[key] = self.k.get(key, 0) + round(r["exact_match"] * n)
            self.n[key] = self.n.get(key, 0) + n
            self.params[r["size"]] = r["params"]
            self.seeds.setdefault((r["condition"], r["size"]), set()).add(r["seed"])

    def pooled(self, condition: str, size: str, tasks) -> tuple[int, int]:
        ks = [self.k.get((condition, size, t)) for t in tasks]
        ns = [self.n.get((condition, size, t)) for t in tasks]
        if any(v is None for v in ks):
            return 0, 0
        return sum(ks), sum(ns)

    def chance_of(self, tasks) -> float:
        """A uniform guesser's exact match, averaged over `tasks` (rows' `chance`)."""
        return statistics.fmean(self.chance.get(t, 0.0) for t in tasks) if tasks else 0.0

    def acc(self, condition: str, size: str, task: str) -> float | None:
        n = self.n.get((condition, size, task))
        return None if not n else self.k[(condition, size, task)] / n


# -- the analysis -----------------------------------------------------------------------------
def analyse(rows: list[dict]) -> dict:
    kinds = classify({r["task"] for r in rows})
    tally = Tally(rows)
    sizes = sorted(tally.params, key=tally.params.get)
    conditions = sorted({r["condition"] for r in rows},
                        key=lambda c: (k_of(c) is None, k_of(c) or 0, c))
    held_templates = [t for names in kinds.held_phrasings.values() for t in names]
    out = {"sizes": sizes, "params": tally.params, "conditions": conditions,
           "held_out_task": kinds.held_out_task, "tuned_tasks": kinds.tuned_tasks,
           "symbolic": kinds.symbolic, "held_out_templates": held_templates,
           "seeds": {f"{c}/{s}": sorted(v) for (c, s), v in tally.seeds.items()},
           "spread": [], "held_task": [], "effects": []}
    for size in sizes:
        for c in conditions:
            accs = [a for t in held_templates if (a := tally.acc(c, size, t)) is not None]
            if accs:
                k, n = tally.pooled(c, size, held_templates)
                out["spread"].append({"size": size, "condition": c, "k": k_of(c),
                                      "median": statistics.median(accs), "min": min(accs),
                                      "max": max(accs), "n_templates": len(accs),
                                      "pooled": k / n if n else None,
                                      "chance": tally.chance_of(held_templates)})
            if kinds.task_phrasings:
                k, n = tally.pooled(c, size, kinds.task_phrasings)
                accs = [a for t in kinds.task_phrasings if (a := tally.acc(c, size, t)) is not None]
                if n:
                    lo, hi = clopper_pearson(k, n)
                    best = max(kinds.task_phrasings, key=lambda t: tally.acc(c, size, t) or 0)
                    out["held_task"].append({"size": size, "condition": c, "acc": k / n, "lo": lo,
                                             "hi": hi, "k": k, "n": n,
                                             "median": statistics.median(accs),
                                             "min": min(accs), "max": max(accs),
                                             "best_template": best,
                                             "chance": tally.chance_of(kinds.task_phrasings)})
        for c in conditions:
            if c == UNTUNED:
                continue
            for measure, tasks in (("held-out task", kinds.task_phrasings),
                                   ("held-out templates", held_templates),
                                   ("symbolic tasks", kinds.symbolic)):
                k1, n1 = tally.pooled(c, size, tasks)
                k0, n0 = tally.pooled(UNTUNED, size, tasks)
                if not tasks or not n1 or not n0:
                    continue
                d, lo, hi = newcombe(k1, n1, k0, n0)
                out["effects"].append({"size": size, "params": tally.params[size], "condition": c,
                                       "measure": measure, "tuned": k1 / n1, "untuned": k0 / n0,
                                       "diff": d, "lo": lo, "hi": hi, "verdict": verdict(lo, hi)})
    out["answer"] = answer(out)
    return out


def _plain(condition: str) -> bool:
    """Untuned, or tuned on k templates with no variant (the k axis of the spread plot)."""
    m = _TUNED.match(condition)
    return condition == UNTUNED or bool(m and not m.group(2))


def headline_condition(conditions: list[str]) -> str | None:
    """The tuned condition the help/hurt question is asked of: the most templates, no variant."""
    plain = [c for c in conditions if (m := _TUNED.match(c)) and not m.group(2)]
    return max(plain, key=k_of) if plain else None


def answer(analysis: dict) -> dict:
    """'From which size does tuning help, below which does it hurt?', per measure."""
    cond = headline_condition(analysis["conditions"])
    result = {"condition": cond}
    sizes = analysis["sizes"]
    for measure in ("held-out task", "held-out templates", "symbolic tasks"):
        effects = {e["size"]: e for e in analysis["effects"]
                   if e["condition"] == cond and e["measure"] == measure}
        if not effects:
            continue
        verdicts = [effects[s]["verdict"] if s in effects else "missing" for s in sizes]
        helps_from = next((sizes[i] for i in range(len(sizes))
                           if all(v == "helps" for v in verdicts[i:])), None)
        hurts_below = next((sizes[i] for i in reversed(range(len(sizes)))
                            if all(v == "hurts" for v in verdicts[:i + 1])), None)
        hurts_from = next((sizes[i] for i in range(len(sizes))
                           if all(v == "hurts" for v in verdicts[i:])), None)
        helps_below = next((sizes[i] for i in reversed(range(len(sizes)))
                            if all(v == "helps" for v in verdicts[:i + 1])), None)
        result[measure] = {"verdicts": dict(zip(sizes, verdicts)), "helps_from": helps_from,
                           "hurts_up_to": hurts_below, "hurts_from": hurts_from,
                           "helps_up_to": helps_below}
    return result


def answer_sentence(measure: str, a: dict, analysis: dict) -> str:
    effects = {e["size"]: e for e in analysis["effects"]
               if e["condition"] == analysis["answer"]["condition"] and e["measure"] == measure}
    numbers = "; ".join(f"{s}: {e['diff']:+.1%} [{e['lo']:+.1%}, {e['hi']:+.1%}]"
                        for s, e in effects.items())
    parts = []
    if a["helps_from"]:
        parts.append(f"tuning helps from {a['helps_from']} up")
    if a["hurts_up_to"]:
        parts.append(f"hurts up to {a['hurts_up_to']}")
    if a.get("hurts_from") and not a["hurts_up_to"]:
        parts.append(f"hurts from {a['hurts_from']} up (the reverse of FLAN's pattern)")
    if a.get("helps_up_to") and not a["helps_from"]:
        parts.append(f"helps up to {a['helps_up_to']} only (the reverse of FLAN's pattern)")
    if not parts:
        kinds = set(a["verdicts"].values())
        parts.append("no pattern with size: " + ", ".join(f"{s} {v}" for s, v in a["verdicts"].items())
                     if kinds != {"no clear effect"}
                     else "neither helps nor hurts at any size (every interval contains 0)")
    return f"**{measure}**: {', '.join(parts)} (tuned minus untuned, 95% interval: {numbers})."


# -- output -----------------------------------------------------------------------------------
def _pct(x) -> str:
    return "—" if x is None else f"{x:.1%}"


def tables(analysis: dict) -> str:
    lines = ["### Held-out templates: spread across phrasings (T0)", "",
             f"Exact match on each of the {len(analysis['held_out_templates'])} held-out templates "
             f"of the tuned tasks ({', '.join(analysis['tuned_tasks'])}); k = templates per task "
             f"in tuning (0 = untuned).", "",
             "| size | condition | k | median | min | max | pooled | chance |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for s in analysis["spread"]:
        lines.append(f"| {s['size']} | {s['condition']} | {s['k'] if s['k'] is not None else '—'} | "
                     f"{_pct(s['median'])} | {_pct(s['min'])} | {_pct(s['max'])} | {_pct(s['pooled'])} "
                     f"| {_pct(s['chance'])} |")
    if analysis["held_task"]:
        lines += ["", f"### Held-out task `{analysis['held_out_task']}`: zero-shot through its word forms",
                  "", "Pooled over all its templates; 95% Clopper-Pearson interval; spread across "
                      "templates.", "",
                  f"A uniform guesser scores {_pct(analysis['held_task'][0]['chance'])}.", "",
                  "| size | condition | exact match | 95% interval | median | min | max | best template |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for h in analysis["held_task"]:
            lines.append(f"| {h['size']} | {h['condition']} | {_pct(h['acc'])} ({h['k']}/{h['n']}) | "
                         f"[{_pct(h['lo'])}, {_pct(h['hi'])}] | {_pct(h['median'])} | {_pct(h['min'])} | "
                         f"{_pct(h['max'])} | `{h['best_template']}` |")
    lines += ["", "### Tuned minus untuned (95% Newcombe interval)", "",
              "| size | condition | measure | tuned | untuned | difference | 95% interval | verdict |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for e in analysis["effects"]:
        lines.append(f"| {e['size']} | {e['condition']} | {e['measure']} | {_pct(e['tuned'])} | "
                     f"{_pct(e['untuned'])} | {e['diff']:+.1%} | [{e['lo']:+.1%}, {e['hi']:+.1%}] | "
                     f"{e['verdict']} |")
    return "\n".join(lines)


def plots(analysis: dict, out: Path) -> list[str]:
    made = []
    sizes = analysis["sizes"]
    # 1. spread against templates per task
    fig, ax = plt.subplots(figsize=(6, 4))
    for size in sizes:
        pts = sorted((s for s in analysis["spread"] if s["size"] == size and _plain(s["condition"])),
                     key=lambda s: s["k"])
        if not pts:
            continue
        xs = [s["k"] for s in pts]
        med = [s["median"] for s in pts]
        line, = ax.plot(xs, med, "o-", label=size)
        ax.fill_between(xs, [s["min"] for s in pts], [s["max"] for s in pts], alpha=0.15,
                        color=line.get_color())
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlabel("templates per task in tuning (0 = untuned)")
    ax.set_ylabel("exact match on held-out templates")
    ax.set_title("median, band = min..max across held-out templates")
    ax.legend(title="size")
    fig.tight_layout()
    fig.savefig(out / "spread.png", dpi=120)
    plt.close(fig)
    made.append("spread.png")
    # 2. the held-out task, tuned against untuned
    if analysis["held_task"]:
        fig, ax = plt.subplots(figsize=(6, 4))
        for c in analysis["conditions"]:
            pts = [h for h in analysis["held_task"] if h["condition"] == c]
            xs = [analysis["params"][h["size"]] for h in pts]
            ys = [h["acc"] for h in pts]
            err = [[h["acc"] - h["lo"] for h in pts], [h["hi"] - h["acc"] for h in pts]]
            ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=c)
        ax.set_xscale("log")
        ax.set_xlabel("non-embedding parameters")
        ax.set_ylabel("zero-shot exact match")
        ax.set_title(f"held-out task {analysis['held_out_task']} in words (95% CI)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "held_out_task.png", dpi=120)
        plt.close(fig)
        made.append("held_out_task.png")
    # 3. the effect of tuning against size
    cond = analysis["answer"]["condition"]
    if cond:
        fig, ax = plt.subplots(figsize=(6, 4))
        for measure in ("held-out task", "held-out templates", "symbolic tasks"):
            pts = [e for e in analysis["effects"] if e["condition"] == cond and e["measure"] == measure]
            if not pts:
                continue
            xs = [e["params"] for e in pts]
            ax.errorbar(xs, [e["diff"] for e in pts],
                        yerr=[[e["diff"] - e["lo"] for e in pts], [e["hi"] - e["diff"] for e in pts]],
                        marker="o", capsize=3, label=measure)
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("non-embedding parameters")
        ax.set_ylabel(f"{cond} minus untuned (exact match)")
        ax.set_title("where tuning helps (>0) and hurts (<0), 95% CI")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "effect.png", dpi=120)
        plt.close(fig)
        made.append("effect.png")
    return made


def build_instructions_report(run_dir) -> str:
    """Write RUN_DIR/report/ and return the report's Markdown."""
    run_dir = Path(run_dir)
    analysis = analyse(load(run_dir))
    out = run_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    figures = plots(analysis, out)
    seeds = sorted({s for v in analysis["seeds"].values() for s in v})
    sentences = [answer_sentence(m, a, analysis) for m, a in analysis["answer"].items()
                 if m != "condition"]
    md = "\n".join([
        "# Instruction tuning: tuned against untuned", "",
        f"Sizes {', '.join(analysis['sizes'])}; seeds {', '.join(map(str, seeds))}; conditions "
        f"{', '.join(analysis['conditions'])}. Tuned in words: {', '.join(analysis['tuned_tasks'])}; "
        f"held-out task: {analysis['held_out_task'] or 'none'}.", "",
        "## From which size does tuning help, and below which does it hurt?", "",
        f"Asked of `{analysis['answer']['condition']}` against `untuned`:", "",
        *[f"- {s}" for s in sentences], "",
        tables(analysis), "",
        *[f"![{f}]({f})" for f in figures], ""])
    write_text_atomic(out / "report.md", md)
    write_text_atomic(out / "summary.json", json.dumps(analysis, indent=2, sort_keys=True) + "\n")
    return md


def summarise(run_dir: Path, **_) -> str:
    """The answer sentences and tables for the terminal, writing nothing (sweeps.report's
    protocol)."""
    analysis = analyse(load(Path(run_dir)))
    sentences = [answer_sentence(m, a, analysis) for m, a in analysis["answer"].items()
                 if m != "condition"]
    return "\n".join(["From which size does tuning help, and below which does it hurt? "
                      f"(`{analysis['answer']['condition']}` against `untuned`)", ""]
                     + [f"- {s}" for s in sentences] + ["", tables(analysis)])


def build(run_dir: Path, **_) -> tuple[Path, str]:
    """Write RUN_DIR/report/ and return it with the terminal text (sweeps.report's protocol)."""
    build_instructions_report(run_dir)
    return Path(run_dir) / "report", summarise(run_dir)

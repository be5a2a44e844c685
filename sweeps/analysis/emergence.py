"""Emergence detection on sweep results, with sampling error: where a task's score leaves chance.

The emergent scale follows "Emergent Abilities of Large Language Models" (Wei et al. 2022): an
ability is emergent when it is at chance in smaller models and clearly above chance in larger
ones, and its emergent scale is the *first measured size clearly above chance* (they name 13B
for GPT-3's 3-digit addition: the first model well above chance). Here "clearly" is made
explicit: a size is above chance when

  1. the lower end of its interval (problems and seeds, see sweeps.stats) is above chance; the
     intervals are simultaneous over the curve's k sizes (Bonferroni: each at 1 - 0.05/k), so a
     curve of pure noise names a size in under about 2.5% of cases, and
  2. its mean is at least FLOOR of the way from chance to a perfect score (default 0.05),

and the emergent scale is reported with the last size below it (the ability appeared somewhere
between the two) and with a bootstrap interval over problems and seeds, in parameters and in
training FLOPs. A curve that never clears chance has no emergent scale and says so.

Beside it, for comparison with earlier versions and other papers, the 50%-of-best crossing: the
first size reaching half of the best score's height above chance, given as the pair of measured
sizes it lies between; the log-linear interpolation between them is printed as such, never as a
measured size. Shape (sharp or gradual) comes from a bounded logistic fit and needs >= 4 sizes.

The metric question follows "Are Emergent Abilities of Large Language Models a Mirage?"
(Schaeffer et al. 2023): a sharp jump in exact match only counts as "sharp in all" when every
continuous metric (per-digit accuracy, edit distance, answer log-prob) is sharp too and jumps
between the same pair of sizes.

All judgements work on a normalised score q = (y - chance) / (perfect - chance): 0 at chance,
1 at perfect, whatever the metric's direction. Everything is a pure function of the rows of
results.jsonl (schema: docs/results-schema.md); no plotting.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .stats import (CONF, clopper_pearson, fit_logistic, resample_sizes, replicate_intervals,
                    size_interval)
from sweeps.validate import (METRIC_RANGES, check_rows, is_finite, metric_keys, raise_errors,
                             read_results)


class Metric(NamedTuple):
    higher_is_better: bool
    label: str
    perfect: float | None  # the best possible value; with chance it fixes the q scale


METRICS: dict[str, Metric] = {
    "exact_match": Metric(True, "exact match (fraction)", 1.0),
    "per_digit_acc": Metric(True, "per-digit accuracy (fraction)", 1.0),
    "edit_distance": Metric(False, "edit distance (tokens, lower is better)", 0.0),
    "answer_logprob": Metric(True, "answer log-prob (nats)", 0.0),
}
CONTINUOUS_METRICS = ("per_digit_acc", "edit_distance", "answer_logprob")
BOUNDED_METRICS = ("exact_match", "per_digit_acc")  # fractions: axes and intervals in [0, 1]

FLOOR = 0.05           # "clearly above chance" also needs q >= FLOOR (5% of chance-to-perfect)
MIN_SHAPE_SIZES = 4    # a 4-parameter logistic needs 4 sizes; below that the shape is undefined
MIN_RISE = 0.10        # a fitted rise under 10% of the chance-to-perfect span is "flat"
N_BOOT = 1000
_JUMP_TIE = 0.05       # neighbour rises this close (in units of the curve's range) tie


def load_results(run_dir: str | Path) -> list[dict]:
    """RUN_DIR/results.jsonl, checked against the schema (ResultsError names file, line, field)."""
    return read_results(run_dir)[0]


def is_ok(row: dict) -> bool:
    return row.get("status", "ok") == "ok"


def _num(v) -> float | None:
    return float(v) if is_finite(v) else None


def _clean(obj):
    """JSON-safe: numpy scalars to Python, NaN/inf to None."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return _num(float(obj))
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def metric_spec(name: str, values=()) -> Metric:
    """The spec of a known metric, or of an unknown numeric one (higher is better; a fraction,
    perfect = 1, when every value lies in [0, 1]; otherwise no known perfect score)."""
    if name in METRICS:
        return METRICS[name]
    frac = all(0.0 <= v <= 1.0 for v in values)
    return Metric(True, f"{name} (fraction)" if frac else name, 1.0 if frac else None)


# ----------------------------------------------------------------------------- threshold crossing
def crossing(x: list[float], q: list[float], q_thr: float) -> tuple[float | None, str]:
    """First place the curve q(x) reaches q_thr, linearly interpolated in x (x already log10).

    Returns (x at the crossing or None, a note saying how it was found). The interpolated x lies
    between two measured sizes and was not itself measured."""
    for i, qi in enumerate(q):
        if qi >= q_thr:
            if i == 0:
                return None, "already past the threshold at the smallest size"
            t = (q_thr - q[i - 1]) / (qi - q[i - 1])
            return x[i - 1] + t * (x[i] - x[i - 1]), "interpolated between two measured sizes"
    return None, "never reaches the threshold"


# ----------------------------------------------------------------------------- scale points
def _seed_key(seed) -> tuple:
    return (seed is None, str(type(seed)), seed if isinstance(seed, (int, str)) else 0)


def scale_points(rows: list[dict]) -> tuple[list[dict], list[str]]:
    """Group one curve's ok rows into scale points sorted by params; returns (points, notes).

    Several size names with one parameter count are not a step in scale: they are merged into
    one point (their seeds pooled) and a note says so."""
    by_params: dict[float, dict[str, list[dict]]] = {}
    for r in rows:
        p = float(r["params"])
        key = next((k for k in by_params if math.isclose(k, p, rel_tol=1e-9)), p)
        by_params.setdefault(key, {}).setdefault(str(r["size"]), []).append(r)
    points, notes = [], []
    for p in sorted(by_params):
        named = by_params[p]
        rs = sorted((r for group in named.values() for r in group),
                    key=lambda r: _seed_key(r.get("seed")))
        if len(named) > 1:
            notes.append(f"sizes {', '.join(sorted(named))} have the same parameter count "
                         f"({p:.3g}); merged into one scale point")
        flops = [_num(r.get("flops")) for r in rs]
        points.append({"size": "=".join(sorted(named)) if len(named) > 1 else next(iter(named)),
                       "params": p, "flops": float(np.mean(flops)) if all(f for f in flops) else None,
                       "rows": rs})
    return points, notes


def _chance(rows: list[dict], metric: str) -> tuple[float | None, str | None]:
    """The rows' chance level for `metric` (a plain number means exact match); note if rows differ."""
    vals = []
    for r in rows:
        c = r.get("chance")
        if is_finite(c):
            c = {"exact_match": c}
        if isinstance(c, dict) and is_finite(c.get(metric)):
            vals.append(float(c[metric]))
    if not vals:
        return None, None
    note = None
    if max(vals) - min(vals) > 1e-12:
        note = f"rows disagree on the {metric} chance level ({min(vals):.3g}..{max(vals):.3g}); mean used"
    return float(np.mean(vals)), note


def _trials(rows: list[dict], metric: str) -> int | None:
    """Problems (or digits) behind each value: n_eval for exact match, n_eval * answer_len for
    per-digit accuracy (approximate: digits of one answer are not independent), else None."""
    if metric not in BOUNDED_METRICS:
        return None
    n = [r.get("n_eval") for r in rows]
    if not all(is_finite(v) and v > 0 for v in n):
        return None
    n = int(min(n))
    if metric == "per_digit_acc":
        a = [r.get("answer_len") for r in rows]
        if not all(is_finite(v) and v > 0 for v in a):
            return None
        n *= int(min(a))
    return n


# ----------------------------------------------------------------------------- the rules
def above_chance(q_mean, q_lo, floor: float = FLOOR):
    """Wei et al.'s "clearly above chance", on normalised scores: the interval's lower end above
    chance (where an interval exists) and the mean at least `floor` of the way to perfect."""
    q_mean = np.asarray(q_mean, float)
    ok = q_mean >= floor
    if q_lo is not None:
        q_lo = np.asarray(q_lo, float)
        ok &= np.where(np.isnan(q_lo), True, q_lo > 0)
    return ok


def first_above(above: np.ndarray) -> np.ndarray:
    """Index of the first True along the last axis, -1 where none."""
    above = np.asarray(above, bool)
    idx = np.argmax(above, axis=-1)
    return np.where(above.any(axis=-1), idx, -1)


def _jump(q: list[float]) -> tuple[int | None, float]:
    """The neighbour pair with the largest rise in q (earliest of near-equal ones): (i, rise)."""
    q = np.asarray(q, float)
    if len(q) < 2 or np.ptp(q) < 1e-12:
        return None, 0.0
    rises = np.diff(q)
    k = int(np.argmax(rises >= rises.max() - _JUMP_TIE * np.ptp(q)))
    return (k, float(rises[k])) if rises[k] > 0 else (None, 0.0)


def shape(x: list[float], q: list[float], names: list[str]) -> dict:
    """Sharp or gradual, from a bounded logistic fit of q against log10 scale.

    sharp: the fitted 10-90% width is no wider than the gap between the two measured sizes
    around the fitted midpoint (the rise is not resolved by the sizes measured); gradual: wider.
    Undefined below MIN_SHAPE_SIZES sizes, when the fit fails, or when the midpoint lies outside
    the measured sizes; flat when the fitted rise is under MIN_RISE."""
    n = len(set(np.round(x, 9)))
    out = {"shape": "undefined", "width_decades": None, "logistic": None}
    if n < MIN_SHAPE_SIZES:
        out["shape_reason"] = f"only {n} size(s); sharpness needs at least {MIN_SHAPE_SIZES}"
        return out
    fit = fit_logistic(x, q)
    out["logistic"] = fit
    if not fit["ok"]:
        out["shape"] = "fit failed"
        out["shape_reason"] = f"logistic fit failed: {fit['reason']}"
        return out
    rise = fit["hi"] - fit["lo"]
    if rise < MIN_RISE:
        out["shape"] = "flat"
        out["shape_reason"] = f"fitted rise {rise:.2f} < {MIN_RISE} of the chance-to-perfect span"
        return out
    x0, w = fit["x0"], fit["width_decades"]
    out["width_decades"] = w
    if not x[0] <= x0 <= x[-1]:
        out["shape_reason"] = (f"fitted midpoint 10^{x0:.2f} lies outside the measured sizes "
                               f"(10^{x[0]:.2f}..10^{x[-1]:.2f})")
        return out
    i = max(1, int(np.searchsorted(x, x0)))
    i = min(i, len(x) - 1)
    gap = x[i] - x[i - 1]
    caveat = ("; with 4 sizes the 4-parameter fit passes through every point, so this is weak "
              "evidence" if n == MIN_SHAPE_SIZES else "")
    if w <= gap:
        out["shape"] = "sharp"
        out["shape_reason"] = (f"10–90% width {w:.2f} decades ≤ the {gap:.2f}-decade gap between "
                               f"{names[i - 1]} and {names[i]}: the rise is within one step of "
                               "the measured sizes" + caveat)
    else:
        out["shape"] = "gradual"
        out["shape_reason"] = (f"10–90% width {w:.2f} decades > the {gap:.2f}-decade gap between "
                               f"{names[i - 1]} and {names[i]} around the midpoint" + caveat)
    return out


def _bootstrap(points, per_size, trials, chance, span, floor, conf, n_boot, rng) -> dict | None:
    draws = resample_sizes([np.asarray(p["values"]) for p in per_size], trials, n_boot, rng)
    if draws is None:
        return None
    q_mean, q_lo = [], []
    for d, t in zip(draws, trials):
        mean, lo, hi = replicate_intervals(d, t, conf)
        qm = (mean - chance) / span
        q_mean.append(qm)
        if lo is None:
            q_lo.append(np.full_like(qm, np.nan))
        else:  # the bound on the chance side: lo for higher-is-better, hi when mirrored
            q_lo.append(np.minimum((lo - chance) / span, (hi - chance) / span))
    idx = first_above(above_chance(np.stack(q_mean, 1), np.stack(q_lo, 1), floor))
    counts = np.bincount(idx + 1, minlength=len(per_size) + 1)
    outcomes = [{"size": p["size"], "params": p["params"], "flops": p["flops"],
                 "count": int(c)} for p, c in zip(per_size, counts[1:])]
    return {"n": n_boot, "none": int(counts[0]), "outcomes": outcomes}


def _boot_interval(boot: dict, key: str, conf: float) -> dict:
    """Central `conf` interval of the bootstrap's emergent scale in `key` (params or flops)."""
    n = boot["n"]
    a = (1 - conf) / 2
    seq = [(o[key] if o[key] else math.nan, o["count"]) for o in boot["outcomes"]]
    seq.append((math.inf, boot["none"]))
    cum, lo, hi = 0, None, None
    for val, c in seq:
        cum += c
        if lo is None and cum > a * n:
            lo = val
        if hi is None and cum >= (1 - a) * n:
            hi = val
    at_smallest = boot["outcomes"][0]["count"] / n if boot["outcomes"] else 0.0
    return {"lo": lo, "hi": hi, "p_none": boot["none"] / n, "p_at_smallest": at_smallest,
            "lo_at_smallest": bool(boot["outcomes"]) and lo == seq[0][0],
            "hi_beyond_largest": hi == math.inf}


def drops(per_size: list[dict]) -> list[dict]:
    """Sizes whose interval lies wholly below an earlier size's interval: the curve falls by more
    than its sampling error (a zig-zag, e.g. a seed that failed to learn). In q units, so the
    direction of the metric does not matter; sizes without an interval are skipped."""
    out = []
    for j, b in enumerate(per_size):
        if b.get("q_hi") is None:
            continue
        for a in per_size[:j]:
            if a.get("q_lo") is not None and b["q_hi"] < a["q_lo"]:
                out.append({"size": b["size"], "below": a["size"]})
                break
    return out


def _drops_txt(ds: list[dict]) -> str:
    return ", ".join(f"{d['size']} significantly below {d['below']}" for d in ds)


def seeds_past(values, trials: int | None, chance: float, span: float, q_needed: float,
               conf: float) -> int:
    """How many seeds (one score each) have the ability on their own: a score at least `q_needed`
    of the way from chance to perfect (`span` = perfect - chance, negative where lower is better)
    and, where the problems behind it are known, clearly above chance by that seed's own
    Clopper-Pearson interval at `conf`. The report's threshold is the 50%-of-best crossing's
    height (never under the floor), so a seed counts when it is as good as the crossing demands."""
    n = 0
    for v in values:
        if (v - chance) / span < q_needed:
            continue
        if trials and span > 0:
            lo, _ = clopper_pearson(round(min(max(v, 0.0), 1.0) * trials), trials, conf)
            if not float(lo) > chance:
                continue
        n += 1
    return n


def analyse_metric(points: list[dict], metric: str, threshold_frac: float = 0.5,
                   floor: float = FLOOR, conf: float = CONF, n_boot: int = N_BOOT,
                   rng: np.random.Generator | None = None) -> dict:
    """One curve, one metric: per-size intervals, Wei et al.'s emergent scale with its bootstrap
    interval, the 50%-of-best crossing, the shape and the verdict with its reason."""
    rng = rng if rng is not None else np.random.default_rng(0)
    per_size = []
    for p in points:
        vals = [float(r[metric]) for r in p["rows"] if is_finite(r.get(metric))]
        if vals:
            per_size.append({"size": p["size"], "params": p["params"], "flops": p["flops"],
                             "values": vals, "mean": float(np.mean(vals)), "min": min(vals),
                             "max": max(vals), "n_seeds": len(vals),
                             "trials": _trials(p["rows"], metric)})
    spec = metric_spec(metric, [v for p in per_size for v in p["values"]])
    out = {"metric": metric, "label": spec.label, "higher_is_better": spec.higher_is_better,
           "perfect": spec.perfect, "per_size": per_size, "verdict": "no data",
           "emergent": None, "emergent_params": None, "emergent_flops": None,
           "crossing": None, "shape": "undefined", "width_decades": None, "logistic": None,
           "jump_interval": None, "falls_back": [], "below_chance": [], "drops": [],
           "notes": []}
    if not per_size:
        out["reason"] = "no finite values"
        return out
    all_rows = [r for p in points for r in p["rows"]]
    chance, note = _chance(all_rows, metric)
    if note:
        out["notes"].append(note)
    lo_ok, hi_ok = METRIC_RANGES.get(metric, (0.0, 1.0) if spec.perfect == 1.0 else
                                     (-math.inf, math.inf))
    # Judging uses simultaneous intervals over the curve's sizes (Bonferroni): with one 95%
    # interval per size, some size of a pure-noise curve would clear chance far more often than
    # 2.5% of the time. Displayed intervals stay per-size at `conf`.
    conf_judge = 1.0 - (1.0 - conf) / len(per_size)
    for s in per_size:
        iv = size_interval(s["values"], s["trials"], conf)
        jv = size_interval(s["values"], s["trials"], conf_judge)
        for v in (iv, jv):
            if v["lo"] is not None:  # a seed interval can run past what the metric can score
                v["lo"], v["hi"] = max(v["lo"], lo_ok), min(v["hi"], hi_ok)
        s.update(interval=iv, lo=iv["lo"], hi=iv["hi"], judge_lo=jv["lo"], judge_hi=jv["hi"])
    out["conf_judge"] = conf_judge
    x = [math.log10(s["params"]) for s in per_size]
    names = [s["size"] for s in per_size]
    out["chance"] = chance
    sign = 1.0 if spec.higher_is_better else -1.0
    if chance is None:  # no q scale: shape on sign-corrected raw values, no verdict on chance
        raw = [sign * s["mean"] for s in per_size]
        out.update(shape(x, raw, names))
        k, _ = _jump(raw)
        out["jump_interval"] = [names[k], names[k + 1]] if k is not None else None
        out["verdict"] = "unknown chance"
        out["reason"] = ("no chance level recorded for this metric, so 'above chance' cannot be "
                         "judged; no emergent scale")
        return out
    span = (spec.perfect - chance) if spec.perfect is not None else sign
    if abs(span) < 1e-12:
        out["verdict"], out["reason"] = "no data", f"chance ({chance:g}) equals a perfect score"
        return out
    for s in per_size:
        s["q"] = (s["mean"] - chance) / span
        bounds = None if s["judge_lo"] is None else sorted(((s["judge_lo"] - chance) / span,
                                                            (s["judge_hi"] - chance) / span))
        s["q_lo"], s["q_hi"] = (bounds or (None, None))
    q = [s["q"] for s in per_size]
    q_lo = [math.nan if s["q_lo"] is None else s["q_lo"] for s in per_size]
    above = above_chance(q, q_lo, floor)
    for s, a in zip(per_size, above):
        s["above_chance"] = bool(a)
    out["below_chance"] = [s["size"] for s in per_size if s["q_hi"] is not None and s["q_hi"] < 0]
    out["no_interval"] = [s["size"] for s in per_size if s["lo"] is None]
    out.update(shape(x, q, names))
    k, _ = _jump(q)
    out["jump_interval"] = [names[k], names[k + 1]] if k is not None else None
    out["drops"] = drops(per_size)
    if out["drops"]:
        out["shape_reason"] = out.get("shape_reason", "") + (
            "; the curve is non-monotone (" + _drops_txt(out["drops"]) + "), which a logistic "
            "cannot describe: read the shape with care")

    # 50%-of-best crossing, as a bracket between measured sizes
    q_best = max(q)
    q_seed = max(threshold_frac * q_best, floor)  # what one seed must reach to count
    out["seed_threshold"] = chance + q_seed * span
    for s in per_size:
        s["seeds_past"] = seeds_past(s["values"], s["trials"], chance, span, q_seed, conf_judge)
    if q_best > 0:
        q_thr = threshold_frac * q_best
        xc, cnote = crossing(x, q, q_thr)
        cr = {"threshold": chance + q_thr * span, "note": cnote, "bracket": None,
              "params_interp": None, "flops_interp": None}
        if xc is not None:
            i = next(j for j, v in enumerate(q) if v >= q_thr)
            cr["bracket"] = [names[i - 1], names[i]]
            cr["params_interp"] = 10 ** xc
            f0, f1 = per_size[i - 1]["flops"], per_size[i]["flops"]
            if f0 and f1:
                t = (xc - x[i - 1]) / (x[i] - x[i - 1])
                cr["flops_interp"] = 10 ** (math.log10(f0) + t * (math.log10(f1) - math.log10(f0)))
        out["crossing"] = cr

    # Wei et al.'s emergent scale
    i = int(first_above(above))
    best = int(np.argmax(q))
    best_txt = (f"best {names[best]}: {per_size[best]['mean']:.3g}"
                + (f" (simultaneous {conf_judge:.2%} interval [{per_size[best]['judge_lo']:.3g}, "
                   f"{per_size[best]['judge_hi']:.3g}])"
                   if per_size[best]["judge_lo"] is not None else " (no interval)")
                + f" vs chance {chance:.3g}")
    below_txt = f"; below chance at {', '.join(out['below_chance'])}" if out["below_chance"] else ""
    if len(per_size) < 2:
        out["verdict"] = "too few sizes"
        out["reason"] = f"one size only ({best_txt}); emergence needs a size below and one above"
    elif i < 0:
        out["verdict"] = "never above chance"
        if q_best >= floor:
            why = "interval's lower end does not clear chance"
        elif q_best > 0:
            why = f"best is under the floor ({floor} of the way from chance to perfect)"
        else:
            why = "best is not above chance"
        out["reason"] = f"no size clearly above chance ({why}): {best_txt}{below_txt}"
    elif i == 0:
        out["verdict"] = "above chance at smallest size"
        s = per_size[0]
        out["reason"] = (f"the smallest size {s['size']} is already clearly above chance "
                         f"({s['mean']:.3g} vs {chance:.3g}): the scale lies at or below it; "
                         "no emergent scale can be named")
    else:
        s, prev = per_size[i], per_size[i - 1]
        falls = [t["size"] for t in per_size[i + 1:] if not t["above_chance"]]
        out["falls_back"] = falls
        iv = (f"simultaneous {conf_judge:.2%} interval [{s['judge_lo']:.3g}, {s['judge_hi']:.3g}]"
              if s["judge_lo"] is not None else "(no interval)")
        out["verdict"] = "zig-zag" if falls else "emergent"
        later_drops = [d for d in out["drops"] if d["size"] not in falls]
        out["reason"] = (f"first size clearly above chance: {s['size']} ({s['mean']:.3g} {iv} vs "
                         f"chance {chance:.3g}); last below: {prev['size']} ({prev['mean']:.3g})"
                         + (f"; not clearly above chance again at {', '.join(falls)} (non-monotone)"
                            if falls else "")
                         + (f"; still above chance but non-monotone: {_drops_txt(later_drops)}"
                            if later_drops else "")
                         + below_txt)
        em = {"size": s["size"], "params": s["params"], "flops": s["flops"],
              "last_below": prev["size"], "last_below_params": prev["params"],
              "last_below_flops": prev["flops"], "interval_params": None,
              "interval_flops": None, "bootstrap": None}
        if s["flops"] is None:
            out["notes"].append(f"no FLOPs recorded for {s['size']}: no emergent scale in FLOPs")
        boot = _bootstrap(points, per_size, [t["trials"] for t in per_size], chance, span,
                          floor, conf_judge, n_boot, rng)
        if boot is None:
            em["bootstrap_note"] = ("no bootstrap: one seed per size and n_eval unknown, so no "
                                    "sampling error can be estimated")
        else:
            em["bootstrap"] = boot
            em["interval_params"] = _boot_interval(boot, "params", conf)
            if all(t["flops"] for t in per_size):
                em["interval_flops"] = _boot_interval(boot, "flops", conf)
        if out["no_interval"]:
            out["notes"].append(f"no interval at {', '.join(out['no_interval'])} (n_eval unknown and "
                                "one seed): judged on the mean and the floor alone")
        out["emergent"] = em
        out["emergent_params"], out["emergent_flops"] = s["params"], s["flops"]
    return out


def _analyse_safely(points, metric, *args) -> dict:
    """analyse_metric, but a fault in one (curve, metric) is reported there, not raised: one bad
    curve never stops the report. The message says what failed, so it is not hidden."""
    try:
        return analyse_metric(points, metric, *args)
    except Exception as e:  # noqa: BLE001
        return {"metric": metric, "label": metric, "per_size": [], "verdict": "analysis failed",
                "reason": f"analysis failed: {type(e).__name__}: {e}", "emergent": None,
                "emergent_params": None, "emergent_flops": None, "crossing": None,
                "shape": "undefined", "shape_reason": "analysis failed", "width_decades": None,
                "logistic": None, "jump_interval": None, "falls_back": [], "below_chance": [],
                "notes": []}


def metric_question(metrics: dict[str, dict]) -> dict:
    """Schaeffer et al.'s question for one curve: is the exact-match jump sharp elsewhere too,
    and between the same pair of sizes?"""
    em = metrics.get("exact_match", {})
    side = [{"metric": m, "shape": metrics[m].get("shape"), "verdict": metrics[m].get("verdict"),
             "width_decades": metrics[m].get("width_decades"),
             "emergent_params": metrics[m].get("emergent_params"),
             "jump_interval": metrics[m].get("jump_interval")}
            for m in ("exact_match",) + CONTINUOUS_METRICS if m in metrics]
    if em.get("shape") != "sharp":
        return {"summary": "no sharp jump", "side_by_side": side,
                "detail": f"exact match shape is {em.get('shape', 'missing')} "
                          f"({em.get('shape_reason', 'no data')}): no sharp jump to question"}
    cont = [m for m in CONTINUOUS_METRICS if metrics.get(m, {}).get("per_size")]
    if not cont:
        return {"summary": "no continuous metrics", "side_by_side": side,
                "detail": "exact match jumps sharply, but no continuous metric was recorded"}
    wavy = [m for m in ("exact_match",) + tuple(cont) if metrics[m].get("drops")]
    if wavy:
        return {"summary": "undetermined (non-monotone)", "side_by_side": side,
                "detail": "the shapes cannot be compared: " + "; ".join(
                    f"{m} is non-monotone ({_drops_txt(metrics[m]['drops'])})" for m in wavy)
                + ". A logistic fit assumes a monotone rise; more seeds per size would show "
                  "whether the dip is real"}
    pair = em.get("jump_interval")
    same = [m for m in cont if metrics[m].get("shape") == "sharp"
            and metrics[m].get("jump_interval") == pair]
    other = [m for m in cont if metrics[m].get("shape") == "sharp" and m not in same]
    smooth = [m for m in cont if metrics[m].get("shape") != "sharp"]
    if len(same) == len(cont):
        summary = "sharp in all"
    elif not same and not other:
        summary = "exact-match only (mirage-like)"
    elif not smooth:
        summary = "sharp in all, at different sizes"
    else:
        summary = "mixed"
    pair_txt = " → ".join(pair) if pair else "?"
    others = ", ".join(m + " (" + " → ".join(metrics[m]["jump_interval"] or []) + ")" for m in other)
    smooth_txt = ", ".join(f"{m} ({metrics[m].get('shape')})" for m in smooth)
    detail = (f"exact match jumps sharply between {pair_txt}; sharp between the same sizes: "
              f"{', '.join(same) or 'none'}; sharp between other sizes: {others or 'none'}; "
              f"not sharp: {smooth_txt or 'none'}")
    return {"summary": summary, "side_by_side": side, "detail": detail}


def curve_label(condition: str, task: str) -> str:
    return task if condition in (None, "", "default") else f"{task} [{condition}]"


def analyse(rows: list[dict], threshold_frac: float = 0.5, floor: float = FLOOR,
            conf: float = CONF, n_boot: int = N_BOOT, seed: int = 0,
            wheres: list[str] | None = None) -> dict:
    """Full analysis of a sweep's result rows: per (condition, task) curve and per metric.

    Rows are checked first (ResultsError on a fault; see sweeps.validate); rows with params null
    are excluded and listed, as are null/NaN values in rows marked ok."""
    if not 0.0 < threshold_frac < 1.0:
        raise ValueError(f"threshold_frac must be in (0, 1), got {threshold_frac}")
    if not 0.0 <= floor < 1.0:
        raise ValueError(f"floor must be in [0, 1), got {floor}")
    if not 0.5 <= conf < 1.0:
        raise ValueError(f"conf must be in [0.5, 1), got {conf}")
    errors, excluded = check_rows(rows, wheres)
    raise_errors(errors)
    usable = [r for r in rows if r["params"] is not None]
    curves: dict[tuple, list[dict]] = {}
    for r in usable:
        curves.setdefault((r.get("condition") or "default", str(r["task"])), []).append(r)
    tasks: dict[str, dict] = {}
    for n, ((condition, task), rs) in enumerate(curves.items()):
        ok = [r for r in rs if is_ok(r)]
        points, notes = scale_points(ok)
        names = list(dict.fromkeys(m for r in ok for m in metric_keys(r)))
        names = [m for m in METRICS if m in names] + [m for m in names if m not in METRICS]
        rng = np.random.default_rng([seed, n])
        metrics = {m: _analyse_safely(points, m, threshold_frac, floor, conf, n_boot, rng)
                   for m in names}
        n_eval = sorted({int(r["n_eval"]) for r in ok if is_finite(r.get("n_eval"))})
        tasks[curve_label(condition, task)] = {
            "condition": condition, "task": task,
            "ability": next((r["ability"] for r in rs if r.get("ability")), task),
            "sizes": [p["size"] for p in points], "params": [p["params"] for p in points],
            "flops": [p["flops"] for p in points], "n_eval": n_eval, "notes": notes,
            "metrics": metrics, "metric_question": metric_question(metrics)}
    diverged = [{k: r.get(k) for k in ("condition", "task", "size", "seed", "params", "status",
                                       "final_loss")} for r in usable if not is_ok(r)]
    constants = {"FLOOR": floor, "MIN_SHAPE_SIZES": MIN_SHAPE_SIZES, "MIN_RISE": MIN_RISE,
                 "CONF": conf, "N_BOOT": n_boot}
    return _clean({"threshold_frac": threshold_frac, "floor": floor, "conf": conf,
                   "n_boot": n_boot, "constants": constants, "n_rows": len(rows),
                   "tasks": tasks, "diverged": diverged, "excluded": excluded})


def emergence_table(analysis: dict, metric: str = "exact_match") -> list[dict]:
    """One row per curve, like Wei et al. 2022 Table 1, with intervals, shape and the metric
    question."""
    table = []
    for label, t in analysis["tasks"].items():
        m = t["metrics"].get(metric) or {"verdict": "no data", "reason": f"no {metric} values"}
        em = m.get("emergent") or {}
        cr = m.get("crossing") or {}
        table.append({
            "task": label, "condition": t.get("condition"), "ability": t.get("ability"),
            "metric": metric, "n_eval": t.get("n_eval"), "n_sizes": len(m.get("per_size") or []),
            "verdict": m.get("verdict"), "reason": m.get("reason"),
            "emergent_size": em.get("size"), "last_below": em.get("last_below"),
            "emergent_params": m.get("emergent_params"), "emergent_flops": m.get("emergent_flops"),
            "interval_params": em.get("interval_params"), "interval_flops": em.get("interval_flops"),
            "crossing_bracket": cr.get("bracket"), "crossing_params": cr.get("params_interp"),
            "crossing_note": cr.get("note"),
            "shape": m.get("shape"), "width_decades": m.get("width_decades"),
            "shape_reason": m.get("shape_reason"), "jump_interval": m.get("jump_interval"),
            "falls_back": m.get("falls_back") or [],
            "metric_question": t["metric_question"]["summary"],
        })
    return table

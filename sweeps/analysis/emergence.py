"""Where an ability appears: per-size tests against chance, seed counts, and Wei et al.'s verdict.

"Emergent Abilities of Large Language Models" (Wei et al. 2022) calls an ability emergent when it
is near random in smaller models and clearly above it in larger ones; its emergent scale is the
first model clearly above chance. Every size of a curve answers two questions, separately:

1. **Are these models above chance?** The pooled exact binomial test of all the size's
   problem-answers over all its seeds, under the sharp null that every model answers each problem
   right with the chance probability (a t test on per-problem values for a continuous metric),
   so that adding a seed adds power and never removes it. Over the curve's sizes Holm's step-down
   procedure keeps the chance of calling any at-chance size "above" under alpha = 1 - conf,
   without assuming that larger models score higher (a failed large model would stop a
   fixed-sequence test and hide every smaller size).
2. **How reliably does a seed of this size learn?** A seed *learned* when its own score is at
   least LEARNED_Q of the way from chance to perfect and its own exact test clears chance. The
   count of seeds that learned has a Clopper-Pearson interval; across sizes a dose-response fit
   (sweeps.analysis.inference.dose_response) gives the size at which half the seeds learn.

A size is **clearly above chance** when its test rejects and its mean is at least FLOOR of the way
from chance to perfect; below that a size is "consistent with chance" (the test does not reject)
or "above chance but under the floor" (it does: the models are not random, but near it, e.g.
6 of 900 answers right against chance 1e-4). The verdict:

    emergent             the first size clearly above chance is not the smallest; every smaller
                         size is consistent with chance or under the floor (the report says
                         which of the two the last one below is)
    present_at_smallest  the smallest size is already clearly above chance
    never_above_chance   no size is clearly above chance (sizes above chance under the floor
                         are listed)
    undetermined         no chance level, or no sampling error to test with; the reason says

The emergent scale comes with a stability range (sweeps.analysis.stability: the rule replayed on
bootstrap replicates; not a confidence interval). Chance is the best guesser that knows the
answer format (data_gen's Task.chance_levels), as the rows record it. Everything is a pure
function of the rows of results.jsonl (docs/results-schema.md).
"""
from __future__ import annotations

import math

import numpy as np

from .curves import (Point, SeedScore, chance_of, condition_of, curve_label, curve_metrics,
                     group_curves, is_ok, metric_spec, scale_points)
from sweeps.validate import check_rows, raise_errors

from .inference import (CONF, above_chance_binary, above_chance_values, bootstrap_mean_interval,
                        clopper_pearson, dose_response, holm, learned_interval)
from .metric_question import metric_question
from .shape import crossing, shape, steepest_rise
from .stability import draw, first_clearly_above, replicate, stability_range

FLOOR = 0.05       # "clearly above chance" needs the mean this far from chance to perfect
LEARNED_Q = 0.5    # a seed learned when its own score is this far from chance to perfect
N_BOOT = 1000
VERDICTS = ("emergent", "present_at_smallest", "never_above_chance", "undetermined")
STATUSES = ("consistent_with_chance", "above_chance_under_floor", "clearly_above_chance",
            "untested")


def seed_p_value(s: SeedScore, chance: float, higher_is_better: bool) -> float | None:
    """One model's one-sided test against chance (exact for counts, t on per-problem values of
    a continuous metric), or None when its sampling error is unknown."""
    if s.n and higher_is_better:
        return float(above_chance_binary(s.k, s.n, chance))
    if s.outcomes is not None and s.outcomes.size > 1:
        return float(above_chance_values(s.outcomes, chance, higher_is_better))
    return None


def pooled_p_value(point: Point, chance: float, higher_is_better: bool) -> float | None:
    """The size's test against chance, pooled over its seeds under the sharp null (None when
    any seed's sampling error is unknown: a seed without it cannot be pooled)."""
    seeds = point.seeds
    if all(s.n for s in seeds) and higher_is_better:
        return float(above_chance_binary(sum(s.k for s in seeds), sum(s.n for s in seeds), chance))
    if all(s.outcomes is not None for s in seeds):
        values = np.concatenate([s.outcomes for s in seeds])
        if values.size > 1:
            return float(above_chance_values(values, chance, higher_is_better))
    return None


def size_interval(point: Point, conf: float, rng) -> tuple[list[float] | None, str]:
    """The interval on the size's mean over its models, with the problems as the sample and the
    models fixed, and its kind (or None and why there is none). The spread between seeds is the
    seed count's business, never folded into this interval."""
    seeds = point.seeds
    if all(s.outcomes is not None and s.k is None for s in seeds):
        lo, hi = bootstrap_mean_interval([s.outcomes for s in seeds], conf, 2000, rng)
        return [float(lo), float(hi)], "bootstrap over problems, models fixed"
    if all(s.n for s in seeds):
        lo, hi = clopper_pearson(sum(s.k for s in seeds), sum(s.n for s in seeds), conf)
        kind = ("Clopper-Pearson over digits, seeds pooled (approximate: digits of one answer "
                "are not independent)" if seeds[0].digits_approx else
                "Clopper-Pearson over problems, seeds pooled")
        return [float(lo), float(hi)], kind
    return None, "no interval: the rows record neither per-problem values nor n_eval"


def describe_size(point: Point, conf: float, rng) -> dict:
    """What one size measured, before any judgement against chance: its scores and their
    interval. A curve with no chance level (or no perfect score) shows these alone; the fields
    of the judgement (q, p_value, n_learned, above_chance) stay None and the status 'untested'."""
    values = point.values
    interval, kind = size_interval(point, conf, rng)
    return {"size": point.size, "params": point.params, "flops": point.flops,
            "n_seeds": len(values), "values": values, "mean": float(np.mean(values)),
            "min": min(values), "max": max(values), "q": None, "interval": interval,
            "interval_kind": kind, "p_value": None, "n_learned": None, "learned_interval": None,
            "above_chance": None, "status": "untested",
            "seeds": [{"seed": s.seed, "value": s.value, "q": None, "p_value": None,
                       "learned": None} for s in point.seeds]}


def size_record(point: Point, chance: float, spec, conf: float, learned_q: float, rng) -> dict:
    """Everything the verdict needs about one size, and what the report shows of it."""
    span = spec.perfect - chance
    alpha = 1.0 - conf
    if all(s.n for s in point.seeds) and spec.higher_is_better:  # every seed's test at once
        ps = np.atleast_1d(above_chance_binary(np.array([s.k for s in point.seeds]),
                                               np.array([s.n for s in point.seeds]), chance))
    else:
        ps = [seed_p_value(s, chance, spec.higher_is_better) for s in point.seeds]
    seeds = []
    for s, p in zip(point.seeds, ps):
        p = None if p is None else float(p)
        q = (s.value - chance) / span
        seeds.append({"seed": s.seed, "value": s.value, "q": q, "p_value": p,
                      "learned": bool(q >= learned_q and (p is None or p < alpha))})
    out = describe_size(point, conf, rng)
    n_learned = sum(s["learned"] for s in seeds)
    out.update(q=(out["mean"] - chance) / span, seeds=seeds,
               p_value=pooled_p_value(point, chance, spec.higher_is_better), n_learned=n_learned,
               learned_interval=list(learned_interval(n_learned, len(seeds), conf)))
    return out


def judge_sizes(per_size: list[dict], floor: float, alpha: float) -> None:
    """Holm over the tested sizes; sets above_chance and status on each size."""
    tested = [i for i, s in enumerate(per_size) if s["p_value"] is not None]
    rejected = holm([per_size[i]["p_value"] for i in tested], alpha) if tested else []
    for s in per_size:
        s["above_chance"], s["status"] = None, "untested"
    for i, r in zip(tested, rejected):
        s = per_size[i]
        s["above_chance"] = bool(r)
        s["status"] = ("consistent_with_chance" if not r else
                       "clearly_above_chance" if s["q"] >= floor else "above_chance_under_floor")


def _v(s: dict) -> str:
    return f"{s['size']} ({s['mean']:.3g})"


def verdict(per_size: list[dict], chance: float, floor: float) -> dict:
    """Wei et al.'s verdict from sizes judged by `judge_sizes` (see the module doc)."""
    out = {"verdict": "undetermined", "emergent_size": None, "emergent_params": None,
           "emergent_flops": None, "last_below": None, "last_below_params": None,
           "last_below_status": None, "falls_back": [], "under_floor": [
               s["size"] for s in per_size if s["status"] == "above_chance_under_floor"]}
    if all(s["status"] == "untested" for s in per_size):
        past = next((s for s in per_size if s["q"] >= floor), None)
        out["reason"] = ("no sampling error is known (no per-problem values and no n_eval), so "
                         "no size can be tested against chance"
                         + (f"; by the point estimates alone the first size past the floor is "
                            f"{_v(past)}, which is a description, not a verdict" if past else
                            "; no size's point estimate is past the floor either"))
        return out
    first = next((i for i, s in enumerate(per_size) if s["status"] == "clearly_above_chance"), None)
    best = max(per_size, key=lambda s: s["q"])
    if first is None:
        under = f"; above chance but under the floor at {', '.join(out['under_floor'])}" \
            if out["under_floor"] else ""
        out.update(verdict="never_above_chance", reason=(
            f"no size is clearly above chance (above chance by Holm's test and at least {floor:g} "
            f"of the way to perfect): best {_v(best)} against chance {chance:.3g}{under}"))
        return out
    s = per_size[first]
    out.update(emergent_size=s["size"], emergent_params=s["params"], emergent_flops=s["flops"])
    out["falls_back"] = [t["size"] for t in per_size[first + 1:]
                         if t["status"] != "clearly_above_chance"]
    back = (f"; not clearly above chance again at {', '.join(out['falls_back'])} (non-monotone)"
            if out["falls_back"] else "")
    if first == 0:
        out.update(verdict="present_at_smallest", reason=(
            f"the smallest size {_v(s)} is already clearly above chance {chance:.3g}: the scale "
            f"lies at or below it{back}"))
        return out
    below = [t for t in per_size[:first] if t["status"] == "untested"]
    prev = per_size[first - 1]
    if below:  # no scale is named: whether the ability was absent below it is unknown
        out.update(emergent_size=None, emergent_params=None, emergent_flops=None, falls_back=[])
        out["reason"] = (f"{s['size']} is the first size clearly above chance, but "
                         f"{', '.join(t['size'] for t in below)} below it cannot be tested")
        return out
    out.update(verdict="emergent", last_below=prev["size"], last_below_params=prev["params"],
               last_below_status=prev["status"])
    how = prev["status"].replace("_", " ")
    out["reason"] = (f"first size clearly above chance: {_v(s)} against chance {chance:.3g}; "
                     f"last below: {_v(prev)}, {how}{back}")
    return out


def judge_curve(points: list[Point], spec, chance: float, options: dict,
                rng) -> tuple[list[dict], dict]:
    """The sizes' records, judged, and the verdict: the rule alone, without the stability range,
    the learning scale or the shape (what the calibration tests replay thousands of times)."""
    per_size = [size_record(p, chance, spec, options["conf"], options["learned_q"], rng)
                for p in points]
    judge_sizes(per_size, options["floor"], 1.0 - options["conf"])
    return per_size, verdict(per_size, chance, options["floor"])


def learning_scale(per_size: list[dict], conf: float) -> dict:
    """The size at which half the seeds learn (dose-response fit of the seed counts), with its
    profile-likelihood range, in parameters (None ends are open)."""
    fit = dose_response([math.log10(s["params"]) for s in per_size],
                        [s["n_learned"] for s in per_size], [s["n_seeds"] for s in per_size], conf)
    to_params = (lambda v: None if v is None else 10 ** v)
    return {"ok": fit["ok"], "params": to_params(fit["x50"]), "lo": to_params(fit["lo"]),
            "hi": to_params(fit["hi"]), "separated": fit["separated"], "slope": fit["slope"],
            "interval_kind": "profile_likelihood_range", "method": fit["method"],
            "reason": fit["reason"]}


def stability(points: list[Point], per_size: list[dict], chance: float, spec, floor: float,
              conf: float, n_boot: int, rng, binary: bool) -> dict | None:
    """The emergent scale's stability range (sweeps.analysis.stability), or None when no size
    has any sampling error to redraw."""
    if all(s["p_value"] is None for s in per_size):
        return None
    values, p = [], []
    for point in points:
        v, pv = replicate(point, draw(point, n_boot, rng), chance, spec.higher_is_better,
                          binary, rng)
        values.append(v)
        p.append(pv)
    first = first_clearly_above(np.column_stack(values), np.column_stack(p), chance,
                                spec.perfect - chance, floor, 1.0 - conf)
    return stability_range(first, [s["params"] for s in per_size], conf)


def curve_record(metric: str, spec, chance=None, per_size=(), reason: str = "") -> dict:
    """The result of one (curve, metric), every key present: a curve that cannot be analysed
    gets the same record with its reason, never a hand-made copy."""
    return {"metric": metric, "label": spec.label, "higher_is_better": spec.higher_is_better,
            "perfect": spec.perfect, "chance": chance, "per_size": list(per_size),
            "verdict": "undetermined", "reason": reason, "emergent_size": None,
            "emergent_params": None, "emergent_flops": None, "last_below": None,
            "last_below_params": None, "last_below_status": None, "falls_back": [],
            "under_floor": [], "scale_interval": None, "scale_interval_kind": None,
            "stability": None, "learning_scale": None, "shape": "undefined",
            "shape_reason": reason, "width_decades": None, "logistic": None,
            "jump_interval": None, "crossing": None, "floor": None, "bars": {}, "notes": []}


def _crossing(per_size: list[dict], threshold_frac: float) -> dict | None:
    """The 50%-of-best crossing as the pair of measured sizes it falls between."""
    q = [s["q"] for s in per_size]
    if max(q) <= 0:
        return None
    x = [math.log10(s["params"]) for s in per_size]
    i, xc, note = crossing(x, q, threshold_frac * max(q))
    bracket = [per_size[i - 1]["size"], per_size[i]["size"]] if i else None
    return {"threshold_q": threshold_frac * max(q), "bracket": bracket, "note": note,
            "params_interp": None if xc is None else 10 ** xc}


def analyse_metric(points: list[Point], metric: str, chance: float | None, options: dict,
                   rng: np.random.Generator) -> dict:
    """One curve, one metric: sizes, tests, seed counts, the verdict, its stability range, the
    learning scale, the shape (see the module doc)."""
    spec = metric_spec(metric, [v for p in points for v in p.values])
    if chance is None or spec.perfect is None or abs(spec.perfect - chance) < 1e-12:
        why = ("no chance level recorded for this metric" if chance is None else
               "no perfect score is known for this metric" if spec.perfect is None else
               f"chance ({chance:g}) equals a perfect score")
        return curve_record(metric, spec, chance,
                            [describe_size(p, options["conf"], rng) for p in points],
                            reason=f"{why}: above chance cannot be judged")
    conf, floor = options["conf"], options["floor"]
    per_size, judged = judge_curve(points, spec, chance, options, rng)
    out = curve_record(metric, spec, chance, per_size)
    out.update(judged, floor=floor)
    x = [math.log10(s["params"]) for s in per_size]
    names = [s["size"] for s in per_size]
    out.update(shape(x, [s["q"] for s in per_size], names))
    jump = steepest_rise([s["q"] for s in per_size])
    out["jump_interval"] = None if jump is None else names[jump:jump + 2]
    out["crossing"] = _crossing(per_size, options["threshold_frac"])
    out["learning_scale"] = learning_scale(per_size, conf)
    if out["verdict"] in ("emergent", "present_at_smallest"):
        st = stability(points, per_size, chance, spec, floor, conf, options["n_boot"], rng,
                       binary=all(s.n for p in points for s in p.seeds))
        out["stability"] = st
        if st is not None:
            out["scale_interval"] = [st["lo"], st["hi"]]
            out["scale_interval_kind"] = "stability_range"
    return out


def analyse_safely(points, metric, chance, options, rng) -> dict:
    """analyse_metric, but a fault in one (curve, metric) is reported in its record, never
    raised: one bad curve does not stop the report, and the message says what failed."""
    try:
        return analyse_metric(points, metric, chance, options, rng)
    except Exception as e:  # noqa: BLE001
        return curve_record(metric, metric_spec(metric), chance,
                            reason=f"analysis failed: {type(e).__name__}: {e}")


def options_of(threshold_frac: float = 0.5, floor: float = FLOOR, conf: float = CONF,
               n_boot: int = N_BOOT, learned_q: float = LEARNED_Q) -> dict:
    """The analysis options, checked (ValueError names the bad one and its valid range)."""
    for name, value, lo, hi in (("threshold_frac", threshold_frac, 0.0, 1.0),
                                ("floor", floor, 0.0, 1.0), ("conf", conf, 0.5, 1.0),
                                ("learned_q", learned_q, 0.0, 1.0)):
        if not lo < value < hi and not (name == "floor" and value == 0.0):
            raise ValueError(f"{name} must be in ({lo:g}, {hi:g}), got {value}")
    if not isinstance(n_boot, int) or n_boot < 100:
        raise ValueError(f"n_boot must be a whole number of at least 100, got {n_boot!r}")
    return {"threshold_frac": threshold_frac, "floor": floor, "conf": conf, "n_boot": n_boot,
            "learned_q": learned_q}


def analyse_curve(rows: list[dict], options: dict, rng, chance_override=None) -> dict:
    """Every metric of one (condition, task, shots) curve, and the metric question."""
    ok = [r for r in rows if is_ok(r)]
    results, points, notes = {}, {}, []
    for metric in curve_metrics(ok):
        pts, merged = scale_points(ok, metric)
        chance, note = chance_of(ok, metric)
        if chance_override is not None and metric == "exact_match":
            chance, note = chance_override, None
        notes += [n for n in merged + [note] if n and n not in notes]
        if pts:
            points[metric] = pts
            results[metric] = analyse_safely(pts, metric, chance, options, rng)
    lengths = {r.get("answer_len") for r in ok}
    answer_len = lengths.pop() if len(lengths) == 1 else None
    mq = metric_question(points, results, answer_len, options["conf"], rng)
    return {"metrics": results, "metric_question": mq, "notes": notes,
            "answer_len": answer_len, "n_eval": sorted({int(r["n_eval"]) for r in ok
                                                        if isinstance(r.get("n_eval"), int)})}


def analyse(rows: list[dict], options: dict | None = None, wheres: list[str] | None = None,
            seed: int = 0, chance_overrides: dict | None = None) -> dict:
    """The analysis of a sweep's rows: one entry per (condition, task, shots) curve.

    Rows are checked first (ResultsError on a fault: sweeps.validate); rows with params null are
    excluded and listed, as are null values in rows marked ok. `chance_overrides` maps a task to
    the exact-match bar it is judged against instead of its rows' chance (the in-context report
    judges against the best guesser that ignores the examples)."""
    options = options or options_of()
    errors, excluded = check_rows(rows, wheres)
    raise_errors(errors)
    curves = {}
    for n, ((condition, task, shots), rs) in enumerate(group_curves(rows).items()):
        rng = np.random.default_rng([seed, n])
        override = (chance_overrides or {}).get(task)
        curve = analyse_curve(rs, options, rng, override)
        curve.update(condition=condition, task=task, shots=shots,
                     ability=next((r["ability"] for r in rs if r.get("ability")), task))
        curves[curve_label(condition, task, shots)] = curve
    diverged = [{k: r.get(k) for k in ("condition", "task", "size", "seed", "shots", "params",
                                       "status", "final_loss")}
                for r in rows if r.get("params") is not None and not is_ok(r)]
    return {"options": options, "constants": {"FLOOR": options["floor"], "LEARNED_Q": LEARNED_Q,
                                              "CONF": options["conf"]},
            "n_rows": len(rows), "curves": curves, "diverged": diverged, "excluded": excluded}

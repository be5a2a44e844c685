"""Conditions compared on the same problems: paired per-size differences and the scale's shift.

A condition is one way of training or prompting the same ability (plain answers against a
scratchpad, tuned against untuned, k examples in context against none) or, for ingested results,
a model family. Conditions of one sweep answer the **same evaluation problems**, and where the
design pairs them also come from the **same seeds** (a tuned and an untuned model share their
pre-training), so they are compared pair by pair (Miller 2024, "Adding Error Bars to Evals"):

- per size, the difference in exact match (treatment minus reference, mean over paired seeds) with
  a percentile bootstrap that resamples seeds as clusters and problems once for both conditions
  (sweeps.analysis.inference.paired_difference): a *range* over seeds and problems, since two or
  three seeds cannot show their own spread well enough for a coverage guarantee; with one seed it
  is a confidence interval over problems for these two models;
- a two-sided mid-p McNemar test on the discordant problems summed over seeds, exact under the
  sharp null that the conditions are exchangeable on every (seed, problem) pair (for per-problem
  values that are not 0/1, such as exact match averaged over phrasings, the sign-flip
  permutation test of the same null), with Holm's procedure over the comparison's sizes;
- a size "helps" or "hurts" only when the Holm-adjusted test rejects *and* the range excludes 0
  (these models differ, and consistently across seeds); where both conditions score under the
  task's bar (chance, or the best guesser that ignores what the condition adds), it says so;
- the emergent scales of both (sweeps.analysis.emergence) and their ratio, with a stability range
  from replicates drawn jointly for both conditions (the same seeds and problems).

Rows without per-problem outcomes (ingested results, older runs) fall back to an unpaired
Newcombe interval and Fisher's exact test on counts pooled over seeds (which treats seeds as extra
problems: the comparison says so), under the same Holm correction.

A report that asks several comparisons of one question (the instructions report: every tuned
condition and measure against untuned) judges them as one family (`judge_family`): Holm over
every size of every comparison in it.
"""
from __future__ import annotations

import numpy as np
from scipy import stats

from .curves import Point, curve_label
from .inference import CONF, holm, newcombe_diff, paired_difference
from .stability import draw, first_clearly_above, replicate, stability_range

VERDICTS = ("helps", "hurts", "no clear difference")


def pair_seeds(a: Point, b: Point) -> list[tuple]:
    """Seed scores of both conditions for the seeds both trained, in seed order."""
    by_seed = {s.seed: s for s in b.seeds}
    return [(s, by_seed[s.seed]) for s in a.seeds if s.seed in by_seed]


def size_difference(a: Point, b: Point, conf: float, n_boot: int, rng) -> dict:
    """Treatment a minus reference b at one size (see the module doc)."""
    pairs = pair_seeds(a, b)
    base = {"size": a.size, "params": a.params, "treatment": float(np.mean(a.values)),
            "reference": float(np.mean(b.values)), "n_pairs": len(pairs)}
    lengths = {x.outcomes.size for pair in pairs for x in pair if x.outcomes is not None}
    if pairs and len(lengths) == 1 and all(x.outcomes is not None for p in pairs for x in p):
        binary = all(np.isin(x.outcomes, (0, 1)).all() for p in pairs for x in p)
        r = paired_difference([p[0].outcomes for p in pairs], [p[1].outcomes for p in pairs],
                              conf, n_boot, rng, binary=binary)
        kind = ("range over seeds (clusters) and problems" if len(pairs) > 1
                else "confidence interval over problems, one seed")
        return {**base, "diff": r["diff"], "interval": [r["lo"], r["hi"]], "interval_kind": kind,
                "p_value": r["p_value"], "b": r["b"], "c": r["c"], "paired": True,
                "per_seed": [float(x.outcomes.mean() - y.outcomes.mean()) for x, y in pairs]}
    if all(s.n for s in a.seeds + b.seeds):
        k1, n1 = sum(s.k for s in a.seeds), sum(s.n for s in a.seeds)
        k2, n2 = sum(s.k for s in b.seeds), sum(s.n for s in b.seeds)
        d, lo, hi = newcombe_diff(k1, n1, k2, n2, conf)
        p = stats.fisher_exact([[k1, n1 - k1], [k2, n2 - k2]])[1]
        return {**base, "diff": d, "interval": [lo, hi], "p_value": float(p), "paired": False,
                "interval_kind": "Newcombe, unpaired (no per-problem outcomes recorded)",
                "test": "Fisher's exact test on answers pooled over seeds", "per_seed": []}
    return {**base, "diff": base["treatment"] - base["reference"], "interval": None,
            "p_value": None, "paired": False, "per_seed": [],
            "interval_kind": "no interval: neither per-problem outcomes nor n_eval recorded"}


def judge(diffs: list[dict], alpha: float, bar: float | None) -> None:
    """Holm over the sizes' tests; sets verdict and note on each size."""
    tested = [d for d in diffs if d["p_value"] is not None]
    for d, r in zip(tested, holm([d["p_value"] for d in tested], alpha) if tested else []):
        d["holm_rejects"] = bool(r)
    for d in diffs:
        _verdict(d, bar)


def judge_family(comps: list[dict], alpha: float) -> None:
    """Re-judge comparisons as one family: Holm over every tested size of all of them (see the
    module doc); verdicts, multiplicity texts and headlines follow."""
    diffs = [d for c in comps for d in c["sizes"]]
    tested = [d for d in diffs if d["p_value"] is not None]
    for d, r in zip(tested, holm([d["p_value"] for d in tested], alpha) if tested else []):
        d["holm_rejects"] = bool(r)
    for c in comps:
        for d in c["sizes"]:
            _verdict(d, c["bar"])
        c["multiplicity"] = (f"Holm over {len(tested)} sizes of {len(comps)} comparisons (one "
                             f"family) at alpha {alpha:.2g}")
        c["headline"] = headline(c["treatment"], c["reference"], c["sizes"])


def _verdict(d: dict, bar: float | None) -> None:
    iv = d["interval"]
    clear = iv is not None and (iv[0] > 0 or iv[1] < 0)
    if d["p_value"] is not None:
        clear = clear and d.get("holm_rejects", False)
    d["verdict"] = "no clear difference" if not clear else "helps" if d["diff"] > 0 else "hurts"
    d["note"] = None
    if bar is not None and max(d["treatment"], d["reference"]) < bar:
        d["note"] = f"both under the bar of {bar:.3g} (chance or a guesser)"


def headline(name: str, reference: str, diffs: list[dict]) -> str:
    """One sentence that follows from the table: where the treatment helps, hurts, or neither."""
    if not diffs:
        return f"{name} against {reference}: no size was measured under both"
    parts = []
    for v in ("helps", "hurts"):
        sizes = [d["size"] + (" (under the bar)" if d["note"] else "")
                 for d in diffs if d["verdict"] == v]
        if sizes:
            parts.append(f"{v} at {', '.join(sizes)}")
    rest = [d["size"] for d in diffs if d["verdict"] == "no clear difference"]
    if rest:
        parts.append(f"no clear difference at {', '.join(rest)}")
    return f"{name} against {reference}: " + "; ".join(parts)


def multiplicity(diffs: list[dict], alpha: float) -> str:
    """How the comparison's sizes are corrected: Holm over the sizes with a test; a size without
    one (no count of problems recorded) is judged by its own interval, and the text says so."""
    tested = sum(d["p_value"] is not None for d in diffs)
    holm_text = f"Holm over {tested} sizes at alpha {alpha:.2g}"
    if tested == len(diffs):
        return holm_text
    alone = (f"{len(diffs) - tested} size(s) without a test (no problem counts recorded) judged "
             f"by their own {1 - alpha:.0%} interval, uncorrected for multiplicity")
    return f"{holm_text}; {alone}" if tested else alone


def _first_sizes(points: list[Point], draws, res: dict, options: dict, rng) -> np.ndarray:
    """Per replicate, the parameters of the first size clearly above chance (inf when none)."""
    c = res["chance"]
    reps = [replicate(p, d, c, True, True, rng) for p, d in zip(points, draws)]
    first = first_clearly_above(np.column_stack([r[0] for r in reps]),
                                np.column_stack([r[1] for r in reps]), c, 1.0 - c,
                                options["floor"], 1.0 - options["conf"])
    return np.array([p.params for p in points] + [np.inf])[first]  # -1 (none) -> inf


def scale_shift(a_pts: list[Point], b_pts: list[Point], res_a: dict, res_b: dict,
                options: dict, rng) -> dict:
    """The ratio of the two emergent scales and its stability range. Conditions measured at the
    same sizes (one sweep) are redrawn jointly, the same seeds and problems for both; curves on
    different ladders (two model families) are independent samples and redrawn independently."""
    out = {"ratio": None, "range": None, "range_kind": None, "note": None}
    ea, eb = res_a.get("emergent_params"), res_b.get("emergent_params")
    # a scale only where a curve is emergent: 'present_at_smallest' names the smallest size, an
    # upper bound on the scale, and a ratio of bounds would read as a measured shift
    if not (ea and eb and res_a.get("verdict") == res_b.get("verdict") == "emergent"):
        out["note"] = "no ratio: " + "; ".join(
            f"{n} is '{r['verdict']}'" for n, r in (("treatment", res_a), ("reference", res_b))
            if not r.get("emergent_params") or r.get("verdict") != "emergent")
        return out
    out["ratio"] = ea / eb
    if res_a["chance"] is None or res_b["chance"] is None:
        out["note"] = "no range: a chance level is missing"
        return out
    joint = [p.size for p in a_pts] == [p.size for p in b_pts]
    draws_a = [draw(p, options["n_boot"], rng) for p in a_pts]
    draws_b = draws_a if joint else [draw(p, options["n_boot"], rng) for p in b_pts]
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = (_first_sizes(a_pts, draws_a, res_a, options, rng)
                 / _first_sizes(b_pts, draws_b, res_b, options, rng))
    ratio = np.where(np.isnan(ratio), np.inf, ratio)  # neither cleared chance: unbounded
    conf = options["conf"]
    lo, hi = np.quantile(ratio, [(1 - conf) / 2, (1 + conf) / 2], method="inverted_cdf")
    out["range"] = [float(lo) if 0 < lo < np.inf else None, float(hi) if 0 < hi < np.inf else None]
    out["range_kind"] = ("stability range, replicates drawn jointly (same seeds and problems)"
                         if joint else "stability range, independent replicates (different "
                                       "ladders)")
    return out


def compare_pair(a: dict, b: dict, options: dict, rng, bar: float | None = None) -> dict:
    """Treatment curve a against reference curve b; each {"label", "points", "result"}."""
    common = [p.size for p in a["points"] if p.size in {q.size for q in b["points"]}]
    pa = [p for p in a["points"] if p.size in common]
    pb = [next(q for q in b["points"] if q.size == s) for s in common]
    diffs = [size_difference(x, y, options["conf"], 2000, rng) for x, y in zip(pa, pb)]
    judge(diffs, 1.0 - options["conf"], bar)
    paired = all(d["paired"] for d in diffs)
    return {"treatment": a["label"], "reference": b["label"], "metric": "exact_match",
            "sizes": diffs, "paired": paired, "bar": bar,
            "multiplicity": multiplicity(diffs, 1.0 - options["conf"]),
            "headline": headline(a["label"], b["label"], diffs),
            "scale_shift": scale_shift(a["points"], b["points"], a["result"], b["result"],
                                       options, rng),
            "note": None if paired else "unpaired fallback: no per-problem outcomes recorded"}


def curve_handle(condition: str, task: str, shots: int, points: list[Point],
                 result: dict) -> dict:
    return {"label": curve_label(condition, task, shots), "condition": condition, "task": task,
            "shots": shots, "points": points, "result": result}


__all__ = ["CONF", "VERDICTS", "compare_pair", "curve_handle", "size_difference", "judge",
           "headline", "scale_shift"]

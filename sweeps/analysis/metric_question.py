"""The metric question: is a jump in exact match a jump in the ability, or in the metric?

"Are Emergent Abilities of Large Language Models a Mirage?" (Schaeffer et al. 2023) argues that
exact match, an all-or-nothing score of L digits, turns a smooth per-digit improvement p into a
sudden-looking p^L. Three pieces of evidence are weighed for one curve:

1. **Where each metric leaves chance.** The verdicts of exact match and of the continuous metrics
   side by side (sweeps.analysis.emergence): per-digit accuracy clearly above chance at sizes where
   exact match is still near it says that the ability was growing before exact match showed it.
2. **Exact match against independent digits.** Per size and seed, observed exact match against
   mean per-digit accuracy ^ answer length, with a bootstrap interval over problems: near zero,
   exact match is what the digits predict; above, a model's digits are right together more
   often than independence gives (its errors cluster in a few answers).
3. **Widths.** The fitted 10-90% widths of exact match and per-digit accuracy over bootstrap
   replicates drawn with the same seeds and problems for both, and a range on their difference
   (sweeps.analysis.inference.width_difference). A fit at its steepness bound or narrower than
   the ladder's step is "sharper than this ladder can resolve": counted, and never taken as
   evidence either way.

The answer is one of `metric_effect` (exact match jumps later or more sharply than a continuous
metric that rises before it), `same_jump` (the continuous metrics leave chance at the same size
and are as sharp, with resolved fits), or `undetermined` with the reason (too few sizes, fits that
cannot be resolved, no per-problem values, no exact-match jump to question).
"""
from __future__ import annotations

import math

import numpy as np

from .curves import Point
from .inference import exact_vs_digits, width_difference
from .shape import MIN_SHAPE_SIZES
from .stability import draw, replicate

N_WIDTH_BOOT = 120  # each replicate costs two multi-start logistic fits (~0.1 s each)
ANSWERS = ("metric_effect", "same_jump", "undetermined")


def side_by_side(results: dict[str, dict]) -> list[dict]:
    return [{"metric": m, "verdict": r["verdict"], "emergent_size": r["emergent_size"],
             "emergent_params": r["emergent_params"], "shape": r["shape"],
             "width_decades": r["width_decades"], "jump_interval": r["jump_interval"]}
            for m, r in results.items()]


def digits_check(em: list[Point], digit: list[Point], answer_len: int | None, conf: float,
                 rng) -> list[dict]:
    """Observed exact match against the digits' prediction, per size and seed (where both
    metrics have per-problem values for the seed)."""
    if not answer_len:
        return []
    digit_by = {(p.size, s.seed): s for p in digit for s in p.seeds}
    out = []
    for p in em:
        for s in p.seeds:
            d = digit_by.get((p.size, s.seed))
            if s.outcomes is None or d is None or d.outcomes is None \
                    or d.outcomes.size != s.outcomes.size:
                continue
            r = exact_vs_digits(s.outcomes, d.outcomes, answer_len, conf, 1000, rng)
            out.append({"size": p.size, "seed": s.seed, **r})
    return out


def widths(em: list[Point], digit: list[Point], chance: dict, conf: float, rng) -> dict | None:
    """The width comparison over replicates drawn with shared seeds and problems (None when the
    two curves cannot share draws)."""
    if len(em) < MIN_SHAPE_SIZES or [p.size for p in em] != [p.size for p in digit]:
        return None
    if any(s.outcomes is None for p in em + digit for s in p.seeds):
        return None
    draws = [draw(p, N_WIDTH_BOOT, rng) for p in em]  # one draw per size, for both metrics
    q = {}
    for name, points in (("exact_match", em), ("per_digit_acc", digit)):
        c = chance[name]
        q[name] = np.column_stack([(replicate(p, d, c, True, name == "exact_match", rng)[0] - c)
                                   / (1.0 - c) for p, d in zip(points, draws)])
    x = [math.log10(p.params) for p in em]
    return width_difference(x, q["exact_match"], q["per_digit_acc"], conf)


def _answer(results: dict[str, dict], digits: list[dict], w: dict | None,
            unresolved: list[str]) -> tuple[str, str]:
    em = results.get("exact_match")
    if not em or em["verdict"] != "emergent":
        return "undetermined", ("exact match shows no jump to question (verdict "
                                f"{em['verdict'] if em else 'missing'})")
    earlier = [m for m, r in results.items() if m != "exact_match" and (
        r["verdict"] == "present_at_smallest" or (r["verdict"] == "emergent"
                                                  and r["emergent_params"] < em["emergent_params"]))]
    if earlier:
        return "metric_effect", (f"exact match first clears chance at {em['emergent_size']}, but "
                                 f"{', '.join(earlier)} already did at a smaller size: the ability "
                                 "grew before exact match showed it")
    if w and w["lo"] is not None and w["hi"] < 0:
        return "metric_effect", (f"exact match rises more sharply than per-digit accuracy (width "
                                 f"difference {w['diff']:+.2f} decades, range [{w['lo']:+.2f}, "
                                 f"{w['hi']:+.2f}])")
    same = [m for m, r in results.items() if m != "exact_match"
            and r["emergent_size"] == em["emergent_size"]]
    if w and w["lo"] is not None and w["lo"] <= 0 <= w["hi"] and same:
        return "same_jump", (f"{', '.join(same)} leave chance at the same size "
                             f"{em['emergent_size']} and per-digit accuracy rises as sharply "
                             f"(width difference range [{w['lo']:+.2f}, {w['hi']:+.2f}] decades)")
    if unresolved:
        why = (f"{' and '.join(unresolved)} rise(s) more sharply than this ladder can resolve, "
               "which is no evidence either way on the metric question: more sizes near the "
               "jump would tell")
    elif w is None:
        why = (f"the widths cannot be compared (fewer than {MIN_SHAPE_SIZES} sizes, or no "
               "per-problem values for both metrics)")
    elif w["lo"] is None:
        why = (f"the fits cannot resolve the rise in most replicates ({w['n_at_bound']} sharper "
               f"than the ladder resolves, {w['n_failed']} failed, of "
               f"{w['n_ok'] + w['n_at_bound'] + w['n_failed']}): more sizes near the jump would")
    else:
        why = "the continuous metrics leave chance at other sizes than exact match"
    return "undetermined", why


def metric_question(points: dict[str, list[Point]], results: dict[str, dict],
                    answer_len: int | None, conf: float, rng) -> dict:
    """Schaeffer et al.'s question for one curve (see the module doc)."""
    em, digit = points.get("exact_match"), points.get("per_digit_acc")
    digits = digits_check(em, digit, answer_len, conf, rng) if em and digit else []
    w = None
    unresolved = [m for m in ("exact_match", "per_digit_acc")
                  if results.get(m, {}).get("shape") == "unresolved"]
    if em and digit and results.get("exact_match", {}).get("verdict") == "emergent" \
            and not unresolved:
        chance = {m: results[m]["chance"] for m in ("exact_match", "per_digit_acc")}
        if None not in chance.values():
            w = widths(em, digit, chance, conf, rng)
    answer, reason = _answer(results, digits, w, unresolved)
    return {"answer": answer, "reason": reason, "side_by_side": side_by_side(results),
            "exact_vs_digits": digits, "widths": w,
            "digits_summary": _digits_summary(digits)}


def _digits_summary(digits: list[dict]) -> str:
    if not digits:
        return "no per-problem values for exact match and per-digit accuracy together"
    above = sorted({d["size"] for d in digits if d["lo"] > 0}, key=str)
    below = sorted({d["size"] for d in digits if d["hi"] < 0}, key=str)
    parts = [f"{len(digits)} models compared"]
    if above:
        parts.append(f"exact match above the independent-digit prediction at {', '.join(above)} "
                     "(errors cluster in a few answers)")
    if below:
        parts.append(f"below it at {', '.join(below)}")
    if not above and not below:
        parts.append("exact match is what independent digits predict at every size")
    return "; ".join(parts)

"""The bounded 4-parameter logistic fit of a score curve, and the width comparison of two metrics.

`fit_logistic` fits y = lo + (hi - lo) / (1 + exp(-(x - x0) / s)) over x = log10(params) by
bounded least squares (scipy.optimize.curve_fit, trust-region reflective) from several starting
points; it moved here unchanged from sweeps/stats.py. Its 10-90% width, 2 ln 9 s decades, is the
shape measure of the metric question (Schaeffer et al. 2023, "Are emergent abilities of large
language models a mirage?"): a jump in exact match that per-digit accuracy does not share.

`width_difference` compares two metrics' fitted widths over bootstrap replicates of both curves
drawn together. A fit at the steepness bound S_MIN says "sharper than this ladder resolves",
not a width, so such replicates are counted, never averaged in.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import optimize

from .significance import CONF, check_conf

_LN9x2 = 2.0 * math.log(9.0)  # the 10-90% rise of a logistic spans 2 ln 9 times its scale s
S_MIN, S_MAX = 0.01, 10.0     # logistic scale bounds, in decades


def _logistic(x, lo, hi, x0, s):
    return lo + (hi - lo) / (1.0 + np.exp(-np.clip((x - x0) / s, -60, 60)))


def _best_fit(x, y, starts, lower, upper) -> tuple[float, np.ndarray] | None:
    """(sse, parameters) of the best bounded least-squares fit from the starting points."""
    best = None
    for p0 in starts:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                p, _ = optimize.curve_fit(_logistic, x, y, p0=p0, bounds=(lower, upper),
                                          maxfev=2000)
        except (RuntimeError, ValueError, np.linalg.LinAlgError, FloatingPointError):
            continue
        sse = float(((y - _logistic(x, *p)) ** 2).sum())
        if np.isfinite(sse) and (best is None or sse < best[0]):
            best = (sse, p)
    return best


def fit_logistic(x, y, start: dict | None = None) -> dict:
    """Fit y = lo + (hi - lo) / (1 + exp(-(x - x0) / s)) by bounded least squares (x in log10).

    Several starting points (a midpoint between each pair of neighbouring x, three widths); the
    best converged fit wins. `start`, a converged fit of a similar curve (a bootstrap replicate's
    parent), is tried alone first: replicates then cost one fit instead of a dozen, and fall back
    to the grid when it fails. Bounds: x0 within a decade of the data, s in [S_MIN, S_MAX] decades,
    lo and hi within half the data's range of its min and max. Returns {"ok": True, x0, s,
    width_decades, lo, hi, rmse, r2} or {"ok": False, "reason": ...}; never raises."""
    try:
        x, y = np.asarray(x, float), np.asarray(y, float)
        if x.shape != y.shape or x.ndim != 1:
            return {"ok": False, "reason": "x and y differ in shape"}
        if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
            return {"ok": False, "reason": "non-finite values"}
        if len(np.unique(np.round(x, 9))) < 4:
            return {"ok": False, "reason": f"{len(np.unique(np.round(x, 9)))} distinct sizes; "
                                           "a 4-parameter fit needs at least 4"}
        r = float(np.ptp(y))
        if r < 1e-12:
            return {"ok": False, "reason": "the curve is constant"}
        lower = [y.min() - r / 2, y.max() - r / 2, x.min() - 1.0, S_MIN]
        upper = [y.min() + r / 2, y.max() + r / 2, x.max() + 1.0, S_MAX]
        xs = np.unique(x)
        grid = [[y.min(), y.max(), x0, s] for x0 in (xs[:-1] + xs[1:]) / 2 for s in (0.05, 0.3, 1.5)]
        best = None
        if start and start.get("ok"):
            p = [start["lo"], start["hi"], start["x0"], start["s"]]
            best = _best_fit(x, y, [[min(max(v, lo), hi) for v, lo, hi in zip(p, lower, upper)]],
                             lower, upper)
        if best is None:
            best = _best_fit(x, y, grid, lower, upper)
        if best is None:
            return {"ok": False, "reason": "curve_fit did not converge from any starting point"}
        sse, (lo, hi, x0, s) = best
        ss_tot = float(((y - y.mean()) ** 2).sum())
        return {"ok": True, "x0": float(x0), "s": float(s), "width_decades": _LN9x2 * float(s),
                "lo": float(lo), "hi": float(hi), "rmse": math.sqrt(sse / y.size),
                "r2": 1.0 - sse / ss_tot if ss_tot > 0 else None,
                "s_at_bound": bool(s <= S_MIN * 1.001 or s >= S_MAX * 0.999)}
    except Exception as e:  # noqa: BLE001 - a fit never stops a report; say why it failed
        return {"ok": False, "reason": f"fit failed: {type(e).__name__}: {e}"}


def width_difference(x, y_a_draws, y_b_draws, conf: float = CONF) -> dict:
    """Fitted 10-90% widths (decades) of two metrics' curves over the same sizes, and a range on
    width_a - width_b, from bootstrap replicates of both curves (arrays n_boot x n_sizes, drawn
    with the SAME resampled problems and seeds for both metrics, so replicate r of A and of B
    belong together).

    Each replicate is fitted for both metrics. It is `failed` when either fit fails, `at_bound`
    when either fit is unresolved, and usable otherwise; only usable replicates enter. A fit is
    unresolved when its steepness sits at a bound (S_MAX: no rise) or when its 10-90% width is
    narrower than the smallest step between sizes: the whole rise then falls between two
    measured sizes, and any narrower width fits as well (a clean step fits with s = 0.014, just
    off S_MIN = 0.01, so the bound flag alone misses it). width_a, width_b and diff are
    medians over usable replicates; lo/hi are the percentile range of their differences at
    `conf`, given only when at least half the replicates are usable (a range over a selected
    minority would describe the selection). This is a *bootstrap range*: its coverage is not
    tested (each replicate costs two multi-start fits, ~0.1 s each on one core, so a few
    hundred replicates are what a report can afford). Returns {"width_a", "width_b", "diff",
    "lo", "hi", "n_ok", "n_failed", "n_at_bound"}."""
    check_conf(conf)
    x = np.asarray(x, float)
    ya, yb = np.asarray(y_a_draws, float), np.asarray(y_b_draws, float)
    if ya.ndim != 2 or ya.shape != yb.shape or ya.shape[1] != x.size:
        raise ValueError(f"need y_a_draws and y_b_draws of one shape (n_boot, {x.size} sizes), "
                         f"got {ya.shape} and {yb.shape}")
    step = float(np.diff(np.unique(x)).min()) if np.unique(x).size > 1 else 0.0
    widths, failed, at_bound = [], 0, 0
    parents = fit_logistic(x, ya.mean(axis=0)), fit_logistic(x, yb.mean(axis=0))
    for ra, rb in zip(ya, yb):
        fa, fb = fit_logistic(x, ra, parents[0]), fit_logistic(x, rb, parents[1])
        if not (fa["ok"] and fb["ok"]):
            failed += 1
        elif any(f["s_at_bound"] or f["width_decades"] < step for f in (fa, fb)):
            at_bound += 1
        else:
            widths.append((fa["width_decades"], fb["width_decades"]))
    out = {"width_a": None, "width_b": None, "diff": None, "lo": None, "hi": None,
           "n_ok": len(widths), "n_failed": failed, "n_at_bound": at_bound}
    if widths:
        w = np.array(widths)
        out.update(width_a=float(np.median(w[:, 0])), width_b=float(np.median(w[:, 1])),
                   diff=float(np.median(w[:, 0] - w[:, 1])))
        if 2 * len(widths) >= ya.shape[0]:
            a = (1.0 - conf) / 2.0
            lo, hi = np.quantile(w[:, 0] - w[:, 1], [a, 1.0 - a])
            out.update(lo=float(lo), hi=float(hi))
    return out

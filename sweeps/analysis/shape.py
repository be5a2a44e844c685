"""The shape of a curve against scale: sharp, gradual, flat, or not resolvable, and where it rises.

Shape comes from a bounded 4-parameter logistic fit (sweeps.analysis.inference.fit_logistic) of
the normalised score q against log10 parameters. Its 10-90% width is compared with the gap
between the measured sizes around the fitted midpoint:

    sharp          the width is no wider than that gap, and the fit is not at its steepness
                   bound: the rise happens within one step of the ladder
    unresolved     the fit sits at its steepness bound (or its width is under the ladder's
                   smallest step): the rise is sharper than this ladder can resolve, which is
                   no evidence either way on whether it is sharp (it is its own answer)
    gradual        wider than the gap
    flat           the fitted rise is under MIN_RISE of the chance-to-perfect span
    undefined      fewer than MIN_SHAPE_SIZES sizes, or a midpoint outside the measured sizes
    fit failed     the fit did not converge; the reason is given

None of these is "smooth" by default: a curve is called gradual only on a resolved fit.

Also here: the 50%-of-best crossing (the pair of measured sizes a threshold falls between, with
the log-linear interpolation between them labelled as not measured) and the steepest rise.
"""
from __future__ import annotations

import numpy as np

from .inference import S_MIN, fit_logistic

MIN_SHAPE_SIZES = 4    # a 4-parameter logistic needs 4 sizes
MIN_RISE = 0.10        # a fitted rise under 10% of the chance-to-perfect span is "flat"
JUMP_TIE = 0.05        # neighbour rises this close (in units of the curve's range) tie
SHAPES = ("sharp", "unresolved", "gradual", "flat", "undefined", "fit failed")


def crossing(x: list[float], q: list[float], q_thr: float) -> tuple[int | None, float | None, str]:
    """Where the curve q(x) first reaches q_thr (x in log10): (index of the first size at or past
    it, the log-linear interpolation between it and the size before, a note). The interpolated
    point lies between two measured sizes and was not itself measured."""
    for i, qi in enumerate(q):
        if qi >= q_thr:
            if i == 0:
                return 0, None, "already past the threshold at the smallest size"
            t = (q_thr - q[i - 1]) / (qi - q[i - 1])
            return i, x[i - 1] + t * (x[i] - x[i - 1]), "interpolated between two measured sizes"
    return None, None, "never reaches the threshold"


def steepest_rise(q: list[float]) -> int | None:
    """Index i of the neighbour pair (i, i+1) with the largest rise in q (the earliest of
    near-equal ones), None when q never rises."""
    q = np.asarray(q, float)
    if len(q) < 2 or np.ptp(q) < 1e-12:
        return None
    rises = np.diff(q)
    k = int(np.argmax(rises >= rises.max() - JUMP_TIE * np.ptp(q)))
    return k if rises[k] > 0 else None


def resolved(fit: dict, x: list[float]) -> bool:
    """A converged fit whose steepness is not at its bound and whose width is at least the
    ladder's smallest step (a narrower width fits a step between two sizes just as well)."""
    step = float(np.diff(np.unique(x)).min()) if len(set(x)) > 1 else 0.0
    return (fit.get("ok", False) and not fit["s_at_bound"]
            and fit["width_decades"] >= step and fit["s"] > S_MIN * 1.001)


def shape(x: list[float], q: list[float], names: list[str]) -> dict:
    """{"shape", "shape_reason", "width_decades", "logistic"} of q against x = log10 params."""
    n = len(set(np.round(x, 9)))
    out = {"shape": "undefined", "width_decades": None, "logistic": None}
    if n < MIN_SHAPE_SIZES:
        out["shape_reason"] = f"only {n} size(s); a shape needs at least {MIN_SHAPE_SIZES}"
        return out
    fit = fit_logistic(x, q)
    out["logistic"] = fit
    if not fit["ok"]:
        out.update(shape="fit failed", shape_reason=f"logistic fit failed: {fit['reason']}")
        return out
    if fit["hi"] - fit["lo"] < MIN_RISE:
        out.update(shape="flat", shape_reason=f"fitted rise {fit['hi'] - fit['lo']:.2f} < "
                                              f"{MIN_RISE} of the chance-to-perfect span")
        return out
    x0, w = fit["x0"], fit["width_decades"]
    if not resolved(fit, x):
        cause = ("the fit is at its steepness bound" if fit["s_at_bound"] else
                 "the fitted rise is narrower than the ladder's smallest step")
        out.update(shape="unresolved", shape_reason=(
            f"{cause} (10-90% width {w:.2f} decades): the rise is sharper than this ladder can "
            "resolve; more sizes near it would tell"))
        return out
    out["width_decades"] = w
    if not x[0] <= x0 <= x[-1]:
        out["shape_reason"] = (f"fitted midpoint 10^{x0:.2f} lies outside the measured sizes "
                               f"(10^{x[0]:.2f}..10^{x[-1]:.2f})")
        return out
    i = min(max(1, int(np.searchsorted(x, x0))), len(x) - 1)
    gap = x[i] - x[i - 1]
    caveat = ("; with 4 sizes the 4-parameter fit passes through every point, so this is weak "
              "evidence" if n == MIN_SHAPE_SIZES else "")
    kind = "sharp" if w <= gap else "gradual"
    relation = "≤" if kind == "sharp" else ">"
    out.update(shape=kind, shape_reason=(
        f"10-90% width {w:.2f} decades {relation} the {gap:.2f}-decade gap between "
        f"{names[i - 1]} and {names[i]} around the midpoint" + caveat))
    return out

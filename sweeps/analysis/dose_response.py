"""How reliably does a seed of a given size learn? A dose-response fit across sizes.

Each size has n seeds of which k learned (independent training runs, so k ~ Binomial(n, P)).
The model is a two-parameter logistic regression of "learned" on x = log10(params):

    P(learn | x) = 1 / (1 + exp(-b (x - x50))),  b >= 0,

fitted by maximum likelihood. b >= 0 because an ability does not get harder to learn with size
under a fixed recipe; the constraint also keeps a falling or flat pattern from being read as a
threshold. x50, the size at which half the seeds learn, is the seed-count-invariant scale: more
seeds sharpen it but do not move it, unlike any "every seed clears chance" rule.

Range: the profile likelihood (e.g. Venzon & Moolgavkar 1988), the set of x50 whose profile
log-likelihood max_b l(b, x50) lies within chi2_1(conf) / 2 of the maximum. It is called a
*range*, not a confidence interval: the chi-square calibration is asymptotic, and on 6 sizes
with 3-10 seeds its measured coverage at nominal 0.95 was 0.91-0.95 (tests/test_dose_response.py,
python -m sweeps.analysis.calibrate), below nominal by more than 2 SE at 3 and 5 seeds. It stays
defined under complete separation (every size all-or-nothing), where the maximum-likelihood slope
is infinite and Wald intervals collapse (Albert & Anderson 1984). The profile is computed on a grid
of x50 (all points at once: for fixed x50 the log-likelihood is concave in b, so bisection on
the score finds the best b), and each end of the interval is refined inside its grid cell.
"""
from __future__ import annotations

import numpy as np
from scipy import special, stats

from .significance import CONF

B_MAX = 1e4    # slope cap, per decade: 0.01 decades from x50 it puts P within e^-100 of 0 or 1
WIDE = 3.0     # decades beyond the sizes searched for the maximum
OPEN = 0.5     # an interval end further than this beyond the measured sizes is open (None)
STEP = 0.05    # profile grid step, decades; the maximum and each interval end are refined to
FINE = 50      # STEP / FINE (0.001 decades) inside their grid cells
METHOD = "binomial logistic regression on log10(params), slope >= 0; profile-likelihood interval"


def _log_lik(b: np.ndarray, d: np.ndarray, k: np.ndarray, n: np.ndarray) -> np.ndarray:
    """log L for slopes b (G,) at offsets d = x - x50 (G, sizes)."""
    z = b[:, None] * d
    return (-k * np.logaddexp(0.0, -z) - (n - k) * np.logaddexp(0.0, z)).sum(axis=1)


def profile(x50: np.ndarray, x: np.ndarray, k: np.ndarray, n: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    """(best slope, profile log-likelihood) at each x50: max over 0 <= b <= B_MAX.

    For fixed x50 the score sum d (k - n sigmoid(b d)) falls as b grows (l is concave in b):
    the best b is 0 when the score at 0 is <= 0, B_MAX when it is still > 0 there (the data are
    separated at this x50: the supremum is approached as b grows), and its root otherwise."""
    d = x[None, :] - np.asarray(x50, float)[:, None]
    lo = np.full(d.shape[0], np.log(1e-6))
    hi = np.full(d.shape[0], np.log(B_MAX))
    for _ in range(26):  # bisection on log b over 23 nats: b to a relative 1e-6
        mid = 0.5 * (lo + hi)
        rising = (d * (k - n * special.expit(np.exp(mid)[:, None] * d))).sum(axis=1) > 0
        lo, hi = np.where(rising, mid, lo), np.where(rising, hi, mid)
    b = np.exp(0.5 * (lo + hi))
    b = np.where((d * (k - n / 2)).sum(axis=1) <= 0, 0.0, b)
    return b, _log_lik(b, d, k, n)


def _prepare(x, n_learned, n_seeds) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, k, n = (np.asarray(v, float).ravel() for v in (x, n_learned, n_seeds))
    if not (x.size == k.size == n.size) or x.size == 0:
        raise ValueError("x, n_learned and n_seeds need one entry per size")
    if not (np.all(np.isfinite(x)) and np.all(n >= 1) and np.all(k >= 0) and np.all(k <= n)
            and np.all(k == np.round(k)) and np.all(n == np.round(n))):
        raise ValueError("need finite x and whole counts 0 <= n_learned <= n_seeds, n_seeds >= 1")
    ux, inv = np.unique(x, return_inverse=True)  # two rows at one size are one scale point
    return ux, np.bincount(inv, weights=k), np.bincount(inv, weights=n)


def separation(k: np.ndarray, n: np.ndarray) -> tuple[str | None, int | None, float]:
    """How the data are separated, and the supremum of the log-likelihood that follows.

    ("complete", j, 0): sizes < j have no learned seed, sizes >= j all learned; the likelihood
    tends to 1 as b grows with x50 anywhere between sizes j - 1 and j. ("quasi", j, l): one mixed
    size j between all-nothing and all-learned ones; the supremum is that size's own binomial
    maximum, approached as x50 -> x_j and b grows. (None, None, -inf) otherwise."""
    for j in range(1, k.size):
        if np.all(k[:j] == 0) and np.all(k[j:] == n[j:]):
            return "complete", j, 0.0
    for j in range(k.size):
        if np.all(k[:j] == 0) and np.all(k[j + 1:] == n[j + 1:]) and 0 < k[j] < n[j]:
            p = k[j] / n[j]
            return "quasi", j, float(k[j] * np.log(p) + (n[j] - k[j]) * np.log1p(-p))
    return None, None, -np.inf


def _interval(grid, ll, x, k, n, cut) -> tuple[float | None, float | None]:
    """The hull of {x50 : profile >= cut} over the sorted `grid`, each end refined inside its
    grid cell (one profile call for both), open beyond OPEN decades."""
    inside = np.flatnonzero(ll >= cut)
    i, j = inside[0], inside[-1]
    cells = {}  # each runs from the grid point outside the set to the one inside
    if i > 0:
        cells["lo"] = np.linspace(grid[i - 1], grid[i], FINE + 1)
    if j < grid.size - 1:
        cells["hi"] = np.linspace(grid[j + 1], grid[j], FINE + 1)
    ends = {"lo": None, "hi": None}
    if cells:
        fine_ll = profile(np.concatenate(list(cells.values())), x, k, n)[1].reshape(len(cells), -1)
        for (name, seg), seg_ll in zip(cells.items(), fine_ll):
            ends[name] = float(seg[np.argmax(seg_ll >= cut)])
    return tuple(e if e is not None and x[0] - OPEN <= e <= x[-1] + OPEN else None
                 for e in (ends["lo"], ends["hi"]))


def dose_response(x, n_learned, n_seeds, conf: float = CONF) -> dict:
    """Fit P(learn) = 1 / (1 + exp(-b (x - x50))), b >= 0, over sizes (x = log10 params).

    Returns {"ok", "x50", "lo", "hi", "slope", "separated", "method", "reason"}. x50 is the
    maximum-likelihood size at which half the seeds learn; under complete separation (no seed
    learned up to some size, all from the next on) the estimate does not exist and x50 is the
    midpoint of that gap, separated=True, slope None. slope is None also where the fit runs to
    the cap (quasi-complete separation: all-or-nothing around one mixed size). lo/hi: the
    profile-likelihood range at `conf` (the hull of the set, if it is not one piece); an end
    more than OPEN decades beyond the measured sizes is None (open). A range, not a confidence
    interval: coverage 0.91-0.95 at nominal 0.95 (see the module doc). Never raises: ok=False
    with a reason when nothing can be fitted (no seed learned anywhere, all learned everywhere,
    one size only, learning not rising with size, bad input)."""
    out = {"ok": False, "x50": None, "lo": None, "hi": None, "slope": None,
           "separated": False, "method": METHOD, "reason": None}
    try:
        if not 0.0 < conf < 1.0:
            raise ValueError(f"conf must lie strictly between 0 and 1, got {conf}")
        x, k, n = _prepare(x, n_learned, n_seeds)
    except (ValueError, TypeError) as e:
        out["reason"] = f"bad input: {e}"
        return out
    if x.size < 2:
        out["reason"] = "one size only: a slope needs two"
    elif k.sum() == 0:
        out["reason"] = "no seed learned at any size"
    elif k.sum() == n.sum():
        out["reason"] = "every seed learned at every size"
    if out["reason"]:
        return out
    grid = np.arange(x[0] - WIDE, x[-1] + WIDE + STEP / 2, STEP)
    slopes, ll = profile(grid, x, k, n)
    best = int(np.argmax(ll))
    if slopes[best] == 0.0:
        out["reason"] = "learning does not rise with size (the best slope is 0)"
        return out
    if best in (0, grid.size - 1):
        out["reason"] = (f"the best x50 lies over {WIDE:g} decades beyond the measured sizes: "
                         "learning barely rises with size")
        return out
    fine = np.linspace(grid[best - 1], grid[best + 1], 2 * FINE + 1)  # a set narrower than
    # STEP still holds these points, so its ends are refined from them
    fine_slopes, fine_ll = profile(fine, x, k, n)
    top = int(np.argmax(fine_ll))
    x50, slope, l_max = float(fine[top]), float(fine_slopes[top]), float(fine_ll[top])
    kind, j, l_sup = separation(k, n)
    if kind == "complete":
        x50, slope = float((x[j - 1] + x[j]) / 2), None
        out.update(separated=True, reason="complete separation: x50 is the midpoint of the "
                                          "gap, the slope is unbounded")
    elif kind == "quasi":
        x50, slope = float(x[j]), None
        out["reason"] = ("quasi-complete separation: one mixed size between all-or-nothing "
                         "ones; x50 is that size, the slope is unbounded")
    order = np.argsort(np.concatenate([grid, fine]), kind="stable")
    cut = max(l_max, float(ll.max()), l_sup) - stats.chi2.ppf(conf, 1) / 2
    lo, hi = _interval(np.concatenate([grid, fine])[order], np.concatenate([ll, fine_ll])[order],
                       x, k, n, cut)
    out.update(ok=True, x50=x50, lo=lo, hi=hi, slope=slope)
    return out

"""Sampling error for sweep results: binomial intervals, seed spread, bootstrap, logistic fits.

Every score in a sweep is measured on a finite set of problems (`n_eval`), so two models that
differ by less than the sampling error cannot be told apart. This module holds the pieces the
emergence analysis builds on; all are pure functions of numbers.

- `clopper_pearson(k, n)`: the exact binomial interval for k successes in n trials (vectorised).
- `size_interval(values, trials)`: the interval on one size's score, from the problems
  (binomial, pooled over seeds) and, where there are several seeds, from the seeds: each seed's
  own binomial interval, and from three seeds on an interval on the mean over all seeds that
  holds for any distribution of seed scores (`seed_mean_bounds`); the reported interval covers
  all of them.
- `resample_sizes(...)`: bootstrap replicates of every size's score, over problems (a binomial
  draw at each seed's observed rate) and over seeds (seeds drawn with replacement).
- `fit_logistic(x, y)`: a bounded least-squares logistic fit with scipy.optimize.curve_fit from
  several starting points; a failure is returned as a reason, never raised.

Exact match is a binomial proportion over n_eval problems. Per-digit accuracy is treated as a
binomial proportion over n_eval * answer_len digits; digits of one answer are not independent,
so that interval is approximate (too narrow where errors cluster within answers).
"""
from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import optimize, stats

CONF = 0.95


def clopper_pearson(k, n, conf: float = CONF) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Clopper-Pearson) interval on a binomial proportion; k, n arrays or numbers.

    The interval has at least `conf` coverage for every true proportion; it is [0, hi] at k = 0
    and [lo, 1] at k = n."""
    k, n = np.asarray(k, float), np.asarray(n, float)
    if np.any(n <= 0) or np.any(k < 0) or np.any(k > n):
        raise ValueError(f"need 0 <= k <= n and n > 0, got k={k}, n={n}")
    a = (1.0 - conf) / 2.0
    with np.errstate(invalid="ignore"):
        lo = np.where(k > 0, stats.beta.ppf(a, k, n - k + 1), 0.0)
        hi = np.where(k < n, stats.beta.ppf(1 - a, k + 1, n - k), 1.0)
    return lo, hi


def wilson(k, n, conf: float = CONF) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval (narrower than Clopper-Pearson, near-nominal coverage)."""
    k, n = np.asarray(k, float), np.asarray(n, float)
    z = stats.norm.ppf(1 - (1 - conf) / 2)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)


def t_interval(values, conf: float = CONF) -> tuple[float, float] | None:
    """Student-t interval on the mean of several seeds' values; None below two values."""
    v = np.asarray(values, float)
    if v.size < 2:
        return None
    half = stats.t.ppf(1 - (1 - conf) / 2, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size)
    return float(v.mean() - half), float(v.mean() + half)


def seed_mean_bounds(draws, conf: float = CONF) -> tuple[np.ndarray, np.ndarray]:
    """An interval on the mean over all seeds of scores in [0, 1], from rows of per-seed scores
    (shape (..., n_seeds)), with at least `conf` coverage whatever the seeds' distribution.

    It needs only that scores lie in [0, 1] (Markov's inequality): if the mean over seeds were m,
    every one of n seeds would score at least x with probability at most (m / x)^n, so
    min(x) * a^(1/n) is a lower bound with tail a, and 1 - (1 - max(x)) * a^(1/n) an upper one.
    A Student t interval is not used: seeds of a size near its threshold split between "learned"
    and "not" (the CPU demo's 50K: 48%, 90%, 100%), and on such a population three seeds that
    all learned give a t interval that misses the true mean about a fifth of the time (and three
    that split reach below zero while every model is far above chance)."""
    d = np.clip(np.asarray(draws, float), 0.0, 1.0)
    shrink = ((1.0 - conf) / 2.0) ** (1.0 / d.shape[-1])
    return d.min(axis=-1) * shrink, 1.0 - (1.0 - d.max(axis=-1)) * shrink


def size_interval(values, trials: int | None, conf: float = CONF) -> dict:
    """The interval on one size's score over its seeds.

    values: one score per seed (a fraction when `trials` is given). trials: problems (or
    digits) behind each value, None when unknown. Returns the mean, the binomial interval pooled
    over seeds (None without trials), the seed interval (None where it is not used) and `lo`/`hi`,
    the union of the parts: the interval the analysis judges by.

    With trials known, the seed part is the envelope of every seed's own binomial interval: a size
    is clearly above chance only if each of its models is. From three seeds on, an interval on the
    mean over seeds is added (`seed_mean_bounds`, which needs no assumption on how seed scores are
    distributed); not with two, where the t interval's one degree of freedom multiplies the spread
    by 12.7 and says nothing (two seeds at 60% and 67% of 200 problems would span -50% to 178%).
    Without trials, the t interval is all there is. Where nothing is available lo and hi are None
    and `basis` says so."""
    v = np.asarray(values, float)
    out = {"mean": float(v.mean()), "n_seeds": int(v.size), "trials": trials,
           "binomial": None, "seeds": None, "lo": None, "hi": None}
    parts = []
    if trials:
        k = np.clip(np.round(v * trials), 0, trials)
        lo, hi = clopper_pearson(k.sum(), trials * v.size, conf)
        out["binomial"] = [float(lo), float(hi)]
        parts.append(out["binomial"])
        if v.size > 1:
            each_lo, each_hi = clopper_pearson(k, np.full_like(k, trials), conf)
            seeds = [float(each_lo.min()), float(each_hi.max())]
            if v.size >= 3:  # the mean over seeds, as a sample of all seeds (seed_mean_bounds)
                lo3, hi3 = seed_mean_bounds(v, conf)
                seeds = [min(seeds[0], float(lo3)), max(seeds[1], float(hi3))]
            out["seeds"] = seeds
            parts.append(seeds)
    else:
        ti = t_interval(v, conf)
        if ti is not None:
            out["seeds"] = [ti[0], ti[1]]
            parts.append(out["seeds"])
    if parts:
        out["lo"] = min(p[0] for p in parts)
        out["hi"] = max(p[1] for p in parts)
    out["basis"] = ("problems and seeds" if len(parts) == 2 else
                    "problems" if out["binomial"] else "seeds" if out["seeds"] else "none")
    return out


def resample_sizes(values_by_size: list[np.ndarray], trials_by_size: list[int | None],
                   n_boot: int, rng: np.random.Generator) -> list[np.ndarray] | None:
    """Bootstrap replicates of each size's per-seed scores: shape (n_boot, n_seeds) per size.

    Seeds are drawn with replacement (where a size has several), then each drawn seed's score is
    redrawn from its problems (where trials are known): a rate from the Jeffreys posterior
    Beta(k + 1/2, n - k + 1/2), then Binomial(n, rate) / n. Drawing the rate first keeps a size
    that scored 0/n (or n/n) from looking certain, which a plain Binomial(n, k/n) redraw would.
    Returns None when no size has any source of sampling error (one seed each and no trials)."""
    if all(len(v) < 2 and not t for v, t in zip(values_by_size, trials_by_size)):
        return None
    out = []
    for v, t in zip(values_by_size, trials_by_size):
        v = np.asarray(v, float)
        idx = rng.integers(0, v.size, size=(n_boot, v.size)) if v.size > 1 else \
            np.zeros((n_boot, 1), int)
        draw = v[idx]
        if t:
            k = np.clip(np.round(draw * t), 0, t)
            rate = rng.beta(k + 0.5, t - k + 0.5)
            draw = rng.binomial(int(t), rate) / float(t)
        out.append(draw)
    return out


def replicate_intervals(draws: np.ndarray, trials: int | None, conf: float = CONF
                        ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """The mean and the judging interval (lo, hi) of `size_interval`, for every replicate at
    once; lo and hi are None where the replicate has no source of sampling error."""
    mean = draws.mean(axis=1)
    lows, highs = [], []
    n_seeds = draws.shape[1]
    if trials:
        k = np.clip(np.round(draws * trials), 0, trials)
        lo, hi = clopper_pearson(k.sum(axis=1), trials * n_seeds, conf)
        lows.append(lo)
        highs.append(hi)
        if n_seeds > 1:  # each seed's own interval, as in size_interval
            each_lo, each_hi = clopper_pearson(k, np.full_like(k, trials), conf)
            lows.append(each_lo.min(axis=1))
            highs.append(each_hi.max(axis=1))
    if n_seeds >= 3 and trials:
        lo_s, hi_s = seed_mean_bounds(draws, conf)
        lows.append(lo_s)
        highs.append(hi_s)
    elif n_seeds > 1 and not trials:
        sd = draws.std(axis=1, ddof=1)
        half = stats.t.ppf(1 - (1 - conf) / 2, n_seeds - 1) * sd / math.sqrt(n_seeds)
        lows.append(mean - half)
        highs.append(mean + half)
    if not lows:
        return mean, None, None
    return mean, np.minimum.reduce(lows), np.maximum.reduce(highs)


# ------------------------------------------------------------------------------- logistic fit
_LN9x2 = 2.0 * math.log(9.0)  # the 10-90% rise of a logistic spans 2 ln 9 times its scale s
S_MIN, S_MAX = 0.01, 10.0     # logistic scale bounds, in decades


def _logistic(x, lo, hi, x0, s):
    return lo + (hi - lo) / (1.0 + np.exp(-np.clip((x - x0) / s, -60, 60)))


def fit_logistic(x, y) -> dict:
    """Fit y = lo + (hi - lo) / (1 + exp(-(x - x0) / s)) by bounded least squares (x in log10).

    Several starting points (a midpoint between each pair of neighbouring x, three widths); the
    best converged fit wins. Bounds: x0 within a decade of the data, s in [S_MIN, S_MAX] decades,
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
        best = None
        for x0 in (xs[:-1] + xs[1:]) / 2:
            for s in (0.05, 0.3, 1.5):
                p0 = [y.min(), y.max(), x0, s]
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

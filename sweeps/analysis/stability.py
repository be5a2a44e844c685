"""How stable a curve's emergent scale is: the verdict's rule replayed on bootstrap replicates.

One replicate redraws, at every size, the seeds (with replacement, as clusters, where a size has
several) and the evaluation problems (once: one multinomial draw of problem indices shared by every
seed of the size, since they answered the same problems), then recomputes each size's mean and
its above-chance p-value exactly as sweeps.analysis.emergence does, applies Holm's procedure over
the sizes and the floor, and notes the first size clearly above chance. Rows without per-problem
outcomes are redrawn parametrically (a seed's count right as Binomial(n, k/n)); a seed with
neither outcomes nor a count contributes its value alone.

The spread of that first size over replicates is a **stability range**: how far the rule's
answer moves when the measurements are redrawn. A first-passage index of a discrete ladder has no
confidence interval with a coverage guarantee, so it is never called one (Efron & Tibshirani 1993
on the percentile bootstrap; the issue of statistics review, item 6).

`Draws` are made once per size and can be applied to two curves measured on the same seeds and
problems (conditions compared in sweeps.analysis.compare), so that their replicates stay paired.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from .curves import Point


@dataclass
class Draws:
    """One size's bootstrap draws: seed indices (n_boot, S) and problem weights (n_boot, n) (how
    often each of the n problems is drawn; None when the size has no shared problem count)."""
    seed_idx: np.ndarray
    weights: np.ndarray | None


def draw(point: Point, n_boot: int, rng: np.random.Generator) -> Draws:
    n_seeds = len(point.seeds)
    seed_idx = (rng.integers(0, n_seeds, size=(n_boot, n_seeds)) if n_seeds > 1
                else np.zeros((n_boot, 1), int))
    sizes = {s.outcomes.size for s in point.seeds if s.outcomes is not None}
    weights = None
    if len(sizes) == 1 and all(s.outcomes is not None for s in point.seeds):
        n = sizes.pop()
        weights = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(float)
    return Draws(seed_idx, weights)


def _seed_moments(point: Point, d: Draws, rng: np.random.Generator, binary: bool):
    """Per replicate and seed: mean, mean of squares and trials (n_boot, S) each, before the
    seeds are resampled; trials is NaN where a seed's sampling error is unknown."""
    n_boot = d.seed_idx.shape[0]
    mean, sq, trials = (np.empty((n_boot, len(point.seeds))) for _ in range(3))
    for j, s in enumerate(point.seeds):
        if s.outcomes is not None and d.weights is not None:
            x = s.outcomes.astype(float)
            mean[:, j] = d.weights @ x / x.size
            sq[:, j] = d.weights @ (x * x) / x.size
            trials[:, j] = x.size
        elif s.outcomes is not None:  # problems of unequal count: drawn for this seed alone
            x = s.outcomes.astype(float)
            w = rng.multinomial(x.size, np.full(x.size, 1.0 / x.size), size=n_boot)
            mean[:, j], sq[:, j], trials[:, j] = w @ x / x.size, w @ (x * x) / x.size, x.size
        elif binary and s.n:
            mean[:, j] = rng.binomial(s.n, min(max(s.k / s.n, 0.0), 1.0), size=n_boot) / s.n
            sq[:, j], trials[:, j] = mean[:, j], s.n
        else:
            mean[:, j], sq[:, j], trials[:, j] = s.value, s.value ** 2, np.nan
    return mean, sq, trials


def replicate(point: Point, d: Draws, chance: float, higher_is_better: bool, binary: bool,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Replicate means (mean over the drawn seeds) and above-chance p-values (NaN where no test
    applies) of one size: both shape (n_boot,)."""
    mean, sq, trials = _seed_moments(point, d, rng, binary)
    rows = np.arange(d.seed_idx.shape[0])[:, None]
    m, q, t = mean[rows, d.seed_idx], sq[rows, d.seed_idx], trials[rows, d.seed_idx]
    value = m.mean(axis=1)
    total = t.sum(axis=1)  # NaN when any drawn seed has no trials
    with np.errstate(invalid="ignore", divide="ignore"):
        pooled = (m * t).sum(axis=1) / total
        if binary:
            k = np.round(pooled * total)
            p = stats.binom.sf(k - 1, total, chance) if higher_is_better else \
                stats.binom.cdf(k, total, chance)
        else:
            var = (q * t).sum(axis=1) / total - pooled ** 2
            sd = np.sqrt(np.maximum(var, 0.0) * total / np.maximum(total - 1, 1))
            gap = (pooled - chance) * (1.0 if higher_is_better else -1.0)
            p = np.where(sd > 1e-12, stats.t.sf(gap / (sd / np.sqrt(total)), total - 1),
                         np.where(gap > 0, 0.0, 1.0))
    p = np.where(np.isfinite(total), p, np.nan)
    return value, p


def holm_rows(p: np.ndarray, alpha: float) -> np.ndarray:
    """Holm's step-down rejections along each row of p (n_boot, m); NaN p-values are untested
    and never rejected (they do not count towards m)."""
    p = np.where(np.isnan(p), np.inf, p)
    m = np.isfinite(p).sum(axis=1, keepdims=True)
    order = np.argsort(p, axis=1)
    ranked = np.take_along_axis(p, order, axis=1)
    thresholds = alpha / np.maximum(m - np.arange(p.shape[1])[None, :], 1)
    passed = np.cumprod(ranked <= thresholds, axis=1).astype(bool)
    out = np.zeros_like(passed)
    np.put_along_axis(out, order, passed, axis=1)
    return out & np.isfinite(p)


def first_clearly_above(values: np.ndarray, p: np.ndarray, chance: float, span: float,
                        floor: float, alpha: float) -> np.ndarray:
    """Per replicate, the index of the first size above chance (Holm) with a normalised mean of
    at least `floor`; -1 where none. values, p: (n_boot, m)."""
    clearly = holm_rows(p, alpha) & ((values - chance) / span >= floor)
    return np.where(clearly.any(axis=1), np.argmax(clearly, axis=1), -1)


def stability_range(first: np.ndarray, params: list[float], conf: float) -> dict:
    """The central `conf` range of the replicates' first size, in parameters. An end at the
    smallest size is open downward (the scale may lie below the ladder), one past the largest is
    open upward (no size cleared in those replicates); open ends are None."""
    n = len(first)
    order = np.where(first < 0, len(params), first)
    a = (1.0 - conf) / 2.0
    lo_i, hi_i = (int(np.quantile(order, q, method="inverted_cdf")) for q in (a, 1.0 - a))
    counts = np.bincount(order, minlength=len(params) + 1)
    return {"lo": None if lo_i == 0 or lo_i >= len(params) else params[lo_i],
            "hi": None if hi_i >= len(params) else params[hi_i],
            "lo_open": lo_i == 0, "hi_open": hi_i >= len(params),
            "share_none": float(counts[-1] / n), "share_smallest": float(counts[0] / n),
            "counts": [int(c) for c in counts[:-1]], "n_boot": n}

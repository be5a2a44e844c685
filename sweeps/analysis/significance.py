"""Tests and binomial intervals: "above chance", paired differences, multiple sizes.

Pure functions of counts and values (numpy, scipy); each says what it assumes and what it
guarantees. They answer the first of issue 19's two questions per size, *are these models above
chance?*, and carry the binomial intervals every report shows.

- Exact binomial intervals: Clopper & Pearson (1934); Wilson (1927), used by Newcombe's
  difference interval (Newcombe 1998, "Interval estimation for the difference between independent
  proportions", method 10).
- "Above chance" for binary outcomes: the exact one-sided binomial test on outcomes pooled over a
  size's seeds, under the sharp null that every model answers every problem right with
  probability `chance`, independently. Pooling is valid under that null and gains power as seeds
  are added, unlike any rule on the lowest seed (Berger 1982's intersection-union test is the
  alternative that asks every seed to clear chance; it is not the question asked here).
- "Above chance" for continuous per-problem values: a one-sided Student t test on the pooled
  values (see `above_chance_values` for why, and its measured size).
- Paired binary outcomes: the exact and mid-p McNemar tests (Fagerland, Lydersen & Laake 2013,
  "The McNemar test for binary matched-pairs data: mid-p and asymptotic are better than exact
  conditional").
- Several sizes or measures: Holm (1979) step-down, and fixed-sequence testing (each hypothesis
  at full alpha in a fixed order, stopping at the first non-rejection; Maurer et al. 1995), both
  controlling the family-wise error rate at alpha.
"""
from __future__ import annotations

import numpy as np
from scipy import stats

CONF = 0.95


def check_conf(conf: float) -> None:
    """Refuse a confidence level outside (0, 1) with a message naming it."""
    if not 0.0 < conf < 1.0:
        raise ValueError(f"conf must lie strictly between 0 and 1, got {conf}")


def _counts(k, n) -> tuple[np.ndarray, np.ndarray]:
    k, n = np.asarray(k, float), np.asarray(n, float)
    if np.any(n <= 0) or np.any(k < 0) or np.any(k > n) or np.any(k != np.round(k)):
        raise ValueError(f"need whole counts 0 <= k <= n and n > 0, got k={k}, n={n}")
    return k, n


def _scalar_or_array(x):
    x = np.asarray(x)
    return float(x) if x.ndim == 0 else x


def clopper_pearson(k, n, conf: float = CONF) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Clopper-Pearson) interval on a binomial proportion; k, n arrays or numbers.

    Assumes k ~ Binomial(n, p). Coverage is at least `conf` for every p (it is conservative: the
    binomial is discrete). The interval is [0, hi] at k = 0 and [lo, 1] at k = n."""
    check_conf(conf)
    k, n = _counts(k, n)
    a = (1.0 - conf) / 2.0
    with np.errstate(invalid="ignore"):
        lo = np.where(k > 0, stats.beta.ppf(a, k, n - k + 1), 0.0)
        hi = np.where(k < n, stats.beta.ppf(1 - a, k + 1, n - k), 1.0)
    return lo, hi


def wilson(k, n, conf: float = CONF) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval (vectorised). Assumes k ~ Binomial(n, p); coverage is close to
    `conf` on average over p but can dip below it for some p (it is not exact). Used here only
    inside Newcombe's difference interval, which is built from it."""
    check_conf(conf)
    k, n = _counts(k, n)
    z = stats.norm.ppf(1 - (1 - conf) / 2)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)


def learned_interval(n_learned: int, n_seeds: int, conf: float = CONF) -> tuple[float, float]:
    """Clopper-Pearson interval on the share of seeds of one size that learned (seeds are
    independent training runs, so n_learned ~ Binomial(n_seeds, P(learn))); at least `conf`."""
    lo, hi = clopper_pearson(n_learned, n_seeds, conf)
    return float(lo), float(hi)


def binom_greater_p(k, n, p0) -> np.ndarray:
    """Exact one-sided P(X >= k) for X ~ Binomial(n, p0), vectorised over k, n and p0.

    The p-value of "more successes than p0 gives"; exact, so a test rejecting at p <= alpha has
    size at most alpha (below it, since the binomial is discrete)."""
    k, n = _counts(k, n)
    p0 = np.asarray(p0, float)
    if np.any(~np.isfinite(p0)) or np.any(p0 < 0) or np.any(p0 > 1):
        raise ValueError(f"p0 must lie in [0, 1], got {p0}")
    return stats.binom.sf(k - 1, n, p0)


def above_chance_binary(k, n, chance: float):
    """Exact p-value that k right of n problem-answers, pooled over a size's seeds, are above
    chance. Numbers in, a float out (arrays in, an array out).

    Null hypothesis (sharp): every model answers every problem right with probability `chance`,
    independently; then the pooled k is Binomial(n, chance) exactly, however many seeds make up
    n, so the test is exact (conservative, being discrete) and gains power as seeds are added.
    chance <= 0: p = 0 if k > 0 else 1; chance >= 1: p = 1.

    A p-value is evidence of *some* skill, not of a useful amount: one lucky answer, 1 of 200 at
    chance 1e-6, gives p = 2e-4. A floor on the score (a share of the way from chance to
    perfect) must decide whether a size counts for the emergent scale; this test only says
    whether the sizes below it are consistent with chance."""
    chance = float(chance)
    if not np.isfinite(chance):
        raise ValueError(f"chance must be a finite number, got {chance}")
    k, n = _counts(k, n)
    if chance <= 0.0:
        return _scalar_or_array(np.where(k > 0, 0.0, 1.0))
    if chance >= 1.0:
        return _scalar_or_array(np.ones_like(k))
    return _scalar_or_array(binom_greater_p(k, n, chance))


def above_chance_values(values, chance: float, higher_is_better: bool):
    """One-sided p-value that the mean of per-problem values (one seed's, or pooled over a size's
    seeds) lies beyond `chance` in the better direction. values: shape (..., n); a stack of
    tests along leading axes gives an array of p-values, one test a float.

    Values that are all 0 or 1 are binary outcomes: they get the exact test of
    `above_chance_binary` (a t test on 0/1 values at chance 0.5 and n = 50 rejects 6% of the time
    at alpha 5%, the binomial's discreteness). Otherwise: Student's t on the pooled values,
    df = n - 1. Assumes the values are independent with a common mean under the null (the sharp
    null of `above_chance_binary`, for a continuous metric); with no variation at all the mean
    is known exactly and p is 0 or 1. Why t and not a bound exact for [0, 1] values (Hoeffding,
    Chernoff): those ignore the variance, and per-digit accuracy has far less variance than a
    0/1 outcome of the same mean: at chance 0.1 and a mean of 0.13 over 300 problems of 4
    independent digits, Chernoff's bound gives p = 0.25 and Hoeffding's 0.58, t gives 0.001.
    Why the t test keeps its size: at chance the values' long tail points the better way
    (per-digit accuracy piles up at 0 with a tail upward; edit distance piles up near its
    maximum with a tail downward), and a one-sided t test towards a long tail is conservative
    (a high mean comes with a high spread); at chance 0.5 the values are symmetric and it is
    near nominal. tests/test_inference.py measures the size for n >= 50 (digit chance 1e-6 to
    0.5, 1 to 10 seeds). Not verified where the long tail points the other way (chance > 0.5)."""
    v = np.asarray(values, float)
    if v.ndim == 0 or v.shape[-1] < 2:
        raise ValueError(f"need at least 2 values along the last axis, got shape {v.shape}")
    if not np.all(np.isfinite(v)) or not np.isfinite(chance):
        raise ValueError("values and chance must be finite numbers")
    n = v.shape[-1]
    if np.all((v == 0) | (v == 1)):
        k = v.sum(axis=-1)
        return (above_chance_binary(k, np.full_like(k, n), chance) if higher_is_better else
                above_chance_binary(n - k, np.full_like(k, n), 1.0 - chance))
    gap = (v.mean(axis=-1) - chance) * (1.0 if higher_is_better else -1.0)
    sd = v.std(axis=-1, ddof=1)
    flat = sd <= 1e-12 * np.maximum(1.0, np.abs(v).max(axis=-1))
    with np.errstate(divide="ignore", invalid="ignore"):
        p = stats.t.sf(gap / (sd / np.sqrt(n)), n - 1)
    return _scalar_or_array(np.where(flat, np.where(gap > 0, 0.0, 1.0), p))


def _pvalues(pvalues, alpha: float) -> np.ndarray:
    p = np.asarray(pvalues, float)
    if p.ndim != 1 or np.any(~(p >= 0)) or np.any(p > 1):
        raise ValueError(f"need a 1-D list of p-values in [0, 1], got {pvalues}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie strictly between 0 and 1, got {alpha}")
    return p


def holm(pvalues, alpha: float = 0.05) -> np.ndarray:
    """Holm's step-down rejections (boolean per hypothesis, in the order given).

    Sorted p-values p_(1) <= ... <= p_(m) are compared with alpha / (m - i + 1) in turn; all are
    rejected up to the first that fails. The family-wise error rate is at most alpha whatever the
    dependence between the p-values (it is closed testing with Bonferroni's test)."""
    p = _pvalues(pvalues, alpha)
    m = p.size
    order = np.argsort(p, kind="stable")
    passed = p[order] <= alpha / (m - np.arange(m))
    n_rejected = m if passed.all() else int(np.argmin(passed))
    reject = np.zeros(m, bool)
    reject[order[:n_rejected]] = True
    return reject


def fixed_sequence(pvalues_in_testing_order, alpha: float = 0.05) -> np.ndarray:
    """Fixed-sequence rejections: each hypothesis at full alpha in the order given, stopping at
    the first that is not rejected. Family-wise error rate at most alpha, for any dependence,
    provided the order is fixed before seeing the data (e.g. sizes from the largest down)."""
    p = _pvalues(pvalues_in_testing_order, alpha)
    passed = p <= alpha
    n_rejected = p.size if passed.all() else int(np.argmin(passed))
    reject = np.zeros(p.size, bool)
    reject[:n_rejected] = True
    return reject


def mcnemar_p(b, c, mid_p: bool = True):
    """Two-sided McNemar p-value from the discordant counts b (A right, B wrong) and c (A wrong,
    B right); numbers in, a float out (arrays in, an array out).

    Conditional on b + c, b ~ Binomial(b + c, 1/2) under the null that A and B are exchangeable
    within each pair. Exact: 2 P(X <= min(b, c)), capped at 1 (size at most alpha). Mid-p
    (default): the same minus P(X = min(b, c)), Fagerland et al.'s (2013) choice. It is not
    guaranteed below alpha: given a few discordant pairs its size can pass it (0.077 at
    b + c = 16, enumerated), but averaged over the discordant count of 100-1000 pairs it stayed
    at or below alpha (enumerated in tests/test_inference.py). b + c = 0 gives 1."""
    b, c = np.asarray(b, float), np.asarray(c, float)
    if np.any(b < 0) or np.any(c < 0) or np.any(b != np.round(b)) or np.any(c != np.round(c)):
        raise ValueError(f"discordant counts must be whole numbers >= 0, got b={b}, c={c}")
    n, low = b + c, np.minimum(b, c)
    p = 2.0 * stats.binom.cdf(low, n, 0.5)
    if mid_p:
        p = p - stats.binom.pmf(low, n, 0.5)
    return _scalar_or_array(np.where(n > 0, np.minimum(p, 1.0), 1.0))


def newcombe_diff(k1: int, n1: int, k2: int, n2: int, conf: float = CONF
                  ) -> tuple[float, float, float]:
    """p1 - p2 for two *independent* binomial samples and Newcombe's hybrid score interval
    (1998, method 10: the two Wilson intervals combined). Assumes the two counts independent;
    coverage is close to `conf` on average over (p1, p2), not guaranteed at each. The fallback for
    rows without per-problem outcomes; paired data belong to `paired_difference`."""
    (l1, u1), (l2, u2) = wilson(k1, n1, conf), wilson(k2, n2, conf)
    p1, p2 = k1 / n1, k2 / n2
    d = p1 - p2
    lo = d - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    hi = d + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return float(d), float(lo), float(hi)

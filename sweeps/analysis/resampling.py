"""Bootstrap intervals over evaluation problems (and seeds): means, paired differences, the
exact-match-versus-digits check of the metric question.

The nonparametric bootstrap (Efron & Tibshirani 1993, "An Introduction to the Bootstrap", ch. 13:
percentile intervals). The unit resampled is the *problem*: every model of a sweep
answers the same fixed evaluation problems, so one replicate draws one set of problem indices and
uses it for every seed and both conditions (the outcomes of one problem stay together). Where
seeds are to be treated as a sample of training runs, they are resampled as clusters on top
(`paired_difference`), never pooled as extra problems.

Drawing N problems with replacement is a multinomial draw of how often each problem is taken.
Problems whose outcomes are identical in every row are interchangeable, so the draw is made over
the distinct outcome columns weighted by their counts: the same distribution exactly, and for 0/1
outcomes of a few seeds a handful of cells instead of N. That keeps the calibration tests, which
build thousands of intervals, inside the suite's time budget.
"""
from __future__ import annotations

import numpy as np
from scipy import stats

from .significance import CONF, check_conf, mcnemar_p


def _seed_arrays(values_by_seed, name: str) -> list[np.ndarray]:
    """Per-seed 1-D arrays of finite values; a clear error otherwise."""
    if isinstance(values_by_seed, np.ndarray) and values_by_seed.ndim == 2:
        values_by_seed = list(values_by_seed)
    if not isinstance(values_by_seed, (list, tuple)) or not values_by_seed:
        raise ValueError(f"{name}: need a non-empty list with one array of per-problem values "
                         "per seed")
    out = []
    for i, v in enumerate(values_by_seed):
        a = np.asarray(v, float)
        if a.ndim != 1 or a.size == 0 or not np.all(np.isfinite(a)):
            raise ValueError(f"{name}[{i}]: need a non-empty 1-D array of finite values, "
                             f"got shape {a.shape}")
        out.append(a)
    return out


def problem_replicates(matrix: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap replicate means of each row of `matrix` (rows x N problems), resampling the N
    problems with replacement, the same draw for every row. Returns shape (n_boot, rows)."""
    n = matrix.shape[1]
    columns, counts = np.unique(matrix, axis=1, return_counts=True)
    weights = rng.multinomial(n, counts / n, size=n_boot)  # (n_boot, distinct columns)
    return weights @ columns.T / n


def _rows_replicates(rows: list[np.ndarray], n_boot: int, rng) -> np.ndarray:
    """Replicate means per row: one shared draw of problems when every row has the same problems
    (the same length), else each row's problems drawn on their own. Shape (n_boot, rows)."""
    if len({r.size for r in rows}) == 1:
        return problem_replicates(np.vstack(rows), n_boot, rng)
    return np.column_stack([problem_replicates(r[None, :], n_boot, rng)[:, 0] for r in rows])


def percentile_interval(replicates: np.ndarray, conf: float = CONF) -> tuple[float, float]:
    """The (1 - conf)/2 and (1 + conf)/2 quantiles of bootstrap replicates."""
    a = (1.0 - conf) / 2.0
    lo, hi = np.quantile(replicates, [a, 1.0 - a])
    return float(lo), float(hi)


def bootstrap_mean_interval(values_by_seed, conf: float = CONF, n_boot: int = 2000, rng=None
                            ) -> tuple[float, float]:
    """Interval on the mean over seeds of each seed's mean per-problem value, resampling
    PROBLEMS with the models fixed.

    What it covers: the mean, over *these* seeds, of each model's expected score on the task's
    problem distribution (the models are fixed; the evaluation problems are the random sample).
    It says nothing about seeds not trained. When every seed has the same number of problems
    they answered the same problems, so one replicate uses one set of problem indices for every
    seed (outcomes of a problem stay correlated across seeds, as they are).
    Needs at least 2 problems per seed. Zero-width when nothing varies (e.g. every answer wrong):
    a bootstrap cannot see beyond the sample; show `clopper_pearson` on the pooled count there.

    Percentile, not BCa: measured coverage (tests/test_inference.py; 1,000 simulated sweeps per
    point, n_eval 100-1000, accuracy 0.1-0.9, 1 or 3 seeds with shared problem difficulty) stayed
    within 2 SE of 0.95 for the percentile interval, while BCa's left that band at n_eval = 100
    (0.972 for one seed at 10%, 0.934 for three seeds near 50%)."""
    check_conf(conf)
    rows = _seed_arrays(values_by_seed, "values_by_seed")
    if min(r.size for r in rows) < 2:
        raise ValueError("values_by_seed: need at least 2 problems per seed")
    rng = np.random.default_rng(rng)
    return percentile_interval(_rows_replicates(rows, n_boot, rng).mean(axis=1), conf)


def _paired_rows(a_by_seed, b_by_seed, binary: bool) -> tuple[list, list]:
    a = _seed_arrays(a_by_seed, "a_by_seed")
    b = _seed_arrays(b_by_seed, "b_by_seed")
    if len(a) != len(b) or any(x.size != y.size for x, y in zip(a, b)):
        raise ValueError("a_by_seed and b_by_seed: need the same seeds, each with the same "
                         f"problems; got sizes {[x.size for x in a]} and {[y.size for y in b]}")
    if binary and any(np.any((x != 0) & (x != 1)) for x in a + b):
        raise ValueError("binary=True needs 0/1 outcomes; pass binary=False for other values")
    return a, b


def paired_difference(a_by_seed, b_by_seed, conf: float = CONF, n_boot: int = 2000, rng=None,
                      binary: bool = True, resample_seeds: bool = True) -> dict:
    """Condition A minus condition B on the same problems, and where the design pairs them the
    same seeds: a_by_seed[i], b_by_seed[i] are seed i's per-problem values under A and B, in one
    problem order. diff = mean over seeds of (mean_a - mean_b).

    lo, hi: percentile bootstrap; one replicate draws one set of problem indices shared by A, B
    and every seed (when the seeds have the same number of problems), and with resample_seeds
    (the default, >= 2 seeds) also draws the seeds with replacement as clusters. Seeds are never
    pooled as extra problems.
    - resample_seeds=True targets the difference in the population of seeds. With a few seeds
      that is a *bootstrap range*, not a confidence interval: measured coverage at nominal 0.95
      (300 problems; python -m sweeps.analysis.calibrate) was 0.99 with 3 seeds sharing one
      effect, 0.91 and 0.77 with 3 seeds whose effects spread by +-0.05 and +-0.15, and 0.97
      and 0.92 with 10 seeds. Three clusters cannot show their own spread.
    - resample_seeds=False targets these models' mean difference (the models fixed, the
      problems the sample) and is a confidence interval: coverage 0.940-0.954 at 1 or 3 seeds,
      100-300 problems, within 2 SE of 0.95. Say which one a report shows.
    p_value, binary outcomes: the two-sided mid-p McNemar test on the discordant counts summed
    over seeds (b: A right and B wrong; c: the reverse), valid under the sharp null that A and B
    are exchangeable within every (seed, problem) pair. Continuous values: Fisher's sign-flip
    permutation test of the summed differences (scipy.stats.permutation_test, n_boot random
    flips, exact below 2**n pairs), valid under the same null; it is McNemar's logic for values.
    Returns {"diff", "lo", "hi", "p_value", "n_seeds", "n_problems", "b", "c", "method"}; b and
    c are None for continuous values."""
    check_conf(conf)
    a, b = _paired_rows(a_by_seed, b_by_seed, binary)
    rng = np.random.default_rng(rng)
    d = [x - y for x, y in zip(a, b)]
    diff = float(np.mean([x.mean() for x in d]))
    per_seed = _rows_replicates(d, n_boot, rng)  # (n_boot, seeds): problems resampled
    if len(d) > 1 and resample_seeds:
        draws = rng.multinomial(len(d), np.full(len(d), 1.0 / len(d)), size=n_boot)
        replicates = (draws * per_seed).sum(axis=1) / len(d)
    else:
        replicates = per_seed.mean(axis=1)
    lo, hi = percentile_interval(replicates, conf)
    out = {"diff": diff, "lo": lo, "hi": hi, "n_seeds": len(d),
           "n_problems": [int(x.size) for x in d], "b": None, "c": None}
    clusters = ("seeds (clusters) and problems: a range" if len(d) > 1 and resample_seeds
                else "problems, the models fixed: a confidence interval")
    if binary:
        out["b"] = int(sum(np.sum((x == 1) & (y == 0)) for x, y in zip(a, b)))
        out["c"] = int(sum(np.sum((x == 0) & (y == 1)) for x, y in zip(a, b)))
        out["p_value"] = float(mcnemar_p(out["b"], out["c"]))
        test = "mid-p McNemar on discordant pairs summed over seeds"
    else:
        flat = np.concatenate(d)
        res = stats.permutation_test((flat,), lambda x, axis: np.sum(x, axis=axis),
                                     permutation_type="samples", vectorized=True,
                                     n_resamples=n_boot, rng=rng)
        out["p_value"] = float(res.pvalue)
        test = "sign-flip permutation test on paired differences"
    out["method"] = f"percentile bootstrap over {clusters}; {test}"
    return out


def exact_vs_digits(correct, digit_acc, answer_len: int, conf: float = CONF, n_boot: int = 2000,
                    rng=None) -> dict:
    """One seed: observed exact match against what its per-digit accuracy predicts if an
    answer's digits were right independently (mean digit accuracy ** answer_len).

    diff = observed - predicted: above 0, digits succeed together more often than independence
    gives (errors cluster in a few answers); near 0, exact match is what the digits predict (a
    sharp exact-match curve is then the metric's doing, Schaeffer et al. 2023). Interval:
    percentile bootstrap over problems (one draw of problems for both measures); `predicted` is
    a smooth function of a mean, so the bootstrap applies. Returns {"observed", "predicted",
    "diff", "lo", "hi"}."""
    check_conf(conf)
    c = np.asarray(correct, float)
    g = np.asarray(digit_acc, float)
    if c.ndim != 1 or c.shape != g.shape or c.size < 2:
        raise ValueError(f"correct and digit_acc: need two 1-D arrays of one length >= 2, got "
                         f"shapes {c.shape} and {g.shape}")
    if np.any((c != 0) & (c != 1)) or np.any(~((g >= 0) & (g <= 1))):
        raise ValueError("correct must be 0/1 and digit_acc in [0, 1]")
    if int(answer_len) != answer_len or answer_len < 1:
        raise ValueError(f"answer_len must be a whole number >= 1, got {answer_len}")
    rng = np.random.default_rng(rng)
    means = problem_replicates(np.vstack([c, g]), n_boot, rng)
    lo, hi = percentile_interval(means[:, 0] - means[:, 1] ** answer_len, conf)
    observed, predicted = float(c.mean()), float(g.mean() ** answer_len)
    return {"observed": observed, "predicted": predicted, "diff": observed - predicted,
            "lo": lo, "hi": hi}

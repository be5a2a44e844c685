"""Calibration and known-answer tests for sweeps.analysis.inference.

References are independent of the code under test: scipy.stats.binomtest, exact rational sums
(fractions), a brute-force grid for the profile likelihood, Newcombe's (1998) published table,
closed testing written out for Holm, scipy.stats.bootstrap, and simulations from populations
whose answer is known (sweeps.analysis.simulate). Sizes and coverages are checked against
nominal within two standard errors of the simulation (fixed seeds, so the outcome is
deterministic); exact sizes and Clopper-Pearson coverage are computed by enumeration, not
simulated.
"""
import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats
from scipy.special import expit

from sweeps.analysis.inference import (above_chance_binary, above_chance_values, binom_greater_p,
                                       bootstrap_mean_interval, clopper_pearson, dose_response,
                                       exact_vs_digits, fit_logistic, fixed_sequence, holm,
                                       learned_interval, mcnemar_p, newcombe_diff,
                                       paired_difference, width_difference, wilson)
from sweeps.analysis.simulate import paired_outcomes, shared_problem_outcomes, simulate_rows

ALPHA, CONF = 0.05, 0.95


def two_se(p: float, n: int) -> float:
    return 2.0 * math.sqrt(p * (1 - p) / n)


def exact_tail(k: int, n: int, p: Fraction) -> float:
    """P(X >= k), X ~ Binomial(n, p), in exact rational arithmetic."""
    return float(sum(math.comb(n, j) * p ** j * (1 - p) ** (n - j) for j in range(k, n + 1)))


# --------------------------------------------------------------------- binomial intervals
def test_clopper_pearson_and_wilson_match_scipy():
    for k, n in [(0, 10), (3, 10), (10, 10), (6, 900), (450, 900), (1, 200)]:
        ci = stats.binomtest(k, n).proportion_ci(CONF, method="exact")
        lo, hi = clopper_pearson(k, n)
        assert (lo, hi) == pytest.approx((ci.low, ci.high), abs=1e-10)
        ci = stats.binomtest(k, n).proportion_ci(CONF, method="wilson")
        assert wilson(k, n) == pytest.approx((ci.low, ci.high), abs=1e-10)
    assert learned_interval(3, 3) == pytest.approx((stats.beta.ppf(0.025, 3, 1), 1.0))
    with pytest.raises(ValueError, match="0 <= k <= n"):
        clopper_pearson(5, 3)


@pytest.mark.parametrize("n", [1, 3, 10, 100, 1000])
def test_clopper_pearson_coverage_is_at_least_nominal_exactly(n):
    """Coverage at p = sum of P(k) over the k whose interval holds p, enumerated, not sampled."""
    k = np.arange(n + 1)
    lo, hi = clopper_pearson(k, np.full(n + 1, n))
    p = np.linspace(0.0005, 0.9995, 1999)[:, None]
    cover = (stats.binom.pmf(k, n, p) * ((lo <= p) & (p <= hi))).sum(axis=1)
    assert cover.min() >= CONF - 1e-9


# ------------------------------------------------------------------------- above chance
def test_binom_greater_p_matches_binomtest_and_exact_sums():
    for k, n, p0 in [(0, 10, 0.3), (1, 200, 1e-6), (6, 900, 1e-4), (40, 100, 0.3), (3, 3, 0.5)]:
        ref = stats.binomtest(k, n, p0, alternative="greater").pvalue
        assert binom_greater_p(k, n, p0) == pytest.approx(ref, rel=1e-9)
    assert binom_greater_p([0, 1], [5, 5], [0.0, 0.0]).tolist() == [1.0, 0.0]


def test_issue_cases_for_above_chance():
    # The CPU demo's 6K models: 6 of 900 answers right against chance 1e-4 (p ~ 7e-10).
    p = above_chance_binary(6, 900, 1e-4)
    assert p == pytest.approx(exact_tail(6, 900, Fraction(1, 10_000)), rel=1e-9)
    assert 6e-10 < p < 8e-10
    # One lucky answer at chance 1e-6 is detectably above chance as a p-value (~2e-4): the
    # floor, not this test, must keep it from deciding a scale.
    assert above_chance_binary(1, 200, 1e-6) == pytest.approx(1 - (1 - 1e-6) ** 200, rel=1e-6)
    assert above_chance_binary(1, 200, 1e-6) < ALPHA
    # Chance at or above 0.171 no longer blocks a perfect score, whatever the seed count.
    for chance in (0.171, 0.2, 0.5, 0.9):
        for seeds in (1, 2, 3, 5):
            assert above_chance_binary(50 * seeds, 50 * seeds, chance) < ALPHA
            assert above_chance_values(np.ones(50 * seeds), chance, True) < ALPHA
    assert above_chance_binary(0, 10, 0.0) == 1.0 and above_chance_binary(1, 10, 0.0) == 0.0
    assert above_chance_binary(10, 10, 1.0) == 1.0


@pytest.mark.parametrize("n_seeds", [1, 2, 3])
def test_seeds_at_47_percent_digits_against_10_percent_are_above_chance(n_seeds):
    """Identical seeds, 300 problems of 4 digits (1,200 digits) at 47%: adding a seed must never
    remove significance, pooled as digits or as per-problem values."""
    rights = np.array([2] * 200 + [1] * 68 + [3] * 32)  # 564 of 1,200 digits right
    values = np.tile(rights / 4.0, n_seeds)
    assert values.mean() == pytest.approx(0.47)
    assert above_chance_binary(564 * n_seeds, 1200 * n_seeds, 0.1) < 1e-100
    assert above_chance_values(values, 0.1, True) < 1e-100


@pytest.mark.parametrize("n_seeds", [1, 2, 3, 5, 10])
def test_pooled_binomial_size_is_at_most_alpha_exactly(n_seeds):
    """Size = P(p <= alpha) under Binomial(seeds x n_eval, chance), enumerated."""
    for chance in (1e-6, 1e-4, 1e-2, 0.1, 0.3, 0.5):
        n = 200 * n_seeds
        k = np.arange(n + 1)
        size = stats.binom.pmf(k, n, chance)[above_chance_binary(k, np.full(n + 1, n), chance)
                                             <= ALPHA].sum()
        assert size <= ALPHA + 1e-12


def test_pooled_binomial_size_on_simulated_rows_and_power_grows_with_seeds():
    reps = 2000  # each "size" of the ladder is one replicate of the null
    for chance in (1e-4, 0.1, 0.5):
        for n_seeds in (1, 3):
            rows = simulate_rows([1e4] * reps, [0.0] * reps, n_seeds, 50, chance,
                                 rng=int(chance * 1e4) + n_seeds)
            k = np.add.reduceat([r["n_correct"] for r in rows], np.arange(0, len(rows), n_seeds))
            rejected = above_chance_binary(k, np.full(reps, 50 * n_seeds), chance) <= ALPHA
            assert rejected.mean() <= ALPHA + two_se(ALPHA, reps)
    # Power against a clear effect (3% right where chance is 1%, 200 problems a seed),
    # enumerated: it grows with the seeds and passes 0.9 from three.
    power = []
    for n_seeds in (1, 2, 3, 5, 10):
        n = 200 * n_seeds
        k = np.arange(n + 1)
        reject = above_chance_binary(k, np.full(n + 1, n), 0.01) <= ALPHA
        power.append(stats.binom.pmf(k, n, 0.03)[reject].sum())
    assert np.all(np.diff(power) > 0) and power[2] >= 0.9


@pytest.mark.parametrize("digits", [1, 4])
def test_t_test_on_values_keeps_its_size(digits):
    """Per-problem digit accuracy (and its mirror, a digit-error count: lower is better) at
    chance, pooled over seeds, n_eval = 50 per seed: rejection rate <= alpha + 2 SE."""
    reps = 4000
    rng = np.random.default_rng(digits)
    for q in (1e-6, 1e-3, 0.01, 0.1, 0.3, 0.5):
        for n_seeds in (1, 2, 3, 5, 10):
            right = rng.binomial(digits, q, size=(reps, 50 * n_seeds))
            p_up = above_chance_values(right / digits, q, True)
            p_down = above_chance_values(digits - right, digits * (1 - q), False)
            for p in (p_up, p_down):
                assert (p <= ALPHA).mean() <= ALPHA + two_se(ALPHA, reps), (q, n_seeds)


# --------------------------------------------------------------------- multiple testing
def closed_holm(p: np.ndarray, alpha: float) -> np.ndarray:
    """Closed testing with Bonferroni's test of every intersection: the definition of Holm."""
    m = p.size
    out = np.zeros(m, bool)
    for i in range(m):
        out[i] = all(min(p[list(s)]) <= alpha / len(s)
                     for r in range(1, m + 1) for s in itertools.combinations(range(m), r)
                     if i in s)
    return out


def test_holm_equals_closed_testing_and_controls_fwer():
    rng = np.random.default_rng(0)
    for _ in range(300):
        p = rng.uniform(0, 0.1, rng.integers(1, 7))
        assert np.array_equal(holm(p, ALPHA), closed_holm(p, ALPHA))
    reps, m = 20000, 6
    for rho in (0.0, 0.7):  # independent and equicorrelated test statistics, all nulls true
        z = math.sqrt(rho) * rng.standard_normal((reps, 1)) + \
            math.sqrt(1 - rho) * rng.standard_normal((reps, m))
        p = stats.norm.sf(z)
        fwer = np.mean([holm(row, ALPHA).any() for row in p])
        assert fwer <= ALPHA + two_se(ALPHA, reps)


def test_fixed_sequence_stops_at_the_first_failure_and_controls_fwer():
    assert fixed_sequence([0.01, 0.04, 0.2, 0.001]).tolist() == [True, True, False, False]
    assert fixed_sequence([0.3, 0.001]).tolist() == [False, False]
    rng = np.random.default_rng(1)
    reps = 20000
    p = rng.uniform(size=(reps, 5))
    fwer = np.mean([fixed_sequence(row).any() for row in p])
    assert fwer <= ALPHA + two_se(ALPHA, reps)
    with pytest.raises(ValueError, match="p-values in"):
        holm([0.5, 1.5])


# ----------------------------------------------------------------------- paired binary tests
def test_mcnemar_matches_exact_rational_sums():
    for b, c in [(0, 0), (3, 3), (0, 7), (12, 2), (40, 25), (1, 30)]:
        n, low = b + c, min(b, c)
        half = Fraction(1, 2)
        below = sum(Fraction(math.comb(n, j)) * half ** n for j in range(low + 1))
        at = Fraction(math.comb(n, low)) * half ** n
        exact = min(1.0, float(2 * below)) if n else 1.0
        mid = min(1.0, float(2 * below - at)) if n else 1.0
        assert mcnemar_p(b, c, mid_p=False) == pytest.approx(exact, rel=1e-12)
        assert mcnemar_p(b, c) == pytest.approx(mid, rel=1e-12)
    assert mcnemar_p(5, 5) == 1.0  # mid-p is 1 at b = c


def test_mcnemar_size():
    """Exact test: conditional size <= alpha at every discordant count (enumerated). Mid-p:
    conditional on a few discordant pairs it can pass alpha (0.077 at 16), but averaged over the
    discordant count of N = 100-1000 pairs it stays <= alpha (enumerated), and on simulated
    paired outcomes (3 seeds sharing problems) within 2 SE."""
    cond_mid, cond_exact = [0.0], [0.0]
    for n in range(1, 1001):
        b = np.arange(n + 1)
        pmf = stats.binom.pmf(b, n, 0.5)
        cond_mid.append(pmf[mcnemar_p(b, n - b) <= ALPHA].sum())
        cond_exact.append(pmf[mcnemar_p(b, n - b, mid_p=False) <= ALPHA].sum())
    assert max(cond_exact) <= ALPHA
    for pairs in (100, 300, 1000):
        for discordant in (0.02, 0.05, 0.1, 0.3, 0.6):
            w = stats.binom.pmf(np.arange(pairs + 1), pairs, discordant)
            assert (w * np.array(cond_mid[:pairs + 1])).sum() <= ALPHA
    rng = np.random.default_rng(3)
    reps = 2000
    hits = 0
    for _ in range(reps):
        a, b = paired_outcomes(100, 0.3, 0.3, 0.5, 3, 0.0, 0.1, rng)
        hits += paired_difference(a, b, n_boot=10, rng=rng)["p_value"] <= ALPHA
    assert hits / reps <= ALPHA + two_se(ALPHA, reps)


def test_newcombe_matches_the_published_table():
    # Newcombe (1998), Statistics in Medicine 17:873, Table II, method 10, examples (a), (b)
    d, lo, hi = newcombe_diff(56, 70, 48, 80)
    assert d == pytest.approx(0.2) and (lo, hi) == pytest.approx((0.0524, 0.3339), abs=1e-4)
    d, lo, hi = newcombe_diff(9, 10, 3, 10)
    assert d == pytest.approx(0.6) and (lo, hi) == pytest.approx((0.1705, 0.8090), abs=1e-4)
    # 0/10 vs 0/20: the ends are the other sample's Wilson upper bound, z^2 / (n + z^2)
    z2 = stats.norm.ppf(0.975) ** 2
    assert newcombe_diff(0, 10, 0, 20)[1:] == pytest.approx((-z2 / (20 + z2), z2 / (10 + z2)))


def test_pairing_beats_the_unpaired_interval_in_power():
    """Correlated outcomes (rho 0.5, 300 problems, 0.45 vs 0.37): McNemar on the pairs finds the
    difference far more often than Newcombe's unpaired interval excludes 0 (normal
    approximations give about 0.80 against 0.51)."""
    rng = np.random.default_rng(4)
    paired = unpaired = 0
    for _ in range(300):
        a, b = paired_outcomes(300, 0.45, 0.37, 0.5, 1, rng=rng)
        paired += paired_difference(a, b, n_boot=10, rng=rng)["p_value"] <= ALPHA
        unpaired += newcombe_diff(int(a[0].sum()), 300, int(b[0].sum()), 300)[1] > 0
    assert paired / 300 >= 0.7 and paired - unpaired >= 45


# ------------------------------------------------------------------------------ bootstrap
@pytest.mark.parametrize("n_eval,acc,spread", [(100, [0.1], 0.0), (1000, [0.9], 0.0),
                                               (300, [0.5, 0.6, 0.45], 0.1),
                                               (100, [0.1, 0.12, 0.15], 0.05)])
def test_bootstrap_mean_interval_coverage(n_eval, acc, spread):
    """The models fixed (true accuracies acc), problems drawn with shared difficulty."""
    rng = np.random.default_rng(n_eval + len(acc))
    reps = 1000
    hits = 0
    for _ in range(reps):
        m = shared_problem_outcomes(acc, n_eval, spread, rng)
        lo, hi = bootstrap_mean_interval(list(m), n_boot=1000, rng=rng)
        hits += lo <= np.mean(acc) <= hi
    assert abs(hits / reps - CONF) <= two_se(CONF, reps)


def test_bootstrap_mean_interval_shares_problems_and_matches_scipy():
    v = np.random.default_rng(5).binomial(1, 0.3, 300).astype(float)
    one = bootstrap_mean_interval([v], n_boot=4000, rng=7)
    # identical seeds answered the same problems: the same interval, not a sqrt(2) narrower one
    assert bootstrap_mean_interval([v, v], n_boot=4000, rng=7) == pytest.approx(one)
    ref = stats.bootstrap((v,), np.mean, n_resamples=20000, method="percentile",
                          confidence_level=CONF, rng=8).confidence_interval
    assert one == pytest.approx((ref.low, ref.high), abs=0.01)
    lo, hi = bootstrap_mean_interval([v, v[:200]], rng=0)  # different lengths: drawn apart
    assert lo < (v.mean() + v[:200].mean()) / 2 < hi


@pytest.mark.parametrize("n_eval,pa,pb,rho,seeds,spread", [(100, 0.5, 0.4, 0.5, 1, 0.1),
                                                           (300, 0.15, 0.1, 0.3, 1, 0.05),
                                                           (300, 0.5, 0.4, 0.5, 3, 0.1)])
def test_paired_difference_coverage_with_the_models_fixed(n_eval, pa, pb, rho, seeds, spread):
    """Every seed with the same effect, so these models' difference is pa - pb."""
    rng = np.random.default_rng(n_eval + seeds)
    reps = 1000
    hits = 0
    for _ in range(reps):
        a, b = paired_outcomes(n_eval, pa, pb, rho, seeds, 0.0, spread, rng)
        r = paired_difference(a, b, n_boot=1000, rng=rng, resample_seeds=False)
        hits += r["lo"] <= pa - pb <= r["hi"]
    assert abs(hits / reps - CONF) <= two_se(CONF, reps)


def test_paired_difference_fields_and_continuous_values():
    a = [np.array([1, 1, 0, 1, 0.0]), np.array([1, 0, 0, 1, 1.0])]
    b = [np.array([0, 1, 0, 0, 0.0]), np.array([1, 0, 1, 1, 0.0])]
    r = paired_difference(a, b, rng=0)
    assert (r["b"], r["c"], r["n_seeds"]) == (3, 1, 2)
    assert r["diff"] == pytest.approx((0.4 + 0.0) / 2)
    assert r["p_value"] == pytest.approx(mcnemar_p(3, 1))
    # seed 0 always gains, seed 1 never: these two models' mean gain is exactly 0.5, while
    # seeds drawn as clusters may be both the one or both the other
    a, b = [np.ones(100), np.zeros(100)], [np.zeros(100), np.zeros(100)]
    fixed = paired_difference(a, b, rng=0, resample_seeds=False)
    assert (fixed["diff"], fixed["lo"], fixed["hi"]) == (0.5, 0.5, 0.5)
    clusters = paired_difference(a, b, rng=0)
    assert (clusters["lo"], clusters["hi"]) == (0.0, 1.0) and "range" in clusters["method"]
    # continuous: the sign-flip test is exact for 8 pairs (256 flips), checked by enumeration
    d = np.array([0.5, 0.25, 0.75, -0.25, 0.5, 1.0, 0.25, 0.5])
    r = paired_difference([d], [np.zeros(8)], binary=False, rng=0)
    flips = np.array(list(itertools.product([-1, 1], repeat=8))) @ d
    ref = np.mean(np.abs(flips) >= abs(d.sum()) - 1e-12)
    assert r["p_value"] == pytest.approx(ref) and r["b"] is None
    with pytest.raises(ValueError, match="0/1 outcomes"):
        paired_difference([d], [np.zeros(8)])
    with pytest.raises(ValueError, match="same problems"):
        paired_difference([d], [np.zeros(7)], binary=False)


def test_exact_vs_digits_coverage():
    """Two kinds of problem (digit accuracy 0.95 or 0.5, half each), 4 digits: exact match
    0.4385 but the mean digit accuracy predicts 0.725^4 = 0.2763 (digits of a problem succeed
    together). Independent digits (q = 0.8): observed and predicted agree."""
    rng = np.random.default_rng(6)
    truth = 0.5 * (0.95 ** 4 + 0.5 ** 4) - 0.725 ** 4
    reps = 1000
    hits = 0
    for _ in range(reps):
        q = np.where(rng.random(300) < 0.5, 0.95, 0.5)
        digits = rng.random((300, 4)) < q[:, None]
        r = exact_vs_digits(digits.all(axis=1), digits.mean(axis=1), 4, n_boot=1000, rng=rng)
        hits += r["lo"] <= truth <= r["hi"]
    assert abs(hits / reps - CONF) <= two_se(CONF, reps)
    digits = rng.random((5000, 4)) < 0.8
    r = exact_vs_digits(digits.all(axis=1), digits.mean(axis=1), 4, rng=rng)
    assert r["lo"] < 0 < r["hi"] and r["predicted"] == pytest.approx(0.8 ** 4, abs=0.01)

"""Tests for the dose-response fit (sweeps.analysis.dose_response) and the logistic curve fit
with its width comparison (sweeps.analysis.logistic_fit), through sweeps.analysis.inference.

References: a brute-force grid over (x50, slope) for the profile likelihood; simulated seed
lotteries with a known x50 for coverage and for the seed-count invariance issue 19 asks of the
emergent scale; known logistic curves for the fits.
"""
import math

import numpy as np
import pytest
from scipy import stats
from scipy.special import expit

from sweeps.analysis.inference import dose_response, fit_logistic, width_difference

LADDER = np.arange(4.0, 6.6, 0.5)  # six sizes, half a decade apart (one ladder step = 0.5)


def brute_profile(x, k, n, conf=0.95):
    """(argmax, lo, hi) of the profile likelihood of x50 on a 0.002-decade grid, maximising over
    1,501 slopes (0 and a log grid to 1e4) by brute force."""
    x, k, n = (np.asarray(v, float) for v in (x, k, n))
    x50 = np.arange(x[0] - 0.5, x[-1] + 0.5 + 1e-9, 0.002)
    best = np.full(x50.size, -np.inf)
    for b in np.array_split(np.concatenate([[0.0], np.geomspace(1e-3, 1e4, 1500)]), 15):
        z = b[None, :, None] * (x[None, None, :] - x50[:, None, None])
        ll = (k * np.log(np.clip(expit(z), 1e-300, 1))
              + (n - k) * np.log(np.clip(expit(-z), 1e-300, 1))).sum(axis=-1)
        best = np.maximum(best, ll.max(axis=1))
    inside = x50[best >= best.max() - stats.chi2.ppf(conf, 1) / 2]
    return x50[np.argmax(best)], inside.min(), inside.max()


@pytest.mark.parametrize("k", [[0, 2, 3, 4, 5, 4], [0, 1, 2, 3, 1, 4]])
def test_profile_interval_matches_a_brute_force_grid(k):
    r = dose_response(LADDER, k, [5] * 6)
    x50, lo, hi = brute_profile(LADDER, k, [5] * 6)
    assert r["ok"] and not r["separated"]
    assert r["x50"] == pytest.approx(x50, abs=0.003)
    assert r["lo"] == pytest.approx(lo, abs=0.003)
    if hi >= LADDER[-1] + 0.5 - 1e-6:
        assert r["hi"] is None  # runs past half a decade beyond the sizes: open
    else:
        assert r["hi"] == pytest.approx(hi, abs=0.003)


def test_separation_and_the_cases_that_cannot_be_fitted():
    r = dose_response(LADDER, [0, 0, 0, 5, 5, 5], [5] * 6)  # complete separation
    assert r["ok"] and r["separated"] and r["slope"] is None and r["x50"] == pytest.approx(5.25)
    assert (r["lo"], r["hi"]) == pytest.approx((5.0, 5.5), abs=0.003)
    _, lo, hi = brute_profile(LADDER, [0, 0, 0, 2, 2, 2], [2] * 6)  # two seeds: wider than the gap
    r = dose_response(LADDER, [0, 0, 0, 2, 2, 2], [2] * 6)
    assert (r["lo"], r["hi"]) == pytest.approx((lo, hi), abs=0.003) and lo < 5.0
    r = dose_response(LADDER, [0, 0, 2, 5, 5, 5], [5] * 6)  # quasi-complete: one mixed size
    assert r["ok"] and not r["separated"] and r["slope"] is None and r["x50"] == 5.0
    for k, n, why in [([0] * 6, [3] * 6, "no seed learned"), ([3] * 6, [3] * 6, "every seed"),
                      ([1], [3], "one size"), ([3, 2, 1, 0, 0, 0], [3] * 6, "barely rises"),
                      ([4, 1], [3, 3], "bad input")]:
        r = dose_response(LADDER[:len(k)], k, n)
        assert not r["ok"] and why in r["reason"]
    r = dose_response([5.0, 5.0, 6.0], [0, 1, 3], [3, 3, 3])  # one size named twice: merged
    assert r["ok"] and r["x50"] == pytest.approx(dose_response([5.0, 6.0], [1, 3], [6, 3])["x50"])


def test_profile_range_coverage():
    """6 sizes x 5 seeds, slope 2 per decade, x50 = 5.25 (P from 0.08 to 0.92). The chi-square
    calibration is asymptotic; with 30 seeds' outcomes it covered 0.939 of 4,000 simulated
    ladders (0.92-0.94 at other slopes), short of 0.95 by more than 2 SE, so the docstring calls
    it a range. This pins the level near there, so that a change either way is seen."""
    rng = np.random.default_rng(11)
    reps = 500
    hits = 0
    for _ in range(reps):
        r = dose_response(LADDER, rng.binomial(5, expit(2.0 * (LADDER - 5.25))), [5] * 6)
        lo = -math.inf if r["lo"] is None else r["lo"]
        hi = math.inf if r["hi"] is None else r["hi"]
        hits += r["ok"] and lo <= 5.25 <= hi
    assert 0.90 <= hits / reps <= 0.965


def test_x50_is_seed_count_invariant():
    """Issue 19's population: a seed learns with probability 0, .2, .5, .8, .95, 1 over six
    sizes (x50 = 5.0, the third). With 2, 3, 5 or 10 seeds the median x50 stays within one
    ladder step of it."""
    rng = np.random.default_rng(12)
    learn = np.array([0, 0.2, 0.5, 0.8, 0.95, 1.0])
    for seeds in (2, 3, 5, 10):
        x50 = [dose_response(LADDER, rng.binomial(seeds, learn), [seeds] * 6)["x50"]
               for _ in range(100)]
        assert all(v is not None for v in x50)
        assert abs(np.median(x50) - 5.0) <= 0.5, seeds


# ---------------------------------------------------------------------- logistic curve fit
def test_logistic_fit_recovers_a_known_curve_and_refuses_what_it_cannot_fit():
    x = np.linspace(4, 8, 13)
    rng = np.random.default_rng(0)
    y = 0.02 + 0.9 / (1 + np.exp(-(x - 5.8) / 0.4)) + rng.normal(0, 0.01, x.size)
    fit = fit_logistic(x, y)
    assert fit["ok"] and fit["x0"] == pytest.approx(5.8, abs=0.05) and not fit["s_at_bound"]
    assert fit["width_decades"] == pytest.approx(2 * math.log(9) * 0.4, rel=0.1)
    assert fit_logistic([1, 2, 3], [0, 0, 1])["ok"] is False  # under four sizes: a reason
    assert fit_logistic([1, 2, 3, 4], [0, 0, 0, 0])["ok"] is False
    step = fit_logistic(LADDER, [0, 0, 0, 1, 1, 1])  # a clean step: any width under the
    assert step["ok"] and step["width_decades"] < 0.5  # ladder's step fits it


def test_width_difference_counts_fits_at_the_bound_and_failures():
    rng = np.random.default_rng(1)
    sharp = expit((LADDER - 5.25) / 0.2)  # 10-90% width 0.88 decades
    smooth = expit((LADDER - 5.25) / 0.6)  # 2.64 decades
    a = sharp + rng.normal(0, 0.005, (6, LADDER.size))
    b = smooth + rng.normal(0, 0.005, (6, LADDER.size))
    a[4] = (LADDER > 5.25).astype(float)  # a step: narrower than the ladder resolves
    b[5] = 0.5  # constant: the fit fails
    r = width_difference(LADDER, a, b)
    assert (r["n_ok"], r["n_at_bound"], r["n_failed"]) == (4, 1, 1)
    truth = 2 * math.log(9) * (0.2 - 0.6)
    assert r["diff"] == pytest.approx(truth, abs=0.15) and r["lo"] < truth < r["hi"]
    assert r["width_b"] == pytest.approx(2 * math.log(9) * 0.6, rel=0.1)
    r = width_difference(LADDER, a[3:5], b[3:5])  # one usable of two: still half
    assert r["n_ok"] == 1 and r["lo"] is not None
    r = width_difference(LADDER, a[4:6], b[4:6])  # none usable: no widths, no range
    assert r["n_ok"] == 0 and r["diff"] is None and r["lo"] is None
    with pytest.raises(ValueError, match="one shape"):
        width_difference(LADDER, a, b[:, :3])

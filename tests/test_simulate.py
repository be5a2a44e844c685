"""Tests for sweeps.analysis.simulate: the rows follow the results schema, and what they hold
follows the population they were drawn from (checked by exact binomial intervals on large draws,
and by the schema validator sweeps.validate, which knows nothing of the simulator)."""
import math

import numpy as np
import pytest
from scipy import stats

from sweeps.analysis.simulate import (log_linear, paired_outcomes, shared_problem_outcomes,
                                      simulate_paired_rows, simulate_rows, simulate_smooth_rows,
                                      size_name)
from sweeps.validate import check_rows

PARAMS = [6e3, 2.5e4, 1e5, 1e6, 3e7, 1e8]


def within(k: int, n: int, p: float, level: float = 0.999) -> bool:
    """Is p inside the exact interval of k successes of n (a loose, two-sided check)?"""
    ci = stats.binomtest(int(k), int(n)).proportion_ci(level, method="exact")
    return ci.low <= p <= ci.high


def test_rows_follow_the_schema_and_their_own_fields():
    rows = simulate_rows(PARAMS, [0, 0.2, 0.5, 0.8, 0.95, 1], [3, 3, 3, 3, 3, 1], 50, 1e-4,
                         rng=0)
    assert check_rows(rows) == ([], [])
    assert [r["size"] for r in rows[::3]] == ["6k", "25k", "100k", "1m", "30m", "100m"]
    assert [r["seed"] for r in rows] == [0, 1, 2] * 5 + [0]
    for r in rows:
        correct = np.array([c == "1" for c in r["correct"]])
        digits = np.array(r["per_problem"]["per_digit_acc"])
        assert len(r["correct"]) == r["n_eval"] == digits.size == 50
        assert r["n_correct"] == correct.sum() and r["exact_match"] == correct.mean()
        assert r["per_digit_acc"] == pytest.approx(digits.mean())
        assert np.all(digits[correct] == 1) and np.all(digits[~correct] < 1)
        assert np.all(np.isin(digits * 4, np.arange(5)))
        assert r["chance"] == {"exact_match": 1e-4, "per_digit_acc": pytest.approx(0.1)}
        assert (r["status"], r["shots"], r["condition"], r["task"]) == ("ok", 0, "default", "sim")
    assert rows[0]["sim"]["learned"] is False and rows[-1]["sim"]["learned"] is True


def test_seed_lottery_and_accuracies_follow_the_population():
    rows = simulate_rows([1e4, 1e5], [0.3, 1.0], 2000, 40, 0.01, learned_acc=0.9,
                         unlearned_acc=0.05, answer_len=3, rng=1)
    small = [r for r in rows if r["params"] == 1e4]
    learned = [r for r in small if r["sim"]["learned"]]
    assert within(len(learned), len(small), 0.3)
    for group, acc in ((learned, 0.9), ([r for r in small if not r["sim"]["learned"]], 0.05)):
        k = sum(r["n_correct"] for r in group)
        assert within(k, 40 * len(group), acc)
        digits = sum(sum(r["per_problem"]["per_digit_acc"]) * 3 for r in group)
        assert within(round(digits), 120 * len(group), acc ** (1 / 3))
    at_chance = simulate_rows([1e4], [0.0], 500, 200, 0.01, rng=2)  # unlearned: at chance
    assert within(sum(r["n_correct"] for r in at_chance), 500 * 200, 0.01)


def test_smooth_curve_has_no_seed_lottery():
    q = log_linear([1e6, 1e7, 1e8, 1e9], 0.3, 0.9)
    assert q == pytest.approx([0.3, 0.5, 0.7, 0.9])
    rows = simulate_smooth_rows([1e6, 1e7, 1e8, 1e9], q, [3, 3, 1, 1], 1000, 1e-4, rng=3)
    assert check_rows(rows) == ([], [])
    for r in rows:  # every seed draws from the same digit probability
        target = r["sim"]["per_digit_acc"]
        assert within(round(r["per_digit_acc"] * 4000), 4000, target)
        assert within(r["n_correct"], 1000, target ** 4)


def test_paired_outcomes_have_the_asked_marginals_correlation_and_shared_difficulty():
    a, b = paired_outcomes(100_000, 0.6, 0.5, 0.4, 2, rng=4)
    for x, y in zip(a, b):
        assert within(int(x.sum()), x.size, 0.6) and within(int(y.sum()), y.size, 0.5)
        assert np.corrcoef(x, y)[0, 1] == pytest.approx(0.4, abs=0.01)
    m = shared_problem_outcomes([0.5, 0.5], 100_000, 0.3, rng=5)
    # shared difficulty h ~ U(-0.3, 0.3) makes seeds agree: corr = var(h) / (p (1 - p))
    assert np.corrcoef(m)[0, 1] == pytest.approx(0.3 ** 2 / 3 / 0.25, abs=0.01)
    a, b = paired_outcomes(5_000, 0.5, 0.4, 0.0, 200, effect_spread=0.2, rng=6)
    effects = np.array([x.mean() - y.mean() for x, y in zip(a, b)])
    assert effects.mean() == pytest.approx(0.1, abs=0.01)
    assert effects.std() == pytest.approx(0.2 / math.sqrt(3), abs=0.02)  # sd of U(-0.2, 0.2)
    with pytest.raises(ValueError, match="not reachable"):
        paired_outcomes(10, 0.9, 0.1, 0.9)
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        paired_outcomes(10, 0.95, 0.5, 0.0, difficulty_spread=0.1)


def test_paired_rows_pair_conditions_on_the_same_problems():
    rows = simulate_paired_rows([1e5, 1e6], [0.5, 0.7], [0.4, 0.6], 0.3, [3, 1], 30, 0.01,
                                rng=7, conditions=("tuned", "untuned"))
    assert check_rows(rows) == ([], [])
    keys = [(r["condition"], r["size"], r["seed"]) for r in rows]
    assert len(set(keys)) == len(rows) == 2 * (3 + 1)
    assert {r["n_eval"] for r in rows} == {30}
    for r in rows:
        correct = np.array([c == "1" for c in r["correct"]])
        digits = np.array(r["per_problem"]["per_digit_acc"])
        assert np.all(digits[correct] == 1) and np.all(digits[~correct] < 1)


def test_bad_inputs_are_refused_by_name():
    with pytest.raises(ValueError, match="n_seeds"):
        simulate_rows(PARAMS[:2], [0, 1], [3], 10, 0.1)
    with pytest.raises(ValueError, match="learn_prob"):
        simulate_rows(PARAMS[:2], [0, 1.5], 3, 10, 0.1)
    with pytest.raises(ValueError, match="digit_acc"):
        simulate_smooth_rows(PARAMS[:2], [0.5], 3, 10, 0.1)
    assert [size_name(p) for p in (999, 6e3, 1.5e6, 2e9)] == ["999", "6k", "1.5m", "2b"]

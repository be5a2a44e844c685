"""The verdict rules of sweeps.analysis.emergence on simulated populations whose answer is known.

Calibration (issue 19, item 8): false "emergent" verdicts on curves at chance stay at or under 5%
for 1 to 10 seeds and chance from 1e-6 to 0.5; a clear jump is found with power of at least 0.9
from 3 seeds; the emergent scale does not move with the number of seeds (median within one
ladder step). Then each case of the statistics review, as a regression test.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from sweeps.analysis.curves import metric_spec, scale_points
from sweeps.analysis.emergence import analyse, judge_curve, options_of
from sweeps.analysis.simulate import simulate_rows, simulate_smooth_rows

LADDER = [6e3, 25e3, 5e4, 1e5, 2e5]
OPTIONS = options_of()


def verdict_of(rows: list[dict], metric: str = "exact_match", chance: float | None = None,
               seed: int = 0) -> tuple[list[dict], dict]:
    points, _ = scale_points(rows, metric)
    chance = rows[0]["chance"][metric] if chance is None else chance
    return judge_curve(points, metric_spec(metric), chance, OPTIONS, np.random.default_rng(seed))


def two_se(p: float, n: int) -> float:
    return 2 * math.sqrt(p * (1 - p) / n)


@pytest.mark.parametrize("n_seeds", [1, 2, 3, 5, 10])
def test_curves_at_chance_are_rarely_called_emergent(n_seeds):
    """Every model guesses at chance: 'emergent' (or any size called clearly above chance at
    all) at most 5% of the time, whatever the chance level."""
    reps = 60
    for chance in (1e-6, 1e-3, 0.1, 0.5):
        rng = np.random.default_rng([n_seeds, int(-math.log10(chance) * 10)])
        hits = 0
        for _ in range(reps):
            rows = simulate_rows(LADDER, [0.0] * 5, n_seeds, 200, chance, rng=rng)
            _, v = verdict_of(rows)
            hits += v["verdict"] in ("emergent", "present_at_smallest")
        assert hits / reps <= 0.05 + two_se(0.05, reps), (chance, hits)


def test_a_clear_jump_is_found_with_power_from_three_seeds():
    rng = np.random.default_rng(7)
    found = 0
    reps = 60
    for _ in range(reps):
        rows = simulate_rows(LADDER, [0, 0, 0.9, 1, 1], 3, 300, 1e-3, rng=rng)
        _, v = verdict_of(rows)
        found += v["verdict"] == "emergent" and v["emergent_size"] == "50k"
    assert found / reps >= 0.9


def _first_index(rows) -> int:
    _, v = verdict_of(rows)
    if v["emergent_params"] is None:
        return len(LADDER) + 1 if v["verdict"] == "never_above_chance" else 0
    return [round(p) for p in LADDER + [1e6]].index(round(v["emergent_params"]))


def test_the_emergent_scale_does_not_move_with_the_number_of_seeds():
    """The review's population: a seed learns with probability 0, .2, .5, .8, .95, 1 over six
    sizes. Sampled with 2, 3, 5 and 10 seeds, the median emergent size stays within one step
    (the old every-seed rule gave 3, 3, and 4 from six seeds on)."""
    ladder = LADDER + [1e6]
    learn = [0, 0.2, 0.5, 0.8, 0.95, 1.0]
    medians = {}
    for n_seeds in (2, 3, 5, 10):
        rng = np.random.default_rng(n_seeds)
        idx = []
        for _ in range(40):
            rows = simulate_rows(ladder, learn, n_seeds, 200, 1e-3, rng=rng)
            _, v = verdict_of(rows)
            idx.append(ladder.index(v["emergent_params"]) if v["emergent_params"] else 6)
        medians[n_seeds] = float(np.median(idx))
    assert max(medians.values()) - min(medians.values()) <= 1, medians


# ----------------------------------------------------------------- the review's cases, one each
def _rows(values_by_size: dict[str, list[float]], chance: float, n: int, metric="exact_match",
          answer_len: int = 4) -> list[dict]:
    """Rows from given per-seed scores (counts only, as older rows have)."""
    params = {"6k": 6592, "25k": 25472, "50k": 50880, "100k": 113184, "200k": 200064,
              "1m": 9.1e5, "3m": 2.7e6, "10m": 9.9e6, "30m": 2.9e7, "100m": 8.5e7,
              "300m": 3.0e8, "1b": 1.0e9}
    out = []
    for size, values in values_by_size.items():
        for seed, v in enumerate(values):
            out.append({"task": "t", "size": size, "seed": seed, "params": params[size],
                        "n_eval": n, "answer_len": answer_len, metric: v,
                        "chance": {metric: chance}, "status": "ok"})
    return out


@pytest.mark.parametrize("n_seeds", [2, 3])
def test_adding_a_seed_never_removes_significance(n_seeds):
    """Seeds at 47% per-digit accuracy against chance 10%, 1,200 digits each: above chance with
    two seeds and with three identical ones (the seed-mean bound refused three)."""
    rows = _rows({"6k": [0.47] * n_seeds, "25k": [0.9] * n_seeds}, 0.1, 300, "per_digit_acc")
    per_size, _ = verdict_of(rows, "per_digit_acc")
    assert per_size[0]["above_chance"] and per_size[0]["status"] == "clearly_above_chance"


def test_a_high_chance_level_does_not_block_a_perfect_size():
    """Chance 0.2 (a 5-way answer): three seeds at 100% are above chance (the seed-mean bound
    could never reach it with 5 sizes and 3 seeds)."""
    rows = _rows({"6k": [0.2, 0.21, 0.19], "25k": [0.2, 0.22, 0.2], "50k": [1.0, 1.0, 1.0]},
                 0.2, 200)
    per_size, v = verdict_of(rows)
    assert per_size[2]["above_chance"] and v["verdict"] == "emergent"
    assert v["emergent_size"] == "50k"


def test_a_straight_curve_is_not_emergent_where_the_seed_count_drops():
    """Per-digit accuracy rising straight from 30% at 1M to 90% at 1B, under the GPU default's
    seed layout (3 seeds up to 30M, 1 above): present at the smallest size, not 'emergent at
    100m' where 3 seeds become 1."""
    ladder = [1e6, 3e6, 1e7, 3e7, 1e8, 3e8, 1e9]
    acc = list(np.linspace(0.3, 0.9, 7))
    rows = simulate_smooth_rows(ladder, acc, [3, 3, 3, 3, 1, 1, 1], 500, 0.1 ** 4, rng=3)
    for r in rows:
        r["chance"]["per_digit_acc"] = 0.1
    _, v = verdict_of(rows, "per_digit_acc")
    assert v["verdict"] == "present_at_smallest"


def test_the_demo_per_digit_curve_is_present_at_the_smallest_size():
    """The CPU demo's per-digit accuracy: 6K already at 47% against 10% chance is clearly above
    chance, so the metric is present at the smallest size, not 'emergent at 50K'."""
    rows = _rows({"6k": [0.47, 0.46, 0.48], "25k": [0.67, 0.5, 0.8], "50k": [0.95, 1.0, 0.9],
                  "100k": [0.97, 1.0, 1.0], "200k": [1.0, 1.0, 0.95]}, 0.1, 300, "per_digit_acc")
    _, v = verdict_of(rows, "per_digit_acc")
    assert v["verdict"] == "present_at_smallest"


def test_last_below_above_chance_under_the_floor_is_named_as_such():
    """6 of 900 answers right against chance 1e-4 (p ~ 7e-10): above chance, under the floor;
    the report says so instead of 'below chance'."""
    rows = _rows({"6k": [2 / 300, 1 / 300, 3 / 300], "25k": [0.2, 0.013, 0.497],
                  "50k": [0.9, 1.0, 0.48]}, 1e-4, 300)
    per_size, v = verdict_of(rows)
    assert per_size[0]["status"] == "above_chance_under_floor"
    assert v["verdict"] == "emergent" and v["emergent_size"] == "25k"
    assert v["last_below_status"] == "above_chance_under_floor"


def test_one_lucky_answer_does_not_decide_the_scale():
    """A seed that never learned but got 1 of 200 right at chance 1e-6 is above chance by its
    own test; with the floor the scale is where the ability is, with or without that answer."""
    base = {"25k": [0.0, 0.0], "50k": [0.6, 0.0], "100k": [1.0, 0.98]}
    lucky = {**base, "25k": [0.0, 1 / 200]}
    for values in (base, lucky):
        _, v = verdict_of(_rows(values, 1e-6, 200))
        assert v["verdict"] == "emergent" and v["emergent_size"] == "50k"


def test_a_size_without_sampling_error_makes_the_verdict_undetermined():
    rows = _rows({"6k": [0.0], "25k": [0.9]}, 0.01, 100)
    for r in rows:
        r.pop("n_eval")
    _, v = verdict_of(rows)
    assert v["verdict"] == "undetermined" and "sampling error" in v["reason"]


def test_shots_are_separate_curves_never_pooled_as_seeds():
    rows = []
    for k, acc in ((0, 0.0), (1, 0.2), (2, 0.4), (4, 0.6)):
        rows += [{**r, "shots": k} for r in _rows({"25k": [acc], "50k": [acc]}, 0.01, 100)]
    analysis = analyse(rows, options_of(n_boot=100))
    assert sorted(c["shots"] for c in analysis["curves"].values()) == [0, 1, 2, 4]
    assert all(s["n_seeds"] == 1 for c in analysis["curves"].values()
               for s in c["metrics"]["exact_match"]["per_size"])

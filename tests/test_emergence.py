"""Tests for sweeps.emergence on synthetic curves whose answer is known by construction."""
import json
import math

import numpy as np
import pytest

from sweeps.emergence import (MIN_SIZES, SHARPNESS_FLOOR, ResultsError, analyse, crossing,
                              emergence_table, fit_logistic, load_results, sharpness)

LOG_PARAMS = [4.0 + 0.5 * i for i in range(8)]  # 1e4 .. ~3e7, half a decade apart
CHANCE = {"exact_match": 0.0, "per_digit_acc": 0.1, "edit_distance": 5.0, "answer_logprob": -12.0}


def rows_for(values: dict[str, list], task="t", seeds=(0,), log_params=LOG_PARAMS):
    """Result rows; values[metric][i] is a number (all seeds) or a list (one value per seed)."""
    rows = []
    for i, lp in enumerate(log_params):
        for j, seed in enumerate(seeds):
            row = {"task": task, "size": f"s{i}", "seed": seed, "params": 10 ** lp,
                   "flops": 6 * 10 ** lp * 1e6, "status": "ok", "chance": CHANCE}
            for m, vals in values.items():
                v = vals[i]
                row[m] = v[j] if isinstance(v, list) else v
            rows.append(row)
    return rows


def em(values, **kw):
    return analyse(rows_for({"exact_match": values}, **kw))["tasks"]["t"]["metrics"]["exact_match"]


def test_step_is_emergent_between_the_two_sizes():
    m = em([0, 0, 0, 0, 1, 1, 1, 1])
    assert m["verdict"] == "emergent"
    assert m["sharpness"] == pytest.approx(1 / SHARPNESS_FLOOR)
    assert m["jump_interval"] == ["s3", "s4"]
    # Halfway threshold, linear in log10: exactly midway between 10^5.5 and 10^6.
    assert math.log10(m["emergent_params"]) == pytest.approx(5.75)
    assert math.log10(m["emergent_flops"]) == pytest.approx(5.75 + math.log10(6e6))


def test_a_larger_size_falling_back_below_the_threshold_is_reported():
    m = em([0, 0, 0, 1, 1, 0.02, 1, 1])
    assert m["jump_interval"] == ["s2", "s3"] and m["falls_back"] == ["s5"]
    assert em([0, 0, 0, 0, 1, 1, 1, 1])["falls_back"] == []
    from sweeps.report import format_table
    table = format_table(emergence_table(analyse(rows_for({"exact_match": [0, 0, 0, 1, 1, 0, 1, 1]}))))
    assert "s2 → s3 (below threshold again at s5)" in table


def test_threshold_fraction_moves_the_crossing():
    rows = rows_for({"exact_match": [0, 0, 0, 0, 1, 1, 1, 1]})
    m = analyse(rows, threshold_frac=0.25)["tasks"]["t"]["metrics"]["exact_match"]
    assert math.log10(m["emergent_params"]) == pytest.approx(5.5 + 0.25 * 0.5)
    assert m["threshold"] == pytest.approx(0.25)


def test_logistic_fit_recovers_midpoint_and_width():
    x = np.linspace(4, 8, 13)
    rng = np.random.default_rng(0)
    y = 0.02 + 0.9 / (1 + np.exp(-(x - 5.8) / 0.4)) + rng.normal(0, 0.01, x.size)
    fit = fit_logistic(x, y)
    assert fit["x0"] == pytest.approx(5.8, abs=0.05)  # within 0.05 decades
    assert fit["width_decades"] == pytest.approx(2 * math.log(9) * 0.4, rel=0.1)
    assert fit["lo"] == pytest.approx(0.02, abs=0.02) and fit["hi"] == pytest.approx(0.92, abs=0.02)
    assert fit_logistic([1, 1, 2], [0, 0, 1]) is None  # under three distinct x


def test_analysis_reports_the_logistic_in_params():
    y = list(1 / (1 + np.exp(-(np.array(LOG_PARAMS) - 6.1) / 0.3)))
    fit = em(y)["logistic"]
    assert math.log10(fit["midpoint_params"]) == pytest.approx(6.1, abs=0.02)
    assert fit["width_decades"] == pytest.approx(2 * math.log(9) * 0.3, rel=0.05)
    assert math.log10(fit["midpoint_flops"]) == pytest.approx(6.1 + math.log10(6e6), abs=0.02)


def test_straight_line_in_log_x_is_gradual_with_no_scale():
    m = em([i / 7 for i in range(8)])
    assert m["verdict"] == "gradual"
    assert m["sharpness"] == pytest.approx(1.0)
    assert m["emergent_params"] is None and m["crossing_params"] is not None


def test_flat_and_saturated_curves_are_not_emergent():
    flat = em([0.01, 0.0, 0.02, 0.01, 0.0, 0.01, 0.02, 0.01])
    assert flat["verdict"] == "flat" and flat["emergent_params"] is None
    sat = em([0.97, 0.99, 0.98, 1.0, 1.0, 0.99, 1.0, 1.0])
    assert sat["verdict"] == "saturated" and sat["emergent_params"] is None


def test_anchor_curves():
    # 2-digit multiplication from ANCHORS.md: rises over 3.5 decades, no single jump.
    assert em([.06, .11, .27, .48, .64, .87, .98, 1.0])["verdict"] == "gradual"
    # 16-digit addition: jumps, then one size fails outright; the first crossing still counts.
    m = em([0, 0, 0.01, 0.97, 0.0, 0.97, 0.98, 0.98])
    assert m["verdict"] == "emergent" and m["jump_interval"] == ["s2", "s3"]
    assert 10 ** 5.0 < m["emergent_params"] < 10 ** 5.5


def test_lower_is_better_metric_is_mirrored():
    edit = [5.0, 5.0, 5.0, 5.0, 0.0, 0.0, 0.0, 0.0]  # chance 5 tokens, perfect 0
    m = analyse(rows_for({"edit_distance": edit}))["tasks"]["t"]["metrics"]["edit_distance"]
    assert m["higher_is_better"] is False
    assert m["verdict"] == "emergent" and m["threshold"] == pytest.approx(2.5)
    assert math.log10(m["emergent_params"]) == pytest.approx(5.75)
    assert [p["frac_past_threshold"] for p in m["per_size"]] == [0, 0, 0, 0, 1, 1, 1, 1]
    worse = analyse(rows_for({"edit_distance": edit[::-1]}))["tasks"]["t"]["metrics"]
    assert worse["edit_distance"]["emergent_params"] is None  # gets worse with scale: no ability


def test_seeds_give_band_and_fraction_past_threshold():
    vals = [[0, 0, 0], [0, 0.01, 0], [0, 0, 0.02], [1.0, 1.0, 0.012], [1, 1, 1], [1, 1, 1],
            [1, 1, 1], [1, 1, 1]]
    m = em(vals, seeds=(0, 1, 2))
    s3 = m["per_size"][3]
    assert s3["n_seeds"] == 3 and s3["min"] == 0.012 and s3["max"] == 1.0
    assert s3["mean"] == pytest.approx(2.012 / 3)
    assert s3["frac_past_threshold"] == pytest.approx(2 / 3)
    assert m["per_size"][0]["frac_past_threshold"] == 0 and m["per_size"][5]["frac_past_threshold"] == 1
    assert m["verdict"] == "emergent"


def test_metric_question_mirage_and_sharp_in_all():
    step = [0, 0, 0, 0, 1, 1, 1, 1]
    line = [i / 7 for i in range(8)]
    mirage = {"exact_match": step, "per_digit_acc": [0.1 + 0.9 * v for v in line],
              "edit_distance": [5 - 5 * v for v in line], "answer_logprob": [-12 + 12 * v for v in line]}
    mq = analyse(rows_for(mirage))["tasks"]["t"]["metric_question"]
    assert mq["summary"] == "exact-match only (mirage-like)"
    sides = {s["metric"]: s for s in mq["side_by_side"]}
    assert sides["exact_match"]["verdict"] == "emergent"
    assert sides["per_digit_acc"]["verdict"] == "gradual" and sides["per_digit_acc"]["emergent_params"] is None
    sharp = {"exact_match": step, "per_digit_acc": [0.1 + 0.9 * v for v in step],
             "edit_distance": [5 - 5 * v for v in step], "answer_logprob": [-12 + 12 * v for v in step]}
    assert analyse(rows_for(sharp))["tasks"]["t"]["metric_question"]["summary"] == "sharp in all"
    mixed = dict(sharp, answer_logprob=mirage["answer_logprob"])
    assert analyse(rows_for(mixed))["tasks"]["t"]["metric_question"]["summary"] == "mixed"
    none = {"exact_match": line, "per_digit_acc": line}
    assert analyse(rows_for(none))["tasks"]["t"]["metric_question"]["summary"] == "no jump"


def test_edge_cases_crossing_and_few_sizes():
    assert crossing([1, 2, 3], [0.6, 0.8, 1.0], 0.5) == (None, "already past the threshold at the smallest size")
    assert crossing([1, 2, 3], [0.0, 0.1, 0.2], 0.5)[0] is None
    assert sharpness([0.0, 0.0, 0.0]) == (0.0, None)
    few = em([0, 1], log_params=LOG_PARAMS[:2])
    assert MIN_SIZES > 2 and few["verdict"] == "undetermined" and few["emergent_params"] is None


def test_diverged_rows_are_excluded_and_listed_and_analysis_is_json():
    rows = rows_for({"exact_match": [0, 0, 0, 0, 1, 1, 1, 1]}, seeds=(0, 1))
    rows[9].update(status="diverged", exact_match=None, final_loss=None)  # s4, seed 1
    a = analyse(rows)
    assert a["diverged"] == [{"task": "t", "size": "s4", "seed": 1, "params": 10 ** 6.0,
                              "status": "diverged", "final_loss": None}]
    assert a["tasks"]["t"]["metrics"]["exact_match"]["per_size"][4]["n_seeds"] == 1
    json.dumps(a, allow_nan=False)
    (row,) = emergence_table(a)
    assert row["task"] == "t" and row["verdict"] == "emergent" and row["metric_question"] == "no continuous metrics"


def test_load_results_names_the_fault(tmp_path):
    with pytest.raises(ResultsError, match="not found"):
        load_results(tmp_path)
    (tmp_path / "results.jsonl").write_text('{"task": "t", "size": "s0", "seed": 0, "params": 1}\n[1]\n')
    with pytest.raises(ResultsError, match=r"results.jsonl:2: expected a JSON object"):
        load_results(tmp_path)
    (tmp_path / "results.jsonl").write_text("{oops\n")
    with pytest.raises(ResultsError, match="invalid JSON"):
        load_results(tmp_path)

"""The shape of a curve (sweeps.analysis.shape), the metric question
(sweeps.analysis.metric_question) and the tables (sweeps.analysis.tables), on synthetic curves
whose answer is known: noise-free logistic curves whose width is set, clean steps, straight lines.
"""
import math
import re

import numpy as np
import pytest

from sweeps.analysis.emergence import analyse, options_of
from sweeps.analysis.inference import clopper_pearson, fit_logistic
from sweeps.analysis.shape import crossing, shape
from sweeps.analysis.tables import emergence_table, task_table

LOG_PARAMS = [4.0 + 0.5 * i for i in range(8)]  # 1e4 .. ~3e7, half a decade apart
CHANCE = {"exact_match": 0.001, "per_digit_acc": 0.1}
OPTIONS = options_of(n_boot=100)


def rows_for(values: dict[str, list], condition="default", n_eval=200) -> list[dict]:
    """One model per size, counts only: values[metric][i] is size i's score."""
    return [{"task": "t", "condition": condition, "size": f"s{i}", "seed": 0,
             "params": 10 ** lp, "status": "ok", "chance": CHANCE, "n_eval": n_eval,
             "answer_len": 3, **{m: v[i] for m, v in values.items()}}
            for i, lp in enumerate(LOG_PARAMS[:len(next(iter(values.values())))])]


def em(values) -> dict:
    return analyse(rows_for({"exact_match": values}), OPTIONS)["curves"]["t"]["metrics"][
        "exact_match"]


def test_shape_is_undefined_below_four_sizes_not_a_number():
    for vals in ([0, 1], [0, 0, 1]):
        m = em(vals)
        assert m["shape"] == "undefined" and m["width_decades"] is None
        assert "at least 4" in m["shape_reason"]
    table = emergence_table(analyse(rows_for({"exact_match": [0, 1]}), OPTIONS))
    assert table.splitlines()[2].split(" | ")[8] == "undefined"


def test_a_sharp_rise_is_sharp_only_when_the_ladder_resolves_it():
    """A logistic 0.8 decades wide (10-90%) centred in a 1-decade gap, with finer steps on both
    sides that pin its shoulders: the fit recovers the width, which is under the gap, so
    'sharp', and the printed numbers are the ones compared. A straight line is 'gradual'."""
    x = [4, 4.25, 4.5, 4.75, 5, 6, 6.25, 6.5, 6.75, 7]
    q = list(1 / (1 + np.exp(-(np.array(x) - 5.5) / (0.8 / (2 * math.log(9))))))
    for values, want in ((q, "sharp"), (list(np.linspace(0, 1, 10)), "gradual")):
        out = shape(x, values, [f"s{i}" for i in range(10)])
        w, gap = map(float, re.findall(r"width ([\d.]+) decades [≤>] the ([\d.]+)-decade gap",
                                       out["shape_reason"])[0])
        assert out["shape"] == want
        sharp = want == "sharp"
        assert (w <= gap) == sharp and ("≤" in out["shape_reason"]) == sharp
        assert out["width_decades"] == pytest.approx(w, abs=0.005)
    assert shape(x, q, [f"s{i}" for i in range(10)])["width_decades"] == pytest.approx(0.8,
                                                                                       abs=0.01)


def test_a_step_in_every_metric_is_unresolved_and_the_metric_question_undetermined():
    """Issue 19 item 5: a fit at its steepness bound says 'sharper than this ladder resolves',
    which is no evidence either way: a step shared by every metric gets shape 'unresolved' and
    the metric question answers 'undetermined' (the old rule said 'sharp in all'). Where
    per-digit accuracy rises straight from the smallest size while exact match steps, the
    digits cleared chance first: 'metric_effect'."""
    step = [0, 0, 0, 0, 1, 1, 1, 1]
    line = [i / 7 for i in range(8)]
    sharp = {"exact_match": step, "per_digit_acc": [0.1 + 0.9 * v for v in step]}
    c = analyse(rows_for(sharp), OPTIONS)["curves"]["t"]
    assert {m: r["shape"] for m, r in c["metrics"].items()} == {"exact_match": "unresolved",
                                                                 "per_digit_acc": "unresolved"}
    assert c["metric_question"]["answer"] == "undetermined"
    assert "no evidence either way" in c["metric_question"]["reason"]
    mirage = dict(sharp, per_digit_acc=[0.1 + 0.9 * v for v in line])
    c = analyse(rows_for(mirage), OPTIONS)["curves"]["t"]
    assert c["metrics"]["per_digit_acc"]["emergent_size"] == "s1"
    assert c["metric_question"]["answer"] == "metric_effect"
    # no continuous metric to weigh against: undetermined, and why
    c = analyse(rows_for({"exact_match": line}), OPTIONS)["curves"]["t"]
    assert c["metric_question"]["answer"] == "undetermined"
    assert "cannot be compared" in c["metric_question"]["reason"]


def test_crossing_edge_cases():
    """A curve already past the threshold at its smallest size crosses there (index 0, nothing
    interpolated; the old helper returned None), one that never reaches it gives None."""
    assert crossing([1, 2, 3], [0.6, 0.8, 1.0], 0.5)[0] == 0  # already past at the smallest
    assert crossing([1, 2, 3], [0.0, 0.1, 0.2], 0.5)[0] is None
    assert fit_logistic([1, 2, 3], [0, 0, 1])["ok"] is False  # under four sizes: a reason
    assert fit_logistic([1, 2, 3, 4], [0, 0, 0, 0])["ok"] is False


def test_tables_give_intervals_per_condition():
    rows = rows_for({"exact_match": [0, 0, 0.5, 0.9]}, condition="scratchpad")
    a = analyse(rows, OPTIONS)
    (label,) = a["curves"]
    text = task_table(label, a["curves"][label])
    assert label == "t [scratchpad]" and text.startswith("curve t [scratchpad] (exact match")
    lo, hi = clopper_pearson(100, 200)
    assert f"[{float(lo):.1%}, {float(hi):.1%}]" in text
    assert text.splitlines()[-1].startswith("  verdict: emergent at s2 (last below: s1, "
                                            "consistent with chance)")

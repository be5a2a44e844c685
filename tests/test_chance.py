"""Chance levels (data_gen.chance, data_gen.answer_laws) against brute force: every problem of a
small task written by the task itself, and every constant guess scored with the evaluator's own
Levenshtein distance."""
import math
from collections import Counter
from dataclasses import replace
from itertools import product

import numpy as np
import pytest

import data_gen.answer_laws as laws
from data_gen import make_task
from data_gen.chance import (chance_details, edit_distance_matrix, expected_edit_distances,
                             levels_of_law)
from data_gen.chance_table import main
from minigpt.evaluate import edit_distance


def all_answers(task) -> Counter:
    """The answer string of every problem the task has, counted, from the task's own encode."""
    name = task.name
    if name.startswith("icl-op"):
        top = 10 ** task.digits
        return Counter(task.encode(op, x, y).answer for op in "+-*" for x in range(top)
                       for y in range(top))
    if name.startswith("icl-rule"):
        rules = task.heldout_rules() if task.heldout else task.rule_list()
        return Counter(task.encode(r, x, y).answer for r in rules for x in range(task.p)
                       for y in range(task.p) if (x, y) != (0, 0))
    if name.startswith("mod"):
        return Counter(task.encode(a, b).answer for a in range(task.p)
                       for b in range(1 if task.op == "div" else 0, task.p))
    top = 10 ** task.digits
    return Counter(task.final_answer(task.encode(a, b).answer) for a in range(top) for b in range(top))


def brute_force(answers: Counter, search: bool) -> dict[str, float]:
    total = sum(answers.values())
    width = len(next(iter(answers)))
    per_digit = [Counter() for _ in range(width)]
    for s, c in answers.items():
        for i, ch in enumerate(s):
            per_digit[i][ch] += c
    out = {"exact_match": max(answers.values()) / total,
           "per_digit_acc": sum(max(p.values()) for p in per_digit) / width / total,
           "answer_logprob": sum(c / total * math.log(c / total) for c in answers.values())}
    if search:  # every string of the answer's width over the answers' characters
        chars = sorted({ch for s in answers for ch in s})
        out["edit_distance"] = min(
            sum(c * edit_distance("".join(g), s) for s, c in answers.items()) / total
            for g in product(chars, repeat=width))
    return out


def expected_distance(guess: str, answers: Counter) -> float:
    return sum(c * edit_distance(guess, s) for s, c in answers.items()) / sum(answers.values())


@pytest.mark.parametrize("name", ["add1", "sub1", "mul1", "mod7-add",
                                  "mod7-sub", "mod7-mul", "mod7-div", "mod13-poly", "mod10-mul",
                                  "mod11-div-rev", "icl-op1", "icl-rule7", "icl-rule7-new"])
def test_small_tasks_against_brute_force(name):
    """Exact levels, and an exhaustive edit-distance search that finds the true best constant."""
    task = make_task(name, eval_size=8)
    c = chance_details(task)
    answers = all_answers(task)
    width = len(next(iter(answers)))
    search = len({ch for s in answers for ch in s}) ** width <= 2000
    ref = brute_force(answers, search)
    for metric, value in ref.items():
        assert c.levels[metric] == pytest.approx(value, rel=1e-12), metric
    assert c.se == dict.fromkeys(c.se, 0.0)
    assert c.levels["edit_distance"] == pytest.approx(expected_distance(c.guess["edit_distance"], answers))
    assert answers[c.guess["exact_match"]] == max(answers.values())


@pytest.mark.parametrize("name", ["add2", "add2-rev", "sub2", "sub2-rev", "mul2"])
def test_larger_tasks_against_brute_force(name):
    """Exact metrics from every problem; the edit distance is that of the reported guess, and no
    worse than the per-position modal string's (the least the search promises)."""
    task = make_task(name, eval_size=8)
    c = chance_details(task)
    answers = all_answers(task)
    for metric, value in brute_force(answers, search=False).items():
        assert c.levels[metric] == pytest.approx(value, rel=1e-12), metric
    assert c.levels["edit_distance"] == pytest.approx(expected_distance(c.guess["edit_distance"], answers))
    assert c.levels["edit_distance"] <= expected_distance(c.guess["per_digit_acc"], answers) + 1e-12


def test_add3_knows_the_leading_digit_is_0_or_1():
    """Three uniform digits (1/10 each) and a carry digit that is 1 on (N-1)/2N of the problems."""
    c = make_task("add3").chance_levels()
    assert c["per_digit_acc"] == pytest.approx((3 * 0.1 + 1001 / 2000) / 4, rel=1e-12)
    assert c["exact_match"] == pytest.approx(1e-3)  # 999 = a + b for 1000 pairs of 10**6


def test_closed_forms_agree_with_tables():
    """Tent digit distributions, mode and entropy (used at any n) against the law's table, for
    every format of add and sub at 3 digits (1,999 answers)."""
    for name in ("add3", "add3-rev", "sub3", "sub3-rev"):
        law = make_task(name, eval_size=4).answer_law()
        closed = levels_of_law(law).levels
        tabled = levels_of_law(replace(law, mode=None, position_probs=None, entropy=None)).levels
        for metric in ("exact_match", "per_digit_acc", "answer_logprob"):
            assert closed[metric] == pytest.approx(tabled[metric], rel=1e-12), (name, metric)


def test_hyperfactorial_expansion_matches_the_sum():
    for m in (1000, 12345):
        assert laws.log_hyperfactorial(m, exact_below=0) == pytest.approx(
            laws.log_hyperfactorial(m), rel=1e-13)
    assert laws.tent_entropy(10 ** 4, exact_below=0) == pytest.approx(laws.tent_entropy(10 ** 4), rel=1e-13)


@pytest.mark.parametrize("name", ["mul2", "icl-op1"])
def test_sampled_laws_are_within_their_error_of_the_exact_ones(name, monkeypatch):
    """The path for products too many to tabulate (mul4 and beyond), forced on small tasks: the
    closed-form mode is exact, and the sampled levels lie within 4 standard errors."""
    task = make_task(name, eval_size=4)
    exact = levels_of_law(task.answer_law())
    monkeypatch.setattr(laws, "TABLE_PAIRS", 0)
    monkeypatch.setattr(laws, "ENTROPY_SAMPLE", 2000)
    law = task.answer_law()
    assert law.table is None
    sampled = levels_of_law(law)
    assert sampled.levels["exact_match"] == pytest.approx(exact.levels["exact_match"], rel=1e-12)
    for metric in ("per_digit_acc", "answer_logprob"):
        assert sampled.se[metric] > 0
        assert abs(sampled.levels[metric] - exact.levels[metric]) < 4 * sampled.se[metric], metric
    # the sampled edit distance is that of a constant guess: at least the exact best's
    answers = all_answers(task)
    true = expected_distance(sampled.guess["edit_distance"], answers)
    assert abs(sampled.levels["edit_distance"] - true) < 4 * sampled.se["edit_distance"]
    assert true >= exact.levels["edit_distance"] - 1e-12


def test_pair_count_against_enumeration():
    N = 10
    for op, fn in (("+", lambda a, b: a + b), ("-", lambda a, b: a - b), ("*", lambda a, b: a * b)):
        counts = Counter(fn(a, b) for a in range(N) for b in range(N))
        for v in range(-N, N * N):
            assert laws.pair_count(op, v, N) == counts.get(v, 0), (op, v)


def test_edit_distance_matrix_is_levenshtein():
    rng = np.random.default_rng(0)
    guesses = rng.integers(48, 52, (7, 5)).astype(np.uint8)
    answers = rng.integers(48, 52, (11, 3)).astype(np.uint8)
    text = lambda row: row.tobytes().decode()  # noqa: E731
    got = edit_distance_matrix(guesses, answers)
    assert got.tolist() == [[edit_distance(text(g), text(a)) for a in answers] for g in guesses]
    weights = rng.random(11)
    assert expected_edit_distances(guesses, answers, weights) == pytest.approx(got @ weights)


def test_one_law_for_a_task_and_its_formats():
    """Scratchpad and words tasks score the symbolic task's final answers: one cached result."""
    base = chance_details(make_task("add3"))
    assert chance_details(make_task("add3-scratch")) is base
    assert chance_details(make_task("add3-words-held")) is base
    assert make_task("mod13-add-words").chance_levels() == make_task("mod13-add").chance_levels()


def test_the_table_command(capsys):
    assert main(["add2", "mod7-add"]) == 0
    out = capsys.readouterr().out
    assert "| `add2` | 0.01 (`099`)" in out and "`mod7-add`" in out
    assert main(["add2", "nonsense"]) == 2
    assert "unknown task 'nonsense'" in capsys.readouterr().err

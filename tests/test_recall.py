"""In-context associative recall (data_gen.recall): evaluation problems, k-shot prompts, training
rows of both episode streams, chance, and the rows a sweep writes.

References are independent of data_gen.recall: prompts and rows are parsed back from text, maps
are rebuilt from the pairs a row shows and checked for consistency by brute force, the best
constant guess is found by trying every digit, and the shot order is checked against a uniform
law with scipy's exact multinomial tail (chi-square)."""
import math
import random
import re
from collections import Counter
from dataclasses import replace

import pytest
from scipy.stats import chisquare

from data_gen import IGNORE_INDEX, RecallTask, few_shot_set, make_stream, make_task
from data_gen.fast_episodes import FastEpisodeStream
from data_gen.icl import EpisodeStream
from data_gen.tokenizer import PAD_ID, decode
from minigpt.config import TrainConfig
from sweeps.catalog import SWEEPS
from sweeps.runner import run_sweep

PAIR = re.compile(r"^([a-z])=(\d)$")


def pairs_of(text: str) -> list[tuple[str, int]]:
    """The solved "key=value" lines of a prompt or row, in order."""
    out = []
    for line in text.split("\n"):
        if line:
            m = PAIR.match(line)
            assert m, f"not a solved pair: {line!r}"
            out.append((m.group(1), int(m.group(2))))
    return out


# --- evaluation problems and k-shot prompts ----------------------------------------------------

def test_eval_problems_are_maps_with_a_query_and_balanced_answers():
    task = make_task("icl-recall8", eval_size=300)
    assert isinstance(task, RecallTask) and task.answer_len == 1
    items, evals = task.eval_items(), task.eval_set()
    assert len(items) == len(evals) == 300
    for (pairs, q), ex in zip(items, evals):
        keys = [k for k, _ in pairs]
        assert len(keys) == 8 and len(set(keys)) == 8  # a map: distinct keys
        assert ex.prompt == f"{pairs[q][0]}=" and ex.answer == str(pairs[q][1])
    assert set(Counter(ex.answer for ex in evals).values()) == {30}  # every digit 30 times
    # fixed by the name: rebuilt, the same; another map size, other problems
    assert make_task("icl-recall8", eval_size=300).eval_items() == items
    assert make_task("icl-recall6", eval_size=300).eval_items() != items
    assert len({pairs for pairs, _ in items}) == 300  # fresh maps, not one map queried again


@pytest.mark.parametrize("k", [1, 2, 4, 8])
def test_shots_show_the_query_pair_once_among_k_pairs_of_its_map(k):
    task = make_task("icl-recall8", eval_size=200)
    for ex, (pairs, q) in zip(few_shot_set(task, k), task.eval_items()):
        lines = ex.prompt.split("\n")
        shown, query = pairs_of("\n".join(lines[:-1])), lines[-1]
        assert query == f"{pairs[q][0]}=" and len(shown) == k
        assert set(shown) <= set(pairs)                    # pairs of the query's own map
        assert len({key for key, _ in shown}) == k         # k distinct keys
        looked_up = [v for key, v in shown if key == query[0]]
        assert looked_up == [int(ex.answer)]               # recall by brute-force lookup


def test_shots_are_nested_sets_and_the_query_pair_sits_anywhere():
    task = make_task("icl-recall8", eval_size=400)
    two, four, eight = (few_shot_set(task, k) for k in (2, 4, 8))
    for a, b, c in zip(two, four, eight):
        sa, sb, sc = (set(pairs_of(x.prompt.rsplit("\n", 1)[0])) for x in (a, b, c))
        assert sa <= sb <= sc
    # the query's pair is not always first or last: its position is uniform over the k places
    positions = Counter(pairs_of(ex.prompt.rsplit("\n", 1)[0]).index(
        (pairs[q][0], pairs[q][1])) for ex, (pairs, q) in zip(four, task.eval_items()))
    assert chisquare([positions[i] for i in range(4)]).pvalue > 1e-3
    with pytest.raises(ValueError, match="fewer than k=9"):
        few_shot_set(task, 9, limit=2)
    assert few_shot_set(task, 0) == task.eval_set()


def test_names_and_bad_map_sizes():
    assert make_task("icl-recall26", eval_size=10).m == 26
    for bad in ("icl-recall0", "icl-recall27"):
        with pytest.raises(ValueError, match=r"map size m in 1\.\.26"):
            make_task(bad)
    with pytest.raises(ValueError, match="no list of its rules"):
        make_task("icl-recall4").rule_list()


# --- training rows ------------------------------------------------------------------------------

def row_pairs(x_row: list[int], y_row: list[int]) -> list[tuple[str, int]]:
    """A row's pairs, checking that the targets are exactly each answer digit and end token."""
    text = decode([t for t in x_row if t != PAD_ID])
    pairs = pairs_of(text[: text.rfind("\n") + 1]) if "\n" in text else []
    want = {4 * i + j for i in range(len(pairs)) for j in (1, 2)}  # '=' predicts v, v predicts \n
    got = {i for i, t in enumerate(y_row) if t != IGNORE_INDEX}
    assert got == {i for i in want if i < len(y_row)}
    return pairs


@pytest.mark.parametrize("stream_cls", [EpisodeStream, FastEpisodeStream])
def test_every_row_is_one_fresh_map(stream_cls):
    task = make_task("icl-recall8", eval_size=10)
    stream = stream_cls([task], batch_size=64, seq_len=64, seed=7)
    maps, keys_seen, values = [], Counter(), Counter()
    for _ in range(4):
        x, y = stream.next_batch()
        for x_row, y_row in zip(x.tolist(), y.tolist()):
            pairs = row_pairs(x_row, y_row)
            assert len(pairs) == 16  # 4-token pairs packed into 65 tokens
            row_map: dict[str, int] = {}
            for key, value in pairs:  # one map per row: a key keeps its value
                assert row_map.setdefault(key, value) == value
            assert len(row_map) <= 8
            maps.append(row_map)
            keys_seen.update(row_map)
            values.update(row_map.values())
    # fresh maps: rows that share a key disagree on its value about 9 times in 10
    shared = [(a[k], b[k]) for a, b in zip(maps, maps[1:]) for k in a.keys() & b.keys()]
    assert len(shared) > 100 and 0.8 < sum(u != v for u, v in shared) / len(shared) < 0.97
    assert len(keys_seen) == 26 and chisquare([values[v] for v in range(10)]).pvalue > 1e-3


def test_both_streams_mix_recall_with_other_tasks_row_by_row():
    tasks = [make_task("icl-recall8", eval_size=10), make_task("icl-rule7")]
    for fast in (False, True):
        x, _ = make_stream(tasks, 32, 64, seed=1, fast=fast).next_batch()
        kinds = Counter("recall" if decode(r)[1] == "=" else "rule" for r in x)
        assert set(kinds) == {"recall", "rule"}


# --- chance and the bars of the in-context report --------------------------------------------

def test_chance_is_a_uniform_digit():
    """The query's value is a uniform digit whatever the key, so the best guesser that ignores
    the examples is right 1/10 of the time; closed forms for the other metrics."""
    levels = make_task("icl-recall8").chance_levels()
    assert levels["exact_match"] == pytest.approx(0.1)
    assert levels["per_digit_acc"] == pytest.approx(0.1)
    assert levels["edit_distance"] == pytest.approx(0.9)  # one substitution, 9 times in 10
    assert levels["answer_logprob"] == pytest.approx(-math.log(10))
    # the training sampler agrees: 20,000 examples, answers uniform
    rng, task = random.Random(3), make_task("icl-recall8")
    counts = Counter(task.sample_train(rng).answer for _ in range(20_000))
    assert chisquare([counts[str(v)] for v in range(10)]).pvalue > 1e-3


@pytest.mark.parametrize("n", [300, 37])
def test_no_constant_guess_beats_chance_on_the_evaluation_set(n):
    task = make_task("icl-recall8", eval_size=n)
    answers = [ex.answer for ex in task.eval_set()]
    best = max(sum(a == str(g) for a in answers) for g in range(10)) / n  # every constant tried
    assert task.no_context_baselines() == {"constant": pytest.approx(best), "rule_prior": 0.1}
    assert best == pytest.approx(math.ceil(n / 10) / n)


# --- a sweep's rows -------------------------------------------------------------------------------

def test_a_sweep_writes_one_row_per_shot_count(tmp_path):
    cfg = replace(SWEEPS["icl"]("cpu"), sizes=("6k",), seeds=(0,), tasks=("icl-recall8",),
                  eval_only=(), eval_size=20, curve_eval_size=10, shots=(0, 1, 8),
                  train=TrainConfig(steps=3, batch_size=4, seq_len=64, warmup_steps=1))
    rows = run_sweep(cfg, tmp_path / "run", "cpu", progress=False, log=lambda m: None)
    assert sorted(r["shots"] for r in rows) == [0, 1, 8]
    assert all(r["task"] == "icl-recall8" and r["trained"] and r["n_eval"] == 20
               and r["chance"]["exact_match"] == pytest.approx(0.1) for r in rows)

"""Scratchpad formats: every step checked against Python's arithmetic, the parser, the stream."""
import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data_gen import (IGNORE_INDEX, MARKER, ScratchpadTask, TrainStream, base_task, decode,
                      make_task, parse_final, split_steps, step_accuracy, with_format)
from data_gen.task import Example, Task

MAX_DIGITS = {"add": 10, "sub": 10, "mul": 7}


def check_encoding(op: str, n: int, a: int, b: int) -> None:
    """Read the scratchpad back step by step, independently of how it was written, and check
    each step and the final answer against Python's integers."""
    ex = ScratchpadTask(op, n, eval_size=1).encode(a, b)
    sym = {"add": "+", "sub": "-", "mul": "*"}[op]
    assert ex.prompt == f"{a:0{n}d}{sym}{b:0{n}d}="
    scratch, final = ex.answer.rsplit(";", 1)
    assert ex.answer.count(";") == 1 and parse_final(ex.answer) == final
    steps = scratch.split(",")
    assert steps == split_steps(ex.answer)
    column = lambda v, i: (v // 10 ** i) % 10  # noqa: E731  the i-th digit, least-significant first
    if op == "add":
        assert len(steps) == n
        carry, digits = 0, []
        for i, step in enumerate(steps):
            m = re.fullmatch(r"(\d)\+(\d)\+(\d)=(\d)(\d)", step)
            assert m, step
            x, y, c, c_out, s = map(int, m.groups())
            assert (x, y, c) == (column(a, i), column(b, i), carry)
            assert 10 * c_out + s == x + y + c
            carry = c_out
            digits.append(s)
        assert int(final) == a + b and len(final) == n + 1
        assert final == str(carry) + "".join(map(str, reversed(digits)))
    elif op == "sub":
        assert steps[0] == ("-" if a < b else "+") and len(steps) == n + 1
        big, small = max(a, b), min(a, b)
        borrow, digits = 0, []
        for i, step in enumerate(steps[1:]):
            m = re.fullmatch(r"(\d)-(\d)-(\d)=(\d)(\d)", step)
            assert m, step
            x, y, r, r_out, d = map(int, m.groups())
            assert (x, y, r) == (column(big, i), column(small, i), borrow)
            assert x - y - r == d - 10 * r_out and r_out in (0, 1)
            borrow = r_out
            digits.append(d)
        assert borrow == 0  # the larger minus the smaller never borrows out of the top
        assert final[0] == steps[0] and int(final[1:]) * (-1 if final[0] == "-" else 1) == a - b
        assert final[1:] == "".join(map(str, reversed(digits))) and len(final) == n + 1
    else:
        assert len(steps) == n
        for j, step in enumerate(steps):
            assert len(step) == 2 * n and int(step) == a * column(b, j) * 10 ** j
        assert sum(int(s) for s in steps) == int(final) == a * b and len(final) == 2 * n
    # the final answer is exactly the plain task's answer
    assert final == make_task(f"{op}{n}", eval_size=1).encode(a, b).answer


@pytest.mark.parametrize("op", ["add", "sub", "mul"])
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_every_encoding_matches_python_arithmetic(op, data):
    n = data.draw(st.integers(1, MAX_DIGITS[op]), label="digits")
    top = 10 ** n - 1
    # operands biased towards the edges: zeros, all nines, equal operands
    operand = st.one_of(st.integers(0, top), st.sampled_from([0, 1, top, top // 2]))
    a, b = data.draw(operand, label="a"), data.draw(operand, label="b")
    check_encoding(op, n, a, b)


@pytest.mark.parametrize("op", ["add", "sub", "mul"])
def test_every_digit_count_on_the_hard_cases(op):
    """Carries into a new digit, borrows across every column, negative results, zeros."""
    for n in range(1, MAX_DIGITS[op] + 1):
        top = 10 ** n - 1
        for a, b in [(top, top), (top, 1), (1, top), (0, 0), (0, top), (top, 0), (10 ** (n - 1), 1),
                     (1, 10 ** (n - 1)), (top // 2, top // 2 + 1), (5, 5)]:
            if a <= top and b <= top:
                check_encoding(op, n, a, b)


def test_documented_examples():
    assert make_task("add3-scratch").encode(123, 45).text == \
        "123+045=3+5+0=08,2+4+0=06,1+0+0=01;0168\n"
    assert make_task("sub3-scratch").encode(45, 123).text == \
        "045-123=-,3-5-0=18,2-4-1=17,1-0-1=00;-078\n"
    assert make_task("mul3-scratch").encode(123, 45).text == \
        "123*045=000615,004920,000000;005535\n"
    assert make_task("add2-scratch").encode(99, 1).text == "99+01=9+1+0=10,9+0+1=10;100\n"
    assert make_task("sub1-scratch", eval_size=5).encode(3, 3).text == "3-3=+,3-3-0=00;+0\n"


@pytest.mark.parametrize("plain", ["add3", "sub2", "mul2", "add1"])
def test_eval_problems_are_the_plain_tasks_and_training_never_yields_one(plain):
    scratch = make_task(f"{plain}-scratch", eval_size=25)
    ref = make_task(plain, eval_size=25)
    assert [e.prompt for e in scratch.eval_set()] == [e.prompt for e in ref.eval_set()]
    assert [scratch.final_answer(e.answer) for e in scratch.eval_set()] == \
        [e.answer for e in ref.eval_set()]
    held = {e.prompt for e in scratch.eval_set()}
    rng = random.Random(0)
    seen = {scratch.sample_train(rng).prompt for _ in range(3000)}
    assert not seen & held
    if plain == "add1":
        assert len(seen) == 75  # every other problem is reachable


def test_chance_and_answer_length_are_the_plain_tasks():
    for plain in ("add5", "sub3", "mul2"):
        scratch = make_task(f"{plain}-scratch")
        assert scratch.answer_len == make_task(plain).answer_len
        assert scratch.chance_levels() == make_task(plain).chance_levels()
        assert scratch.max_text_len == max(len(scratch.sample_train(random.Random(s)).text)
                                           for s in range(50))


def test_format_names_come_from_data_gen():
    assert with_format("add3", "scratch") == "add3-scratch"
    assert with_format("add3", "rev") == "add3-rev" and with_format("add3", "") == "add3"
    assert with_format("add3-scratch", "scratch") == "add3-scratch"
    assert base_task("add3-scratch") == base_task("add3-rev") == "add3"
    with pytest.raises(ValueError, match="unknown task format 'cot'; valid: '', 'rev', 'scratch'"):
        with_format("add3", "cot")
    with pytest.raises(ValueError, match="already has a format"):
        with_format("add3-rev", "scratch")
    with pytest.raises(ValueError, match="scratchpad formats exist for n-digit add, sub and mul"):
        make_task("mod7-add-scratch")
    with pytest.raises(ValueError, match="task names look like"):
        make_task("add3-scratchpad")
    with pytest.raises(ValueError, match="writes its final answer in the plain format"):
        ScratchpadTask("add", 3, "reversed")


@pytest.mark.parametrize("text, final", [
    ("3+5+0=08;0168", "0168"),
    ("3+5+0=08;0168\n;999", "0168"),      # nothing after the end token counts
    ("a;b;0168", "0168"),                 # the last marker wins
    ("3+5+0=08;", ""),                    # a marker with nothing after it: an empty answer
    (";", ""),
    ("3+5+0=08,0168", None),              # no marker: no answer
    ("", None),
    ("\n;0168", None),                    # the marker comes after the end token
    ("zz!?;;x y", "x y"),                 # garbage parses, it does not crash
])
def test_parse_final(text, final):
    assert parse_final(text) == final


def test_step_accuracy_counts_steps_by_position():
    gold = "3+5+0=08,2+4+0=06,1+0+0=01;0168"
    assert step_accuracy(gold, gold) == 1.0
    assert step_accuracy("3+5+0=08,2+4+0=07,1+0+0=01;0178", gold) == pytest.approx(2 / 3)
    assert step_accuracy("3+5+0=08", gold) == pytest.approx(1 / 3)   # missing steps are wrong
    assert step_accuracy("", gold) == 0.0
    assert step_accuracy("garbage", gold) == 0.0
    assert step_accuracy("3+5+0=08,2+4+0=06,1+0+0=01,9;0168", gold) == 1.0  # extras ignored


def test_stream_trains_on_the_scratchpad_and_the_answer():
    task = make_task("add2-scratch")
    x, y = TrainStream([task], batch_size=2, seq_len=64, seed=0).next_batch()
    for row_x, row_y in zip(x, y):
        text = decode(row_x)
        targets = "".join(decode([int(v)]) for v in row_y if v != IGNORE_INDEX)
        examples = [e for e in text.split("\n") if e]
        whole = [e for e in examples if MARKER in e]  # the last one may be cut by the context
        assert whole
        expected = "".join(e.split("=", 1)[1] + "\n" for e in whole)
        assert targets.startswith(expected)  # every step, the marker and the answer are targets


class VariableTask(Task):
    """Examples of several lengths; states its longest (or, when `honest` is False, does not)."""
    name, answer_len, eval_size = "var", 1, 1

    def __init__(self, honest=True):
        self.honest = honest

    @property
    def max_text_len(self):
        return 23 if self.honest else 4

    def sample_train(self, rng):
        return Example("1=", "9" * rng.randrange(1, 21))  # 4..23 tokens with the end token

    def eval_set(self):
        return [Example("1=", "9")]


def test_stream_handles_examples_of_different_lengths():
    stream = TrainStream([VariableTask()], batch_size=64, seq_len=22, seed=1)
    x, y = stream.next_batch()
    assert stream.examples_seen >= 64
    for row in x:
        assert decode(row).startswith("1=9")  # every row holds at least one whole example
    with pytest.raises(ValueError, match="too short for one example of 23 tokens"):
        TrainStream([VariableTask()], batch_size=1, seq_len=21, seed=1)
    # a task that understates its longest example is caught, not packed into an empty row
    with pytest.raises(ValueError, match="more than the context .* max_text_len"):
        TrainStream([VariableTask(honest=False)], batch_size=64, seq_len=8, seed=1).next_batch()


def test_examples_seen_survives_a_resume():
    a = TrainStream([make_task("add3-scratch")], 4, 64, seed=2)
    a.next_batch()
    state = a.state_dict()
    b = TrainStream([make_task("add3-scratch")], 4, 64, seed=9)
    b.load_state_dict(state)
    assert b.examples_seen == a.examples_seen > 0
    a.next_batch(), b.next_batch()
    assert a.examples_seen == b.examples_seen

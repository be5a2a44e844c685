"""data_gen: tokenizer round trip, encodings, no train/eval leakage, determinism, bad input."""
import random

import pytest
import torch

from data_gen import (IGNORE_INDEX, VOCAB, VOCAB_SIZE, ArithmeticTask, ModularTask, TrainStream,
                      decode, encode, make_task)
from data_gen.modular import is_prime


def test_tokenizer_round_trip_over_whole_vocabulary():
    text = "".join(VOCAB[1:])  # every character but padding
    assert decode(encode(text)) == text
    assert len(encode(text)) == len(text) == VOCAB_SIZE - 1
    assert decode([0, *encode("12+3"), 0]) == "12+3"  # padding decodes to nothing


def test_tokenizer_rejects_unknown_characters_and_ids():
    with pytest.raises(ValueError, match="not in the vocabulary"):
        encode("12#3")
    with pytest.raises(ValueError, match="outside the vocabulary"):
        decode([VOCAB_SIZE])


@pytest.mark.parametrize("name", ["add1", "add3", "add5-rev", "sub2", "sub3-rev", "mul2", "mul3-rev",
                                  "mod7-add", "mod97-sub", "mod13-mul", "mod97-div", "mod11-poly"])
def test_answers_are_correct_and_fixed_width(name):
    task = make_task(name, eval_size=20)
    rng = random.Random(0)
    for ex in task.eval_set() + [task.sample_train(rng) for _ in range(50)]:
        assert len(ex.answer) == task.answer_len
        body = ex.prompt[:-1]  # drop "="
        if isinstance(task, ModularTask):
            operands, p = body.split("%")
            a, b = int(operands[:task.width]), int(operands[task.width + 1:])
            p = int(p)
            expected = {"add": a + b, "sub": a - b, "mul": a * b, "poly": a * a + a * b + b * b,
                        "div": None}[task.op]
            digits = ex.answer[::-1] if task.fmt == "reversed" else ex.answer
            if task.op == "div":
                assert (int(digits) * b) % p == a % p  # the answer times b gives a back
            else:
                assert int(digits) == expected % p
        else:
            n = task.digits
            a, b = int(body[:n]), int(body[n + 1:])
            answer = ex.answer
            sign = 1
            if task.op == "sub":
                sign, answer = (-1 if answer[0] == "-" else 1), answer[1:]
            value = int(answer[::-1] if task.fmt == "reversed" else answer) * sign
            assert value == {"add": a + b, "sub": a - b, "mul": a * b}[task.op]


def test_documented_examples():
    assert ArithmeticTask("add", 3).encode(123, 45).text == "123+045=0168\n"
    assert ArithmeticTask("add", 3, "reversed").encode(123, 45).text == "123+045=8610\n"
    assert ArithmeticTask("sub", 3).encode(45, 123).text == "045-123=-078\n"
    assert ArithmeticTask("mul", 3).encode(123, 45).text == "123*045=005535\n"
    assert ModularTask("add", 97).encode(5, 17).text == "05+17%97=22\n"
    assert ModularTask("div", 97).encode(5, 17).text == "05/17%97=06\n"
    assert ModularTask("poly", 97).encode(5, 17).text == "05^17%97=11\n"


def test_no_eval_problem_in_training_stream_ndigit():
    task = make_task("add1", eval_size=25)  # 25 of the 100 one-digit problems held out
    held = {ex.prompt for ex in task.eval_set()}
    assert len(held) == 25
    rng = random.Random(1)
    seen = {task.sample_train(rng).prompt for _ in range(5000)}
    assert not seen & held
    assert len(seen) == 75  # every other problem is reachable


def test_no_eval_pair_in_training_stream_modular():
    task = make_task("mod13-add", eval_size=1000)
    held = task.held_out_pairs()
    assert len(held) == round(0.3 * 13 * 13)
    eval_prompts = {ex.prompt for ex in task.eval_set()}
    assert len(eval_prompts) == len(held)  # eval_size above the held-out count: all of them
    rng = random.Random(2)
    train_prompts = {task.sample_train(rng).prompt for _ in range(5000)}
    assert not train_prompts & eval_prompts
    assert len(train_prompts) == 13 * 13 - len(held)


def test_eval_set_is_fixed_by_task_name():
    assert make_task("add3").eval_set() == make_task("add3").eval_set()
    assert make_task("add3").eval_set() != make_task("sub3").eval_set()


def test_stream_packs_whole_examples_and_masks_prompts():
    stream = TrainStream([make_task("add2"), make_task("mod7-mul")], batch_size=4, seq_len=40, seed=3)
    x, y = stream.next_batch()
    assert x.shape == y.shape == (4, 40)
    for row_x, row_y in zip(x, y):
        text = decode(row_x)
        examples = text.split("\n")
        assert len(examples) >= 3  # several examples per context
        # every target is the true next token, at answer positions only
        targets = [(t, int(v)) for t, v in enumerate(row_y) if v != IGNORE_INDEX]
        full = torch.cat([row_x, torch.tensor([0])])
        for t, v in targets:
            assert full[t + 1] == v or t == len(row_x) - 1
        answer_chars = "".join(decode([v]) for _, v in targets)
        expected = "".join(e.split("=")[1] + "\n" for e in examples if "=" in e and e.split("=")[1])
        assert answer_chars.startswith(expected[: len(answer_chars) - 1])


def test_stream_is_deterministic_and_resumable():
    tasks = [make_task("add3-rev"), make_task("mod97-div")]
    a, b = TrainStream(tasks, 8, 48, seed=5), TrainStream(tasks, 8, 48, seed=5)
    for _ in range(3):
        assert all(torch.equal(u, v) for u, v in zip(a.next_batch(), b.next_batch()))
    state = a.state_dict()
    after = a.next_batch()
    c = TrainStream(tasks, 8, 48, seed=99)
    c.load_state_dict(state)
    assert all(torch.equal(u, v) for u, v in zip(after, c.next_batch()))
    other = TrainStream(tasks, 8, 48, seed=6).next_batch()
    assert not torch.equal(other[0], b.next_batch()[0])


@pytest.mark.parametrize("build, message", [
    (lambda: ArithmeticTask("add", 0), r"digits must be an integer in 1\.\.18"),
    (lambda: ArithmeticTask("pow", 2), "unknown arithmetic operation 'pow'; valid: add, sub, mul"),
    (lambda: ArithmeticTask("add", 2, "backwards"), "valid: plain, reversed"),
    (lambda: ArithmeticTask("add", 1, eval_size=60), r"eval_size .* must be in 1\.\.25"),
    (lambda: ModularTask("div", 91), "needs a prime p, got 91"),
    (lambda: ModularTask("exp", 7), "valid: add, sub, mul, div, poly"),
    (lambda: ModularTask("add", 1), r"p must be an integer in 2\.\."),
    (lambda: ModularTask("add", 7, holdout=1.0), r"holdout must be a fraction in \(0, 1\)"),
    (lambda: make_task("addition3"), "task names look like"),
    (lambda: TrainStream([make_task("add5")], 2, 8, 0), "too short for one example"),
])
def test_bad_parameters_raise_value_error_naming_valid_range(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_is_prime():
    assert [n for n in range(30) if is_prime(n)] == [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]


# chance levels: tests/test_chance.py

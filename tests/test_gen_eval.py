"""Generative evaluation: malformed output never crashes and counts wrong; an oracle scores
perfectly; the four metrics mean the same for plain and scratchpad tasks."""
import math
from types import SimpleNamespace

import pytest
import torch

from data_gen import make_task
from data_gen.tokenizer import EOS_ID, STOI, VOCAB_SIZE, encode
from minigpt.config import GPTConfig
from minigpt.evaluate import evaluate_examples
from minigpt.gen_eval import evaluate_generative, final_answer_logprobs
from minigpt.model import GPT


class TableModel(torch.nn.Module):
    """A stub language model: after a prefix it puts all its weight on the token `next_token`
    returns for it (a sharp one-hot), whatever that is."""

    def __init__(self, next_token, block_size=64):
        super().__init__()
        self.next_token = next_token
        self.config = SimpleNamespace(block_size=block_size, vocab_size=VOCAB_SIZE)
        self.anchor = torch.nn.Parameter(torch.zeros(()))  # gives the stub a device

    def forward(self, idx, targets=None):
        B, T = idx.shape
        logits = torch.zeros(B, T, VOCAB_SIZE)
        for b in range(B):
            row = idx[b].tolist()
            for t in range(T):
                logits[b, t, self.next_token(tuple(row[: t + 1]))] = 60.0
        return logits, None


def oracle_for(examples, wrong=lambda i, text: text):
    """A table model that writes each example's answer (or `wrong(i, answer)`) and the end token."""
    table = {}
    for i, ex in enumerate(examples):
        prompt, written = encode(ex.prompt), encode(wrong(i, ex.answer)) + [EOS_ID]
        for k in range(len(written)):
            table[tuple(prompt + written[:k])] = written[k]
    return TableModel(lambda prefix: table.get(prefix, STOI["7"]))


@pytest.mark.parametrize("writes, no_answer", [
    (lambda prefix: STOI["7"], 1.0),       # digits forever: no marker, cut at the length limit
    (lambda prefix: EOS_ID, 1.0),          # stops at once
    (lambda prefix: STOI["z"], 1.0),       # letters
    (lambda prefix: STOI[";"], 0.0),       # markers forever: the answer after the last is empty
])
def test_malformed_output_counts_wrong_and_never_crashes(writes, no_answer):
    task = make_task("add3-scratch", eval_size=12)
    m = evaluate_generative(TableModel(writes), task, device="cpu", use_cache=False)
    assert m["n_eval"] == 12 and m["exact_match"] == 0.0
    assert m["no_answer"] == no_answer and m["step_acc"] == 0.0
    assert m["per_digit_acc"] == 0.0 and m["edit_distance"] == 4.0  # distance to "" is the length
    # the stub is sure of the wrong token: the gold answer's 4 tokens cost 60 nats each, or so
    assert m["answer_logprob"] == pytest.approx(-4 * 60, rel=1e-3)


@pytest.mark.parametrize("name", ["add3-scratch", "sub2-scratch", "mul2-scratch"])
def test_an_oracle_scores_perfectly(name):
    task = make_task(name, eval_size=10)
    m = evaluate_generative(oracle_for(task.eval_set()), task, device="cpu", use_cache=False)
    assert m["exact_match"] == m["per_digit_acc"] == m["step_acc"] == 1.0
    assert m["edit_distance"] == 0.0 and m["no_answer"] == 0.0
    assert m["answer_logprob"] == pytest.approx(0.0, abs=1e-6)


def test_wrong_steps_and_wrong_answers_are_scored_apart():
    task = make_task("add3-scratch", eval_size=8)
    examples = task.eval_set()

    def corrupt(i, answer):
        scratch, final = answer.split(";")
        steps = scratch.split(",")
        if i % 2:    # odd examples: first step wrong, answer right
            steps[0] = "0+0+0=00" if steps[0] != "0+0+0=00" else "1+1+0=02"
        if i % 4 == 0:  # every fourth: last answer digit wrong, steps right
            final = final[:-1] + str((int(final[-1]) + 1) % 10)
        return ",".join(steps) + ";" + final

    m = evaluate_generative(oracle_for(examples, corrupt), task, device="cpu", use_cache=False)
    assert m["exact_match"] == pytest.approx(6 / 8)
    assert m["step_acc"] == pytest.approx((4 * 1 + 4 * 2 / 3) / 8)
    assert m["per_digit_acc"] == pytest.approx((6 + 2 * 3 / 4) / 8)
    assert m["edit_distance"] == pytest.approx(2 / 8)


def test_answer_logprob_is_conditioned_on_the_gold_scratchpad():
    """A stub that, once it has read the marker, spreads its weight evenly over the ten digits,
    and before that is sure of "5": the gold final answer of add2 (3 digits) then has log-prob
    3 log(1/10) exactly when it is scored at the positions after the gold scratchpad's marker."""
    task = make_task("add2-scratch", eval_size=5)
    digits = [STOI[d] for d in "0123456789"]

    class AfterMarker(torch.nn.Module):
        config = SimpleNamespace(block_size=64, vocab_size=VOCAB_SIZE)

        def __init__(self):
            super().__init__()
            self.anchor = torch.nn.Parameter(torch.zeros(()))

        def forward(self, idx, targets=None):
            logits = torch.full((*idx.shape, VOCAB_SIZE), -1e4)
            logits[..., STOI["5"]] = 0.0
            seen = (idx == STOI[";"]).long().cumsum(1) > 0         # (B, T): the marker is read
            spread = logits[seen]
            spread[:, digits] = 0.0
            spread[:, STOI["5"]] = 0.0
            logits[seen] = spread
            return logits, None

    lps = final_answer_logprobs(AfterMarker(), task, task.eval_set(), "cpu")
    assert lps == pytest.approx([3 * math.log(0.1)] * 5, rel=1e-5)


def test_plain_task_gets_the_same_numbers_as_the_fixed_width_evaluator():
    torch.manual_seed(0)
    model = GPT(GPTConfig.from_size("25k", block_size=32), "cpu")
    task = make_task("add2", eval_size=40)
    fixed = evaluate_examples(model, task.eval_set(), "cpu")
    gen = evaluate_generative(model, task, device="cpu")
    for k in fixed:
        assert gen[k] == pytest.approx(fixed[k], rel=1e-5, abs=1e-6), k
    assert gen["n_eval"] == 40 and gen["step_acc"] is None


def test_a_real_model_is_decoded_within_its_context():
    torch.manual_seed(0)
    task = make_task("add5-scratch", eval_size=6)
    # add5-scratch needs 63 tokens of prompt and answer: a 64-token context holds it all
    model = GPT(GPTConfig.from_size("25k", block_size=64), "cpu")
    m = evaluate_generative(model, task, device="cpu")
    assert m["n_eval"] == 6 and 0.0 <= m["step_acc"] <= 1.0 and m["answer_logprob"] < 0
    assert evaluate_generative(model, task, device="cpu", use_cache=False) == m  # cache: same text
    with pytest.raises(ValueError, match="at least one example"):
        evaluate_generative(model, task, [], device="cpu")


def test_minigpt_train_scores_a_scratchpad_task_generatively(capsys):
    """`python -m minigpt.train --tasks add2-scratch` parses the final answer after the marker, as
    sweeps do, instead of reading a fixed width of the whole scratchpad string."""
    from minigpt.train import main

    assert main(["--size", "25k", "--tasks", "add2-scratch", "--steps", "2", "--device", "cpu"]) == 0
    line = [ln for ln in capsys.readouterr().out.splitlines() if "add2-scratch:" in ln][0]
    assert "step_acc" in line and "no_answer" in line


def test_per_problem_values_of_a_scratchpad_task_follow_the_examples():
    """The corruption pattern of each example shows at its own index; the averages are the
    per-problem means exactly; outputs hold the whole text written."""
    task = make_task("add3-scratch", eval_size=8)
    examples = task.eval_set()

    def corrupt(i, answer):
        scratch, final = answer.split(";")
        if i % 2:
            final = final[:-1] + str((int(final[-1]) + 1) % 10)
        return ("" if i == 6 else scratch + ";") + final

    model = oracle_for(examples, corrupt)
    m = evaluate_generative(model, task, device="cpu", use_cache=False, per_problem=True)
    rows = m["per_problem"]
    assert rows["correct"] == [1, 0, 1, 0, 1, 0, 0, 0]
    assert rows["no_answer"] == [0, 0, 0, 0, 0, 0, 1, 0]
    assert rows["edit_distance"] == [0, 1, 0, 1, 0, 1, 4, 1]
    assert m["outputs"] == [corrupt(i, ex.answer) for i, ex in enumerate(examples)]
    for key, metric in (("correct", "exact_match"), ("per_digit_acc", "per_digit_acc"),
                        ("edit_distance", "edit_distance"), ("answer_logprob", "answer_logprob"),
                        ("step_acc", "step_acc"), ("no_answer", "no_answer")):
        assert m[metric] == sum(rows[key]) / 8, key
    plain = evaluate_generative(model, task, device="cpu", use_cache=False)
    assert plain == {k: v for k, v in m.items() if k not in ("per_problem", "outputs")}


def test_per_problem_values_of_a_plain_task_have_no_scratchpad_keys():
    torch.manual_seed(0)
    model = GPT(GPTConfig.from_size("25k", block_size=32), "cpu")
    task = make_task("add2", eval_size=10)
    gen = evaluate_generative(model, task, device="cpu", per_problem=True)
    fixed = evaluate_examples(model, task.eval_set(), "cpu", per_problem=True)
    assert set(gen["per_problem"]) == {"correct", "per_digit_acc", "edit_distance", "answer_logprob"}
    assert gen["outputs"] == fixed["outputs"]
    assert gen["per_problem"]["correct"] == fixed["per_problem"]["correct"]
    assert gen["per_problem"]["answer_logprob"] == pytest.approx(fixed["per_problem"]["answer_logprob"], abs=1e-5)

"""The evaluator's four metrics, checked against a model whose answers are known."""
import math

import pytest
import torch

from data_gen import VOCAB_SIZE, decode, encode, make_task
from data_gen.task import Example
from minigpt.evaluate import edit_distance, evaluate_examples


class ScriptedModel(torch.nn.Module):
    """Predicts, after each prompt prefix, the next character of a fixed reply with probability p."""

    def __init__(self, replies: dict[str, str], p: float = 0.9):
        super().__init__()
        self.replies, self.p = replies, p

    def forward(self, idx, targets=None):
        B, T = idx.shape
        logits = torch.full((B, T, VOCAB_SIZE), math.log((1 - self.p) / (VOCAB_SIZE - 1)))
        for b in range(B):
            row = idx[b].tolist()
            for t in range(T):
                prefix = decode(row[: t + 1])
                prompt = prefix.split("=")[0] + "="
                reply = self.replies.get(prompt)
                done = len(prefix) - len(prompt)
                if reply is not None and "=" in prefix and 0 <= done < len(reply):
                    logits[b, t, encode(reply[done])[0]] = math.log(self.p)
        return logits, None


def test_metrics_against_hand_computed_values():
    examples = [Example("12+34=", "046"), Example("50+50=", "100")]
    model = ScriptedModel({"12+34=": "046", "50+50=": "190"}, p=0.9)
    m = evaluate_examples(model, examples, "cpu")
    assert m["exact_match"] == 0.5
    assert m["per_digit_acc"] == pytest.approx((1 + 2 / 3) / 2)
    assert m["edit_distance"] == pytest.approx(0.5)
    # first answer: every true token has probability 0.9; second: the middle one gets 0.1/56
    lp_first = 3 * math.log(0.9)
    lp_second = 2 * math.log(0.9) + math.log(0.1 / (VOCAB_SIZE - 1))
    assert m["answer_logprob"] == pytest.approx((lp_first + lp_second) / 2, rel=1e-5)


def test_edit_distance():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("", "abc") == 3
    assert edit_distance("0123", "0123") == 0
    assert edit_distance("123", "213") == 2


def test_untrained_model_scores_near_chance():
    from minigpt.config import GPTConfig
    from minigpt.model import GPT
    torch.manual_seed(0)
    model = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=32, block_size=16))
    m = evaluate_examples(model, make_task("add2", eval_size=100).eval_set(), "cpu")
    assert m["exact_match"] <= 0.05
    assert m["answer_logprob"] < -3 * math.log(10) + 1  # about uniform over digits, or worse


def test_decoding_uses_the_cache_when_the_model_has_one(monkeypatch):
    """The default decodes with the key/value cache for our GPT and by recomputing the prefix for
    a model without one; an explicit use_cache is passed through. (That both give the same
    metrics is tested on a trained model in tests/test_generate.py.)"""
    import minigpt.evaluate as ev
    from minigpt.config import GPTConfig
    from minigpt.model import GPT

    seen = []
    real = ev.greedy_generate

    def spy(*args, **kwargs):
        seen.append(kwargs["use_cache"])
        return real(*args, **kwargs)

    monkeypatch.setattr(ev, "greedy_generate", spy)
    examples = [Example("12+34=", "046"), Example("50+50=", "100")]
    gpt = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=32, block_size=16))
    scripted = ScriptedModel({"12+34=": "046", "50+50=": "190"})
    evaluate_examples(gpt, examples, "cpu")
    evaluate_examples(scripted, examples, "cpu")
    evaluate_examples(gpt, examples, "cpu", use_cache=False)
    assert seen == [True, False, False]
    with pytest.raises(TypeError, match="use_cache=False"):
        evaluate_examples(scripted, examples, "cpu", use_cache=True)


def test_per_problem_values_come_back_in_the_order_given():
    """Prompts of two lengths interleaved (so batched out of order): each problem's values, its
    answer, and the averages as their means."""
    examples = [Example("12+34=", "046"), Example("1+2=", "03"), Example("50+50=", "100"),
                Example("9+9=", "18"), Example("11+11=", "022")]
    replies = {"12+34=": "046", "1+2=": "13", "50+50=": "190", "9+9=": "18", "11+11=": "000"}
    model = ScriptedModel(replies, p=0.9)
    m = evaluate_examples(model, examples, "cpu", per_problem=True)
    rows = m["per_problem"]
    assert m["outputs"] == [replies[ex.prompt] for ex in examples]
    assert rows["correct"] == [1, 0, 0, 1, 0]
    assert rows["per_digit_acc"] == pytest.approx([1, 1 / 2, 2 / 3, 1, 1 / 3])
    assert rows["edit_distance"] == [0, 1, 1, 0, 2]
    right, wrong = math.log(0.9), math.log(0.1 / (VOCAB_SIZE - 1))
    assert rows["answer_logprob"] == pytest.approx(
        [3 * right, right + wrong, 2 * right + wrong, 2 * right, right + 2 * wrong], rel=1e-5)
    assert all(isinstance(v, int) for key in ("correct", "edit_distance") for v in rows[key])
    assert m["exact_match"] == sum(rows["correct"]) / 5
    assert m["edit_distance"] == sum(rows["edit_distance"]) / 5
    # summed by shape group, not in input order: equal up to float rounding only
    assert m["per_digit_acc"] == pytest.approx(sum(rows["per_digit_acc"]) / 5, rel=1e-12)
    assert m["answer_logprob"] == pytest.approx(sum(rows["answer_logprob"]) / 5, rel=1e-12)
    plain = evaluate_examples(model, examples, "cpu")
    assert plain == {k: v for k, v in m.items() if k not in ("per_problem", "outputs")}


def test_per_problem_values_of_a_real_model_match_one_by_one_evaluation():
    """One shape (a task's own problems): the averages are the per-problem means exactly, and
    each problem's values are what it gets evaluated alone."""
    from minigpt.config import GPTConfig
    from minigpt.model import GPT
    torch.manual_seed(1)
    model = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=32, block_size=16))
    examples = make_task("add2", eval_size=12).eval_set()
    m = evaluate_examples(model, examples, "cpu", batch_size=5, per_problem=True)
    rows = m["per_problem"]
    assert m["exact_match"] == sum(rows["correct"]) / 12
    for key in ("per_digit_acc", "edit_distance", "answer_logprob"):
        assert m[key] == sum(rows[key]) / 12, key
    for i in (0, 6, 11):
        alone = evaluate_examples(model, [examples[i]], "cpu", per_problem=True)
        assert alone["outputs"] == [m["outputs"][i]]
        assert alone["per_problem"]["answer_logprob"][0] == pytest.approx(rows["answer_logprob"][i], abs=1e-5)
        assert alone["per_problem"]["per_digit_acc"][0] == rows["per_digit_acc"][i]

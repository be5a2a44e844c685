"""The evaluator's four metrics, checked against a model whose answers are known."""
import math

import pytest
import torch

from data_gen import VOCAB_SIZE, decode, encode, make_task
from data_gen.task import Example
from minigpt.evaluate import chance_levels, edit_distance, evaluate_examples


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


def test_chance_levels():
    c = chance_levels(3)
    assert c["exact_match"] == pytest.approx(1e-3)
    assert c["per_digit_acc"] == pytest.approx(0.1)
    assert c["answer_logprob"] == pytest.approx(-3 * math.log(10))


def test_untrained_model_scores_near_chance():
    from minigpt.config import GPTConfig
    from minigpt.model import GPT
    torch.manual_seed(0)
    model = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=32, block_size=16))
    m = evaluate_examples(model, make_task("add2", eval_size=100).eval_set(), "cpu")
    assert m["exact_match"] <= 0.05
    assert m["answer_logprob"] < chance_levels(3)["answer_logprob"] + 1  # about uniform or worse


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

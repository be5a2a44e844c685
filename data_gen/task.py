"""What every task shares: an example, the task interface, and a stable per-task seed.

A task turns integers into text. It owns two disjoint sources of problems: a fixed evaluation set
(the same for every model, size and seed of a sweep, seeded by the task's name alone) and an
endless training sampler that never yields an evaluation problem.
"""
from __future__ import annotations

import math
import random
import zlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Example:
    """One problem: the model reads `prompt` and must write `answer` (then the end token)."""
    prompt: str
    answer: str

    @property
    def text(self) -> str:
        return self.prompt + self.answer + "\n"


def name_seed(name: str, salt: str = "") -> int:
    """A seed that depends only on a task's name: stable across processes and Python versions."""
    return zlib.crc32(f"{name}|{salt}".encode())


def uniform_digit_chance(answer_len: int) -> dict[str, float]:
    """What a guesser writing `answer_len` uniform random digits scores on each metric."""
    return {
        "exact_match": 10.0 ** -answer_len,
        "per_digit_acc": 0.1,
        "edit_distance": answer_len * 0.9,  # substitutions only: an upper bound
        "answer_logprob": -answer_len * math.log(10),
    }


def uniform_value_chance(n_values: int, width: int) -> dict[str, float]:
    """What a guesser scores who writes one of the values 0..n_values-1, uniformly at random, as
    `width` zero-padded digits, against answers uniform over the same values.

    At each position the guess and the truth are independent draws from that position's digit
    distribution, so they agree with probability sum_d P(d)^2 (for p = 7 and width 1 that is 1/7,
    not the 1/10 of a guesser over all ten digits)."""
    written = [f"{v:0{width}d}" for v in range(n_values)]
    agree = []
    for i in range(width):
        counts = [sum(w[i] == d for w in written) for d in "0123456789"]
        agree.append(sum((c / n_values) ** 2 for c in counts))
    return {
        "exact_match": 1.0 / n_values,
        "per_digit_acc": sum(agree) / width,
        "edit_distance": sum(1.0 - a for a in agree),  # substitutions only: an upper bound
        "answer_logprob": -math.log(n_values),
    }


class Task:
    """Interface of a task; see data_gen.arithmetic and data_gen.modular for the real ones."""

    name: str
    answer_len: int     # the final answer's length (a scratchpad task's answer holds more)
    eval_size: int
    marker: str | None = None  # scratchpad tasks: the text that precedes the final answer

    @property
    def max_text_len(self) -> int:
        """The longest example's text (prompt, answer, end token). Tasks whose examples all have
        one length measure it on one sample; a task with varying lengths must override this."""
        return len(self.sample_train(random.Random(0)).text)

    def final_answer(self, answer: str) -> str:
        """The final answer inside an Example's answer: all of it, for a task without a scratchpad."""
        return answer

    def chance_levels(self) -> dict[str, float]:
        """Each metric's score for a guesser uniform over the answer digits; tasks whose answers
        range over fewer values override this."""
        return uniform_digit_chance(self.answer_len)

    def sample_train(self, rng: random.Random) -> Example:
        raise NotImplementedError

    def eval_set(self) -> list[Example]:
        raise NotImplementedError

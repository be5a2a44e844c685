"""What every task shares: an example, the task interface, and a stable per-task seed.

A task turns integers into text. It owns two disjoint sources of problems: a fixed evaluation set
(the same for every model, size and seed of a sweep, seeded by the task's name alone) and an
endless training sampler that never yields an evaluation problem.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from .answer_laws import AnswerLaw


@dataclass(frozen=True)
class Example:
    """One problem: the model reads `prompt` and must write `answer` (then the end token)."""
    prompt: str
    answer: str

    @property
    def text(self) -> str:
        return self.prompt + self.answer + "\n"


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

    def answer_law(self) -> AnswerLaw:
        """How the final answer is distributed over the task's problems (data_gen.answer_laws)."""
        raise NotImplementedError(f"{type(self).__name__} has no answer law, so no chance levels")

    def chance_levels(self) -> dict[str, float]:
        """Each metric's score for the best guesser that knows the answer format and how answers
        are distributed over the task's problems, but not the problem (data_gen.chance)."""
        from .chance import chance_levels  # imported here: it is heavy, and few callers need it
        return chance_levels(self)

    def sample_train(self, rng: random.Random) -> Example:
        raise NotImplementedError

    def eval_set(self) -> list[Example]:
        raise NotImplementedError

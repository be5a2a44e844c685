"""What every task shares: an example, the task interface, and a stable per-task seed.

A task turns integers into text. It owns two disjoint sources of problems: a fixed evaluation set
(the same for every model, size and seed of a sweep, seeded by the task's name alone) and an
endless training sampler that never yields an evaluation problem.
"""
from __future__ import annotations

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


class Task:
    """Interface of a task; see data_gen.arithmetic and data_gen.modular for the real ones."""

    name: str
    answer_len: int
    eval_size: int

    def sample_train(self, rng: random.Random) -> Example:
        raise NotImplementedError

    def eval_set(self) -> list[Example]:
        raise NotImplementedError

"""Modular arithmetic `a ∘ b mod p` with held-out pairs (Power et al. 2022, "Grokking").

All p*p operand pairs (for division, b runs over 1..p-1) are split once, by a seeded permutation
that depends only on the task's name, into training pairs and a held-out fraction; the evaluation
set is drawn from the held-out pairs only, so a model can pass it only by generalising.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from .formats import check_format, write_number
from .answer_laws import AnswerLaw, counts_law
from .seeds import name_seed
from .task import Example, Task

# op -> (symbol written in the prompt, the function of (a, b, p))
MOD_OPERATIONS = {
    "add": ("+", lambda a, b, p: (a + b) % p),
    "sub": ("-", lambda a, b, p: (a - b) % p),
    "mul": ("*", lambda a, b, p: (a * b) % p),
    "div": ("/", lambda a, b, p: (a * pow(b, p - 2, p)) % p),  # b^(p-2) is b's inverse, p prime
    "poly": ("^", lambda a, b, p: (a * a + a * b + b * b) % p),  # "a^b" stands for a²+ab+b²
}
MAX_P = 10_007


def is_prime(n: int) -> bool:
    if n < 2:
        return False
    return all(n % d for d in range(2, int(n ** 0.5) + 1))


def answer_counts(op: str, p: int) -> np.ndarray:
    """How many operand pairs give each answer 0..p-1, by enumerating them all (in row blocks)."""
    counts = np.zeros(p, dtype=np.int64)
    b = np.arange(1 if op == "div" else 0, p, dtype=np.int64)
    inverse = np.array([pow(int(x), p - 2, p) for x in b], dtype=np.int64) if op == "div" else None
    rows = max(1, 2_000_000 // p)
    for start in range(0, p, rows):
        a = np.arange(start, min(p, start + rows), dtype=np.int64)[:, None]
        if op == "div":
            value = a * inverse
        elif op == "poly":
            value = a * a + a * b + b * b
        else:
            value = a + b if op == "add" else a - b if op == "sub" else a * b
        counts += np.bincount((value % p).ravel(), minlength=p)
    return counts


@dataclass
class ModularTask(Task):
    """`op` in add/sub/mul/div/poly modulo `p`; operands and answer zero-padded to len(str(p-1)).

    Encoded examples (p=97):
        add:   "05+17%97=22"    then "\\n"
        div:   "05/17%97=06"    then "\\n"   (17*6 = 102 = 97 + 5)
        poly:  "05^17%97=22"    then "\\n"   (25+85+289 = 399 = 4*97 + 11 -> "11")
    Division needs p prime (every non-zero b has an inverse); the other operations take any p >= 2.
    """
    op: str
    p: int
    fmt: str = "plain"
    holdout: float = 0.3
    eval_size: int = 500

    def __post_init__(self):
        if self.op not in MOD_OPERATIONS:
            raise ValueError(f"unknown modular operation '{self.op}'; valid: {', '.join(MOD_OPERATIONS)}")
        if not isinstance(self.p, int) or not 2 <= self.p <= MAX_P:
            raise ValueError(f"p must be an integer in 2..{MAX_P}, got {self.p!r}")
        if self.op == "div" and not is_prime(self.p):
            raise ValueError(f"modular division needs a prime p, got {self.p} (e.g. 7, 97, 113)")
        check_format(self.fmt)
        if not 0.0 < self.holdout < 1.0:
            raise ValueError(f"holdout must be a fraction in (0, 1), got {self.holdout}")
        if self.eval_size < 1:
            raise ValueError(f"eval_size must be at least 1, got {self.eval_size}")
        self._split()

    @property
    def name(self) -> str:
        return f"mod{self.p}-{self.op}" + ("-rev" if self.fmt == "reversed" else "")

    @property
    def width(self) -> int:
        return len(str(self.p - 1))

    @property
    def answer_len(self) -> int:
        return self.width

    def answer_law(self) -> AnswerLaw:
        """The answer's law over every operand pair the task has (for div, b != 0), counted
        exactly: uniform for add, sub and div, not for mul (0 has 2p-1 pairs) or poly."""
        write = lambda v: write_number(v, self.width, self.fmt)  # noqa: E731
        return counts_law(self.p, lambda: answer_counts(self.op, self.p), write, self.name)

    def _split(self) -> None:
        b_low = 1 if self.op == "div" else 0
        n_b = self.p - b_low
        perm = np.random.default_rng(name_seed(f"mod{self.p}-{self.op}", "split")).permutation(self.p * n_b)
        n_held = max(1, int(round(self.holdout * len(perm))))
        if n_held >= len(perm):
            raise ValueError(f"holdout {self.holdout} leaves no training pairs for p={self.p}")
        as_pairs = lambda idx: np.stack([idx // n_b, idx % n_b + b_low], axis=1)  # noqa: E731
        self._held_out = as_pairs(perm[:n_held])
        self._train_pairs = as_pairs(perm[n_held:])
        self._eval_pairs = self._held_out[: min(self.eval_size, n_held)]

    def encode(self, a: int, b: int) -> Example:
        symbol, fn = MOD_OPERATIONS[self.op]
        w = self.width
        prompt = f"{a:0{w}d}{symbol}{b:0{w}d}%{self.p}="
        return Example(prompt, write_number(fn(a, b, self.p), w, self.fmt))

    def eval_set(self) -> list[Example]:
        return [self.encode(int(a), int(b)) for a, b in self._eval_pairs]

    def sample_train(self, rng: random.Random) -> Example:
        a, b = self._train_pairs[rng.randrange(len(self._train_pairs))]
        return self.encode(int(a), int(b))

    def held_out_pairs(self) -> set[tuple[int, int]]:
        return {(int(a), int(b)) for a, b in self._held_out}

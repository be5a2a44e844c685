"""n-digit addition, subtraction and multiplication, the tasks of Wei et al. 2022 (Table 1, GPT-3
arithmetic) in miniature.

Operands are uniform over 0 .. 10**n - 1 and written zero-padded to n digits, so every problem of a
task has the same length. Answers are zero-padded to a fixed width: n+1 digits for addition, a
sign and n digits for subtraction, 2n digits for multiplication. The evaluation problems, a fixed
seeded set, are never produced by the training sampler.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

from .answer_laws import AnswerLaw, operand_law, tent_law
from .formats import check_format, write_number, write_signed
from .seeds import name_seed
from .task import Example, Task

OPERATIONS = {"add": "+", "sub": "-", "mul": "*"}
MAX_DIGITS = 18


@dataclass
class ArithmeticTask(Task):
    """`op` in add/sub/mul on `digits`-digit operands, answer in format `fmt`.

    Encoded examples (digits=3):
        add, plain:     "123+045=0168"   then "\\n"
        add, reversed:  "123+045=8610"   then "\\n"
        sub, plain:     "045-123=-078"   then "\\n"
        mul, plain:     "123*045=005535" then "\\n"
    """
    op: str
    digits: int
    fmt: str = "plain"
    eval_size: int = 500
    _eval_keys: set = field(init=False, repr=False)

    def __post_init__(self):
        if self.op not in OPERATIONS:
            raise ValueError(f"unknown arithmetic operation '{self.op}'; valid: {', '.join(OPERATIONS)}")
        if not isinstance(self.digits, int) or not 1 <= self.digits <= MAX_DIGITS:
            raise ValueError(f"digits must be an integer in 1..{MAX_DIGITS}, got {self.digits!r}")
        check_format(self.fmt)
        space = 10 ** (2 * self.digits)
        if not 1 <= self.eval_size <= space // 4:
            raise ValueError(f"eval_size for {self.digits}-digit {self.op} must be in 1..{space // 4} "
                             f"(a quarter of the {space} problems), got {self.eval_size}")
        self._eval_problems = self._draw_eval_problems()
        self._eval_keys = set(self._eval_problems)

    @property
    def name(self) -> str:
        return f"{self.op}{self.digits}" + ("-rev" if self.fmt == "reversed" else "")

    @property
    def answer_len(self) -> int:
        return {"add": self.digits + 1, "sub": self.digits + 1, "mul": 2 * self.digits}[self.op]

    def write_answer(self, value: int) -> str:
        """The (final) answer string for the value a op b."""
        n = self.digits
        if self.op == "sub":
            return write_signed(value, n, self.fmt)
        return write_number(value, n + 1 if self.op == "add" else 2 * n, self.fmt)

    def encode(self, a: int, b: int) -> Example:
        n = self.digits
        prompt = f"{a:0{n}d}{OPERATIONS[self.op]}{b:0{n}d}="
        value = a + b if self.op == "add" else a - b if self.op == "sub" else a * b
        return Example(prompt, self.write_answer(value))

    def answer_law(self) -> AnswerLaw:
        """The final answer's law over all operand pairs: tents for add and sub, a table or a
        sample for mul (data_gen.answer_laws). A scratchpad task's final answer is this one."""
        key = f"{self.op}{self.digits}" + ("-rev" if self.fmt == "reversed" else "")
        write = self.write_answer
        if self.op == "mul":
            return operand_law(("*",), self.digits, write, key, name_seed(key, "chance"))
        return tent_law("+" if self.op == "add" else "-", self.digits, self.fmt, write, key)

    def _draw_eval_problems(self) -> list[tuple[int, int]]:
        rng = random.Random(name_seed(f"{self.op}{self.digits}", "eval"))
        top = 10 ** self.digits
        chosen: dict[tuple[int, int], None] = {}
        while len(chosen) < self.eval_size:
            chosen[(rng.randrange(top), rng.randrange(top))] = None
        return list(chosen)

    def eval_set(self) -> list[Example]:
        return [self.encode(a, b) for a, b in self._eval_problems]

    def sample_train(self, rng: random.Random) -> Example:
        top = 10 ** self.digits
        while True:  # rejection: at most a quarter of the space is held out
            a, b = rng.randrange(top), rng.randrange(top)
            if (a, b) not in self._eval_keys:
                return self.encode(a, b)

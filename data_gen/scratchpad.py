"""Scratchpad formats: n-digit arithmetic written out step by step before the answer (Nye et al.
2021, "Show Your Work"; Lee et al. 2023, "Teaching Arithmetic to Small Transformers").

The model reads the same prompt as the plain task (`123+045=`) and must write a scratchpad of
steps separated by ",", then the marker ";", then the final answer, exactly as the plain task
writes it, then the end token. The Example's `answer` is the whole "scratchpad;final answer", so
the training loss covers the steps and the answer. Only characters of the fixed 57-token
vocabulary are used (digits, "+", "-", "=", ",", ";"). Every step of a task has a fixed width, so
every example of a task has the same length.

Encoded examples (digits=3):

  add, "column by column, least-significant first": step i is "x+y+c=CS" with x, y the operands'
  digits in that column, c the carry in, and CS the column sum as two digits (carry out, digit).
      "123+045=3+5+0=08,2+4+0=06,1+0+0=01;0168"  then "\\n"

  sub, "the sign, then the larger minus the smaller, column by column": the first step is "+"
  (a >= b) or "-" (a < b); step i is "x-y-r=RD" with x, y the larger and smaller operand's digits
  in that column, r the borrow in, R the borrow out and D the digit (x - y - r = D - 10*R).
      "045-123=-,3-5-0=18,2-4-1=17,1-0-1=00;-078"  then "\\n"

  mul, "partial products, then their sum": step j is a times the j-th digit of b (least-significant
  first), shifted by j places, written at the answer's width 2n; the final answer is their sum.
      "123*045=000615,004920,000000;005535"  then "\\n"

The evaluation problems are the plain task's: `add3-scratch` is scored on exactly the (a, b) pairs
of `add3`, and its training sampler never yields one of them. Its chance levels are the plain
task's too, since the final answer is the same string.

`parse_final` reads the final answer back from generated text (after the last marker, up to the
end token); text without a marker has no answer and counts as wrong.
"""
from __future__ import annotations

from dataclasses import dataclass

from .arithmetic import ArithmeticTask
from .task import Example
from .tokenizer import EOS

MARKER = ";"       # precedes the final answer
STEP_SEP = ","     # separates scratchpad steps
SCRATCH_OPERATIONS = ("add", "sub", "mul")


def _digits_lsb(value: int, width: int) -> list[int]:
    """The `width` digits of a non-negative integer, least-significant first."""
    return [int(ch) for ch in reversed(f"{value:0{width}d}")]


def addition_steps(a: int, b: int, n: int) -> list[str]:
    steps, carry = [], 0
    for x, y in zip(_digits_lsb(a, n), _digits_lsb(b, n)):
        total = x + y + carry
        steps.append(f"{x}+{y}+{carry}={total // 10}{total % 10}")
        carry = total // 10
    return steps


def subtraction_steps(a: int, b: int, n: int) -> list[str]:
    big, small = (a, b) if a >= b else (b, a)
    steps, borrow = ["+" if a >= b else "-"], 0
    for x, y in zip(_digits_lsb(big, n), _digits_lsb(small, n)):
        diff = x - y - borrow
        out = 1 if diff < 0 else 0
        steps.append(f"{x}-{y}-{borrow}={out}{diff + 10 * out}")
        borrow = out
    return steps


def multiplication_steps(a: int, b: int, n: int) -> list[str]:
    return [f"{a * y * 10 ** j:0{2 * n}d}" for j, y in enumerate(_digits_lsb(b, n))]


_STEPS = {"add": addition_steps, "sub": subtraction_steps, "mul": multiplication_steps}


def parse_final(text: str) -> str | None:
    """The final answer in generated text: what follows the last marker, up to the end token.
    None when there is no marker (the output then has no answer and counts as wrong)."""
    text = text.split(EOS, 1)[0]
    at = text.rfind(MARKER)
    return None if at < 0 else text[at + len(MARKER):]


def split_steps(text: str) -> list[str]:
    """The scratchpad steps of a written answer: the text before its last marker (all of it if
    there is none), up to the end token, split at the step separator."""
    text = text.split(EOS, 1)[0]
    at = text.rfind(MARKER)
    scratch = text if at < 0 else text[:at]
    return scratch.split(STEP_SEP) if scratch else []


def step_accuracy(written: str, gold_answer: str) -> float:
    """Fraction of the gold scratchpad's steps written correctly, position by position (a missing
    step is wrong; steps beyond the gold ones are ignored)."""
    gold = split_steps(gold_answer)
    got = split_steps(written)
    return sum(g == w for g, w in zip(gold, got)) / len(gold)


@dataclass
class ScratchpadTask(ArithmeticTask):
    """`op` on `digits`-digit operands, answered with a scratchpad (see the module docstring).

    The problems, the held-out evaluation pairs and the final answer are those of the plain task
    ArithmeticTask(op, digits); only what is written before the final answer differs."""
    marker = MARKER

    def __post_init__(self):
        if self.fmt != "plain":
            raise ValueError("a scratchpad task writes its final answer in the plain format; "
                             f"got fmt={self.fmt!r}")
        super().__post_init__()

    @property
    def name(self) -> str:
        return f"{self.op}{self.digits}-scratch"

    @property
    def max_text_len(self) -> int:
        return len(self.encode(0, 0).text)  # every step has a fixed width: one length per task

    def plain_answer(self, a: int, b: int) -> str:
        return super().encode(a, b).answer

    def encode(self, a: int, b: int) -> Example:
        plain = super().encode(a, b)
        steps = _STEPS[self.op](a, b, self.digits)
        return Example(plain.prompt, STEP_SEP.join(steps) + MARKER + plain.answer)

    def final_answer(self, answer: str) -> str:
        """The final answer inside a gold answer (scratchpad, marker, final answer)."""
        final = parse_final(answer)
        if final is None:
            raise ValueError(f"{answer!r} holds no marker {MARKER!r}")
        return final

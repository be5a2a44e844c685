"""Synthetic tasks as text: a fixed character vocabulary, n-digit and modular arithmetic, answer
formats, and the packed training stream. Knows nothing of models.

Tasks are named by strings that are also their constructors (see `make_task`):
    add3, sub2, mul2         n-digit addition / subtraction / multiplication, plain answer
    add4-rev                 the same with the answer reversed (least-significant digit first)
    mod97-add, mod97-div     a ∘ b mod p for ∘ in add, sub, mul, div, poly (a²+ab+b²)
    add2-words, sub2-words-held, mod97-add-words-k3
                             a task phrased through natural-language templates (data_gen.templates)
"""
from __future__ import annotations

import re

from .arithmetic import OPERATIONS, ArithmeticTask
from .modular import MOD_OPERATIONS, ModularTask
from .stream import IGNORE_INDEX, TrainStream
from .task import Example, Task
from .templates import make_word_task, parse_word_task_name
from .tokenizer import VOCAB, VOCAB_SIZE, decode, encode

_ARITH = re.compile(r"^(add|sub|mul)(\d+)(-rev)?$")
_MOD = re.compile(r"^mod(\d+)-(add|sub|mul|div|poly)(-rev)?$")

TASK_NAME_HELP = ("task names look like add3, sub2, mul2, add4-rev (n-digit arithmetic: add, sub, mul; "
                  "-rev reverses the answer) or mod97-add (modular: add, sub, mul, div, poly); "
                  "add2-words[-k3|-held|-all|-t05] phrases one in natural-language templates")


def make_task(name: str, eval_size: int = 500) -> Task:
    """Build a task from its name; ValueError naming the valid forms if it is not one."""
    if (words := parse_word_task_name(name)) is not None:
        return make_word_task(make_task(words[0], eval_size=eval_size), words[1])
    if m := _ARITH.match(name):
        return ArithmeticTask(m.group(1), int(m.group(2)), "reversed" if m.group(3) else "plain",
                              eval_size=eval_size)
    if m := _MOD.match(name):
        return ModularTask(m.group(2), int(m.group(1)), "reversed" if m.group(3) else "plain",
                           eval_size=eval_size)
    raise ValueError(f"unknown task '{name}': {TASK_NAME_HELP}")


__all__ = [
    "ArithmeticTask", "ModularTask", "Example", "Task", "TrainStream", "IGNORE_INDEX", "VOCAB",
    "VOCAB_SIZE", "encode", "decode", "make_task", "OPERATIONS", "MOD_OPERATIONS", "TASK_NAME_HELP",
]

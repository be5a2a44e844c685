"""Synthetic tasks as text: a fixed character vocabulary, n-digit and modular arithmetic, answer
formats, and the packed training stream. Knows nothing of models.

Tasks are named by strings that are also their constructors (see `make_task`):
    add3, sub2, mul2         n-digit addition / subtraction / multiplication, plain answer
    add4-rev                 the same with the answer reversed (least-significant digit first)
    mod97-add, mod97-div     a ∘ b mod p for ∘ in add, sub, mul, div, poly (a²+ab+b²)
    icl-op2                  hidden operator (task recognition): "12?34=+0046", '?' one of + - *
    icl-rule7, icl-rule7-new hidden rule (a*x + b*y) mod p (task learning), on training rules /
                             on held-out rules; icl-rule7-t20 trains only 20 rules (data_gen.icl)
"""
from __future__ import annotations

import re

from .arithmetic import OPERATIONS, ArithmeticTask
from .icl import (EpisodeStream, HiddenOpTask, HiddenRuleTask, LinearRuleTask, few_shot_set,
                  heldout_task_name, make_stream, max_shots, shots_fit)
from .modular import MOD_OPERATIONS, ModularTask
from .stream import IGNORE_INDEX, TrainStream
from .task import Example, Task
from .tokenizer import VOCAB, VOCAB_SIZE, decode, encode

_ARITH = re.compile(r"^(add|sub|mul)(\d+)(-rev)?$")
_MOD = re.compile(r"^mod(\d+)-(add|sub|mul|div|poly)(-rev)?$")
_ICL_OP = re.compile(r"^icl-op(\d+)$")
_ICL_RULE = re.compile(r"^icl-rule(\d+)(?:-t(\d+))?(-new)?$")

TASK_NAME_HELP = ("task names look like add3, sub2, mul2, add4-rev (n-digit arithmetic: add, sub, mul; "
                  "-rev reverses the answer), mod97-add (modular: add, sub, mul, div, poly), or in-context "
                  "tasks with a hidden rule: icl-op2 (operator hidden behind '?'), icl-rule7 / "
                  "icl-rule7-new ((a*x+b*y) mod 7 on training / held-out rules; -t20: only 20 "
                  "training rules)")


def make_task(name: str, eval_size: int = 500) -> Task:
    """Build a task from its name; ValueError naming the valid forms if it is not one."""
    if m := _ARITH.match(name):
        return ArithmeticTask(m.group(1), int(m.group(2)), "reversed" if m.group(3) else "plain",
                              eval_size=eval_size)
    if m := _MOD.match(name):
        return ModularTask(m.group(2), int(m.group(1)), "reversed" if m.group(3) else "plain",
                           eval_size=eval_size)
    if m := _ICL_OP.match(name):
        return HiddenOpTask(int(m.group(1)), eval_size=eval_size)
    if m := _ICL_RULE.match(name):
        return LinearRuleTask(int(m.group(1)), heldout=bool(m.group(3)),
                              n_train_rules=int(m.group(2)) if m.group(2) else None,
                              eval_size=eval_size)
    raise ValueError(f"unknown task '{name}': {TASK_NAME_HELP}")


__all__ = [
    "ArithmeticTask", "ModularTask", "Example", "Task", "TrainStream", "IGNORE_INDEX", "VOCAB",
    "VOCAB_SIZE", "encode", "decode", "make_task", "EpisodeStream", "HiddenOpTask", "HiddenRuleTask",
    "LinearRuleTask", "few_shot_set", "heldout_task_name", "make_stream", "max_shots", "shots_fit",
    "OPERATIONS", "MOD_OPERATIONS", "TASK_NAME_HELP",
]

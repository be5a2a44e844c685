"""Synthetic tasks as text: a fixed character vocabulary, n-digit and modular arithmetic, answer
formats, and the packed training stream. Knows nothing of models.

Tasks are named by strings that are also their constructors (see `make_task`):
    add3, sub2, mul2         n-digit addition / subtraction / multiplication, plain answer
    add4-rev                 the same with the answer reversed (least-significant digit first)
    add5-scratch, mul2-scratch  the same problems answered with a scratchpad (data_gen.scratchpad)
    mod97-add, mod97-div     a ∘ b mod p for ∘ in add, sub, mul, div, poly (a²+ab+b²)
    add2-words, sub2-words-held, mod97-add-words-k3
                             a task phrased through natural-language templates (data_gen.templates)
    icl-op2                  hidden operator (task recognition): "12?34=+0046", '?' one of + - *
    icl-rule7, icl-rule7-new hidden rule (a*x + b*y) mod p (task learning), on training rules /
                             on held-out rules; icl-rule7-t20 trains only 20 rules (data_gen.icl)
    icl-recall8              associative recall: a fresh map of 8 letters to digits per episode,
                             "c=5", the query's value found among the shown pairs (data_gen.recall)
"""
from __future__ import annotations

import re
from typing import Sequence

from .arithmetic import OPERATIONS, ArithmeticTask
from .fast_episodes import FastEpisodeStream
from .fast_stream import FastTrainStream
from .icl import (EpisodeStream, HiddenOpTask, HiddenRuleTask, LinearRuleTask, few_shot_set,
                  heldout_task_name, max_shots, shots_fit)
from .modular import MOD_OPERATIONS, ModularTask
from .recall import RecallTask
from .scratchpad import MARKER, ScratchpadTask, parse_final, split_steps, step_accuracy
from .stream import IGNORE_INDEX, TrainStream
from .task import Example, Task
from .templates import make_word_task, parse_word_task_name
from .tokenizer import VOCAB, VOCAB_SIZE, decode, encode

_ARITH = re.compile(r"^(add|sub|mul)(\d+)(-rev|-scratch)?$")
_MOD = re.compile(r"^mod(\d+)-(add|sub|mul|div|poly)(-rev)?$")
_ICL_OP = re.compile(r"^icl-op(\d+)$")
_ICL_RULE = re.compile(r"^icl-rule(\d+)(?:-t(\d+))?(-new)?$")
_ICL_RECALL = re.compile(r"^icl-recall(\d+)$")

TASK_NAME_HELP = ("task names look like add3, sub2, mul2, add4-rev (n-digit arithmetic: add, sub, mul; "
                  "-rev reverses the answer, -scratch writes a scratchpad first), mod97-add "
                  "(modular: add, sub, mul, div, poly; -rev), or in-context tasks with a hidden rule: "
                  "icl-op2 (operator hidden behind '?'), icl-rule7 / icl-rule7-new ((a*x+b*y) mod 7 "
                  "on training / held-out rules; -t20: only 20 training rules), icl-recall8 "
                  "(associative recall: a fresh map of 8 letters to digits per episode); "
                  "add2-words[-k3|-held|-all|-t05] "
                  "phrases a task in natural-language templates")

# A task format as a name suffix: "" is the plain answer. Conditions of a sweep name these.
FORMAT_SUFFIXES = {"": "", "rev": "-rev", "scratch": "-scratch"}


def base_task(name: str) -> str:
    """A task's name without its format suffix, the ability that formats are compared on:
    base_task("add3-scratch") == base_task("add3-rev") == "add3"."""
    for suffix in FORMAT_SUFFIXES.values():
        if suffix and name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def check_task_format(fmt: str) -> None:
    if fmt not in FORMAT_SUFFIXES:
        raise ValueError(f"unknown task format '{fmt}'; valid: "
                         f"{', '.join(repr(f) for f in FORMAT_SUFFIXES)} ('' keeps the task's own)")


def with_format(name: str, fmt: str) -> str:
    """The task `name` written in format `fmt`: ("add3", "scratch") -> "add3-scratch"; "" keeps
    the name. A name that already carries another format is refused (formats do not stack)."""
    check_task_format(fmt)
    if not fmt or name.endswith(FORMAT_SUFFIXES[fmt]):
        return name
    if base_task(name) != name:
        raise ValueError(f"task '{name}' already has a format; format '{fmt}' applies to a plain "
                         f"task name such as '{base_task(name)}'")
    return name + FORMAT_SUFFIXES[fmt]


def make_task(name: str, eval_size: int = 500) -> Task:
    """Build a task from its name; ValueError naming the valid forms if it is not one."""
    if (words := parse_word_task_name(name)) is not None:
        return make_word_task(make_task(words[0], eval_size=eval_size), words[1])
    if m := _ARITH.match(name):
        if m.group(3) == "-scratch":
            return ScratchpadTask(m.group(1), int(m.group(2)), eval_size=eval_size)
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
    if m := _ICL_RECALL.match(name):
        return RecallTask(int(m.group(1)), eval_size=eval_size)
    if name.endswith("-scratch") and _MOD.match(name[: -len("-scratch")]):
        raise ValueError(f"unknown task '{name}': scratchpad formats exist for n-digit add, sub "
                         f"and mul only; {TASK_NAME_HELP}")
    raise ValueError(f"unknown task '{name}': {TASK_NAME_HELP}")


def make_stream(tasks: Sequence[Task], batch_size: int, seq_len: int, seed: int,
                weights: Sequence[float] | None = None, fast: bool = False):
    """The one place a training stream is chosen: episodes if any task hides a rule (each row must
    hold one rule), else examples; the numpy stream of either kind when `fast` (FastTrainStream,
    FastEpisodeStream), else the Python one (TrainStream, EpisodeStream)."""
    if any(isinstance(t, HiddenRuleTask) for t in tasks):
        cls = FastEpisodeStream if fast else EpisodeStream
    else:
        cls = FastTrainStream if fast else TrainStream
    return cls(tasks, batch_size, seq_len, seed, weights)


__all__ = [
    "ArithmeticTask", "ModularTask", "Example", "Task", "TrainStream", "IGNORE_INDEX", "VOCAB",
    "VOCAB_SIZE", "encode", "decode", "make_task", "OPERATIONS", "MOD_OPERATIONS", "TASK_NAME_HELP",
    "ScratchpadTask", "MARKER", "parse_final", "split_steps", "step_accuracy", "FORMAT_SUFFIXES",
    "base_task", "with_format", "check_task_format", "EpisodeStream", "HiddenOpTask",
    "HiddenRuleTask", "LinearRuleTask", "few_shot_set", "heldout_task_name", "make_stream",
    "max_shots", "shots_fit", "FastTrainStream", "FastEpisodeStream", "RecallTask",
]

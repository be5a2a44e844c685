"""The seeded, endless training stream: examples from a task mixture packed into fixed contexts.

Each row of a batch is filled with whole examples ("prompt answer\\n"), drawn task by task from
the mixture, until the next one would not fit; the rest is padding. Targets are the next token at
answer positions (the answer's characters and the end token) and -100 (ignored by the loss)
everywhere else, so the loss is on answers only, as in minGPT's adder. A scratchpad task's answer
holds its scratchpad, so the loss covers the steps and the final answer. Examples may differ in
length (each task states its longest, `Task.max_text_len`); `examples_seen` counts the whole
examples packed so far. Every row starts with a
fresh example at position 0, which is where the evaluator places its single prompt.

The stream is a pure function of its seed: same seed, same batches, in any process. Its state
(the RNG) goes into checkpoints so a resumed run continues the same sequence.
"""
from __future__ import annotations

import random
from typing import Sequence

import torch

from .task import Task
from .tokenizer import PAD_ID, encode

IGNORE_INDEX = -100


class TrainStream:
    def __init__(self, tasks: Sequence[Task], batch_size: int, seq_len: int, seed: int,
                 weights: Sequence[float] | None = None):
        if not tasks:
            raise ValueError("TrainStream needs at least one task")
        if batch_size < 1 or seq_len < 2:
            raise ValueError(f"batch_size must be >= 1 and seq_len >= 2, got {batch_size}, {seq_len}")
        # each task states its longest example (one sample, for tasks of one length)
        longest = max(t.max_text_len for t in tasks)
        if longest > seq_len + 1:
            raise ValueError(f"seq_len {seq_len} is too short for one example of {longest} tokens")
        if weights is not None and (len(weights) != len(tasks) or min(weights) < 0 or sum(weights) <= 0):
            raise ValueError("weights must be one non-negative number per task, not all zero")
        self.tasks = list(tasks)
        self.weights = list(weights) if weights is not None else [1.0] * len(tasks)
        self.batch_size, self.seq_len = batch_size, seq_len
        self.rng = random.Random(seed)
        self.examples_seen = 0

    def _row(self) -> tuple[list[int], list[int]]:
        """One context of seq_len + 1 tokens and its answer mask, whole examples only."""
        tokens: list[int] = []
        is_answer: list[bool] = []
        room = self.seq_len + 1
        while True:
            task = self.rng.choices(self.tasks, weights=self.weights)[0]
            ex = task.sample_train(self.rng)
            prompt, rest = encode(ex.prompt), encode(ex.answer + "\n")
            if len(tokens) + len(prompt) + len(rest) > room:
                if not tokens:  # a task understated its longest example (Task.max_text_len)
                    raise ValueError(f"an example of task {task.name} has "
                                     f"{len(prompt) + len(rest)} tokens, more than the context "
                                     f"({room}) and than the task's max_text_len "
                                     f"({task.max_text_len})")
                break
            tokens += prompt + rest
            self.examples_seen += 1
            is_answer += [False] * len(prompt) + [True] * len(rest)
        pad = room - len(tokens)
        return tokens + [PAD_ID] * pad, is_answer + [False] * pad

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, y), both (batch_size, seq_len) int64; y is -100 where there is no answer token."""
        rows, masks = zip(*(self._row() for _ in range(self.batch_size)))
        data = torch.tensor(rows, dtype=torch.long)          # (B, T+1)
        answer = torch.tensor(masks, dtype=torch.bool)[:, 1:]  # target position t predicts token t+1
        x = data[:, :-1]
        y = data[:, 1:].masked_fill(~answer, IGNORE_INDEX)
        return x, y

    def __iter__(self):
        while True:
            yield self.next_batch()

    def state_dict(self) -> dict:
        return {"rng": self.rng.getstate(), "examples_seen": self.examples_seen}

    def load_state_dict(self, state: dict) -> None:
        self.rng.setstate(state["rng"])
        self.examples_seen = state.get("examples_seen", 0)  # absent in checkpoints before it

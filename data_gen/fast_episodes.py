"""The episode stream (data_gen.icl.EpisodeStream) built with numpy, whole batches at a time.

Same contract as EpisodeStream and FastTrainStream (tested in tests/test_fast_episodes.py):
- every row is one episode: a task drawn by weight and, for a hidden-rule task, one of its
  training rules, then whole examples of that task (and rule) packed from position 0 until the
  next would not fit, then padding;
- seeded and deterministic; evaluation problems are never produced (held-out (rule, problem)
  combinations are rejected and redrawn; held-out rules are never drawn);
- targets are the next token at answer positions (answer and end token), -100 elsewhere;
- `state_dict()` / `load_state_dict()` carry the generator's state into checkpoints.

Every hidden-rule task has one example length, so a row of task t holds room // length examples:
the batch is built per task in one vectorised call (`episodes`), each example drawn with its row's
rule. Vectorised: `icl-op<n>`, `icl-rule<p>` and `icl-recall<m>` (a fresh map per row); a plain
task in the mixture uses
data_gen.fast_stream's sampler for it. A mixture holding a task whose examples vary in length
falls back to EpisodeStream row by row, each batch seeded from this stream's generator.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .fast_stream import NumpyStream, const_tokens, digits, one_length, sampler_for
from .icl import HIDDEN_OPS, EpisodeStream, HiddenOpTask, HiddenRuleTask, LinearRuleTask
from .recall import KEYS, VALUES, RecallTask
from .task import Task
from .tokenizer import PAD_ID, STOI

VECTORISED = (HiddenOpTask, LinearRuleTask, RecallTask)


def _held_out(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    if sorted_keys.size == 0:
        return np.zeros(keys.shape, dtype=bool)
    at = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    return sorted_keys[at] == keys


class _ListedRules:
    """Episodes of a task with a list of `n_rules` rules: one uniform rule per row, its examples
    drawn by `sample(rng, rule)` with the rule given per example."""

    def episodes(self, rng: np.random.Generator, n_rows: int, k: int) -> np.ndarray:
        """(n_rows * k, length) tokens: k examples of each row's rule, row by row."""
        rule = rng.integers(0, self.n_rules, n_rows, dtype=np.int64)
        return self.sample(rng, np.repeat(rule, k))


class _OpSampler(_ListedRules):
    """icl-op<n>: "x?y=" + sign + 2n digits + "\\n", the operation given per example."""

    def __init__(self, task: HiddenOpTask):
        self.task, n = task, task.digits
        self.top = 10 ** n
        self.ops = task.rule_list()
        index = {op: i for i, op in enumerate(self.ops)}
        self.eval_keys = np.array(sorted((index[op] * self.top + x) * self.top + y
                                         for op, x, y in task._eval_keys), dtype=np.int64)
        self.answer_start = 2 * n + 2
        self.length = self.answer_start + 2 * n + 2
        self.n_rules = len(self.ops)

    def sample(self, rng: np.random.Generator, rule: np.ndarray) -> np.ndarray:
        n, top, m = self.task.digits, self.top, rule.size
        x = rng.integers(0, top, m, dtype=np.int64)
        y = rng.integers(0, top, m, dtype=np.int64)
        bad = _held_out(self.eval_keys, (rule * top + x) * top + y)
        while bad.any():  # rejection, as in HiddenOpTask.sample_with_rule
            k = int(bad.sum())
            x[bad] = rng.integers(0, top, k, dtype=np.int64)
            y[bad] = rng.integers(0, top, k, dtype=np.int64)
            bad = _held_out(self.eval_keys, (rule * top + x) * top + y)
        value = np.zeros(m, dtype=np.int64)
        for i, op in enumerate(self.ops):
            mine = rule == i
            value[mine] = HIDDEN_OPS[op](x[mine], y[mine])
        sign = np.where(value < 0, STOI["-"], STOI["+"])[:, None]
        return np.concatenate([digits(x, n), const_tokens("?", m), digits(y, n), const_tokens("=", m), sign,
                               digits(np.abs(value), 2 * n), const_tokens("\n", m)], axis=1)


class _LinearRuleSampler(_ListedRules):
    """icl-rule<p>: "x:y=" + z, z = (a*x + b*y) mod p, each operand and z in `width` digits."""

    def __init__(self, task: LinearRuleTask):
        self.task = task
        self.rules = np.asarray(task.rule_list(), dtype=np.int64)          # (R, 2): a, b
        self.pairs = np.asarray(task._pairs, dtype=np.int64)               # (P, 2): x, y
        rule_index = {tuple(r): i for i, r in enumerate(task.rule_list())}
        pair_index = {tuple(p): i for i, p in enumerate(task._pairs)}
        P = len(self.pairs)
        self.eval_keys = np.array(sorted(rule_index[r] * P + pair_index[xy]
                                         for r, xy in task._eval_keys if r in rule_index),
                                  dtype=np.int64)
        w = task.width
        self.answer_start = 2 * w + 2
        self.length = self.answer_start + w + 1
        self.n_rules = len(self.rules)

    def sample(self, rng: np.random.Generator, rule: np.ndarray) -> np.ndarray:
        P, m, w, p = len(self.pairs), rule.size, self.task.width, self.task.p
        pick = rng.integers(0, P, m, dtype=np.int64)
        bad = _held_out(self.eval_keys, rule * P + pick)
        while bad.any():  # rejection, as in LinearRuleTask.sample_with_rule
            pick[bad] = rng.integers(0, P, int(bad.sum()), dtype=np.int64)
            bad = _held_out(self.eval_keys, rule * P + pick)
        x, y = self.pairs[pick, 0], self.pairs[pick, 1]
        a, b = self.rules[rule, 0], self.rules[rule, 1]
        z = (a * x + b * y) % p
        return np.concatenate([digits(x, w), const_tokens(":", m), digits(y, w), const_tokens("=", m),
                               digits(z, w), const_tokens("\n", m)], axis=1)


class _PlainSampler(_ListedRules):
    """A plain task in an episode mixture: its fast_stream sampler, rules ignored."""

    n_rules = 1

    def __init__(self, task: Task):
        self.inner = sampler_for(task)
        self.length, self.answer_start = self.inner.length, self.inner.answer_start

    def sample(self, rng: np.random.Generator, rule: np.ndarray) -> np.ndarray:
        return self.inner.sample(rng, rule.size)


class _RecallSampler:
    """icl-recall<m>: a fresh map of m distinct letters to digits per row, then "key=value\\n"
    pairs of it drawn with replacement (data_gen.recall)."""

    length, answer_start = 4, 2

    def __init__(self, task: RecallTask):
        self.m = task.m
        self.key_ids = np.array([STOI[c] for c in KEYS], dtype=np.int64)

    def episodes(self, rng: np.random.Generator, n_rows: int, k: int) -> np.ndarray:
        keys = np.argsort(rng.random((n_rows, len(KEYS))), axis=1)[:, : self.m]  # distinct
        values = rng.integers(0, VALUES, (n_rows, self.m), dtype=np.int64)
        pick = rng.integers(0, self.m, (n_rows, k), dtype=np.int64)
        key = np.take_along_axis(keys, pick, axis=1).reshape(-1)
        value = np.take_along_axis(values, pick, axis=1).reshape(-1)
        m = key.size
        return np.concatenate([self.key_ids[key][:, None], const_tokens("=", m), digits(value, 1),
                               const_tokens("\n", m)], axis=1)


def episode_sampler_for(task: Task):
    if type(task) is RecallTask:
        return _RecallSampler(task)
    if type(task) is HiddenOpTask:
        return _OpSampler(task)
    if type(task) is LinearRuleTask:
        return _LinearRuleSampler(task)
    if isinstance(task, HiddenRuleTask):
        raise ValueError(f"no vectorised sampler for hidden-rule task {task.name}")
    return _PlainSampler(task)


class FastEpisodeStream(NumpyStream):
    KIND = "fast-episodes"

    def __init__(self, tasks: Sequence[Task], batch_size: int, seq_len: int, seed: int,
                 weights: Sequence[float] | None = None):
        super().__init__(tasks, batch_size, seq_len, seed, weights)
        if not all(type(t) in VECTORISED or
                   (not isinstance(t, HiddenRuleTask) and one_length(t)) for t in self.tasks):
            self._pack_row_by_row(EpisodeStream, weights)
            return
        self.samplers = [episode_sampler_for(t) for t in self.tasks]
        self.per_row = np.array([self.room // s.length for s in self.samplers], dtype=np.int64)
        if self.per_row.min() < 1:
            longest = max(s.length for s in self.samplers)
            raise ValueError(f"seq_len {seq_len} is too short for one example of {longest} tokens")

    def _build(self) -> tuple[np.ndarray, np.ndarray]:
        B, room = self.batch_size, self.room
        task_of_row = self.rng.choice(len(self.tasks), size=B, p=self.probs)
        data = np.full((B, room), PAD_ID, dtype=np.int64)
        answer = np.zeros((B, room), dtype=bool)
        for t, sampler in enumerate(self.samplers):
            rows = np.nonzero(task_of_row == t)[0]
            if rows.size == 0:
                continue
            k, length = int(self.per_row[t]), sampler.length
            examples = sampler.episodes(self.rng, rows.size, k)  # k examples per row's rule
            data[rows, : k * length] = examples.reshape(rows.size, k * length)
            mask = np.zeros(length, dtype=bool)
            mask[sampler.answer_start:] = True
            answer[rows, : k * length] = np.tile(mask, k)
            self.examples_seen += rows.size * k
        return data, answer

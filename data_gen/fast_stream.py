"""The training stream built with numpy, whole batches at a time: the same contract as
`data_gen.stream.TrainStream`, fast enough to keep a GPU fed.

Contract (shared with TrainStream, tested in tests/test_fast_stream.py):
- seeded and deterministic: the same seed gives the same batches in any process;
- evaluation problems are never produced (each task's held-out pairs are rejected and redrawn);
- every row holds whole examples, packed from position 0 until the next drawn one would not fit,
  then padding; targets are the next token at answer positions (answer and end token), -100
  elsewhere, so the loss is on answers only;
- `state_dict()` / `load_state_dict()` carry the generator's state into checkpoints.
The two streams draw different (equally valid) sequences from one seed: a run's stream is
recorded in its config and a resumed run keeps it.

How a batch is built: the task of every slot of every row is drawn at once (a row has at most
room // shortest-example slots); each task's lengths are fixed, so a cumulative sum says which slots
fit. Then each task generates all its fitting examples in one vectorised call (operands, answers,
digits by integer division) and they are scattered into the rows at their offsets.

Vectorised tasks: n-digit add, sub and mul for n <= 9, plain and reversed, and every
modular task. Any other task of one example length (a scratchpad format, larger digit counts, a
task added later) goes through its own Python `sample_train`, fed from this stream's generator:
still deterministic and free of evaluation problems, only slower. A mixture with a task whose
examples vary in length (instruction templates, say) is packed row by row as TrainStream packs it,
each batch seeded from this stream's generator: the same contract, at the Python stream's speed.
Episode rows (one hidden rule per row, the icl sweep) have their own numpy stream,
data_gen.fast_episodes.FastEpisodeStream; data_gen.make_stream picks between the four.
"""
from __future__ import annotations

import random
from typing import Sequence

import numpy as np
import torch

from .arithmetic import ArithmeticTask
from .modular import MOD_OPERATIONS, ModularTask
from .stream import TrainStream
from .task import Task
from .tokenizer import PAD_ID, STOI, encode

IGNORE_INDEX = -100
_DIGIT_ID = np.array([STOI[str(d)] for d in range(10)], dtype=np.int64)


# the four digits of every value 0..9999 as token ids: one integer division per four digits
_FOUR_DIGITS = _DIGIT_ID[(np.arange(10_000)[:, None] // np.array([1000, 100, 10, 1])[None, :]) % 10]


def digits(values: np.ndarray, width: int) -> np.ndarray:
    """(n,) non-negative int64 -> (n, width) token ids of their zero-padded decimal digits."""
    chunks = []
    rest = values
    for _ in range(-(-width // 4)):
        rest, low = np.divmod(rest, 10_000)
        chunks.append(_FOUR_DIGITS[low])
    return np.concatenate(chunks[::-1], axis=1)[:, -width:]


def const_tokens(token: str, n: int) -> np.ndarray:
    """(n, len(token)) ids of a fixed piece of text, as a broadcast view (no copy)."""
    return np.broadcast_to(np.array(encode(token), dtype=np.int64), (n, len(token)))


class _Sampler:
    """Generates n training examples of one task as an (n, length) array of token ids."""
    length: int
    answer_start: int  # first answer position; the answer and the end token follow the prompt

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        raise NotImplementedError


class _ArithmeticSampler(_Sampler):
    def __init__(self, task: ArithmeticTask):
        self.task, n = task, task.digits
        self.top = 10 ** n
        self.eval_keys = np.array(sorted(a * self.top + b for a, b in task._eval_keys), dtype=np.int64)
        self.answer_start = 2 * n + 2
        self.length = self.answer_start + task.answer_len + 1

    def _pairs(self, rng, n):
        a = rng.integers(0, self.top, n, dtype=np.int64)
        b = rng.integers(0, self.top, n, dtype=np.int64)
        bad = self._held_out(a * self.top + b)
        while bad.any():  # rejection, as in ArithmeticTask.sample_train: at most 1/4 is held out
            k = int(bad.sum())
            a[bad] = rng.integers(0, self.top, k, dtype=np.int64)
            b[bad] = rng.integers(0, self.top, k, dtype=np.int64)
            bad = self._held_out(a * self.top + b)
        return a, b

    def _held_out(self, keys: np.ndarray) -> np.ndarray:
        at = np.minimum(np.searchsorted(self.eval_keys, keys), len(self.eval_keys) - 1)
        return self.eval_keys[at] == keys

    def sample(self, rng, n):
        t, d = self.task, self.task.digits
        a, b = self._pairs(rng, n)
        symbol = {"add": "+", "sub": "-", "mul": "*"}[t.op]
        if t.op == "add":
            answer = digits(a + b, d + 1)
        elif t.op == "mul":
            answer = digits(a * b, 2 * d)
        else:
            diff = a - b
            answer = digits(np.abs(diff), d)
        if t.fmt == "reversed":
            answer = answer[:, ::-1]
        parts = [digits(a, d), const_tokens(symbol, n), digits(b, d), const_tokens("=", n)]
        if t.op == "sub":
            sign = np.where(diff < 0, STOI["-"], STOI["+"])[:, None]
            parts.append(sign)
        parts += [answer, const_tokens("\n", n)]
        return np.concatenate(parts, axis=1)


class _ModularSampler(_Sampler):
    def __init__(self, task: ModularTask):
        self.task = task
        self.pairs = np.asarray(task._train_pairs, dtype=np.int64)
        w = task.width
        self.answer_start = 2 * w + 2 + len(str(task.p)) + 1
        self.length = self.answer_start + w + 1
        if task.op == "div":
            self.inverse = np.zeros(task.p, dtype=np.int64)
            self.inverse[1:] = [pow(b, task.p - 2, task.p) for b in range(1, task.p)]

    def sample(self, rng, n):
        t, w, p = self.task, self.task.width, self.task.p
        chosen = self.pairs[rng.integers(0, len(self.pairs), n)]
        a, b = chosen[:, 0], chosen[:, 1]
        if t.op == "div":
            z = (a * self.inverse[b]) % p
        else:
            z = MOD_OPERATIONS[t.op][1](a, b, p)  # the task's own formula, on arrays
        answer = digits(z, w)
        if t.fmt == "reversed":
            answer = answer[:, ::-1]
        symbol = MOD_OPERATIONS[t.op][0]
        return np.concatenate([digits(a, w), const_tokens(symbol, n), digits(b, w), const_tokens(f"%{p}=", n),
                               answer, const_tokens("\n", n)], axis=1)


class _PythonSampler(_Sampler):
    """Any task of one example length, through its own sample_train; the Random is seeded from the
    stream's generator."""

    def __init__(self, task: Task):
        self.task = task
        example = task.sample_train(random.Random(0))
        self.length = len(example.text)
        self.answer_start = len(example.prompt)

    def sample(self, rng, n):
        py = random.Random(int(rng.integers(0, 2 ** 63)))
        rows = []
        for _ in range(n):
            ex = self.task.sample_train(py)
            if len(ex.prompt) != self.answer_start or len(ex.text) != self.length:
                raise ValueError(f"task {self.task.name} wrote an example of another length than its "
                                 f"first ({len(ex.text)} tokens, not {self.length}); a task of varying "
                                 f"lengths must say so through max_text_len")
            rows.append(encode(ex.text))
        return np.array(rows, dtype=np.int64).reshape(n, self.length)


def one_length(task: Task, samples: int = 16) -> bool:
    """Whether every example of `task` has one length: a few samples agree with max_text_len."""
    lengths = {len(task.sample_train(random.Random(s)).text) for s in range(samples)}
    declared = getattr(task, "max_text_len", None)
    return len(lengths) == 1 and declared in (None, next(iter(lengths)))


def sampler_for(task: Task) -> _Sampler:
    if isinstance(task, ArithmeticTask) and type(task) is ArithmeticTask and task.fmt in ("plain", "reversed") \
            and task.digits <= 9:  # a * 10**n + b, the held-out key, fits int64
        return _ArithmeticSampler(task)
    if isinstance(task, ModularTask) and type(task) is ModularTask and task.fmt in ("plain", "reversed"):
        return _ModularSampler(task)
    return _PythonSampler(task)


class NumpyStream:
    """What the numpy streams share: arguments checked, the generator, a row-by-row fallback for
    mixtures they cannot vectorise, (x, y) from a batch of token rows and answer flags, and the
    state a checkpoint carries. A subclass sets KIND and builds batches in `_build`."""

    KIND = ""

    def __init__(self, tasks: Sequence[Task], batch_size: int, seq_len: int, seed: int,
                 weights: Sequence[float] | None = None):
        if not tasks:
            raise ValueError(f"{type(self).__name__} needs at least one task")
        if batch_size < 1 or seq_len < 2:
            raise ValueError(f"batch_size must be >= 1 and seq_len >= 2, got {batch_size}, {seq_len}")
        if weights is not None and (len(weights) != len(tasks) or min(weights) < 0 or sum(weights) <= 0):
            raise ValueError("weights must be one non-negative number per task, not all zero")
        self.tasks = list(tasks)
        self.batch_size, self.seq_len = batch_size, seq_len
        self.rng = np.random.default_rng(seed)
        self.examples_seen = 0
        self.room = seq_len + 1
        self._rows = None
        w = np.asarray(weights if weights is not None else [1.0] * len(tasks), dtype=np.float64)
        self.probs = w / w.sum()

    def _pack_row_by_row(self, stream_class, weights) -> None:
        """Leave vectorising to `stream_class` (a Python stream), each batch seeded from this
        stream's generator: still deterministic and resumable, at the Python stream's speed."""
        self._rows = stream_class(self.tasks, self.batch_size, self.seq_len, seed=0, weights=weights)

    def _build(self) -> tuple[np.ndarray, np.ndarray]:
        """One batch: token ids and answer flags, both (batch_size, seq_len + 1)."""
        raise NotImplementedError

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, y), both (batch_size, seq_len) int64; y is -100 where there is no answer token."""
        if self._rows is not None:
            self._rows.rng.seed(int(self.rng.integers(0, 2 ** 63)))
            before = self._rows.examples_seen
            x, y = self._rows.next_batch()
            self.examples_seen += self._rows.examples_seen - before
            return x, y
        data, answer = self._build()
        data_t = torch.from_numpy(data)
        x = data_t[:, :-1]
        y = data_t[:, 1:].masked_fill(~torch.from_numpy(answer[:, 1:]), IGNORE_INDEX)
        return x.contiguous(), y

    def __iter__(self):
        while True:
            yield self.next_batch()

    def state_dict(self) -> dict:
        return {"kind": self.KIND, "rng": self.rng.bit_generator.state,
                "examples_seen": self.examples_seen}

    def load_state_dict(self, state: dict) -> None:
        if state.get("kind") != self.KIND:
            raise ValueError(f"this checkpoint was written by another stream than "
                             f"{type(self).__name__} ({state.get('kind') or 'a Python stream'}); "
                             f"resume it with that stream")
        self.rng.bit_generator.state = state["rng"]
        self.examples_seen = state.get("examples_seen", 0)


class FastTrainStream(NumpyStream):
    KIND = "fast"

    def __init__(self, tasks: Sequence[Task], batch_size: int, seq_len: int, seed: int,
                 weights: Sequence[float] | None = None):
        super().__init__(tasks, batch_size, seq_len, seed, weights)
        if not all(one_length(t) for t in self.tasks):  # examples of varying length
            self._pack_row_by_row(TrainStream, weights)
            return
        self.samplers = [sampler_for(t) for t in self.tasks]
        self.lengths = np.array([s.length for s in self.samplers], dtype=np.int64)
        longest = int(self.lengths.max())
        if longest > seq_len + 1:
            raise ValueError(f"seq_len {seq_len} is too short for one example of {longest} tokens")
        self.slots = self.room // int(self.lengths.min()) + 1

    def _build(self) -> tuple[np.ndarray, np.ndarray]:
        B, room = self.batch_size, self.room
        choice = self.rng.choice(len(self.tasks), size=(B, self.slots), p=self.probs)
        lengths = self.lengths[choice]
        ends = np.cumsum(lengths, axis=1)
        fits = ends <= room  # monotone: the first slot that does not fit ends the row
        starts = ends - lengths
        data = np.full((B, room), PAD_ID, dtype=np.int64)
        answer = np.zeros((B, room), dtype=bool)
        flat_data, flat_answer = data.reshape(-1), answer.reshape(-1)  # views of the same memory
        for t, sampler in enumerate(self.samplers):
            rows, slots = np.nonzero(fits & (choice == t))
            if rows.size == 0:
                continue
            examples = sampler.sample(self.rng, rows.size)
            # flat positions of every token of every example: row * room + start + offset
            flat = (rows * room + starts[rows, slots])[:, None] + np.arange(sampler.length)[None, :]
            flat_data[flat] = examples
            flat_answer[flat[:, sampler.answer_start:]] = True
        self.examples_seen += int(fits.sum())
        return data, answer

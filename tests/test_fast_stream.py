"""data_gen.fast_stream: every example it packs is the task's own encoding of a training problem,
the loss mask covers exactly the answers, and it is deterministic and resumable."""
import random
import re

import pytest
import torch

from data_gen import IGNORE_INDEX, make_task
from data_gen.fast_stream import FastTrainStream, _PythonSampler, sampler_for
from data_gen.task import Example, Task
from data_gen.tokenizer import EOS_ID, PAD_ID, decode

TASKS = ["add1", "add3", "add8", "add17", "sub1", "sub4", "mul2", "mul3", "mul9", "add3-rev",
         "sub3-rev", "mul2-rev", "mod7-add", "mod97-sub", "mod97-mul", "mod97-div", "mod97-poly",
         "mod113-div-rev", "mod10-add", "add3-scratch", "sub2-scratch", "mul2-scratch"]
_PROBLEM = re.compile(r"^(\d+)([-+*/^])(\d+)(%\d+)?=$")


def examples_of(x: torch.Tensor, y: torch.Tensor):
    """Split each row back into (prompt, answer) pairs using the targets: a prompt is what
    precedes an answer, the answer runs to the end token. Checks the mask on the way."""
    for row_x, row_y in zip(x.tolist(), y.tolist()):
        text = decode(row_x)
        masked = [i for i, t in enumerate(row_y) if t != IGNORE_INDEX]
        # every target equals the next input token, where there is one
        for i in masked[:-1]:
            assert i + 1 >= len(row_x) or row_y[i] == row_x[i + 1]
        start = 0
        for piece in text.split("\n")[:-1]:
            prompt = piece[: piece.index("=") + 1]
            yield prompt, piece[len(prompt):], start
            start += len(piece) + 1


@pytest.mark.parametrize("name", TASKS)
def test_examples_are_the_tasks_own_encodings_and_never_evaluation_problems(name):
    task = make_task(name, eval_size=20 if name[-1] == "1" and name[:3] in ("add", "sub") else 500)
    stream = FastTrainStream([task], batch_size=8, seq_len=96, seed=3)
    eval_prompts = {ex.prompt for ex in task.eval_set()}
    seen = 0
    for _ in range(5):
        x, y = stream.next_batch()
        for prompt, answer, start in examples_of(x, y):
            m = _PROBLEM.match(prompt)
            assert m, prompt
            a, b = int(m.group(1)), int(m.group(3))
            assert Example(prompt, answer) == task.encode(a, b)   # the task's own (Python) encoder
            assert prompt not in eval_prompts
            seen += 1
    assert seen > 0


def test_loss_mask_covers_answers_and_end_tokens_only():
    task = make_task("add3")                  # "123+045=0168\n": 8 prompt, 4 answer, 1 end
    stream = FastTrainStream([task], batch_size=4, seq_len=40, seed=0)
    x, y = stream.next_batch()
    full = torch.cat([x, torch.full((4, 1), PAD_ID)], dim=1)
    for r in range(4):
        targets = [i for i, t in enumerate(y[r].tolist()) if t != IGNORE_INDEX]
        # rows hold 3 whole examples of 13 tokens (41 = 3*13 + 2 pad), answers at 8..12 of each
        expected = [13 * k + j - 1 for k in range(3) for j in range(8, 13)]
        assert targets == expected
        assert decode(full[r, 39:]) == ""     # the two padding tokens


def test_mixture_rows_pack_until_the_next_example_would_not_fit():
    tasks = [make_task("add8"), make_task("mod97-div"), make_task("mul2")]
    stream = FastTrainStream(tasks, batch_size=64, seq_len=64, seed=1)
    x, y = stream.next_batch()
    lengths = [sampler_for(t).length for t in tasks]
    for row in x.tolist():
        used = len(decode(row))
        # a row stops at the first drawn example that does not fit: had the room left been as long
        # as the longest example, whatever was drawn next would have fitted
        assert 65 - used < max(lengths)
    counts = {t.name: 0 for t in tasks}
    for prompt, _, _ in examples_of(x, y):
        symbol = _PROBLEM.match(prompt).group(2)
        counts[{"+": "add8", "/": "mod97-div", "*": "mul2"}[symbol]] += 1
    assert all(c > 0 for c in counts.values())


def test_same_seed_same_batches_and_resume_from_state():
    tasks = [make_task("add3"), make_task("mod97-add")]
    a = FastTrainStream(tasks, 4, 64, seed=5)
    b = FastTrainStream(tasks, 4, 64, seed=5)
    for _ in range(3):
        xa, ya = a.next_batch()
        xb, yb = b.next_batch()
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    state = a.state_dict()
    expected = [a.next_batch() for _ in range(2)]
    c = FastTrainStream(tasks, 4, 64, seed=99)
    c.load_state_dict(state)
    for xe, ye in expected:
        xc, yc = c.next_batch()
        assert torch.equal(xe, xc) and torch.equal(ye, yc)
    assert c.examples_seen == a.examples_seen
    assert not torch.equal(FastTrainStream(tasks, 4, 64, seed=6).next_batch()[0], expected[0][0])


def test_other_tasks_go_through_their_own_sampler():
    task = make_task("add18")  # beyond int64 for the vectorised path
    assert isinstance(sampler_for(task), _PythonSampler)
    x, y = FastTrainStream([task], 2, 80, seed=0).next_batch()
    for prompt, answer, _ in examples_of(x, y):
        m = _PROBLEM.match(prompt)
        assert Example(prompt, answer) == task.encode(int(m.group(1)), int(m.group(3)))


class _Ragged(Task):
    name, answer_len, eval_size = "ragged", 1, 1
    max_text_len = 8  # "11111=" + "1" + end token

    def sample_train(self, rng: random.Random) -> Example:
        return Example("1" * rng.randint(1, 5) + "=", "1")


def test_tasks_of_varying_length_are_packed_row_by_row_deterministically():
    tasks = [_Ragged(), make_task("add2")]
    a = FastTrainStream(tasks, 4, 32, seed=0)
    assert a._rows is not None
    x, y = a.next_batch()
    pieces = [p for row in x.tolist() for p in decode(row).split("\n")[:-1]]
    assert any(re.fullmatch(r"1{1,5}=1", p) for p in pieces)
    assert all(re.fullmatch(r"1{1,5}=1|\d\d\+\d\d=\d{3}", p) for p in pieces), pieces
    assert a.examples_seen == int((y == EOS_ID).sum())  # every example ends in a target end token
    state = a.state_dict()
    nxt = a.next_batch()
    b = FastTrainStream(tasks, 4, 32, seed=7)
    b.load_state_dict(state)
    assert torch.equal(b.next_batch()[0], nxt[0])
    assert not torch.equal(FastTrainStream(tasks, 4, 32, seed=1).next_batch()[0], x)


def test_a_task_that_hides_varying_lengths_is_caught_when_it_shows_them():
    class Liar(_Ragged):
        name = "liar"

        def sample_train(self, rng):
            return Example("1=" if rng.random() < 0.999 else "11=", "1")

    Liar.max_text_len = 4
    stream = FastTrainStream([Liar()], 64, 32, seed=0)
    with pytest.raises(ValueError, match="liar.*max_text_len"):
        for _ in range(50):
            stream.next_batch()


def test_bad_arguments():
    with pytest.raises(ValueError, match="too short"):
        FastTrainStream([make_task("add8")], 2, 10, seed=0)
    with pytest.raises(ValueError, match="weights"):
        FastTrainStream([make_task("add2")], 2, 32, seed=0, weights=[0])
    with pytest.raises(ValueError, match="TrainStream"):
        FastTrainStream([make_task("add2")], 2, 32, seed=0).load_state_dict({"rng": None})


def test_a_sweep_on_the_fast_stream_trains_and_resumes_from_its_checkpoint(tmp_path):
    """The runner's stream choice reaches training; a unit stopped mid-run continues on the same
    numpy generator state and ends with the rows an uninterrupted run writes."""
    from dataclasses import replace

    from sweeps.runner import make_stream, run_sweep
    from sweeps.catalog import tiny

    assert isinstance(make_stream("auto", "cpu", [make_task("add2")], 2, 32, 0), __import__(
        "data_gen").TrainStream)
    assert isinstance(make_stream("auto", "cuda", [make_task("add2")], 2, 32, 0), FastTrainStream)
    cfg = replace(tiny("cpu"), stream="fast", sizes=("25k",))
    cfg = replace(cfg, train=replace(cfg.train, checkpoint_every=10))
    whole = run_sweep(cfg, tmp_path / "whole", "cpu", progress=False, log=lambda _: None)

    import minigpt.train as train_module
    calls = {"n": 0}
    original = train_module.Trainer._train_step

    def stop_after_15(self):
        calls["n"] += 1
        if calls["n"] > 15:
            raise KeyboardInterrupt
        return original(self)

    train_module.Trainer._train_step = stop_after_15
    try:
        with pytest.raises(KeyboardInterrupt):
            run_sweep(cfg, tmp_path / "cut", "cpu", progress=False, log=lambda _: None)
    finally:
        train_module.Trainer._train_step = original
    resumed = run_sweep(cfg, tmp_path / "cut", "cpu", progress=False, log=lambda _: None)
    strip = lambda rows: sorted(({k: v for k, v in r.items() if k != "wall_time_s"}  # noqa: E731
                                 for r in rows), key=lambda r: r["task"])
    assert strip(resumed) == strip(whole)

"""data_gen.fast_episodes: every row is one episode of one task and one training rule, every
example is the task's own encoding of a training problem, the loss mask covers the answers, and
the stream is deterministic and resumable."""
import re

import numpy as np
import pytest
import torch

from data_gen import IGNORE_INDEX, make_stream, make_task
from data_gen.fast_episodes import FastEpisodeStream, episode_sampler_for
from data_gen.icl import EpisodeStream
from data_gen.task import Example
from data_gen.tokenizer import PAD_ID, decode

_OP = re.compile(r"^(\d+)\?(\d+)=$")
_RULE = re.compile(r"^(\d+):(\d+)=$")


def episodes(x: torch.Tensor, y: torch.Tensor):
    """Each row as a list of (prompt, answer), checking that the targets are exactly the answer
    tokens (answer and end token) and that each target is the next input token."""
    for row_x, row_y in zip(x.tolist(), y.tolist()):
        full = row_x + [None]
        last = [row_y[-1]] if row_y[-1] != IGNORE_INDEX else []  # a row filled to the last token
        text = decode([t for t in row_x + last if t != PAD_ID])
        pieces = text.split("\n")[:-1]
        out, pos, want = [], 0, []
        for piece in pieces:
            prompt = piece[: piece.index("=") + 1]
            out.append((prompt, piece[len(prompt):]))
            # targets sit at positions predicting the answer and its end token
            want += list(range(pos + len(prompt) - 1, pos + len(piece)))
            pos += len(piece) + 1
        got = [i for i, t in enumerate(row_y) if t != IGNORE_INDEX]
        assert got == [i for i in want if i < len(row_y)]
        assert all(row_y[i] == full[i + 1] for i in got if full[i + 1] is not None)
        yield out


@pytest.mark.parametrize("name", ["icl-op1", "icl-op2", "icl-rule7", "icl-rule29", "icl-rule97",
                                  "icl-rule7-new", "icl-rule11-t5"])
def test_every_row_is_one_training_rule_and_every_example_a_training_problem(name):
    task = make_task(name, eval_size=60)
    stream = FastEpisodeStream([task], batch_size=16, seq_len=64, seed=5)
    length = len(task.eval_set()[0].text)  # with its end token
    for _ in range(4):
        x, y = stream.next_batch()
        for row in episodes(x, y):
            assert len(row) == 65 // length  # packed until the next would not fit
            if name.startswith("icl-op"):
                items = [tuple(map(int, _OP.match(p).groups())) for p, _ in row]
                rules = [op for op in task.rule_list()
                         if all(task.encode(op, a, b) == Example(p, ans)
                                for (a, b), (p, ans) in zip(items, row))]
                # one operation explains the whole row, and for it no item is held out
                assert rules, row
                assert any(all((op, a, b) not in task._eval_keys for a, b in items) for op in rules)
            else:
                items = [tuple(map(int, _RULE.match(p).groups())) for p, _ in row]
                rules = [r for r in task.rule_list()
                         if all(task.encode(r, a, b) == Example(p, ans)
                                for (a, b), (p, ans) in zip(items, row))]
                assert rules, row
                assert not set(rules) & set(task.heldout_rules())
                assert any(all((r, xy) not in task._eval_keys for xy in items) for r in rules)


@pytest.mark.parametrize("name", ["icl-op2", "icl-rule7", "icl-rule29"])
def test_the_sampler_writes_the_tasks_own_encoding_for_the_given_rule(name):
    task = make_task(name, eval_size=200)
    sampler = episode_sampler_for(task)
    rng = np.random.default_rng(0)
    rule = rng.integers(0, sampler.n_rules, 3000)
    rows = sampler.sample(rng, rule)
    rules = task.rule_list()
    pattern = _OP if name.startswith("icl-op") else _RULE
    for r, tokens in zip(rule.tolist(), rows.tolist()):
        text = decode(tokens)
        prompt = text[: text.index("=") + 1]
        a, b = map(int, pattern.match(prompt).groups())
        assert Example(prompt, text[len(prompt):-1]) == task.encode(rules[r], a, b)
        key = (rules[r], a, b) if name.startswith("icl-op") else (rules[r], (a, b))
        assert key not in task._eval_keys


def test_held_out_problems_are_rejected_not_merely_rare():
    """icl-rule7 holds out a quarter of its (rule, pair) combinations: with 20000 draws a sampler
    that ignored them would produce thousands."""
    task = make_task("icl-rule7", eval_size=500)
    sampler = episode_sampler_for(task)
    rng = np.random.default_rng(1)
    rule = rng.integers(0, sampler.n_rules, 20000)
    rows = sampler.sample(rng, rule)
    rules = task.rule_list()
    keys = {(rules[r], tuple(map(int, _RULE.match(decode(t)[:4]).groups())))
            for r, t in zip(rule.tolist(), rows.tolist())}
    assert len(task._eval_keys) >= 300 and not keys & task._eval_keys


def test_mixture_weights_plain_tasks_determinism_and_resume():
    tasks = [make_task("icl-op2"), make_task("icl-rule7"), make_task("add2")]
    a = FastEpisodeStream(tasks, 32, 64, seed=9, weights=[1, 1, 2])
    b = FastEpisodeStream(tasks, 32, 64, seed=9, weights=[1, 1, 2])
    for _ in range(3):
        xa, ya = a.next_batch()
        xb, yb = b.next_batch()
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    state = a.state_dict()
    expected = [a.next_batch() for _ in range(2)]
    c = FastEpisodeStream(tasks, 32, 64, seed=0, weights=[1, 1, 2])
    c.load_state_dict(state)
    for want in expected:
        got = c.next_batch()
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
    assert c.examples_seen == a.examples_seen
    kinds = {"op": 0, "rule": 0, "add": 0}
    for _ in range(30):
        x, _ = a.next_batch()
        for row in x.tolist():
            text = decode([t for t in row if t != PAD_ID])
            kinds["op" if "?" in text else "rule" if ":" in text else "add"] += 1
    total = sum(kinds.values())
    assert abs(kinds["add"] / total - 0.5) < 0.06  # weight 2 of 4
    with pytest.raises(ValueError, match="another stream"):
        c.load_state_dict(EpisodeStream(tasks, 32, 64, seed=0).state_dict())


def test_make_stream_picks_the_fast_episode_stream_and_a_too_short_context_is_refused():
    tasks = [make_task("icl-op2")]
    assert isinstance(make_stream(tasks, 4, 64, 0, fast=True), FastEpisodeStream)
    assert isinstance(make_stream(tasks, 4, 64, 0, fast=False), EpisodeStream)
    with pytest.raises(ValueError, match="too short"):
        FastEpisodeStream(tasks, 4, 8, 0)


def test_stream_benchmark_prints_both_streams_side_by_side(capsys):
    from data_gen.bench import main

    assert main(["--seconds", "0.05"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "Python stream tok/s" in out[0] and "numpy stream tok/s" in out[0]
    assert len(out) == 4 and out[3].startswith("icl episodes")
    assert all(float(line.split()[-1]) > 0 for line in out[1:])


def test_an_icl_sweep_trains_and_resumes_on_the_fast_episode_stream(tmp_path):
    """The runner's checkpoints carry this stream's state: a unit stopped half-way and resumed
    gives the rows of an uninterrupted one."""
    from dataclasses import replace

    from minigpt.config import TrainConfig
    from minigpt.train import STOP_REQUESTED
    from sweeps.runner import run_sweep
    from sweeps.catalog import SWEEPS

    cfg = replace(SWEEPS["icl"]("cpu"), sizes=("25k",), seeds=(0,), stream="fast", eval_size=40,
                  shots=(0, 2), train=TrainConfig(steps=20, batch_size=8, seq_len=64,
                                                  warmup_steps=2, checkpoint_every=5))
    whole = run_sweep(cfg, tmp_path / "whole", "cpu", progress=False, log=lambda m: None)

    import sweeps.runner as runner
    original = runner.Trainer

    class Stopping(original):
        def _train_step(self, *a, **kw):  # request a stop once step 10 is done
            out = super()._train_step(*a, **kw)
            if self.step >= 10:
                STOP_REQUESTED.set()
            return out

    runner.Trainer = Stopping
    try:
        with pytest.raises(KeyboardInterrupt):
            run_sweep(cfg, tmp_path / "cut", "cpu", progress=False, log=lambda m: None)
    finally:
        runner.Trainer = original
        STOP_REQUESTED.clear()
    said = []
    resumed = run_sweep(cfg, tmp_path / "cut", "cpu", progress=False, log=said.append)
    assert any("from its checkpoint at step 11" in m for m in said), said  # resumed, not redone
    strip = lambda rows: sorted(({k: v for k, v in r.items() if k != "wall_time_s"} for r in rows),  # noqa: E731
                                key=lambda r: (r["task"], r["shots"]))
    assert strip(resumed) == strip(whole)

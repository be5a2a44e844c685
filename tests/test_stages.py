"""Staged training: the stream switches at the boundary, the lr restarts, a run stopped mid-stage
resumes in the right stage with the same result, shared pre-training changes nothing, and the
instructions sweep never trains a held-out phrasing or the held-out task in words."""
import math
from dataclasses import replace

import pytest
import torch

from data_gen import TrainStream, decode, make_task
from data_gen.staged import StagedStream
from minigpt.config import TrainConfig
from minigpt.train import STOP_REQUESTED
from sweeps.results import read_jsonl
from sweeps.runner import run_sweep
from sweeps.catalog import tiny
from sweeps.specs import Condition, Stage, SweepConfig
from sweeps.stages import SHARED_PREFIX, staged_lr


def _letters(x: torch.Tensor) -> bool:
    return any(ch.isalpha() for ch in decode(x.flatten()))


def test_staged_stream_switches_at_the_boundary_and_restores_its_stage():
    def make():
        return StagedStream([TrainStream([make_task("add2")], 2, 64, 0),
                             TrainStream([make_task("add2-words-k1")], 2, 64, 1)], [3, 5])
    stream = make()
    kinds = [_letters(stream.next_batch()[0]) for _ in range(5)]
    assert kinds == [False, False, False, True, True]
    assert [stream.stage_at(s) for s in (0, 2, 3, 4, 9)] == [0, 0, 1, 1, 1]
    # a checkpoint taken mid-stage 2 resumes in stage 2 with the same next batch
    stream = make()
    for _ in range(4):
        stream.next_batch()
    state = stream.state_dict()
    expected = stream.next_batch()[0]
    resumed = make()
    resumed.load_state_dict(state)
    assert resumed.step == 4 and resumed.stage == 1
    assert torch.equal(resumed.next_batch()[0], expected)
    with pytest.raises(ValueError, match="increasing"):
        StagedStream([TrainStream([make_task("add2")], 2, 64, 0)] * 2, [3, 3])


def test_stage_ends_and_validation():
    cond = Condition("c", stages=(Stage(("add2",), 0.8), Stage(("add2-words",), 0.2)))
    assert cond.stage_ends(1000) == [800, 1000]
    assert cond.stage_ends(2) == [1, 2]  # every stage gets at least one step
    with pytest.raises(ValueError, match="sum to 1"):
        Condition("c", stages=(Stage(("add2",), 0.8), Stage(("add2",), 0.3)))
    with pytest.raises(ValueError, match="one non-negative number per task"):
        Stage(("add2", "sub2"), 1.0, weights=(1.0,))
    with pytest.raises(ValueError, match="budget 'tokens'"):
        replace(staged_config(), budget="examples")
    with pytest.raises(ValueError, match="unknown task 'nope'"):
        staged_config((Condition("c", stages=(Stage(("nope",), 1.0),)),))


def test_lr_restarts_in_every_stage():
    train = TrainConfig(steps=100, warmup_steps=10, min_lr_frac=0.1)
    lr = staged_lr(train, 1.0, [80, 100])
    assert lr(0) == pytest.approx(0.1) and lr(9) == pytest.approx(1.0)
    assert lr(79) == pytest.approx(0.1, abs=0.01)     # stage 1 decayed to its floor
    assert lr(80) == pytest.approx(0.5)               # stage 2 warms up over 2 steps
    assert lr(81) == pytest.approx(1.0)
    assert lr(99) == pytest.approx(0.1, abs=0.02)


def staged_config(conditions=None, steps=12) -> SweepConfig:
    cfg = tiny("cpu")
    pre = Stage(("add2",), 0.5, name="pretrain")
    conditions = conditions or (Condition("tuned", stages=(pre, Stage(("add2-words-k1", "add2"),
                                                                      0.5, (2.0, 1.0))),
                                          eval_tasks=("add2-words-held", "add2-words-t04")),)
    return replace(cfg, name="staged", tasks=("add2",), sizes=("25k",), seeds=(0,),
                   conditions=conditions, eval_size=20,
                   train=replace(cfg.train, steps=steps, seq_len=64, batch_size=4, eval_every=0,
                                 checkpoint_every=0))


def _rows(run_dir):
    keep = ("condition", "task", "exact_match", "per_digit_acc", "answer_logprob", "final_loss",
            "steps", "tokens")
    return sorted(tuple(r[k] for k in keep) for r in read_jsonl(run_dir / "results.jsonl"))


def test_a_run_stopped_mid_stage_resumes_in_that_stage_with_the_same_result(tmp_path, monkeypatch):
    cfg = staged_config()
    quiet = dict(progress=False, log=lambda _: None)
    straight = run_sweep(cfg, tmp_path / "straight", "cpu", **quiet)
    assert {r["task"] for r in straight} == {"add2", "add2-words-held", "add2-words-t04"}
    assert all(r["steps"] == 12 for r in straight)

    original = StagedStream.next_batch

    def stop_at_step_9(self):
        if self.step == 9:  # in the middle of stage 2 (steps 6..11)
            STOP_REQUESTED.set()
        return original(self)

    monkeypatch.setattr(StagedStream, "next_batch", stop_at_step_9)
    try:
        with pytest.raises(KeyboardInterrupt):
            run_sweep(cfg, tmp_path / "stopped", "cpu", **quiet)
    finally:
        STOP_REQUESTED.clear()
    monkeypatch.setattr(StagedStream, "next_batch", original)
    state = torch.load(tmp_path / "stopped" / "ckpt" / "tuned-25k-s0.pt", weights_only=False)
    assert state["step"] == 10 and state["stream"]["step"] == 10  # the stage follows from this
    assert StagedStream([None, None], state["stream"]["bounds"]).stage_at(state["step"]) == 1
    logs = []
    run_sweep(cfg, tmp_path / "stopped", "cpu", progress=False, log=logs.append)
    assert any("resuming tuned-25k-s0 from its checkpoint at step 10" in m for m in logs)
    assert _rows(tmp_path / "stopped") == _rows(tmp_path / "straight")


def test_conditions_sharing_pre_training_match_training_from_scratch(tmp_path):
    pre = Stage(("add2",), 0.5, name="pretrain")
    a = Condition("a", stages=(pre, Stage(("add2",), 0.5)), eval_tasks=("add2-words-held",))
    b = Condition("b", stages=(pre, Stage(("add2-words-k3",), 0.5)), eval_tasks=("add2-words-held",))
    logs = []
    run_sweep(staged_config((a, b)), tmp_path / "both", "cpu", progress=False, log=logs.append)
    assert any("b-25k-s0 starts from the shared checkpoint at the end of stage 1" in m for m in logs)
    assert not list((tmp_path / "both" / "ckpt").glob(f"{SHARED_PREFIX}*"))  # cleaned up
    run_sweep(staged_config((b,)), tmp_path / "alone", "cpu", progress=False, log=lambda _: None)
    both = [r for r in _rows(tmp_path / "both") if r[0] == "b"]
    assert both == _rows(tmp_path / "alone")


def test_instructions_sweep_never_trains_held_out_phrasings_or_the_held_out_task_in_words():
    from data_gen.templates import parse_word_task_name
    from sweeps.catalog import SWEEPS

    from sweeps.stages import staged_stream

    for device in ("cpu", "cuda"):
        cfg = SWEEPS["instructions"](device)
        for cond in cfg.conditions:  # every stage's mixture fits the context (raises if not)
            staged_stream(cfg, cond, cfg.train.steps, seed=0)
        held_task = [t for t in cfg.tasks
                     if not any(s.startswith(f"{t}-words") for c in cfg.conditions
                                for st in c.stages for s in st.tasks)]
        assert len(held_task) == 1  # exactly one task is never tuned in words
        assert any(n.startswith(f"{held_task[0]}-words-t") for n in cfg.conditions[0].eval_tasks)
        for cond in cfg.conditions:
            assert len(cond.stages) == 2 and cond.stages[0] == cfg.conditions[0].stages[0]
            for name in (t for st in cond.stages for t in st.tasks):
                parsed = parse_word_task_name(name)
                if not parsed:
                    continue
                trained = set(make_task(name, eval_size=1).templates)
                held = set(make_task(f"{parsed[0]}-words-held", eval_size=1).templates)
                assert not trained & held, (cond.name, name)
                assert parsed[0] != held_task[0]
        ks = sorted(int(c.name.split("-k")[1].split("-")[0]) for c in cfg.conditions if "-k" in c.name)
        assert {1, 3, 10} <= set(ks)
    assert math.isclose(sum(s.fraction for s in cfg.conditions[1].stages), 1.0)

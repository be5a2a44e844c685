"""A plain-vs-scratchpad sweep end to end: rows, the token budget, interruption and resumption."""
import threading
import time
from dataclasses import replace

import pytest

from minigpt.train import STOP_REQUESTED
from sweeps.results import read_jsonl
from sweeps.runner import run_sweep, unit_steps
from sweeps.catalog import SWEEPS, scratchpad


def tiny_scratch(**changes):
    cfg = scratchpad("cpu")
    return replace(cfg, name="tiny-scratch", tasks=("add2",), sizes=("25k",), seeds=(0,),
                   train=replace(cfg.train, steps=16, batch_size=8, seq_len=32, warmup_steps=2,
                                 eval_every=8, checkpoint_every=4),
                   eval_size=20, curve_eval_size=10, **changes)


def _comparable(rows):
    return sorted(({k: v for k, v in r.items() if k != "wall_time_s"} for r in rows),
                  key=lambda r: (r["condition"], r["size"], r["seed"], r["task"]))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("scratch") / "run"
    return out, run_sweep(tiny_scratch(), out, "cpu", progress=False, log=lambda _: None)


def test_rows_carry_condition_metrics_and_examples_seen(reference):
    _, rows = reference
    by = {r["condition"]: r for r in rows}
    assert set(by) == {"plain", "scratchpad"}
    plain, scratch = by["plain"], by["scratchpad"]
    assert (plain["task"], scratch["task"]) == ("add2", "add2-scratch")
    assert plain["ability"] == scratch["ability"] == "add2"
    assert plain["n_eval"] == scratch["n_eval"] == 20
    assert plain["chance"] == scratch["chance"]          # the same final answer
    assert plain["answer_len"] == scratch["answer_len"] == 3
    # equal tokens; a scratchpad example is longer, so fewer of them were seen
    assert plain["tokens"] == scratch["tokens"] == 16 * 8 * 32 and plain["budget"] == "tokens"
    assert plain["examples"] > 2 * scratch["examples"] > 0
    for key in ("step_acc", "no_answer"):
        assert 0.0 <= scratch[key] <= 1.0 and key not in plain
    for r in rows:
        assert 0 <= r["exact_match"] <= r["per_digit_acc"] <= 1 and r["answer_logprob"] < 0
    curves = read_jsonl(reference[0] / "curves.jsonl")
    assert {(r["condition"], r["step"]) for r in curves} == {
        (c, s) for c in ("plain", "scratchpad") for s in (8, 16)}
    assert all("step_acc" in r for r in curves if r["condition"] == "scratchpad")


def test_an_example_budget_trains_the_scratchpad_longer():
    cfg = tiny_scratch(budget="examples")
    # "12+34=046\n" is 10 tokens, three to a 33-token row; its scratchpad form is 28, one to a row
    assert unit_steps(cfg, "plain") == 16 and unit_steps(cfg, "scratchpad") == 48


def test_interrupted_two_condition_sweep_resumes_to_the_same_rows(reference, tmp_path):
    out = tmp_path / "run"
    ckpt = out / "ckpt" / "scratchpad-25k-s0.pt"

    def stop_when_the_second_unit_is_half_done():
        deadline = time.time() + 120
        while not ckpt.exists() and time.time() < deadline:
            time.sleep(0.01)
        STOP_REQUESTED.set()

    watcher = threading.Thread(target=stop_when_the_second_unit_is_half_done, daemon=True)
    watcher.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            run_sweep(tiny_scratch(), out, "cpu", progress=False, log=lambda _: None)
    finally:
        watcher.join()
        STOP_REQUESTED.clear()
    partial = read_jsonl(out / "results.jsonl")
    assert [r["condition"] for r in partial] == ["plain"] and ckpt.exists()
    logs = []
    rows = run_sweep(tiny_scratch(), out, "cpu", progress=False, log=logs.append)
    assert any("1 of 2 runs already finished" in line for line in logs)
    assert any("resuming scratchpad-25k-s0 from its checkpoint" in line for line in logs)
    assert _comparable(rows) == _comparable(reference[1])  # same rows, none twice
    curves = read_jsonl(out / "curves.jsonl")
    keys = [(r["condition"], r["task"], r["step"]) for r in curves]
    assert len(keys) == len(set(keys)) == len(read_jsonl(reference[0] / "curves.jsonl"))


@pytest.mark.parametrize("device_type", ["cpu", "cuda"])
def test_the_named_sweep_compares_plain_and_scratchpad_on_equal_budgets(device_type):
    cfg = SWEEPS["scratchpad"](device_type)
    assert [c.name for c in cfg.conditions] == ["plain", "scratchpad"] and cfg.budget == "tokens"
    assert len(cfg.seeds) >= 2
    for c in cfg.conditions:  # every condition's examples fit the shared context
        from data_gen import make_task
        for name in c.tasks(cfg.tasks):
            assert make_task(name, eval_size=cfg.eval_size).max_text_len <= cfg.train.seq_len + 1
    if device_type == "cuda":
        assert "uncalibrated" in cfg.description

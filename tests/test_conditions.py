"""Conditions in a sweep: units, budgets, rows that name their condition, --conditions, merge."""
import json
from dataclasses import replace

import pytest

from data_gen import make_task
from sweeps.merge import merge_runs
from sweeps.results import read_jsonl
from sweeps.runner import examples_per_context, run_sweep, unit_steps
from sweeps.catalog import tiny
from sweeps.specs import Condition, SweepConfig, ability_of, task_in_format


def two_conditions(budget="tokens", steps=12) -> SweepConfig:
    cfg = tiny("cpu")
    return replace(cfg, name="tiny-two", tasks=("add2",), sizes=("25k",), seeds=(0,),
                   conditions=(Condition("plain"), Condition("reversed", fmt="rev")), budget=budget,
                   train=replace(cfg.train, steps=steps, eval_every=0), eval_size=20)


def test_task_names_in_a_format_and_back():
    assert task_in_format("add3", "") == "add3"
    assert task_in_format("add3", "rev") == "add3-rev"
    assert task_in_format("add3", "scratch") == "add3-scratch"
    assert ability_of("add3-rev") == ability_of("add3-scratch") == ability_of("add3") == "add3"
    with pytest.raises(ValueError, match="unknown task format 'cot'; valid: '', 'rev', 'scratch'"):
        Condition("x", fmt="cot")


@pytest.mark.parametrize("kwargs, message", [
    ({"conditions": (Condition("a"), Condition("a", fmt="rev"))}, "condition names must be unique"),
    ({"conditions": ()}, "at least one size, one task, one seed and one condition"),
    ({"budget": "flops"}, "unknown budget 'flops'; valid: tokens, examples"),
])
def test_bad_sweep_configs_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        replace(two_conditions(), **kwargs)


def test_condition_names_are_checked():
    with pytest.raises(ValueError, match=r"\[a-z0-9_-\]\+"):
        Condition("Plain Answers")


def test_units_put_conditions_side_by_side_at_each_size():
    cfg = replace(two_conditions(), sizes=("50k", "25k"), seeds=(0, 1))
    assert cfg.units() == [(c, s, seed) for s in ("25k", "50k") for seed in (0, 1)
                           for c in ("plain", "reversed")]


def test_examples_per_context_counts_packed_examples():
    # an add2 example "12+34=046\n" is 10 tokens; 65 tokens of context hold 6 whole ones
    assert examples_per_context([make_task("add2")], 4, 64) == 6


def test_an_example_budget_gives_longer_formats_more_steps(monkeypatch):
    import sweeps.runner as runner

    cfg = replace(two_conditions(budget="examples", steps=100),
                  conditions=(Condition("plain"), Condition("long", fmt="rev")))
    # reversed answers are as long as plain ones: the same steps
    assert unit_steps(cfg, "long") == unit_steps(cfg, "plain") == 100
    # a format packing 3x fewer examples per context needs 3x the steps for as many examples
    monkeypatch.setattr(runner, "examples_per_context",
                        lambda tasks, *a: 6.0 if tasks[0].name == "add2" else 2.0)
    assert unit_steps(cfg, "long") == 300 and unit_steps(cfg, "plain") == 100
    assert unit_steps(replace(cfg, budget="tokens"), "long") == 100


def test_two_conditions_end_to_end_rows_name_their_condition(tmp_path):
    cfg = two_conditions()
    rows = run_sweep(cfg, tmp_path / "run", "cpu", progress=False, log=lambda _: None)
    assert sorted((r["condition"], r["task"]) for r in rows) == [("plain", "add2"),
                                                                  ("reversed", "add2-rev")]
    for r in rows:
        assert r["ability"] == "add2" and r["n_eval"] == 20 and r["budget"] == "tokens"
        assert r["steps"] == 12
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert [c["name"] for c in config["conditions"]] == ["plain", "reversed"]


def test_conditions_run_as_parts_merge_into_one_run(tmp_path):
    cfg = two_conditions()
    for name in ("plain", "reversed"):
        part = replace(cfg, conditions=tuple(c for c in cfg.conditions if c.name == name))
        run_sweep(part, tmp_path / name, "cpu", progress=False, log=lambda _: None)
    merge_runs(tmp_path / "merged", [tmp_path / "plain", tmp_path / "reversed"])
    rows = read_jsonl(tmp_path / "merged" / "results.jsonl")
    assert sorted(r["condition"] for r in rows) == ["plain", "reversed"]
    config = json.loads((tmp_path / "merged" / "config.json").read_text())
    assert sorted(c["name"] for c in config["conditions"]) == ["plain", "reversed"]


def test_a_condition_run_alone_keeps_the_whole_sweeps_example_budget(monkeypatch):
    """Under an examples budget a part run with --conditions trains as it would in the whole sweep,
    so parts merge into the same run."""
    import sweeps.runner as runner
    from sweeps.run import apply_flags, build_parser
    from sweeps.rundir import config_record

    monkeypatch.setattr(runner, "examples_per_context",
                        lambda tasks, *a: 6.0 if tasks[0].name == "add2" else 2.0)
    cfg = replace(two_conditions(budget="examples", steps=100),
                  conditions=(Condition("plain"), Condition("long", fmt="rev")))
    parser = build_parser()
    args = parser.parse_args(["tiny", "--conditions", "long"])
    part = apply_flags(parser, args, cfg)
    assert [c.name for c in part.conditions] == ["long"]
    assert unit_steps(part, "long") == unit_steps(cfg, "long") == 300
    assert config_record(part, "cpu")["budget_reference"] == config_record(cfg, "cpu")["budget_reference"]
    assert "budget_reference" not in config_record(replace(cfg, budget="tokens"), "cpu")

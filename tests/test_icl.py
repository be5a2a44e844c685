"""In-context learning: hidden-rule tasks, k-shot prompts, the icl sweep's report, --shots.

References are computed here independently of data_gen.icl: rules are recovered from decoded text
by brute force over all (a, b), operations by Python's arithmetic, p-values and intervals by
scipy. The report is judged by the rule of sweeps.analysis.emergence: per (task, k) curve, the
pooled exact test of each size against the highest bar a guesser that ignores the examples
reaches, Holm over the sizes, and the floor."""
import json
import os
import random
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from scipy.stats import binomtest

from data_gen import (EpisodeStream, HiddenOpTask, few_shot_set, make_stream,
                      make_task, max_shots, shots_fit)
from data_gen.tokenizer import decode
from minigpt.config import GPTConfig, TrainConfig
from minigpt.evaluate import evaluate_examples
from minigpt.model import GPT
from sweeps import report
from sweeps.analysis import icl_report
from sweeps.analysis.emergence import analyse, options_of
from sweeps.rundir import finished_units
from sweeps.runner import run_sweep
from sweeps.catalog import SWEEPS
from sweeps.specs import shot_plan

ROOT = Path(__file__).resolve().parents[1]


def parse_rule_lines(text: str, p: int) -> list[tuple[int, int, int]]:
    """Solved "x:y=z" lines of a decoded row or prompt -> [(x, y, z)]."""
    out = []
    for line in text.split("\n"):
        if "=" in line and line.split("=")[1]:
            left, z = line.split("=")
            x, y = left.split(":")
            out.append((int(x), int(y), int(z)))
    return out


def consistent_rules(triples, p):
    return {(a, b) for a in range(p) for b in range(p) if (a, b) != (0, 0)
            and all((a * x + b * y) % p == z for x, y, z in triples)}


# --- hidden rules never leak into training ----------------------------------------------------

@pytest.mark.parametrize("name", ["icl-rule7", "icl-rule7-new", "icl-rule7-t12", "icl-rule11"])
def test_heldout_rules_never_in_training_rows(name):
    task = make_task(name, eval_size=200)
    p = task.p
    held = set(task.heldout_rules())
    assert held and not held & set(task.rule_list())
    # held-out rules are the same whatever the number of training rules
    assert held == set(make_task(f"icl-rule{p}", eval_size=200).heldout_rules())
    eval_keys = {(r, xy) for r, xy in make_task(f"icl-rule{p}", eval_size=200).eval_items()}
    stream = EpisodeStream([task], batch_size=64, seq_len=64, seed=3)
    determined = 0
    for _ in range(5):
        x, _ = stream.next_batch()
        for row in x:
            triples = parse_rule_lines(decode(row), p)
            rules = consistent_rules(triples, p)
            assert rules, "a row mixes rules"  # one hidden rule per episode
            assert rules & set(task.rule_list())
            if len(rules) == 1:
                determined += 1
                (rule,) = rules
                assert rule not in held
                if not name.startswith("icl-rule7-t"):
                    assert not {(rule, (x_, y_)) for x_, y_, _ in triples} & eval_keys
    assert determined > 250  # most rows pin their rule down: the check above is not vacuous
    with pytest.raises(ValueError, match="held out"):
        task.sample_with_rule(random.Random(0), next(iter(held)))


def test_sample_train_never_yields_heldout_rule_or_eval_problem():
    train, new = make_task("icl-rule7", eval_size=300), make_task("icl-rule7-new", eval_size=300)
    assert set(train.rule_list()) == set(new.rule_list())  # the two tasks train identically
    held, eval_keys = set(train.heldout_rules()), set(train.eval_items())
    rng = random.Random(1)
    for rule in train.rule_list():
        for _ in range(40):
            ex = train.sample_with_rule(rng, rule)
            x, y = map(int, ex.prompt[:-1].split(":"))
            assert int(ex.answer) == (rule[0] * x + rule[1] * y) % 7
            assert (rule, (x, y)) not in eval_keys
    # the eval-only task's sampler draws training rules only
    for _ in range(500):
        ex = new.sample_train(rng)
        x, y = map(int, ex.prompt[:-1].split(":"))
        assert {(a, b) for a, b in held if (a * x + b * y) % 7 == int(ex.answer)} != held


def _ops_matching(line: str) -> set[str]:
    left, ans = line.split("=")
    a, b = map(int, left.split("?"))
    return {o for o, v in (("+", a + b), ("-", a - b), ("*", a * b)) if v == int(ans)}


def test_episode_stream_rows_hold_one_task_and_one_rule():
    op, rule = make_task("icl-op1", eval_size=50), make_task("icl-rule7")
    stream = make_stream([op, rule], 32, 64, seed=0)
    assert isinstance(stream, EpisodeStream)
    x, _ = stream.next_batch()
    kinds = set()
    for row in x:
        lines = [ln for ln in decode(row).split("\n") if "=" in ln and ln.split("=")[1]]
        assert all("?" in ln for ln in lines) or all(":" in ln for ln in lines)
        if "?" in lines[0]:
            kinds.add("op")
            common = set("+-*")
            for ln in lines:
                common &= _ops_matching(ln)
            assert common  # one hidden operation explains every example of the row
        else:
            kinds.add("rule")
            assert consistent_rules(parse_rule_lines(decode(row), 7), 7)
    assert kinds == {"op", "rule"}
    assert type(make_stream([make_task("add2")], 4, 32, seed=0)).__name__ == "TrainStream"


# --- prompt construction ----------------------------------------------------------------------

def test_plain_task_shots_come_from_training_and_query_is_last():
    task = make_task("add2", eval_size=200)
    evals = task.eval_set()
    eval_pairs = {ex.prompt for ex in evals}
    for k in (1, 2, 4):
        prompts = few_shot_set(task, k)
        assert len(prompts) == len(evals)
        for ex, query in zip(prompts, evals):
            lines = ex.prompt.split("\n")
            assert len(lines) == k + 1 and lines[-1] == query.prompt and ex.answer == query.answer
            for line in lines[:-1]:
                left, ans = line.split("=")
                a, b = map(int, left.split("+"))
                assert int(ans) == a + b  # solved correctly (Python's arithmetic)
                assert left + "=" not in eval_pairs  # never an evaluation problem
    # nested in k: the 2-shot examples are the first two of the 4-shot ones
    two, four = few_shot_set(task, 2), few_shot_set(task, 4)
    assert all(f.prompt.split("\n")[:2] == t.prompt.split("\n")[:2] for t, f in zip(two, four))
    assert few_shot_set(task, 0) == evals


@pytest.mark.parametrize("name", ["icl-rule7", "icl-rule7-new"])
def test_rule_shots_share_the_query_rule_and_avoid_eval_problems(name):
    task = make_task(name, eval_size=200)
    eval_keys = {(r, xy) for r, xy in task.eval_items()}
    for ex, (rule, (qx, qy)) in zip(few_shot_set(task, 8), task.eval_items()):
        lines = ex.prompt.split("\n")
        assert lines[-1] == f"{qx}:{qy}="
        assert int(ex.answer) == (rule[0] * qx + rule[1] * qy) % 7
        shots = parse_rule_lines(ex.prompt, 7)
        assert len(shots) == 8 and len(set(shots)) == 8  # no repeats
        for x, y, z in shots:
            assert z == (rule[0] * x + rule[1] * y) % 7
            assert (x, y) != (qx, qy) and (rule, (x, y)) not in eval_keys


def test_op_shots_share_the_hidden_operation():
    task = make_task("icl-op2", eval_size=100)
    ops = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}
    evals = {(ex.prompt, ex.answer) for ex in task.eval_set()}
    for ex, (op, qx, qy) in zip(few_shot_set(task, 4), task.eval_items()):
        lines = ex.prompt.split("\n")
        assert lines[-1] == f"{qx:02d}?{qy:02d}=" and int(ex.answer) == ops[op](qx, qy)
        for line in lines[:-1]:
            left, ans = line.split("=")
            a, b = map(int, left.split("?"))
            assert int(ans) == ops[op](a, b) and (left + "=", ans) not in evals


@pytest.mark.parametrize("name,seq_len", [("add3", 64), ("icl-rule7", 64), ("icl-op2", 64),
                                          ("icl-rule11", 48)])
def test_max_shots_fit_the_model_block(name, seq_len):
    task = make_task(name, eval_size=50)
    k = max_shots(task, seq_len)
    length = len(task.eval_set()[0].text)
    assert shots_fit(task, k, seq_len) and not shots_fit(task, k + 1, seq_len)
    assert (k + 1) * length <= seq_len + 1 < (k + 2) * length
    torch.manual_seed(0)
    model = GPT(GPTConfig.from_size("25k", block_size=seq_len), "cpu")
    evaluate_examples(model, few_shot_set(task, k, limit=4), "cpu")  # fits: no error
    too_long = few_shot_set(task, k + 2, limit=2)
    with pytest.raises(ValueError, match="exceeds block_size"):
        evaluate_examples(model, too_long, "cpu")


def test_shot_plan_drops_what_does_not_fit_and_refuses_when_nothing_does():
    cfg = replace(SWEEPS["arithmetic"]("cpu"), tasks=("add2", "add3"), shots=(0, 4, 5))
    plan, dropped = shot_plan(cfg, "default")
    assert plan == {"add2": (0, 4, 5), "add3": (0, 4)}
    assert len(dropped) == 1 and "add3: k = 5 left out" in dropped[0]
    with pytest.raises(ValueError, match="no shot count"):
        shot_plan(replace(cfg, shots=(9,)), "default")


# --- chance levels ----------------------------------------------------------------------------

def test_rule_chance_is_the_best_constant_answer():
    """Chance ignores the examples and the pair: 1/(p+1) of the pairs answer 0, p/(p^2-1) each
    other value (brute force in tests/test_chance.py). The icl report's bar is the larger of it
    and the eval-set baselines of no_context_baselines."""
    for name, p in (("icl-rule7", 7), ("icl-rule11-new", 11)):
        assert make_task(name).chance_levels()["exact_match"] == pytest.approx(p / (p * p - 1))


def test_no_context_baselines():
    from collections import Counter
    for name in ("icl-rule7-new", "icl-rule7-t4"):
        task = make_task(name, eval_size=300)
        answers = Counter(ex.answer for ex in task.eval_set())
        nc = task.no_context_baselines()
        assert nc["constant"] == pytest.approx(max(answers.values()) / len(task.eval_set()))
        assert 0 <= nc["rule_prior"] <= 1
    # with 4 training rules, knowing them and guessing the commonest answer is right half the time
    assert make_task("icl-rule7-t4").no_context_baselines()["rule_prior"] > 0.4
    # the held-out verdict uses the larger bar: 45 of 240 (18.75%) is above 1/7 by the exact
    # test, but not above the best constant answer, 17.9% (re-derived from the old Wilson
    # bound: the new rule is the exact test against the highest bar)
    bar = make_task("icl-rule7-new", eval_size=240).no_context_baselines()["constant"]
    assert binomtest(45, 240, 1 / 7, alternative="greater").pvalue < 0.05
    assert binomtest(45, 240, bar, alternative="greater").pvalue > 0.05
    curve = icl_verdicts(_rows("icl-rule7-new", False, {("1m", 8): 45}, n=240))[8]
    assert curve["chance"] == pytest.approx(bar) and curve["verdict"] == "never_above_chance"


def test_op_chance_is_far_below_the_op_guess_baseline():
    """Chance knows the mixture of + - * answers, not the operands: '+0000' (0+0, x-x, 0*y, x*0)
    is the likeliest answer, 3N of the 3N^2 problems (brute force in tests/test_chance.py)."""
    task = make_task("icl-op2")
    assert task.chance_levels()["exact_match"] == pytest.approx(1 / 100)
    assert task.op_guess_baseline() > 10 * task.chance_levels()["exact_match"]


def test_op_guess_baseline_by_hand():
    task = HiddenOpTask(1, eval_size=3)
    task._eval = [("+", 2, 2), ("-", 3, 0), ("*", 7, 8)]  # 2+2=2*2; 3-0=3+0; 56 only by *
    assert task.op_guess_baseline() == pytest.approx((2 / 3 + 2 / 3 + 1 / 3) / 3)


# --- the report on synthetic results with a known answer ---------------------------------------

def _rows(task, trained, table, n=200, chance=1 / 7, seeds=(0,)):
    params = {"25k": 25472, "200k": 200064, "1m": 912128}
    return [{"task": task, "size": size, "params": params[size], "seed": s, "shots": k,
             "status": "ok", "exact_match": c / n, "n_eval": n, "n_correct": c,
             "trained": trained, "chance": {"exact_match": chance}}
            for (size, k), c in table.items() for s in seeds]


def _folder(path: Path, rows: list[dict]) -> Path:
    """An icl run folder as written before report kinds were recorded (no config.json)."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def icl_verdicts(rows: list[dict], task: str = "icl-rule7-new") -> dict[int, dict]:
    """The exact-match result of each k's curve of `task`, as the in-context report judges it
    (against the highest bar of icl_report.bars), by shot count."""
    bars = icl_report.task_bars(rows)
    a = analyse(rows, options_of(n_boot=100),
                chance_overrides={t: max(b.values()) for t, b in bars.items() if b})
    return {c["shots"]: c["metrics"]["exact_match"] for c in a["curves"].values()
            if c["task"] == task}


def test_icl_emergent_scale_known_answer(tmp_path):
    """Bars of icl-rule7-new on 200 problems: chance 1/7, the best constant answer 19.5%. At k=8,
    25k (35/200) is consistent with that bar, 200k (60/200) is the first clearly above it
    (exact p and Holm by hand, re-derived from the old Wilson bounds), 1m is far above."""
    table = {("25k", 0): 28, ("25k", 8): 35, ("200k", 0): 30, ("200k", 8): 60,
             ("1m", 0): 27, ("1m", 8): 120}
    bar = icl_report.bars("icl-rule7-new", 200, 1 / 7)["best constant answer"]
    p = [binomtest(c, 200, bar, alternative="greater").pvalue for c in (35, 60, 120)]
    assert p[2] <= 0.05 / 3 and p[1] <= 0.05 / 2 and p[0] > 0.05  # Holm's steps
    rows = _rows("icl-rule7-new", False, table) + _rows("icl-rule7", True, table)
    run = _folder(tmp_path / "run", rows)
    out, text = report.build(run, n_boot=100)  # no config.json: the kind is inferred
    summary = json.loads((out / "summary.json").read_text())
    assert summary["kind"] == "icl" and summary["heldout_tasks"] == ["icl-rule7-new"]
    k8 = next(c for c in summary["curves"] if c["task"] == "icl-rule7-new" and c["shots"] == 8)
    assert k8["chance"] == pytest.approx(bar)
    assert (k8["verdict"], k8["emergent_size"], k8["emergent_params"]) == ("emergent", "200k",
                                                                          200064)
    assert k8["last_below_status"] == "consistent_with_chance"
    assert [s["above_chance"] for s in k8["per_size"]] == [False, True, True]
    k0 = next(c for c in summary["curves"] if c["task"] == "icl-rule7-new" and c["shots"] == 0)
    assert k0["verdict"] == "never_above_chance"
    assert "ICL emergent scale of icl-rule7-new (k=8, against the highest bar): emergent at " \
           "200k" in text
    assert not any(line.startswith("ICL emergent scale of icl-rule7 ")  # trained rules: none
                   for line in text.splitlines())
    assert (out / "icl_icl-rule7-new.png").stat().st_size > 10_000
    assert "## icl-rule7-new" in (out / "report.md").read_text()


def test_icl_report_says_when_nothing_clears_the_bar(tmp_path):
    table = {("25k", 8): 30, ("200k", 8): 35, ("1m", 8): 38}  # 19% at best, bar 19.5%
    text = icl_report.summarise(_folder(tmp_path / "run", _rows("icl-rule7-new", False, table)),
                                n_boot=100)
    line = next(t for t in text.splitlines() if t.startswith("ICL emergent scale"))
    assert "never above chance" in line and "best 1m (0.19) against chance 0.195" in line


def test_verdict_is_corrected_over_sizes_by_holm():
    """48/240 = 20% against 1/7 at the largest of six sizes: p = 0.0095, under 5% on its own but
    over Holm's first step 0.05/6 (scipy's exact p, re-derived from the old simultaneous Wilson
    bound): no size clears. The same score at a single size clears at 5%."""
    sizes = {"25k": 25472, "50k": 50880, "100k": 113184, "200k": 200064, "400k": 389360,
             "1m": 912128}
    counts = (30, 33, 35, 31, 34, 48)
    p = [binomtest(c, 240, 1 / 7, alternative="greater").pvalue for c in counts]
    assert 0.05 / 6 < min(p) < 0.05
    rows = [{"task": "toy-new", "size": z, "params": n, "seed": 0, "shots": 8, "status": "ok",
             "exact_match": c / 240, "n_eval": 240, "n_correct": c, "trained": False,
             "chance": {"exact_match": 1 / 7}}
            for (z, n), c in zip(sizes.items(), counts)]
    assert icl_verdicts(rows, "toy-new")[8]["verdict"] == "never_above_chance"
    single = icl_verdicts(rows[-1:], "toy-new")[8]
    assert (single["verdict"], single["emergent_size"]) == ("present_at_smallest", "1m")


def test_seeds_pool_into_one_count():
    """Two seeds of 50/200 each: one size with two seeds, its interval the exact one on 100 of
    400 answers; k-shot rows of one seed are never pooled as seeds."""
    rows = _rows("icl-rule7-new", False, {("1m", 8): 50, ("1m", 0): 30}, seeds=(0, 1))
    by_k = icl_verdicts(rows)
    (cell,) = by_k[8]["per_size"]
    ref = binomtest(100, 400).proportion_ci(0.95, method="exact")
    assert cell["n_seeds"] == 2 and cell["interval"] == pytest.approx([ref.low, ref.high])
    assert by_k[0]["per_size"][0]["n_seeds"] == 2 and by_k[0]["per_size"][0]["mean"] == 0.15


# --- the runner end to end, and --shots on the command line -----------------------------------

def test_icl_sweep_end_to_end_rows(tmp_path):
    cfg = replace(SWEEPS["icl"]("cpu"), sizes=("25k",), seeds=(0,), eval_size=40,
                  curve_eval_size=10,
                  tasks=("icl-op1", "icl-rule7"), shots=(0, 2, 8),
                  train=TrainConfig(steps=4, batch_size=4, seq_len=64, warmup_steps=1))
    rows = run_sweep(cfg, tmp_path / "run", "cpu", progress=False, log=lambda m: None)
    got = {(r["task"], r["shots"], r["trained"]) for r in rows}
    # icl-op1's 8-token examples allow 7 shots in 64 tokens, so its k=8 is left out
    assert got == {(t, k, t != "icl-rule7-new") for t in ("icl-op1", "icl-rule7", "icl-rule7-new")
                   for k in (0, 2, 8) if (t, k) != ("icl-op1", 8)}
    assert all(r["n_correct"] == round(r["exact_match"] * r["n_eval"]) for r in rows)
    assert finished_units(cfg, rows) == {("default", "25k", 0)}
    assert finished_units(cfg, [r for r in rows if r["shots"] != 8]) == set()


def cli(*args):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("TRITON_INTERPRET", None)
    return subprocess.run([sys.executable, "-m", "sweeps.run", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("value,message", [
    ("-1", "--shots: expected comma-separated non-negative integers"),
    ("two", "--shots: expected comma-separated non-negative integers"),
    ("", "--shots: expected comma-separated non-negative integers"),
    ("40", "no shot count in 40 fits task add2"),
])
def test_shots_flag_rejects_bad_values(value, message, tmp_path):
    proc = cli("tiny", "--shots", value, "--out", str(tmp_path / "never"))
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "never").exists()


def test_shots_flag_notes_dropped_k(tmp_path):
    proc = cli("tiny", "--shots", "0,3", "--sizes", "25k", "--steps", "2", "--eval-size", "20",
               "--out", str(tmp_path / "run"), "--no-progress", "--no-report")
    assert proc.returncode == 0, proc.stderr
    assert "add2: k = 3 left out" in proc.stderr
    assert "task mod7-add" in proc.stdout and "k=3" in proc.stdout


def test_rows_at_different_shots_are_not_repeats_for_merge_and_repair(tmp_path):
    from sweeps.merge import dedupe
    from sweeps.repair import ROW_KEYS, repair_file
    from sweeps.results import row_key
    base = {"task_set": "icl-mix", "condition": "default", "task": "icl-rule7-new", "size": "25k",
            "seed": 0, "exact_match": 0.1}
    rows = [{**base, "shots": 0}, {**base, "shots": 8, "exact_match": 0.3}]
    assert dedupe([(tmp_path, rows)], row_key, "results.jsonl") == rows
    path = tmp_path / "results.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows + rows[1:]))
    dropped = repair_file(path, *ROW_KEYS["results.jsonl"])
    assert len(dropped) == 2 and "line 3: repeats" in dropped[0]  # the repeat, and the backup line
    assert [json.loads(line)["shots"] for line in path.read_text().splitlines()] == [0, 8]


def test_tasks_flag_brings_the_heldout_rules_along():
    from sweeps.run import apply_flags, build_parser
    parser = build_parser()
    cfg = apply_flags(parser, parser.parse_args(["icl", "--tasks", "icl-op1,icl-rule11-t40",
                                                 "--eval-size", "60"]), SWEEPS["icl"]("cpu"))
    assert cfg.tasks == ("icl-op1", "icl-rule11-t40") and cfg.eval_only == ("icl-rule11-t40-new",)
    cfg = apply_flags(parser, parser.parse_args(["arithmetic", "--tasks", "add2"]),
                      SWEEPS["arithmetic"]("cpu"))
    assert cfg.eval_only == () and cfg.shots == (0,)

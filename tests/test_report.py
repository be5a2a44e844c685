"""Tests for sweeps.report and sweeps.merge on a synthetic run folder written by hand.

The folder mimics what the runner writes: config.json, results.jsonl (one row per task, size,
seed; one diverged), curves.jsonl and a tb/ subfolder. "add" steps between sizes s2 and s3 in
every metric, so s3 is its first size clearly above chance and its shape is sharp; "mul" rises
steadily, so its shape is gradual.
"""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from sweeps import merge
from sweeps.analysis.emergence import analyse, emergence_table, load_results
from sweeps.analysis.emergence_report import build_report, format_table

ROOT = Path(__file__).resolve().parents[1]
SIZES = [f"s{i}" for i in range(6)]
PARAMS = {s: int(10 ** (4 + 0.6 * i)) for i, s in enumerate(SIZES)}
SEEDS = [0, 1]
CHANCE = {"exact_match": 0.0, "per_digit_acc": 0.1, "edit_distance": 5.0, "answer_logprob": -12.0}


def _scores(task: str, i: int, seed: int) -> float:
    """A fraction-of-perfect q for each task: a step for add, a straight line in log-x for mul."""
    if task == "add":
        return 0.01 * seed if i < 3 else 0.97 + 0.01 * seed
    return i / (len(SIZES) - 1) * 0.9 + 0.02 * seed


def _row(task: str, i: int, seed: int) -> dict:
    size, q = SIZES[i], _scores(task, i, seed)
    row = {"sweep": "demo", "task_set": "arith", "task": task, "size": size, "seed": seed,
           "params": PARAMS[size], "params_total": PARAMS[size] + 5000,
           "flops": 6.0 * PARAMS[size] * 1e7, "tokens": 10 ** 7, "steps": 100, "wall_time_s": 1.5,
           "exact_match": q, "per_digit_acc": 0.1 + 0.9 * q, "edit_distance": 5.0 * (1 - q),
           "answer_logprob": -12.0 * (1 - q), "answer_len": 5, "n_eval": 100, "chance": CHANCE, "status": "ok",
           "final_loss": 1.0 - q, "n_layer": 1 + i, "n_head": 2, "n_embd": 32 * (1 + i),
           "attn": "sdpa", "norm": "torch", "device": "cpu"}
    if task == "mul" and size == "s1" and seed == 1:
        row.update(status="diverged", final_loss=None,
                   **{m: None for m in ("exact_match", "per_digit_acc", "edit_distance",
                                        "answer_logprob")})
    return row


def _write_jsonl(path: Path, rows) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def make_run(root: Path, sizes=SIZES, shard=None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    cfg = {"sweep": "demo", "task_set": "arith", "tasks": ["add", "mul"], "sizes": list(sizes),
           "seeds": SEEDS, "device_type": "cpu",
           "train": {"lr_base": 1e-3, "batch_size": 64, "steps": 100}}
    if shard is not None:
        cfg["shard"] = shard
    (root / "config.json").write_text(json.dumps(cfg))
    idx = [SIZES.index(s) for s in sizes]
    _write_jsonl(root / "results.jsonl",
                 [_row(t, i, s) for t in ("add", "mul") for i in idx for s in SEEDS])
    curves = [{"task_set": "arith", "task": t, "size": SIZES[i], "seed": s, "step": step,
               "tokens": step * 640, "flops": step * 1e6, "exact_match": _scores(t, i, s) * f,
               "per_digit_acc": 0.1 + 0.9 * _scores(t, i, s) * f, "edit_distance": 1.0,
               "answer_logprob": -1.0, "train_loss": 1.0}
              for t in ("add", "mul") for i in idx for s in SEEDS
              for step, f in ((0, 0.0), (50, 0.5), (100, 1.0))]
    _write_jsonl(root / "curves.jsonl", curves)
    tb = root / "tb" / f"part_{sizes[0]}"
    tb.mkdir(parents=True, exist_ok=True)
    (tb / "events.out.tfevents.fake").write_bytes(b"x")
    return root


def test_build_report_writes_everything(tmp_path):
    run = make_run(tmp_path / "run")
    out = build_report(run)
    for task in ("add", "mul"):
        assert (out / f"{task}_scale.png").stat().st_size > 10_000
        assert (out / f"{task}_training.png").stat().st_size > 5_000
    md = (out / "report.md").read_text()
    assert "add_scale.png" in md and "mul / s1 / seed 1" in md  # figure link; diverged run listed
    assert "Schaeffer" in md and "sharp in all" in md
    table = (out / "emergence_table.md").read_text()
    assert "| add |" in table and "emergent" in table and "gradual" in table
    analysis = json.loads((out / "emergence.json").read_text())
    add = analysis["tasks"]["add"]["metrics"]["exact_match"]
    assert add["emergent_params"] == PARAMS["s3"] and add["emergent"]["last_below"] == "s2"
    assert add["emergent"]["interval_params"]["lo"] == PARAMS["s3"]
    assert add["shape"] == "sharp"
    assert analysis["tasks"]["mul"]["metrics"]["exact_match"]["shape"] == "gradual"
    assert "interpolated, not measured" in table
    assert list((run / "tb" / "hparams").iterdir())  # TensorBoard hparams written
    assert format_table(run) == table.strip()  # the runner's call: format_table(RUN_DIR)


def test_cli_rebuilds_and_rejects_bad_input(tmp_path):
    run = make_run(tmp_path / "run")
    cmd = [sys.executable, "-m", "sweeps.report"]
    res = subprocess.run(cmd + [str(run), "--threshold", "0.3"], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "| add |" in res.stdout and (run / "report" / "report.md").is_file()
    assert json.loads((run / "report" / "emergence.json").read_text())["threshold_frac"] == 0.3

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "results.jsonl").write_text("")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "results.jsonl").write_text('{"task": "add"}\n')
    for folder, words in ((tmp_path / "nope", "does not exist"), (empty, "empty"),
                          (bad, "missing key")):
        res = subprocess.run(cmd + [str(folder)], cwd=ROOT, capture_output=True, text=True,
                             timeout=60)
        assert res.returncode == 2 and words in res.stderr, res.stderr


def _table(run: Path) -> list[dict]:
    return emergence_table(analyse(load_results(run)))


def test_merge_round_trip_matches_unsplit_run(tmp_path):
    full = make_run(tmp_path / "full")
    a = make_run(tmp_path / "a", SIZES[:3], shard=0)
    b = make_run(tmp_path / "b", SIZES[3:], shard=1)
    out = tmp_path / "merged"
    assert merge.main([str(out), str(b), str(a)]) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["sizes"] == SIZES and cfg["seeds"] == SEEDS and "shard" not in cfg
    assert cfg["train"] == json.loads((full / "config.json").read_text())["train"]
    got, want = _table(out), _table(full)
    for g, w in zip(got, want):
        for k, v in w.items():
            assert g[k] == pytest.approx(v) if isinstance(v, float) else g[k] == v, k
    assert format_table(got) == format_table(want)
    assert (out / "report" / "report.md").is_file()
    assert {p.name for p in (out / "tb").iterdir()} >= {"part_s0", "part_s3"}
    n_curves = len((out / "curves.jsonl").read_text().splitlines())
    assert n_curves == len((full / "curves.jsonl").read_text().splitlines())
    # An existing non-empty OUT_DIR is refused without --force, accepted with it.
    assert merge.main([str(out), str(a), str(b)]) == 2
    assert merge.main([str(out), str(a), str(b), "--force"]) == 0


def test_merge_drops_identical_and_rejects_conflicting_duplicates(tmp_path, capsys):
    a = make_run(tmp_path / "a", SIZES[:4])
    b = make_run(tmp_path / "b", SIZES[2:])  # s2, s3 duplicated, identically
    assert merge.main([str(tmp_path / "m1"), str(a), str(b)]) == 0
    assert len(load_results(tmp_path / "m1")) == len(SIZES) * 2 * len(SEEDS)

    rows = load_results(b)
    rows[0]["exact_match"] = 0.5  # now (add, s2, seed 0) disagrees between the two parts
    _write_jsonl(b / "results.jsonl", rows)
    assert merge.main([str(tmp_path / "m2"), str(a), str(b)]) == 2
    assert "conflicting" in capsys.readouterr().err


def test_merge_rejects_incompatible_configs(tmp_path, capsys):
    a = make_run(tmp_path / "a", SIZES[:3])
    b = make_run(tmp_path / "b", SIZES[3:])
    cfg = json.loads((b / "config.json").read_text())
    cfg["train"]["lr_base"] = 3e-4
    cfg["device_type"] = "cuda"  # where a part ran may differ
    (b / "config.json").write_text(json.dumps(cfg))
    assert merge.main([str(tmp_path / "m"), str(a), str(b)]) == 2
    err = capsys.readouterr().err
    assert "train.lr_base" in err and "batch_size" not in err and "device_type" not in err
    assert merge.main([str(tmp_path / "m"), str(tmp_path / "missing")]) == 2


def _two_condition_run(root: Path) -> Path:
    """add3 under "plain" emerges at s4, under "scratchpad" at s2; 3 seeds, n_eval 200."""
    root.mkdir(parents=True)
    (root / "config.json").write_text(json.dumps({"sweep": "demo2", "conditions": ["plain",
                                                                                    "scratchpad"]}))
    rows = []
    for cond, onset, task in (("plain", 4, "add3"), ("scratchpad", 2, "add3-scratch")):
        for i, s in enumerate(SIZES):
            for seed in (0, 1, 2):
                q = 0.0 if i < onset else 0.6 + 0.1 * (i - onset) / 2 + 0.01 * seed
                rows.append({"task": task, "ability": "add3", "condition": cond, "size": s,
                             "seed": seed, "params": PARAMS[s], "flops": 6.0 * PARAMS[s] * 1e7,
                             "n_eval": 200, "answer_len": 4, "status": "ok",
                             "chance": {"exact_match": 0.001, "per_digit_acc": 0.1},
                             "exact_match": q, "per_digit_acc": 0.1 + 0.9 * q})
    _write_jsonl(root / "results.jsonl", rows)
    return root


def test_report_compares_conditions_end_to_end(tmp_path):
    run = _two_condition_run(tmp_path / "run")
    out = build_report(run, tensorboard=False)
    analysis = json.loads((out / "emergence.json").read_text())
    plain = analysis["tasks"]["add3 [plain]"]["metrics"]["exact_match"]
    scratch = analysis["tasks"]["add3-scratch [scratchpad]"]["metrics"]["exact_match"]
    assert plain["emergent_params"] == PARAMS["s4"] and scratch["emergent_params"] == PARAMS["s2"]
    (cmp,) = analysis["comparison"]
    (ratio,) = cmp["ratios"]
    assert ratio["ratio"] == pytest.approx(PARAMS["s4"] / PARAMS["s2"])
    assert ratio["interval"][0] <= ratio["ratio"] <= ratio["interval"][1]
    md = (out / "report.md").read_text()
    assert "## Conditions compared" in md and "add3 [plain] / add3-scratch [scratchpad]" in md
    assert (out / "add3_scale.png").stat().st_size > 10_000  # one figure for the ability


def test_report_lists_excluded_rows_and_unknown_chance(tmp_path):
    run = make_run(tmp_path / "run")
    rows = load_results(run)
    rows[0]["params"] = None
    for r in rows:
        if r["task"] == "mul":
            r["chance"] = None
    _write_jsonl(run / "results.jsonl", rows)
    out = build_report(run, tensorboard=False)
    md = (out / "report.md").read_text()
    assert "results.jsonl:1: params is null" in md
    table = (out / "emergence_table.md").read_text()
    assert "| mul | 100 | 6 | unknown chance |" in table


def test_cli_read_only_folder_and_bad_flags(tmp_path):
    import os
    run = make_run(tmp_path / "run")
    cmd = [sys.executable, "-m", "sweeps.report"]
    res = subprocess.run(cmd + [str(run), "--floor", "1.5"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 2 and "--floor must be in [0, 1)" in res.stderr
    if os.geteuid() != 0:  # root ignores permissions
        os.chmod(run, 0o555)
        try:
            res = subprocess.run(cmd + [str(run), "--no-tensorboard"], cwd=ROOT,
                                 capture_output=True, text=True, timeout=120)
        finally:
            os.chmod(run, 0o755)
        assert res.returncode == 2 and "cannot write the report" in res.stderr, res.stderr


def test_ingest_example_csv_and_report_end_to_end(tmp_path):
    """The shipped GPT-3 example through the ingest command and the report (as in CI)."""
    csv_path = ROOT / "examples" / "gpt3_arithmetic_fewshot.csv"
    out = tmp_path / "gpt3"
    res = subprocess.run([sys.executable, "-m", "sweeps.ingest", str(csv_path), str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "looks like a percentage" in res.stderr  # never silent
    res = subprocess.run([sys.executable, "-m", "sweeps.ingest", str(csv_path), str(out),
                          "--percent"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    rows = load_results(out)
    three = next(r for r in rows if r["task"] == "3D+")
    assert three["exact_match"] == pytest.approx(0.802) and three["params"] == 175e9
    res = subprocess.run([sys.executable, "-m", "sweeps.report", str(out), "--no-tensorboard"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "| 3D+ [GPT-3] | unknown | 1 |" in res.stdout  # one verified size: no scale named


def test_ingest_names_line_and_column(tmp_path):
    from sweeps.ingest import main as ingest_main
    bad = tmp_path / "bad.csv"
    bad.write_text("family,model,params,task,metric,value\nF,m1,1e6,t,exact_match,abc\n"
                   "F,m2,,t,exact_match,0.5\n")
    assert ingest_main([str(bad), str(tmp_path / "o")]) == 2
    bad.write_text("family,model,task,metric,value\nF,m1,t,exact_match,0.1\n")
    assert ingest_main([str(bad), str(tmp_path / "o")]) == 2
    good = tmp_path / "good.csv"
    good.write_text("family,model,params,task,metric,value,n_eval,chance\n"
                    "F,m1,1e6,t,exact_match,0.0,500,0.01\nF,m1,1e6,t,per_digit_acc,0.2,500,0.1\n"
                    "F,m2,,t,exact_match,0.5,500,0.01\n")
    assert ingest_main([str(good), str(tmp_path / "o")]) == 0
    rows = load_results(tmp_path / "o")
    assert rows[0]["per_digit_acc"] == 0.2 and rows[0]["chance"] == {"exact_match": 0.01,
                                                                      "per_digit_acc": 0.1}
    assert rows[1]["params"] is None


def test_ingest_errors_name_the_csv_line(tmp_path, capsys):
    from sweeps.ingest import main as ingest_main
    bad = tmp_path / "bad.csv"
    bad.write_text("family,model,params,task,metric,value\nF,m1,1e6,t,exact_match,abc\n")
    assert ingest_main([str(bad), str(tmp_path / "o")]) == 2
    assert "bad.csv:2: column value = 'abc': expected a number" in capsys.readouterr().err


def test_report_never_crashes_on_random_schema_valid_runs(tmp_path_factory):
    """Random curves, missing values, null params and mixed seed layouts: a report is written
    (one row per key: repeated keys are refused, tests/test_validate_keys)."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    value = st.one_of(st.floats(0, 1), st.none())

    @settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(st.tuples(st.sampled_from(SIZES), st.one_of(st.integers(0, 2), st.none()),
                              value, value, st.booleans(), st.sampled_from(["a", "b"])),
                    min_size=1, max_size=14, unique_by=lambda t: (t[0], t[1], t[5])))
    def check(spec):
        run = tmp_path_factory.mktemp("run")
        rows = [{"task": "t", "condition": cond, "size": s, "seed": seed,
                 "params": PARAMS[s] if keep else None, "flops": None if seed is None else 1e12,
                 "n_eval": 50, "chance": {"exact_match": 0.01}, "exact_match": em,
                 "per_digit_acc": pd, "status": "ok"}
                for s, seed, em, pd, keep, cond in spec]
        _write_jsonl(run / "results.jsonl", rows)
        out = build_report(run, n_boot=100, tensorboard=False)
        assert (out / "report.md").is_file()
        json.loads((out / "emergence.json").read_text())

    check()


def test_plots_show_chance_and_perfect_no_empty_panels_and_missing_flops():
    import matplotlib.pyplot as plt

    from sweeps.analysis.plots import ability_figure
    rows = [_row("add", i, 0) for i in range(6)]
    for r in rows:
        r.pop("edit_distance"), r.pop("answer_logprob")  # two metrics never recorded
    rows[1]["flops"] = None
    t = analyse(rows, n_boot=100)["tasks"]["add"]
    fig = ability_figure("add", {"add": t})
    axes = fig.axes
    assert len(axes) == 4  # 2 metrics with data x (params, FLOPs); no empty panels
    assert [round(v, 2) for v in axes[0].get_ylim()] == [-0.03, 1.03]  # chance and perfect in view
    assert "no FLOPs: s1" in axes[2].get_title()
    plt.close(fig)


def test_report_shows_how_many_seeds_have_the_ability_per_size(tmp_path):
    from sweeps.analysis.emergence_report import format_seed_table

    run = make_run(tmp_path / "run")
    out = build_report(run)
    md = (out / "report.md").read_text()
    assert "## Across seeds (exact match)" in md
    table = format_seed_table(run)
    assert table in md
    add = next(line for line in table.splitlines() if line.startswith("| add |"))
    # add: a step at s3 for both seeds (0.97, 0.98); below it 0% and 1%
    assert add.count("**0/2**") == 3 and add.count("**2/2**") == 3
    assert "97%–98%" in add
    mul = next(line for line in table.splitlines() if line.startswith("| mul |"))
    assert "**1/1**" not in mul.split("|")[4]  # s1 kept one seed (the other diverged)
    assert "**0/1**" in mul.split("|")[4]
    # one seed per size: nothing to show across seeds
    single = make_run(tmp_path / "one")
    rows = [json.loads(line) for line in (single / "results.jsonl").read_text().splitlines()]
    _write_jsonl(single / "results.jsonl", [r for r in rows if r["seed"] == 0])
    assert format_seed_table(single) == ""

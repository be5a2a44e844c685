"""The instructions report (sweeps.analysis.instructions_report) on synthetic results whose answer
is known by construction.

Rows carry counts only (no per-problem outcomes), so comparisons take the unpaired fallback:
a size helps or hurts where Newcombe's interval on the answers pooled over seeds and phrasings
excludes 0 (newcombe_diff is checked against Newcombe's published table in
tests/test_inference.py). The planted differences are 0.3 or 0.5 on 5,600 answers, far beyond
that interval's half-width, so the verdicts are known without computing it.
"""
import inspect
import json

import numpy as np
import pytest
from scipy.stats import binomtest

from data_gen import make_task
from minigpt.evaluate import evaluate_examples
from sweeps.analysis.emergence import options_of
from sweeps.analysis.instructions_measures import check_rows, classify
from sweeps.analysis.instructions_report import ReportError, analyse, build
from sweeps.report import main

SIZES = {"10k": 1e4, "100k": 1e5, "1m": 1e6}
N = 400
HELD_ADD = [t.index for t in make_task("add2-words-held").templates]
OPTIONS = options_of(n_boot=100)


def row(condition, size, task, acc, seed=0, n=N):
    return {"condition": condition, "size": size, "task": task, "seed": seed, "status": "ok",
            "params": SIZES[size], "exact_match": round(acc * n) / n, "n_eval": n}


def synthetic_rows():
    """Held-out task sub2 (14 phrasings) and held-out add2 phrasings, with a planted answer:
    tuning hurts at 10k (0.50 -> 0.20), does nothing at 100k (0.30 = 0.30), helps at 1m
    (0.10 -> 0.60). Per-template accuracies spread so median/min/max are known."""
    plan = {"10k": (0.50, 0.20), "100k": (0.30, 0.30), "1m": (0.10, 0.60)}
    rows = []
    for size, (untuned, tuned) in plan.items():
        for condition, base in (("untuned", untuned), ("tuned-k1", tuned), ("tuned-k10", tuned)):
            for i in range(14):  # sub2's phrasings: every one at the planted accuracy
                rows.append(row(condition, size, f"sub2-words-t{i:02d}", base))
            # held-out add2 phrasings: base - 0.1, base, base, base + 0.2 -> median base
            for offset, index in zip((-0.1, 0.0, 0.0, 0.2), HELD_ADD):
                rows.append(row(condition, size, f"add2-words-t{index:02d}", base + offset))
            rows.append(row(condition, size, "add2-words", base))
            rows.append(row(condition, size, "add2", 0.9))
            rows.append(row(condition, size, "sub2", 0.9))
    return rows


def verdicts(a: dict, condition: str = "tuned-k10") -> dict[str, dict[str, str]]:
    """Per measure, each size's verdict of `condition` against untuned."""
    return {c["reference"].split(" [")[0]: {d["size"]: d["verdict"] for d in c["sizes"]}
            for c in a["comparisons"] if c["treatment"].endswith(f"[{condition}]")}


def test_synthetic_results_give_the_planted_answer():
    a = analyse(synthetic_rows(), OPTIONS, np.random.default_rng(0))
    assert a["kinds"]["held_out_task"] == "sub2" and a["kinds"]["tuned_tasks"] == ["add2"]
    assert a["sizes"] == ["10k", "100k", "1m"] and a["headline_condition"] == "tuned-k10"
    planted = {"10k": "hurts", "100k": "no clear difference", "1m": "helps"}
    got = verdicts(a)
    assert got["held-out task"] == got["held-out templates"] == planted
    assert got["symbolic tasks"] == {s: "no clear difference" for s in SIZES}
    for c in a["comparisons"]:
        assert not c["paired"] and "unpaired fallback" in c["note"]
    spread = {(s["size"], s["condition"]): s for s in a["spread"]}
    s = spread[("1m", "tuned-k10")]
    assert (s["median"], s["min"], s["max"], s["k"]) == pytest.approx((0.6, 0.5, 0.8, 10))
    assert spread[("10k", "untuned")]["k"] == 0
    held = a["curves"]["held-out task [untuned]"]["metrics"]["exact_match"]
    h = next(p for p in held["per_size"] if p["size"] == "1m")
    assert h["mean"] == pytest.approx(0.1) and h["n_seeds"] == 1
    # one model's 14 phrasings pooled into one count (14 x 400 answers; the report notes that
    # phrasings then count as independent)
    ref = binomtest(14 * 40, 14 * N).proportion_ci(method="exact")
    assert h["interval"] == pytest.approx([ref.low, ref.high])
    assert any("phrasings" in n for n in a["curves"]["held-out task [untuned]"]["notes"])


def test_harm_that_grows_with_size_is_named_the_reverse_of_flan():
    rows = synthetic_rows()
    # tuned sub2 phrasings: equal at 10k, worse at 100k and 1m
    for r in rows:
        if r["condition"] != "untuned" and r["task"].startswith("sub2-words"):
            r["exact_match"] = {"10k": 0.50, "100k": 0.05, "1m": 0.0}[r["size"]]
        if r["condition"] == "untuned" and r["task"].startswith("sub2-words"):
            r["exact_match"] = {"10k": 0.50, "100k": 0.30, "1m": 0.10}[r["size"]]
    a = analyse(rows, OPTIONS, np.random.default_rng(0))
    assert verdicts(a)["held-out task"] == {"10k": "no clear difference", "100k": "hurts",
                                            "1m": "hurts"}
    comp = next(c for c in a["comparisons"] if c["treatment"] == "held-out task [tuned-k10]")
    # the headline is read off the table (the old report named 'hurts from 100k')
    assert comp["headline"] == ("held-out task [tuned-k10] against held-out task [untuned]: "
                                "hurts at 100k, 1m; no clear difference at 10k")


def test_no_effect_anywhere_is_said_so(tmp_path):
    rows = [r | {"exact_match": 0.25} for r in synthetic_rows()]
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out, text = build(run, n_boot=100)
    assert "tuned-k10] against held-out task [untuned]: no clear difference at 10k, 100k, 1m" \
        in text
    for name in ("report.md", "summary.json", "analysis.json", "spread.png", "held_out_task.png",
                 "effect.png"):
        assert (out / name).stat().st_size > 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["kind"] == "instructions" and summary["kinds"]["held_out_task"] == "sub2"
    assert {c["task"] for c in summary["curves"]} >= {"held-out task", "held-out templates",
                                                      "symbolic tasks", "add2", "sub2"}


def test_classify_and_refusals():
    k = classify({"add2", "sub2", "add2-words", "sub2-words-t00", "sub2-words-t01",
                  *(f"add2-words-t{i:02d}" for i in HELD_ADD)})
    assert k.held_out_task == "sub2" and k.tuned_tasks == ["add2"] and k.symbolic == ["add2",
                                                                                      "sub2"]
    assert k.measure_tasks()["held-out templates"] == [f"add2-words-t{i:02d}" for i in HELD_ADD]
    rows = [r for r in synthetic_rows() if r["condition"] != "untuned"]
    with pytest.raises(ReportError, match="no 'untuned' condition"):
        check_rows(rows, "results.jsonl")
    with pytest.raises(ReportError, match="no per-template rows"):
        check_rows([r for r in synthetic_rows() if "-t" not in r["task"]], "results.jsonl")


def test_cli_refuses_bad_input(tmp_path, capsys):
    assert main([str(tmp_path / "missing")], kind="instructions") == 2
    assert "does not exist" in capsys.readouterr().err
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.jsonl").write_text(json.dumps(row("default", "10k", "add2", 0.5)) + "\n")
    assert main([str(run)], kind="instructions") == 2  # an emergence run: refused, nothing written
    assert "report kind is 'emergence', not 'instructions'" in capsys.readouterr().err
    assert sorted(p.name for p in run.iterdir()) == ["results.jsonl"]


@pytest.mark.skipif("per_problem" not in inspect.signature(evaluate_examples).parameters,
                    reason="sweeps.run records per-problem outcomes through minigpt.evaluate's "
                           "per_problem, another helper's change not on this branch yet")
def test_the_sweep_command_ends_with_this_report(tmp_path, capsys):
    from sweeps.run import main as run_main

    out = tmp_path / "run"
    assert run_main(["instructions", "--sizes", "25k", "--steps", "6", "--eval-size", "5",
                     "--conditions", "untuned,tuned-k1", "--no-progress", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "From which size does tuning help" in printed and "tuned-k1" in printed
    assert json.loads((out / "report" / "summary.json").read_text())["kind"] == "instructions"

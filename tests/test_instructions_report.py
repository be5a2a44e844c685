"""sweeps.instructions_report on synthetic results whose answer is known by construction."""
import json

import pytest
from scipy.stats import binomtest

from data_gen import make_task
from sweeps.analysis.instructions_report import (analyse, build_instructions_report,
                                                 clopper_pearson, newcombe)
from sweeps.report import main

SIZES = {"10k": 1e4, "100k": 1e5, "1m": 1e6}
N = 400
HELD_ADD = [t.index for t in make_task("add2-words-held").templates]


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


def test_intervals_match_independent_references():
    for k, n in [(0, 20), (3, 20), (20, 20), (137, 400)]:
        lo, hi = clopper_pearson(k, n)
        ref = binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
        assert lo == pytest.approx(ref.low, abs=1e-9) and hi == pytest.approx(ref.high, abs=1e-9)
    # Newcombe (1998), Statistics in Medicine 17:873, Table II example (a): 56/70 - 48/80
    d, lo, hi = newcombe(56, 70, 48, 80)
    assert d == pytest.approx(0.2) and lo == pytest.approx(0.0524, abs=1e-4)
    assert hi == pytest.approx(0.3339, abs=1e-4)


def test_synthetic_results_give_the_planted_answer():
    a = analyse(synthetic_rows())
    assert a["held_out_task"] == "sub2" and a["tuned_tasks"] == ["add2"]
    assert a["sizes"] == ["10k", "100k", "1m"]
    ans = a["answer"]
    assert ans["condition"] == "tuned-k10"
    for measure in ("held-out task", "held-out templates"):
        assert ans[measure]["helps_from"] == "1m" and ans[measure]["hurts_up_to"] == "10k"
        assert ans[measure]["verdicts"] == {"10k": "hurts", "100k": "no clear effect", "1m": "helps"}
    assert ans["symbolic tasks"]["verdicts"] == {s: "no clear effect" for s in SIZES}
    spread = {(s["size"], s["condition"]): s for s in a["spread"]}
    s = spread[("1m", "tuned-k10")]
    assert (s["median"], s["min"], s["max"], s["k"]) == pytest.approx((0.6, 0.5, 0.8, 10))
    assert spread[("10k", "untuned")]["k"] == 0
    held = {(h["size"], h["condition"]): h for h in a["held_task"]}
    h = held[("1m", "untuned")]
    assert h["acc"] == pytest.approx(0.1) and h["n"] == 14 * N
    ref = binomtest(h["k"], h["n"]).proportion_ci(method="exact")
    assert (h["lo"], h["hi"]) == pytest.approx((ref.low, ref.high))


def test_harm_that_grows_with_size_is_named_the_reverse_of_flan():
    rows = synthetic_rows()
    # tuned sub2 phrasings: equal at 10k, worse at 100k and 1m
    for r in rows:
        if r["condition"] != "untuned" and r["task"].startswith("sub2-words"):
            r["exact_match"] = {"10k": 0.50, "100k": 0.05, "1m": 0.0}[r["size"]]
        if r["condition"] == "untuned" and r["task"].startswith("sub2-words"):
            r["exact_match"] = {"10k": 0.50, "100k": 0.30, "1m": 0.10}[r["size"]]
    a = analyse(rows)["answer"]["held-out task"]
    assert a["verdicts"] == {"10k": "no clear effect", "100k": "hurts", "1m": "hurts"}
    assert a["hurts_from"] == "100k" and a["helps_from"] is None and a["hurts_up_to"] is None


def test_no_effect_anywhere_is_said_so(tmp_path):
    rows = [r | {"exact_match": 0.25} for r in synthetic_rows()]
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    md = build_instructions_report(run)
    assert "neither helps nor hurts at any size" in md
    for name in ("report.md", "summary.json", "spread.png", "held_out_task.png", "effect.png"):
        assert (run / "report" / name).stat().st_size > 0


def test_cli_refuses_bad_input(tmp_path, capsys):
    assert main([str(tmp_path / "missing")], kind="instructions") == 2
    assert "does not exist" in capsys.readouterr().err
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.jsonl").write_text(json.dumps(row("default", "10k", "add2", 0.5)) + "\n")
    assert main([str(run)], kind="instructions") == 2  # an emergence run: refused, nothing written
    assert "report kind is 'emergence', not 'instructions'" in capsys.readouterr().err
    assert sorted(p.name for p in run.iterdir()) == ["results.jsonl"]


def test_the_sweep_command_ends_with_this_report(tmp_path, capsys):
    from sweeps.run import main as run_main

    out = tmp_path / "run"
    assert run_main(["instructions", "--sizes", "25k", "--steps", "6", "--eval-size", "5",
                     "--conditions", "untuned,tuned-k1", "--no-progress", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "From which size does tuning help" in printed and "Held-out task `sub2`" in printed
    assert (out / "report" / "report.md").exists()

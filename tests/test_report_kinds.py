"""One report command for every kind of sweep (issue 18) and the summary every kind writes (issue
19, item 7), on run folders built here from result rows.

`python -m sweeps.report RUN_DIR` reads the kind from config.json (`report`), or infers it for a
folder written before kinds were recorded; `python -m sweeps.merge` ends with the same report.
A command asked for another kind refuses with exit 2, names the folder's kind and writes
nothing; rows repeating a (condition, task, size, seed, shots) key are refused naming both lines,
as are values the schema forbids, naming row and field.
The fields summary.json must hold are read from docs/results-schema.md and from the issue.
Folders without `report` are built by tests/test_report.py (emergence), tests/test_icl.py and
tests/test_instructions_report.py; this file builds folders that record their kind.
"""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from data_gen import make_task
from sweeps import merge, report
from sweeps.analysis.emergence import analyse, options_of
from sweeps.analysis.simulate import simulate_rows
from sweeps.results import ResultsError
from sweeps.validate import check_rows, read_results

ROOT = Path(__file__).resolve().parents[1]
LADDER = [6e3, 25e3, 1e5]
# issue 19, item 7: what every curve object and every size in it must hold
CURVE_FIELDS = ("condition", "task", "shots", "metric", "verdict", "emergent_params",
                "last_below_params", "last_below_status", "scale_interval", "scale_interval_kind",
                "per_size")
SIZE_FIELDS = ("size", "params", "n_seeds", "n_learned", "mean", "interval", "above_chance")


def documented_fields() -> tuple[set[str], set[str], set[str]]:
    """(summary keys, curve keys, per-size keys) as docs/results-schema.md lists them."""
    doc = (ROOT / "docs" / "results-schema.md").read_text()
    part = doc[doc.index("## `report/summary.json`"):doc.index("## What is refused")]
    top_table, curve_table = part.split("A curve object:")
    first_column = (lambda table: {name for line in table.splitlines() if line.startswith("| `")
                                   for name in re.findall(r"`(\w+)`", line.split("|")[1])})
    per_size_line = next(line for line in curve_table.splitlines()
                         if line.startswith("| `per_size`"))
    meaning = re.sub(r"\([^)]*\)", "", per_size_line.split("|")[2])  # drop the listed values
    return first_column(top_table), first_column(curve_table), set(re.findall(r"`(\w+)`", meaning))


def write_folder(path: Path, rows: list[dict], config: dict | None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if config is not None:
        (path / "config.json").write_text(json.dumps(config))
    return path


def emergence_rows(sizes=LADDER) -> list[dict]:
    return simulate_rows(sizes, [0.0, 1.0, 1.0][:len(sizes)], 2, 100, 1e-3, rng=1, task="add3")


def icl_rows(sizes=LADDER) -> list[dict]:
    """A held-out rule task at k = 0 and 4, on the 100 problems icl-rule7-new evaluates."""
    rows = []
    for k, learn in ((0, [0.0] * 3), (4, [0.0, 1.0, 1.0])):
        for r in simulate_rows(sizes, learn[:len(sizes)], 2, 100, 1 / 7, learned_acc=0.9,
                               answer_len=1, rng=k, task="icl-rule7-new", shots=k):
            rows.append({**r, "trained": False})
    return rows


def instructions_rows(sizes=("10k", "1m")) -> list[dict]:
    """untuned and tuned-k1 on the held-out task's phrasings, the held-out templates of the
    tuned task, and the symbolic tasks (counts only)."""
    held = [t.index for t in make_task("add2-words-held").templates]
    tasks = [f"sub2-words-t{i:02d}" for i in range(14)] + [f"add2-words-t{i:02d}" for i in held]
    rows = []
    for size in sizes:
        for condition, acc in (("untuned", 0.2), ("tuned-k1", 0.5 if size == "1m" else 0.2)):
            for task in tasks + ["add2-words", "add2", "sub2"]:
                rows.append({"condition": condition, "size": size, "task": task, "seed": 0,
                             "status": "ok", "params": {"10k": 1e4, "1m": 1e6}[size],
                             "exact_match": acc, "n_eval": 100, "chance": {"exact_match": 0.01}})
    return rows


ROWS = {"emergence": emergence_rows, "icl": icl_rows, "instructions": instructions_rows}


@pytest.mark.parametrize("kind", sorted(ROWS))
def test_report_and_merge_give_each_kind_its_own_report(kind, tmp_path, capsys):
    """A folder recording its kind, split in two parts by size: sweeps.merge joins them and
    ends with that kind's report; sweeps.report rebuilds it. Both write report/ and a
    summary.json with every documented field."""
    rows = ROWS[kind]()
    small = min(r["params"] for r in rows)
    config = {"sweep": f"demo-{kind}", "report": kind}
    a = write_folder(tmp_path / "a", [r for r in rows if r["params"] == small], config)
    b = write_folder(tmp_path / "b", [r for r in rows if r["params"] != small], config)
    out = tmp_path / "merged"
    assert merge.main([str(out), str(a), str(b)]) == 0
    capsys.readouterr()
    summary = json.loads((out / "report" / "summary.json").read_text())
    assert summary["kind"] == kind
    (out / "report" / "summary.json").unlink()
    assert report.main([str(out), "--bootstrap", "100", "--threshold", "0.3",
                        "--no-tensorboard"]) == 0
    assert "report written to" in capsys.readouterr().out
    assert (out / "report" / "report.md").is_file()
    summary = json.loads((out / "report" / "summary.json").read_text())
    top, curve_fields, size_fields = documented_fields()
    assert summary["kind"] == kind and top <= set(summary)
    assert (summary["options"]["n_boot"], summary["options"]["threshold_frac"]) == (100, 0.3)
    assert summary["curves"], "no curve in the summary"
    for c in summary["curves"]:
        assert set(CURVE_FIELDS) | curve_fields <= set(c), c.keys()
        assert c["per_size"], c["task"]
        for s in c["per_size"]:
            assert set(SIZE_FIELDS) | size_fields <= set(s), s.keys()
    assert {c["shots"] for c in summary["curves"]} == ({0, 4} if kind == "icl" else {0})
    # k shots against 0 are paired on the rows' `correct`; the instructions rows have none
    paired = {c["paired"] for c in summary["comparisons"]}
    assert paired == {"emergence": set(), "icl": {True}, "instructions": {False}}[kind]


@pytest.mark.parametrize("kind", sorted(ROWS))
def test_an_old_folder_gets_its_kind_from_what_it_holds(kind, tmp_path):
    """Without `report` in config.json (or without config.json), the kind is inferred."""
    rows = ROWS[kind]()
    assert report.kind_of(write_folder(tmp_path / "bare", rows, None)) == kind
    assert report.kind_of(write_folder(tmp_path / "old", rows, {"sweep": "demo"})) == kind
    if kind != "emergence":  # the sweep's name alone says it too
        assert report.infer_kind({"sweep": kind}, emergence_rows()) == kind
    assert report.infer_kind({"shots": [0, 2]}, emergence_rows()) == "icl"


def test_an_unknown_recorded_kind_is_refused_with_the_valid_ones(tmp_path):
    run = write_folder(tmp_path / "run", emergence_rows(), {"report": "scaling"})
    with pytest.raises(ResultsError, match="unknown report kind 'scaling'; valid: emergence, "
                                           "icl, instructions"):
        report.kind_of(run)


def _listing(folder: Path) -> list[tuple[str, int]]:
    return sorted((str(p.relative_to(folder)), p.stat().st_mtime_ns) for p in folder.rglob("*"))


def test_a_command_for_another_kind_refuses_and_writes_nothing(tmp_path, capsys):
    run = write_folder(tmp_path / "run", emergence_rows(), {"report": "emergence"})
    before = _listing(run)
    assert report.main([str(run), "--kind", "icl"]) == 2
    assert "report kind is 'emergence', not 'icl'; nothing was written" in capsys.readouterr().err
    res = subprocess.run([sys.executable, "-m", "sweeps.icl_report", str(run)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "report kind is 'emergence', not 'icl'" in res.stderr
    old_icl = write_folder(tmp_path / "icl", icl_rows(), None)  # inferred: icl
    assert report.main([str(old_icl)], kind="instructions") == 2
    assert "report kind is 'icl', not 'instructions'" in capsys.readouterr().err
    assert _listing(run) == before and not (old_icl / "report").exists()


def test_duplicate_rows_are_refused_naming_both_lines(tmp_path, capsys):
    rows = emergence_rows()
    run = write_folder(tmp_path / "run", rows + [rows[2]], {"report": "emergence"})
    assert report.main([str(run)]) == 2
    err = capsys.readouterr().err
    where = run / "results.jsonl"
    assert f"{where}:{len(rows) + 1}: repeats the row of {where}:3" in err
    assert "condition, task, size, seed, shots = default, add3, 25k, 0, 0" in err
    assert not (run / "report").exists()
    # the same model at another shot count is another row, not a repeat
    other = {**rows[2], "shots": 4}
    run = write_folder(tmp_path / "shots", rows + [other], {"report": "icl"})
    assert report.summarise(run, n_boot=100)


def test_percent_and_strings_are_refused_with_row_and_field(tmp_path):
    rows = emergence_rows()
    for bad, match in (({"exact_match": 5.0}, r"row 2: field exact_match.*percentage"),
                       ({"exact_match": "0.5"}, r"row 2: field exact_match = '0.5'"),
                       ({"chance": "0.1"}, r"row 2: field chance")):
        with pytest.raises(ResultsError, match=match):
            analyse([rows[0], {**rows[1], **bad}] + rows[2:], options_of(n_boot=100))
    (tmp_path / "results.jsonl").write_text(
        '{"task": "t", "size": "a", "seed": 0, "params": 1, "exact_match": NaN}\n'
        '{"task": "t", "size": "b", "seed": 0, "params": "big"}\n')
    with pytest.raises(ResultsError, match=r"results.jsonl:2: field params = 'big'"):
        read_results(tmp_path)


def test_read_results_names_the_fault(tmp_path):
    with pytest.raises(ResultsError, match="not found"):
        read_results(tmp_path)
    (tmp_path / "results.jsonl").write_text('{"task": "t", "size": "s0", "seed": 0, "params": 1}'
                                            '\n[1]\n')
    with pytest.raises(ResultsError, match=r"results.jsonl:2: expected a JSON object"):
        read_results(tmp_path)
    (tmp_path / "results.jsonl").write_text("{oops\n")
    with pytest.raises(ResultsError, match="invalid JSON"):
        read_results(tmp_path)


def test_per_problem_fields_that_contradict_the_row_are_refused():
    """`correct` must be 0s and 1s, one per problem (n_eval), agreeing with exact_match; each
    per_problem list one finite value per problem: a paired analysis on a misaligned row would be
    silently wrong, so the row is refused with its field named."""
    base = {"task": "t", "size": "a", "seed": 0, "params": 1e4, "n_eval": 4,
            "exact_match": 0.5, "chance": {"exact_match": 0.1}}
    ok = {**base, "correct": "0110", "per_problem": {"per_digit_acc": [0.5, 1, 1, 0.25]},
          "per_digit_acc": 0.6875}
    assert check_rows([ok])[0] == []
    for bad, match in (({"correct": "01x0"}, "string of 0 and 1"),
                       ({"correct": "011"}, "3 outcomes but n_eval is 4"),
                       ({"correct": "0111"}, "gives exact match 3/4, but exact_match is 0.5"),
                       ({"per_problem": {"per_digit_acc": [1, 1]}}, "has 2 values, expected 4"),
                       ({"per_problem": {"edit_distance": [0, None, 1, 2]}}, "finite numbers"),
                       ({"per_problem": [1, 2]}, "expected an object")):
        errors = check_rows([{**ok, **bad}])[0]
        assert errors and match in errors[0], (bad, errors)

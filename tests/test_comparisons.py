"""Conditions compared on the same problems (sweeps.analysis.compare), through the emergence
report's comparisons and the markdown they print (issue 19, items 3 and 6).

References written here: the discordant counts and the mid-p McNemar p-value from the rows'
`correct` strings with scipy.stats.binom, Holm's step-down by hand, and the verdict rule (the
corrected test rejects and the range excludes 0). The unpaired fallback's Newcombe interval is
newcombe_diff, checked against Newcombe's (1998) published table in tests/test_inference.py.
"""
import math
import re

import numpy as np
import pytest
from scipy.stats import fisher_exact
from scipy.stats import binom

from sweeps.analysis import sections
from sweeps.analysis.compare import judge, size_difference
from sweeps.analysis.curves import scale_points
from sweeps.analysis.emergence import analyse, options_of
from sweeps.analysis.emergence_report import comparisons
from sweeps.analysis.inference import newcombe_diff
from sweeps.analysis.simulate import simulate_paired_rows

OPTIONS = options_of(n_boot=200)
PARAMS = [1e4, 1e5, 1e6]
CONFIG = {"conditions": ["B", "A"]}  # B is the reference, A the treatment


def paired_rows() -> list[dict]:
    """A against B on the same 300 problems and 2 seeds, chance 0.5 (a yes/no answer): A is
    worse at 10k where both sit under chance, equal at 100k, better at 1m."""
    return simulate_paired_rows(PARAMS, [0.10, 0.45, 0.90], [0.30, 0.45, 0.60], 0.3, 2, 300, 0.5,
                                answer_len=1, rng=3)


def compare(rows: list[dict]) -> dict:
    (comp,) = comparisons(rows, analyse(rows, OPTIONS), CONFIG, OPTIONS,
                          np.random.default_rng(1))
    return comp


def mid_p_mcnemar(b: int, c: int) -> float:
    low = min(b, c)
    return min(1.0, 2 * binom.cdf(low, b + c, 0.5) - binom.pmf(low, b + c, 0.5))


def holm_by_hand(p: list[float], alpha: float = 0.05) -> list[bool]:
    out = [False] * len(p)
    for rank, i in enumerate(sorted(range(len(p)), key=lambda i: p[i])):
        if p[i] > alpha / (len(p) - rank):
            break
        out[i] = True
    return out


def test_rows_with_correct_are_compared_pair_by_pair_on_shared_problems():
    rows = paired_rows()
    comp = compare(rows)
    assert (comp["treatment"], comp["reference"]) == ("sim [A]", "sim [B]")
    assert comp["paired"] and comp["note"] is None
    assert comp["multiplicity"] == "Holm over 3 sizes at alpha 0.05"
    want_p = []
    for size, d in zip(("10k", "100k", "1m"), comp["sizes"]):
        by = {(r["condition"], r["seed"]): r["correct"] for r in rows if r["size"] == size}
        pairs = [(by["A", s], by["B", s]) for s in (0, 1)]
        b = sum(x == "1" and y == "0" for a, bb in pairs for x, y in zip(a, bb))
        c = sum(x == "0" and y == "1" for a, bb in pairs for x, y in zip(a, bb))
        diff = np.mean([(a.count("1") - bb.count("1")) / 300 for a, bb in pairs])
        assert (d["size"], d["b"], d["c"]) == (size, b, c)
        assert d["p_value"] == pytest.approx(mid_p_mcnemar(b, c), rel=1e-9)
        assert d["diff"] == pytest.approx(diff) and d["n_pairs"] == 2
        assert "seeds (clusters) and problems" in d["interval_kind"]
        want_p.append(mid_p_mcnemar(b, c))
    for d, rejects in zip(comp["sizes"], holm_by_hand(want_p)):
        clear = rejects and (d["interval"][0] > 0 or d["interval"][1] < 0)
        assert d["verdict"] == ("helps" if clear and d["diff"] > 0 else "hurts" if clear
                                else "no clear difference")
    assert [d["verdict"] for d in comp["sizes"]] == ["hurts", "no clear difference", "helps"]


def test_without_correct_the_unpaired_fallback_says_so():
    rows = [{k: v for k, v in r.items() if k not in ("correct", "per_problem")}
            for r in paired_rows()]
    comp = compare(rows)
    assert not comp["paired"] and "unpaired fallback" in comp["note"]
    assert comp["multiplicity"].startswith("Holm over 3 sizes")  # Fisher's test per size
    for size, d in zip(("10k", "100k", "1m"), comp["sizes"]):
        k = {c: sum(r["n_correct"] for r in rows if r["size"] == size and r["condition"] == c)
             for c in "AB"}
        _, lo, hi = newcombe_diff(k["A"], 600, k["B"], 600)
        assert d["interval"] == pytest.approx([lo, hi])
        table = [[k["A"], 600 - k["A"]], [k["B"], 600 - k["B"]]]
        assert d["p_value"] == pytest.approx(fisher_exact(table)[1])
        assert "unpaired" in d["interval_kind"]
    md = "\n".join(sections.comparisons([comp]))
    assert "unpaired fallback: no per-problem outcomes recorded" in md


def test_the_headline_follows_from_the_table_and_names_the_bar():
    """The bold headline lists, per verdict, exactly the sizes its table gives that verdict, in
    the table's order; a 'helps' or 'hurts' where both conditions score under the bar (chance
    0.5 here) is marked in both."""
    comp = compare(paired_rows())
    md = "\n".join(sections.comparisons([comp]))
    headline = re.search(r"^\*\*(.+?)\.\*\* \(", md, re.M).group(1)
    assert headline == comp["headline"]
    table = [line.split(" | ") for line in md.splitlines() if re.match(r"\| \d", line)]
    from_table: dict[str, list[str]] = {}
    for cells in table:
        size, verdict = cells[0].strip("| "), cells[-1].rstrip(" |")
        under = "both under the bar of 0.5" in verdict
        verdict = verdict.split(" (")[0]
        mark = " (under the bar)" if under and verdict != "no clear difference" else ""
        from_table.setdefault(verdict, []).append(size + mark)
    said = dict(re.findall(r"(helps|hurts|no clear difference) at ([^;]+)",
                           headline.split(": ", 1)[1]))
    assert {v: s.split(", ") for v, s in said.items()} == from_table
    assert from_table["hurts"] == ["10k (under the bar)"]


def _counts_rows(treatment: list[float], reference: list[float], n: int = 200) -> list[dict]:
    rows = []
    for cond, values in (("A", treatment), ("B", reference)):
        for i, v in enumerate(values):
            rows.append({"task": "t", "condition": cond, "size": f"s{i}", "seed": 0,
                         "params": 10.0 ** (4 + i), "n_eval": n, "exact_match": v,
                         "chance": {"exact_match": 0.001}, "status": "ok"})
    return rows


@pytest.mark.parametrize("treatment,reference,open_end", [
    ([0, 0, 0, 0.06], [0, 0.9, 0.95, 0.97], "hi"),   # the treatment only just clears, at the top
    ([0, 0.9, 0.95, 0.97], [0, 0, 0, 0.06], "lo"),   # the reference only just does
])
def test_a_ratio_range_that_runs_past_the_ladder_is_open(treatment, reference, open_end):
    """12/200 = 0.06 at the largest size is just past the 0.05 floor: redrawn, that curve often
    clears no size at all, so the ratio's range runs past the ladder on that side. The open end
    is null in the record and printed as 'open', never as a closed number."""
    comp = compare(_counts_rows(treatment, reference))
    shift = comp["scale_shift"]
    first = {"hi": (3, 1), "lo": (1, 3)}[open_end]
    assert shift["ratio"] == pytest.approx(10.0 ** (first[0] - first[1]))
    lo, hi = shift["range"]
    assert (lo is None, hi is None) == (open_end == "lo", open_end == "hi")
    closed = hi if open_end == "lo" else lo
    want = f"[open, {closed:.3g}]" if open_end == "lo" else f"[{closed:.3g}, open]"
    assert f"stability range {want}" in "\n".join(sections.comparisons([comp]))


def test_conditions_on_different_ladders_are_redrawn_independently():
    """The reference was measured at one size fewer (two model families, say): the ratio of the
    two emergent scales gets a stability range from independent replicates of each, and says so.
    Both jumps are far outside the noise (0 to 90% of 200 answers), so every replicate agrees."""
    rows = [r for r in _counts_rows([0, 0.9, 0.95, 0.97], [0, 0, 0.9, 0.97])
            if not (r["condition"] == "B" and r["size"] == "s0")]
    shift = compare(rows)["scale_shift"]
    assert shift["ratio"] == pytest.approx(0.1)
    assert shift["range"] == pytest.approx([0.1, 0.1])
    assert "independent replicates" in shift["range_kind"]


def test_the_unpaired_fallback_keeps_the_familywise_error_over_sizes():
    """Six sizes, both conditions at the same accuracy (0.3, 200 problems, one seed, counts
    only): the share of comparisons with any size called 'helps' or 'hurts' stays at or under 5%
    (plus two standard errors of the share), as it does for paired rows: Fisher's exact test per
    size under Holm (it was 73 of 300 when each size was judged by its own interval alone)."""
    rng = np.random.default_rng(11)
    reps, named = 300, 0
    for _ in range(reps):
        k = rng.binomial(200, 0.3, size=(2, 6)) / 200
        rows = _counts_rows(list(k[0]), list(k[1]))
        pa, _ = scale_points([r for r in rows if r["condition"] == "A"], "exact_match")
        pb, _ = scale_points([r for r in rows if r["condition"] == "B"], "exact_match")
        diffs = [size_difference(x, y, 0.95, 200, rng) for x, y in zip(pa, pb)]
        judge(diffs, 0.05, None)
        named += any(d["verdict"] != "no clear difference" for d in diffs)
    assert named / reps <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / reps)


def test_no_scale_ratio_unless_both_curves_are_emergent():
    """Both conditions clearly above chance at the smallest size ('present_at_smallest'): the
    smallest size only bounds each scale from above, so no ratio is given, and the note names the
    verdicts (the scratchpad sweep once printed 'ratio 1' for two such curves)."""
    shift = compare(_counts_rows([0.3, 0.9, 0.95, 0.97], [0.5, 0.9, 0.95, 0.97]))["scale_shift"]
    assert shift["ratio"] is None and shift["range"] is None
    assert shift["note"] == ("no ratio: treatment is 'present_at_smallest'; "
                             "reference is 'present_at_smallest'")
    emergent = compare(_counts_rows([0, 0.9, 0.95, 0.97], [0.5, 0.9, 0.95, 0.97]))["scale_shift"]
    assert emergent["ratio"] is None
    assert emergent["note"] == "no ratio: reference is 'present_at_smallest'"

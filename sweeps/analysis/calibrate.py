"""Measure the coverage of every interval and the size and power of every test in
sweeps.analysis.inference, on simulated populations with a known answer; print a markdown table.

    python -m sweeps.analysis.calibrate [--reps 2000] [--seed 0]

The calibration tests (tests/test_inference.py, tests/test_dose_response.py) check the same
quantities at fewer replicates within the suite's time budget; this prints them at more
replicates and more operating points, with each figure's Monte Carlo standard error. Clopper-
Pearson coverage and the exact tests' sizes are enumerated, not simulated (SE 0).
"""
from __future__ import annotations

import argparse
import math

import numpy as np
from scipy import stats
from scipy.special import expit

from .inference import (above_chance_binary, above_chance_values, bootstrap_mean_interval,
                        clopper_pearson, dose_response, exact_vs_digits, mcnemar_p,
                        paired_difference)
from .simulate import paired_outcomes, shared_problem_outcomes

ALPHA = 0.05


def _row(what: str, setting: str, value: float, reps: int | None) -> str:
    se = "exact" if reps is None else f"{math.sqrt(max(value * (1 - value), 1e-4) / reps):.4f}"
    return f"| {what} | {setting} | {value:.4f} | {se} |"


def clopper_pearson_rows() -> list[str]:
    worst = []
    for n in (1, 3, 10, 30, 100, 300, 1000):
        k = np.arange(n + 1)
        lo, hi = clopper_pearson(k, np.full(n + 1, n))
        p = np.linspace(0.0005, 0.9995, 1999)[:, None]
        worst.append((stats.binom.pmf(k, n, p) * ((lo <= p) & (p <= hi))).sum(axis=1).min())
    return [_row("Clopper-Pearson coverage (min over p)", "n = 1..1000", min(worst), None)]


def bootstrap_rows(reps: int, rng) -> list[str]:
    out = []
    for n, acc, spread in [(100, [0.1], 0.0), (300, [0.5], 0.0), (1000, [0.9], 0.0),
                           (100, [0.1, 0.12, 0.15], 0.05), (300, [0.5, 0.6, 0.45], 0.1),
                           (1000, [0.85, 0.9, 0.8], 0.05)]:
        hits = sum(lo <= np.mean(acc) <= hi for lo, hi in
                   (bootstrap_mean_interval(list(shared_problem_outcomes(acc, n, spread, rng)),
                                            n_boot=1000, rng=rng) for _ in range(reps)))
        out.append(_row("bootstrap_mean_interval coverage", f"n_eval {n}, acc {acc}",
                        hits / reps, reps))
    return out


def paired_rows(reps: int, rng) -> list[str]:
    out = []
    for n, pa, pb, rho, seeds, spread, fixed in [
            (100, 0.5, 0.4, 0.5, 1, 0.0, True), (300, 0.15, 0.1, 0.3, 1, 0.0, True),
            (300, 0.5, 0.4, 0.5, 3, 0.0, True), (300, 0.5, 0.4, 0.5, 3, 0.0, False),
            (300, 0.5, 0.4, 0.3, 3, 0.1, False), (300, 0.5, 0.4, 0.3, 3, 0.3, False),
            (300, 0.5, 0.4, 0.3, 10, 0.1, False), (300, 0.5, 0.4, 0.3, 10, 0.3, False)]:
        hits = 0
        for _ in range(reps):
            a, b = paired_outcomes(n, pa, pb, rho, seeds, spread, 0.05, rng)
            r = paired_difference(a, b, n_boot=1000, rng=rng, resample_seeds=not fixed)
            hits += r["lo"] <= pa - pb <= r["hi"]
        kind = "models fixed" if fixed else f"seeds as clusters, effect spread {spread}"
        out.append(_row("paired_difference coverage", f"{seeds} seeds x {n}, {kind}",
                        hits / reps, reps))
    return out


def digits_and_dose_rows(reps: int, rng) -> list[str]:
    truth = 0.5 * (0.95 ** 4 + 0.5 ** 4) - 0.725 ** 4
    hits = 0
    for _ in range(reps):
        q = np.where(rng.random(300) < 0.5, 0.95, 0.5)
        digits = rng.random((300, 4)) < q[:, None]
        r = exact_vs_digits(digits.all(axis=1), digits.mean(axis=1), 4, n_boot=1000, rng=rng)
        hits += r["lo"] <= truth <= r["hi"]
    out = [_row("exact_vs_digits coverage", "300 problems, two difficulties", hits / reps, reps)]
    x = np.arange(4.0, 6.6, 0.5)
    for slope, x50, seeds in [(2.0, 5.25, 5), (3.0, 5.1, 5), (1.5, 5.3, 5), (2.0, 5.25, 3),
                              (2.0, 5.25, 10)]:
        hits = 0
        for _ in range(reps):
            r = dose_response(x, rng.binomial(seeds, expit(slope * (x - x50))), [seeds] * 6)
            lo = -math.inf if r["lo"] is None else r["lo"]
            hi = math.inf if r["hi"] is None else r["hi"]
            hits += bool(r["ok"]) and lo <= x50 <= hi
        out.append(_row("dose_response profile range coverage",
                        f"6 sizes x {seeds} seeds, slope {slope}/decade", hits / reps, reps))
    return out


def test_rows(reps: int, rng) -> list[str]:
    out = []
    sizes = []
    for seeds in (1, 2, 3, 5, 10):
        for chance in (1e-6, 1e-4, 1e-2, 0.1, 0.3, 0.5):
            n = 200 * seeds
            k = np.arange(n + 1)
            reject = above_chance_binary(k, np.full(n + 1, n), chance) <= ALPHA
            sizes.append(stats.binom.pmf(k, n, chance)[reject].sum())
    out.append(_row("above_chance_binary size (max)", "1-10 seeds x 200, chance 1e-6..0.5",
                    max(sizes), None))
    for seeds in (1, 3, 10):
        n = 200 * seeds
        k = np.arange(n + 1)
        reject = above_chance_binary(k, np.full(n + 1, n), 0.01) <= ALPHA
        out.append(_row("above_chance_binary power", f"{seeds} seeds x 200, 3% vs chance 1%",
                        stats.binom.pmf(k, n, 0.03)[reject].sum(), None))
    worst = (0.0, "")
    for digits in (2, 4, 6):
        for q in (1e-6, 1e-3, 0.01, 0.1, 0.3, 0.5):
            for seeds in (1, 2, 3, 5, 10):
                right = rng.binomial(digits, q, size=(reps, 50 * seeds))
                size = (above_chance_values(right / digits, q, True) <= ALPHA).mean()
                worst = max(worst, (size, f"{digits} digits, q {q}, {seeds} x 50 values"))
    out.append(_row("above_chance_values size (max of 90 settings, 2-6 digits, q 1e-6..0.5, "
                    "1-10 seeds x 50)", worst[1], worst[0], reps))
    mid = max(stats.binom.pmf(np.arange(n + 1), n, 0.5)[
        mcnemar_p(np.arange(n + 1), n - np.arange(n + 1)) <= ALPHA].sum() for n in range(1, 301))
    out.append(_row("mcnemar_p mid-p size given b + c (max)", "b + c = 1..300", mid, None))
    hits = 0
    for _ in range(reps):
        a, b = paired_outcomes(300, 0.45, 0.37, 0.5, 1, rng=rng)
        hits += paired_difference(a, b, n_boot=10, rng=rng)["p_value"] <= ALPHA
    out.append(_row("paired McNemar power", "300 problems, 0.45 vs 0.37, rho 0.5", hits / reps,
                    reps))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=2000, help="simulated replicates per point")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    print("| quantity | setting | measured | SE |\n| --- | --- | --- | --- |")
    print("\n".join(clopper_pearson_rows()), flush=True)
    for part in (bootstrap_rows, paired_rows, digits_and_dose_rows, test_rows):
        print("\n".join(part(args.reps, rng)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

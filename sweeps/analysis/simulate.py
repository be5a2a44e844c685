"""Synthetic sweep results from known populations, for calibration tests and checking reports.

Every generator draws from a population whose answer is known (which sizes learn, with what
probability; the true accuracy of every model; the true difference between two conditions), so a
test can compare what the analysis says with the truth. Rows follow docs/results-schema.md
(task, size, seed, params, flops, n_eval, exact_match, n_correct, per_digit_acc, chance,
answer_len, status, shots, condition) plus the per-problem fields of issue 19:

- `correct`: a string of "0"/"1", problem i's exact-match outcome, in one problem order shared
  by every size, seed and condition;
- `per_problem`: {"per_digit_acc": [fraction of problem i's answer digits right, ...]};
- `sim`: what was drawn (whether the seed learned, its true accuracy), for tests to read.

The digit model (`simulate_rows`, `simulate_smooth_rows`): every answer digit is right with a
model's digit probability q, independently, and an answer is right when all its digits are, so
exact match is q ** answer_len. A model at exact-match chance c has q = c ** (1 / answer_len),
which is the per-digit chance written into the rows. Training FLOPs are synthetic: 6 N D with
D = 20 N tokens (Hoffmann et al. 2022's ratio), i.e. 120 N^2.
"""
from __future__ import annotations

import math

import numpy as np


def size_name(params: float) -> str:
    """A ladder name for a parameter count: 6000 -> '6k', 1.5e6 -> '1.5m', 2e9 -> '2b'."""
    for scale, suffix in ((1e9, "b"), (1e6, "m"), (1e3, "k")):
        if params >= scale:
            return f"{params / scale:.3g}{suffix}"
    return f"{params:.3g}"


def log_linear(params: list[float], start: float, end: float) -> list[float]:
    """Values rising linearly in log10(params) from `start` at the smallest size to `end` at
    the largest (a smooth curve with no threshold)."""
    x = np.log10(np.asarray(params, float))
    t = (x - x.min()) / np.ptp(x) if np.ptp(x) > 0 else np.zeros_like(x)
    return list(start + (end - start) * t)


def _seed_counts(n_seeds, n_sizes: int) -> list[int]:
    counts = [n_seeds] * n_sizes if isinstance(n_seeds, (int, np.integer)) else list(n_seeds)
    if len(counts) != n_sizes or any(int(c) < 1 for c in counts):
        raise ValueError(f"n_seeds: one count >= 1 for all sizes, or one per size "
                         f"({n_sizes}), got {n_seeds}")
    return [int(c) for c in counts]


def _check_prob(name: str, values) -> None:
    v = np.asarray(values, float)
    if not np.all((v >= 0) & (v <= 1)):
        raise ValueError(f"{name} must lie in [0, 1], got {values}")


def make_row(params: float, seed: int, correct: np.ndarray, digit_acc: np.ndarray,
             chance: float, answer_len: int, task: str, condition: str, shots: int,
             sim: dict) -> dict:
    """One result row from one model's per-problem outcomes (0/1) and digit accuracies."""
    n_correct = int(correct.sum())
    return {"task": task, "ability": task, "condition": condition, "shots": shots,
            "size": size_name(params), "seed": seed, "params": float(params),
            "flops": 120.0 * float(params) ** 2, "status": "ok", "n_eval": int(correct.size),
            "exact_match": n_correct / correct.size, "n_correct": n_correct,
            "per_digit_acc": float(digit_acc.mean()), "answer_len": answer_len,
            "chance": {"exact_match": chance, "per_digit_acc": chance ** (1.0 / answer_len)},
            "correct": "".join("1" if c else "0" for c in correct),
            "per_problem": {"per_digit_acc": [float(d) for d in digit_acc]}, "sim": sim}


def digit_outcomes(q: float, n_eval: int, answer_len: int, rng: np.random.Generator
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Per-problem exact match and digit accuracy when each digit is right with probability q."""
    digits = rng.random((n_eval, answer_len)) < q
    return digits.all(axis=1), digits.mean(axis=1)


def simulate_rows(params: list[float], learn_prob: list[float], n_seeds, n_eval: int,
                  chance: float, learned_acc: float = 0.97, unlearned_acc: float | None = None,
                  answer_len: int = 4, rng=None, task: str = "sim", condition: str = "default",
                  shots: int = 0) -> list[dict]:
    """One row per (size, seed) from a seed lottery: a seed of size i learns with probability
    learn_prob[i]; a learned seed's exact-match accuracy is `learned_acc`, an unlearned one's
    `unlearned_acc` (default: chance). n_seeds: one count, or one per size (e.g. 3 up to 30M and
    1 above). Digits follow the module's digit model."""
    _check_prob("learn_prob", learn_prob)
    _check_prob("accuracies", [chance, learned_acc, chance if unlearned_acc is None
                               else unlearned_acc])
    if len(learn_prob) != len(params):
        raise ValueError(f"learn_prob: one per size ({len(params)}), got {len(learn_prob)}")
    rng = np.random.default_rng(rng)
    low = chance if unlearned_acc is None else unlearned_acc
    rows = []
    for p, lp, k in zip(params, learn_prob, _seed_counts(n_seeds, len(params))):
        for seed in range(k):
            learned = bool(rng.random() < lp)
            acc = learned_acc if learned else low
            correct, digit_acc = digit_outcomes(acc ** (1.0 / answer_len), n_eval, answer_len,
                                                rng)
            rows.append(make_row(p, seed, correct, digit_acc, chance, answer_len, task,
                                 condition, shots, {"learned": learned, "exact_match": acc,
                                                    "per_digit_acc": acc ** (1 / answer_len)}))
    return rows


def simulate_smooth_rows(params: list[float], digit_acc: list[float], n_seeds, n_eval: int,
                         chance: float, answer_len: int = 4, rng=None, task: str = "sim",
                         condition: str = "default", shots: int = 0) -> list[dict]:
    """One row per (size, seed) from a smooth population: every model of size i gets each digit
    right with probability digit_acc[i] (no seed lottery), so per-digit accuracy follows
    digit_acc and exact match its answer_len-th power. `log_linear` gives a straight curve."""
    _check_prob("digit_acc", digit_acc)
    if len(digit_acc) != len(params):
        raise ValueError(f"digit_acc: one per size ({len(params)}), got {len(digit_acc)}")
    rng = np.random.default_rng(rng)
    rows = []
    for p, q, k in zip(params, digit_acc, _seed_counts(n_seeds, len(params))):
        for seed in range(k):
            correct, acc = digit_outcomes(q, n_eval, answer_len, rng)
            rows.append(make_row(p, seed, correct, acc, chance, answer_len, task, condition,
                                 shots, {"learned": None, "exact_match": q ** answer_len,
                                         "per_digit_acc": q}))
    return rows


def shared_problem_outcomes(acc_by_seed: list[float], n_problems: int,
                            difficulty_spread: float = 0.0, rng=None) -> np.ndarray:
    """0/1 outcomes, shape (seeds, problems), of fixed models on the same problems: problem i
    shifts every model's probability by h_i ~ Uniform(-spread, spread) (shared difficulty, so
    seeds agree on which problems are hard). Model s's expected accuracy is acc_by_seed[s]."""
    rng = np.random.default_rng(rng)
    acc = np.asarray(acc_by_seed, float)
    _check_prob("acc_by_seed -/+ difficulty_spread",
                [acc.min() - difficulty_spread, acc.max() + difficulty_spread])
    h = rng.uniform(-difficulty_spread, difficulty_spread, n_problems)
    return (rng.random((acc.size, n_problems)) < acc[:, None] + h[None, :]).astype(float)


def paired_outcomes(n_problems: int, p_a: float, p_b: float, rho: float = 0.0, n_seeds: int = 1,
                    effect_spread: float = 0.0, difficulty_spread: float = 0.0, rng=None
                    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """0/1 outcomes of conditions A and B on the same problems, one array per seed each.

    Seed s answers problem i right under A with probability p_a + e_s / 2 + h_i and under B with
    p_b - e_s / 2 + h_i, where e_s ~ Uniform(-effect_spread, effect_spread) is the seed's own
    deviation of the effect (seeds are a sample of training runs) and h_i ~ Uniform(-spread,
    spread) the problem's difficulty, shared by seeds and conditions. Within a (seed, problem)
    pair the two outcomes have correlation `rho`. The population difference is p_a - p_b."""
    rng = np.random.default_rng(rng)
    e = rng.uniform(-effect_spread, effect_spread, (n_seeds, 1))
    h = rng.uniform(-difficulty_spread, difficulty_spread, (1, n_problems))
    pa, pb = p_a + e / 2 + h, p_b - e / 2 + h
    reach = effect_spread / 2 + difficulty_spread
    _check_prob("p_a and p_b -/+ (effect_spread / 2 + difficulty_spread)",
                [p_a - reach, p_a + reach, p_b - reach, p_b + reach])
    both = pa * pb + rho * np.sqrt(pa * (1 - pa) * pb * (1 - pb))
    if np.any(both < np.maximum(0, pa + pb - 1) - 1e-12) or np.any(both > np.minimum(pa, pb)
                                                                   + 1e-12):
        raise ValueError(f"rho = {rho} is not reachable with these marginals (A and B both "
                         "right would need a probability outside [max(0, pa + pb - 1), "
                         "min(pa, pb)]); lower |rho|")
    u = rng.random((n_seeds, n_problems))
    a = (u < pa).astype(float)                            # A right: [0, pa)
    b = ((u < both) | ((u >= pa) & (u < pa + pb - both))).astype(float)  # B: [0, both) + ...
    return list(a), list(b)


def wrong_answer_digits(correct: np.ndarray, answer_len: int, digit_acc: float,
                        rng: np.random.Generator) -> np.ndarray:
    """Per-problem digit accuracy consistent with exact-match outcomes: 1 for a right answer;
    for a wrong one, one random digit wrong and each other digit right with prob digit_acc."""
    digits = rng.random((correct.size, answer_len)) < digit_acc
    digits[np.arange(correct.size), rng.integers(0, answer_len, correct.size)] = False
    digits[correct.astype(bool)] = True
    return digits.mean(axis=1)


def simulate_paired_rows(params: list[float], acc_a: list[float], acc_b: list[float],
                         rho: float, n_seeds, n_eval: int, chance: float, answer_len: int = 4,
                         rng=None, task: str = "sim", conditions: tuple[str, str] = ("A", "B"),
                         shots: int = 0, effect_spread: float = 0.0,
                         difficulty_spread: float = 0.0, wrong_digit_acc: float = 0.5
                         ) -> list[dict]:
    """Rows of two conditions answering the same problems with the same seeds (e.g. tuned and
    untuned from one checkpoint): per size, `paired_outcomes` with accuracies acc_a[i], acc_b[i],
    within-pair correlation rho and the given spreads; the population difference at size i is
    acc_a[i] - acc_b[i]. Digit accuracies follow `wrong_answer_digits`."""
    if not (len(acc_a) == len(acc_b) == len(params)):
        raise ValueError(f"acc_a and acc_b: one per size ({len(params)})")
    rng = np.random.default_rng(rng)
    rows = []
    for p, pa, pb, k in zip(params, acc_a, acc_b, _seed_counts(n_seeds, len(params))):
        a, b = paired_outcomes(n_eval, pa, pb, rho, k, effect_spread, difficulty_spread, rng)
        for cond, outcomes, acc in ((conditions[0], a, pa), (conditions[1], b, pb)):
            for seed, correct in enumerate(outcomes):
                digits = wrong_answer_digits(correct, answer_len, wrong_digit_acc, rng)
                rows.append(make_row(p, seed, correct.astype(bool), digits, chance, answer_len,
                                     task, cond, shots, {"learned": None, "exact_match": acc}))
    return rows

"""Chance levels: what the best guesser scores who knows a task's answer format and how its answers
are distributed over the task's problems, but not the problem in front of it.

For the answer A of a problem drawn as the task draws them (data_gen.answer_laws), each metric has
its own best guesser:

    exact_match     max_s P(A = s)              it writes the likeliest answer
    per_digit_acc   mean_i max_c P(A_i = c)     it writes the likeliest character at each position
    edit_distance   E lev(g, A) for the best constant g found (lower is better; see below)
    answer_logprob  -H(A) = E ln P(A)           a model that knows the distribution and no more

The edit-distance guess g has the answer's width and is made of characters that answers contain.
It is exactly the best such string when trying them all costs at most EXHAUSTIVE_PAIRS guess-answer
pairs (`how` says "exhaustive"); otherwise it is the best of coordinate searches (one position
at a time, every character, until no change helps) started from the per-position modal string,
from the likeliest answer and from RANDOM_STARTS seeded random strings: a local optimum, so its
value is an upper bound on the best constant's (for add3 it is 3.065 where an exhaustive search,
run once, finds 3.058). Guesses of other widths are not searched.

Every number is exact where the answers can be tabulated or have a closed form
(data_gen.answer_laws). Otherwise, and for the edit distance of tasks with more than SEARCH_MAX
distinct answers, it comes from fixed-seed samples of the task's problems (never its evaluation
set): the search runs on one sample of SEARCH_SAMPLE and the guess it picks is scored on the full
table or on an independent sample of SCORE_SAMPLE, whose standard error `se` gives. Results are
cached per law (add3, add3-scratch and add3-words share one).

    python -m data_gen.chance_table add3 mod97-mul icl-op2   # the table in docs/results-schema.md
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import product

import numpy as np

from .answer_laws import AnswerLaw
from .seeds import name_seed

SEARCH_MAX = 5_000             # search over the exact table up to this many distinct answers
SEARCH_SAMPLE = 2_000          # otherwise over a sample of this many problems
SCORE_SAMPLE = 50_000          # problems behind a sampled score
DIGIT_SAMPLE = 200_000         # problems behind sampled per-position distributions
EXHAUSTIVE_PAIRS = 2_000_000   # try every guess when guesses x answers is at most this
RANDOM_STARTS = 4              # extra starts of the coordinate search
CHUNK = 8_000_000              # DP cells held at once by the edit-distance pass
METRICS = ("exact_match", "per_digit_acc", "edit_distance", "answer_logprob")


@dataclass(frozen=True)
class ChanceLevels:
    """Each metric's chance level, its standard error (0 where exact), how it was computed, and
    the best guesser's answer for exact match, per-digit accuracy and edit distance."""
    levels: dict[str, float]
    se: dict[str, float]
    how: dict[str, str]
    guess: dict[str, str] = field(default_factory=dict)


_CACHE: dict[str, ChanceLevels] = {}


def chance_levels(task) -> dict[str, float]:
    """{metric: chance level} of a task (module docstring); cached per answer law."""
    return dict(chance_details(task).levels)


def chance_details(task) -> ChanceLevels:
    law = task.answer_law()
    if law.key not in _CACHE:
        _CACHE[law.key] = levels_of_law(law)
    return _CACHE[law.key]


def as_codes(strings: list[str], width: int) -> np.ndarray:
    """Fixed-width ASCII strings as a (len, width) uint8 array."""
    if any(len(s) != width for s in strings):
        raise ValueError(f"answers of one task must all have width {width}")
    return np.frombuffer("".join(strings).encode("ascii"), dtype=np.uint8).reshape(len(strings), width)


def levels_of_law(law: AnswerLaw) -> ChanceLevels:
    """Every metric's chance level for one law (module docstring)."""
    rng = np.random.default_rng(name_seed(law.key, "chance"))
    table = None
    if law.table is not None:
        values, counts = law.table()
        table = (as_codes([law.write(int(v)) for v in values], law.width),
                 counts / counts.sum(), values)
    levels, se, how, guess = {}, {}, {}, {}

    if law.mode is not None:
        value, p = law.mode
        levels["exact_match"], how["exact_match"], guess["exact_match"] = p, "closed form", law.write(value)
    else:
        codes, weights, values = table
        top = int(np.argmax(weights))
        levels["exact_match"], how["exact_match"] = float(weights[top]), "exact"
        guess["exact_match"] = law.write(int(values[top]))
    se["exact_match"] = 0.0

    modal, levels["per_digit_acc"], se["per_digit_acc"], how["per_digit_acc"] = \
        _per_position(law, table, rng)
    guess["per_digit_acc"] = modal

    if law.entropy is not None:
        h, se["answer_logprob"] = law.entropy()
        how["answer_logprob"] = "closed form" if se["answer_logprob"] == 0 else \
            "sample of problems: ln #problems - E ln #problems with that answer"
    else:
        w = table[1]
        h, se["answer_logprob"], how["answer_logprob"] = float(-np.sum(w * np.log(w))), 0.0, "exact"
    levels["answer_logprob"] = -h

    starts = [modal, guess["exact_match"]]
    g, levels["edit_distance"], se["edit_distance"], how["edit_distance"] = \
        _edit_distance(law, table, starts, rng)
    guess["edit_distance"] = g
    return ChanceLevels({m: float(levels[m]) for m in METRICS}, se, how, guess)


def _sample_codes(law: AnswerLaw, table, rng, n: int) -> np.ndarray:
    if table is not None:
        codes, weights, _ = table
        return codes[rng.choice(len(weights), size=n, p=weights)]
    return as_codes([law.write(v) for v in law.sample(rng, n)], law.width)


def _per_position(law: AnswerLaw, table, rng) -> tuple[str, float, float, str]:
    """(modal string, mean over positions of the largest character probability, se, how)."""
    if law.position_probs is not None:
        probs = law.position_probs()
        how, n = "closed form", 0
    else:
        if table is not None:
            codes, weights, _ = table
            how, n = "exact", 0
        else:
            codes, n = _sample_codes(law, None, rng, DIGIT_SAMPLE), DIGIT_SAMPLE
            weights = np.full(n, 1.0 / n)
            how = f"sample of {n:,} problems"
        probs = []
        for i in range(law.width):
            mass = np.bincount(codes[:, i], weights=weights, minlength=128)
            probs.append({chr(c): float(mass[c]) for c in np.nonzero(mass)[0]})
    best = [max(sorted(p), key=p.get) for p in probs]  # ties: the smallest character
    tops = [p[c] for p, c in zip(probs, best)]
    # sd of a mean is at most the mean of the sds, whatever the positions' dependence
    se = 0.0 if n == 0 else sum(math.sqrt(t * (1 - t) / n) for t in tops) / len(tops)
    return "".join(best), sum(tops) / len(tops), se, how


def edit_distance_matrix(guesses: np.ndarray, answers: np.ndarray) -> np.ndarray:
    """lev(g, a) for every row g of `guesses` (G, L) and a of `answers` (T, L'), as a (G, T) array:
    the Levenshtein recurrence run once, vectorised over every guess-answer pair."""
    G, L = guesses.shape
    T, La = answers.shape
    out = np.empty((G, T), dtype=np.int16)
    step = max(1, CHUNK // max(1, T * (La + 1)))
    for start in range(0, G, step):
        g = guesses[start:start + step, None, :]                          # (g, 1, L)
        prev = np.broadcast_to(np.arange(La + 1, dtype=np.int16), (len(g), T, La + 1)).copy()
        for i in range(L):
            mismatch = g[:, :, i:i + 1] != answers[None]                  # (g, T, La)
            diag = np.minimum(prev[..., 1:] + 1, prev[..., :-1] + mismatch)
            cur = np.empty_like(prev)
            cur[..., 0] = i + 1
            for j in range(1, La + 1):  # measured faster than a running minimum over j
                cur[..., j] = np.minimum(diag[..., j - 1], cur[..., j - 1] + 1)
            prev = cur
        out[start:start + step] = prev[..., La]
    return out


def expected_edit_distances(guesses: np.ndarray, answers: np.ndarray,
                            weights: np.ndarray) -> np.ndarray:
    """E lev(g, A) for every row g of `guesses`, A a row of `answers` drawn with `weights`."""
    return edit_distance_matrix(guesses, answers) @ weights


def _search(answers: np.ndarray, weights: np.ndarray, starts: list[str],
            rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """The best constant guess over `answers` (module docstring): (guess codes, 'exhaustive' or
    'coordinate search'). The search also starts from RANDOM_STARTS random strings."""
    alphabet = np.unique(answers)
    width = answers.shape[1]
    if len(alphabet) ** width * len(answers) <= EXHAUSTIVE_PAIRS:
        guesses = np.array(list(product(alphabet, repeat=width)), dtype=np.uint8)
        scores = expected_edit_distances(guesses, answers, weights)
        return guesses[int(np.argmin(scores))], "exhaustive"
    best, best_score = None, math.inf
    begin = [np.frombuffer(s.encode("ascii"), dtype=np.uint8) for s in starts]
    begin += list(rng.choice(alphabet, size=(RANDOM_STARTS, width)))
    for start in begin:
        guess = start.copy()
        score = float(expected_edit_distances(guess[None], answers, weights)[0])
        improved = True
        while improved:
            improved = False
            for i in range(width):
                trial = np.repeat(guess[None], len(alphabet), axis=0)
                trial[:, i] = alphabet
                scores = expected_edit_distances(trial, answers, weights)
                k = int(np.argmin(scores))
                if scores[k] < score - 1e-12:
                    guess, score, improved = trial[k].copy(), float(scores[k]), True
        if score < best_score:
            best, best_score = guess, score
    return best, "coordinate search"


def _edit_distance(law: AnswerLaw, table, starts: list[str], rng) -> tuple[str, float, float, str]:
    """(guess, expected edit distance, se, how) of the best constant guess found."""
    if table is not None and len(table[1]) <= SEARCH_MAX:
        codes, weights, _ = table
        guess, kind = _search(codes, weights, starts, rng)
        value = float(expected_edit_distances(guess[None], codes, weights)[0])
        return guess.tobytes().decode(), value, 0.0, f"exact, {kind}"
    sample = _sample_codes(law, table, rng, SEARCH_SAMPLE)
    found, kind = _search(sample, np.full(SEARCH_SAMPLE, 1.0 / SEARCH_SAMPLE), starts, rng)
    candidates = np.stack([found, np.frombuffer(starts[0].encode("ascii"), dtype=np.uint8)])
    if table is not None:  # the picked guesses scored on every answer
        codes, weights, _ = table
        scores = expected_edit_distances(candidates, codes, weights)
        k = int(np.argmin(scores))
        return candidates[k].tobytes().decode(), float(scores[k]), 0.0, \
            f"exact score, {kind} on a sample of {SEARCH_SAMPLE:,}"
    fresh = _sample_codes(law, None, rng, SCORE_SAMPLE)  # independent of the search's sample
    dists = edit_distance_matrix(candidates, fresh).astype(np.float64)
    k = int(np.argmin(dists.mean(1)))
    se = float(dists[k].std(ddof=1) / math.sqrt(SCORE_SAMPLE))
    return candidates[k].tobytes().decode(), float(dists[k].mean()), se, \
        f"sample of {SCORE_SAMPLE:,}, {kind} on another of {SEARCH_SAMPLE:,}"

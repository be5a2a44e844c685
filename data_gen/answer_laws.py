"""How a task's answers are distributed over its problems: what data_gen.chance turns into chance
levels.

An `AnswerLaw` is the law of the answer a task writes for a problem drawn as the task draws its
problems: operands uniform over their range (n-digit arithmetic), pairs uniform (modular
arithmetic, and in-context tasks, whose answers do not depend on the hidden rule's choice). It
holds whatever can be had exactly, and a fixed-seed sampler for the rest.

With a, b uniform on 0..N-1 (N = 10**n), the number of problems with answer value v is

    a + b:  N - |v - (N-1)|            for 0 <= v <= 2N-2      (a tent)
    a - b:  N - |v|                    for |v| <= N-1          (a tent)
    a * b:  2N - 1 for v = 0; for v > 0, the divisors d of v with d < N and v/d < N

so for addition and subtraction, at any n, the likeliest answer has probability 1/N, and the
distribution of each written digit follows from sums of a linear count over the integers with a
given digit at a given place (closed forms below). Both tents hold the counts 1..N-1 twice and N
once, so their entropy is

    H = 2 ln N - (2 S(N-1) + N ln N) / N**2,       S(M) = sum_{k=1..M} k ln k,

S(M) summed directly up to 10**6 and beyond that by its asymptotic expansion (the log of the
hyperfactorial, with A the Glaisher-Kinkelin constant; the first term left out, 1/(720 M**2), is
under 1e-15 there). A product's count needs the divisors of v: up to 10**6 problems the answers
are tabulated by enumeration; beyond, 0 is still the likeliest product (a v > 0 has at most
2 sqrt(v) < 2N - 1 divisors), and the entropy is H = ln(#problems) - E[ln c(V)], with c(V) the
number of problems whose answer is V, averaged over a fixed-seed sample (unbiased, with its
standard error), c from the factorisations of a and b (sympy.factorint).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import product
from typing import Callable, Sequence

import numpy as np

GLAISHER_LOG = 0.2487544770337842512   # ln A, A the Glaisher-Kinkelin constant
TABLE_VALUES = 300_000                  # tabulate a tent law up to this many answer values
TABLE_PAIRS = 1_000_000                 # enumerate products up to this many operand pairs
ENTROPY_SAMPLE = 20_000                 # problems behind an estimated entropy
OPS = ("+", "-", "*")


@dataclass(frozen=True)
class AnswerLaw:
    """The law of a task's answer. `key` names it (tasks sharing a law, such as add3, add3-scratch
    and add3-words, share one key); `write` is the answer string the task writes for a value.
    Optional exact parts: `table()` -> (values, counts) of every answer; `mode` = (value,
    probability) of the likeliest answer; `position_probs()` -> per written position, {character:
    probability}; `entropy()` -> (nats, standard error). `sample(rng, n)` -> answer values of n
    random problems (drawn from the table when there is one)."""
    key: str
    width: int
    write: Callable[[int], str]
    sample: Callable[[np.random.Generator, int], list[int]] | None = None
    table: Callable[[], tuple[np.ndarray, np.ndarray]] | None = None
    mode: tuple[int, float] | None = None
    position_probs: Callable[[], list[dict[str, float]]] | None = None
    entropy: Callable[[], tuple[float, float]] | None = None


# --------------------------------------------------------------------------------------------
# Tents: addition and subtraction in closed form
# --------------------------------------------------------------------------------------------

def tent_pieces(op: str, n_values: int) -> list[tuple[int, int, int, int]]:
    """The count of the value a op b (op "+"), or of |a - b| (op "-"), as linear pieces
    (lo, hi, alpha, beta): count(v) = alpha + beta * v for lo <= v < hi."""
    N = n_values
    if op == "+":
        return [(0, N, 1, 1), (N, 2 * N - 1, 2 * N - 1, -1)]
    if op == "-":  # |a - b| = 0 once per a; u > 0 both ways round
        return [(0, 1, N, 0), (1, N, 2 * N, -2)]
    raise ValueError(f"no tent law for operation {op!r}; valid: + -")


def digit_count_and_sum(x: int, place: int, digit: int) -> tuple[int, int]:
    """How many integers 0 <= v < x have `digit` at decimal `place` (0 = units), and their sum."""
    size, block = 10 ** place, 10 ** (place + 1)
    full, rest = divmod(x, block)
    start = digit * size
    count = full * size
    total = size * block * full * (full - 1) // 2 + full * (start * size + size * (size - 1) // 2)
    m = min(max(rest - start, 0), size)   # the partial block's run of this digit
    first = full * block + start
    return count + m, total + m * first + m * (m - 1) // 2


def tent_digit_probs(pieces, place: int, total: int) -> dict[str, float]:
    """The distribution of the digit at `place` of a value whose count follows `pieces`."""
    probs = {}
    for digit in range(10):
        mass = 0
        for lo, hi, alpha, beta in pieces:
            c_hi, s_hi = digit_count_and_sum(hi, place, digit)
            c_lo, s_lo = digit_count_and_sum(lo, place, digit)
            mass += alpha * (c_hi - c_lo) + beta * (s_hi - s_lo)
        if mass:
            probs[str(digit)] = mass / total
    return probs


def log_hyperfactorial(m: int, exact_below: int = 10 ** 6) -> float:
    """S(m) = sum_{k=1..m} k ln k: summed directly below `exact_below`, else asymptotically."""
    if m < exact_below:
        k = np.arange(1, m + 1, dtype=np.float64)
        return float(np.sum(k * np.log(k)))
    return (m * m / 2 + m / 2 + 1 / 12) * math.log(m) - m * m / 4 + GLAISHER_LOG


def tent_entropy(n_values: int, exact_below: int = 10 ** 6) -> float:
    """Entropy (nats) of a + b, equally a - b, for a, b uniform on 0..n_values-1."""
    N = n_values
    s = log_hyperfactorial(N - 1, exact_below)
    return 2 * math.log(N) - (2 * s / N + math.log(N)) / N


def tent_table(op: str, N: int) -> tuple[np.ndarray, np.ndarray]:
    values = np.arange(0, 2 * N - 1) if op == "+" else np.arange(-(N - 1), N)
    centre = N - 1 if op == "+" else 0
    return values, N - np.abs(values - centre)


def tent_law(op: str, digits: int, fmt: str, write: Callable[[int], str], key: str) -> AnswerLaw:
    """n-digit addition (op "+": n+1 digits) or subtraction (op "-": a sign, n digits of |a-b|),
    in format fmt ("plain" or "reversed": the digits least-significant first, the sign in front)."""
    N = 10 ** digits
    places = list(range(digits + 1 if op == "+" else digits))[::-1]  # most significant first
    if fmt == "reversed":
        places = places[::-1]

    def position_probs() -> list[dict[str, float]]:
        pieces = tent_pieces(op, N)
        probs = [tent_digit_probs(pieces, place, N * N) for place in places]
        if op == "-":  # '-' exactly when a < b
            probs.insert(0, {"+": (N + 1) / (2 * N), "-": (N - 1) / (2 * N)})
        return probs

    table = (lambda: tent_table(op, N)) if 2 * N - 1 <= TABLE_VALUES else None
    return AnswerLaw(key, len(write(0)), write, sample=lambda rng, n: _operand_sample(rng, n, (op,), N),
                     table=table, mode=(N - 1 if op == "+" else 0, 1 / N),
                     position_probs=position_probs, entropy=lambda: (tent_entropy(N), 0.0))


# --------------------------------------------------------------------------------------------
# Products, and the hidden-operator mixture of + - *
# --------------------------------------------------------------------------------------------

def pair_count(op: str, value: int, N: int, factors: dict[int, int] | None = None) -> int:
    """Operand pairs (a, b) in 0..N-1 with a op b = value; a product needs `factors`, the prime
    factorisation of value (taken when not given)."""
    if op == "+":
        return max(0, N - abs(value - (N - 1)))
    if op == "-":
        return max(0, N - abs(value))
    if value < 0:
        return 0
    if value == 0:
        return 2 * N - 1
    if factors is None:
        from sympy import factorint
        factors = factorint(value)
    count = 0
    for powers in product(*[[p ** e for e in range(k + 1)] for p, k in factors.items()]):
        d = math.prod(powers)
        count += d < N and value // d < N
    return count


def _operand_sample(rng: np.random.Generator, n: int, ops: Sequence[str], N: int) -> list[int]:
    which = rng.integers(0, len(ops), n)
    a, b = rng.integers(0, N, n).tolist(), rng.integers(0, N, n).tolist()
    fns = {"+": lambda x, y: x + y, "-": lambda x, y: x - y, "*": lambda x, y: x * y}
    return [fns[ops[w]](x, y) for w, x, y in zip(which.tolist(), a, b)]


def _mixture_table(ops: Sequence[str], N: int) -> tuple[np.ndarray, np.ndarray]:
    """Every answer value of a op b (op uniform over `ops`) with its count of (op, a, b)."""
    low = -(N - 1) if "-" in ops else 0
    high = max({"+": 2 * N - 2, "-": N - 1, "*": (N - 1) ** 2}[op] for op in ops)
    counts = np.zeros(high - low + 1, dtype=np.int64)
    for op in ops:
        if op == "*":
            a = np.arange(N, dtype=np.int64)
            counts += np.bincount((a[:, None] * a[None, :]).ravel() - low, minlength=len(counts))
        else:
            values, c = tent_table(op, N)
            counts[values - low] += c
    values = np.nonzero(counts)[0]
    return values + low, counts[values]


def _mixture_entropy(ops: Sequence[str], N: int, seed: int) -> tuple[float, float]:
    """H = ln(#problems) - E[ln c(V)] over ENTROPY_SAMPLE fixed-seed problems (module doc)."""
    from sympy import factorint

    rng = np.random.default_rng(seed)
    which = rng.integers(0, len(ops), ENTROPY_SAMPLE).tolist()
    a_s, b_s = rng.integers(0, N, ENTROPY_SAMPLE).tolist(), rng.integers(0, N, ENTROPY_SAMPLE).tolist()
    logs = np.empty(ENTROPY_SAMPLE)
    for i, (w, a, b) in enumerate(zip(which, a_s, b_s)):
        op = ops[w]
        value = a + b if op == "+" else a - b if op == "-" else a * b
        factors = None
        if value > 0 and "*" in ops:
            if op == "*":  # factor the operands, never the (up to 36-digit) product
                factors = factorint(a)
                for p, k in factorint(b).items():
                    factors[p] = factors.get(p, 0) + k
            else:
                factors = factorint(value)
        logs[i] = math.log(sum(pair_count(o, value, N, factors) for o in ops))
    se = float(np.std(logs, ddof=1) / math.sqrt(ENTROPY_SAMPLE))
    return math.log(len(ops) * N * N) - float(np.mean(logs)), se


def operand_law(ops: Sequence[str], digits: int, write: Callable[[int], str], key: str,
                seed: int) -> AnswerLaw:
    """The answer of a op b for a, b uniform n-digit operands and op uniform over `ops` (a plain
    product: ("*",); the hidden-operator task: ("+", "-", "*")). Tabulated up to TABLE_PAIRS
    pairs; beyond, the likeliest answer is 0 (with 2N-1 pairs under *, N under -, 1 under +, more
    than any other value has) and the entropy is estimated."""
    N = 10 ** digits
    ops = tuple(ops)
    if N * N <= TABLE_PAIRS:
        return AnswerLaw(key, len(write(0)), write, table=lambda: _mixture_table(ops, N))
    zero = sum(pair_count(op, 0, N) for op in ops)
    return AnswerLaw(key, len(write(0)), write,
                     sample=lambda rng, n: _operand_sample(rng, n, ops, N),
                     mode=(0, zero / (len(ops) * N * N)),
                     entropy=lambda: _mixture_entropy(ops, N, seed))


def counts_law(n_values: int, counts: Callable[[], Sequence[int]], write: Callable[[int], str],
               key: str) -> AnswerLaw:
    """A law over the values 0..n_values-1 given by `counts()`, each value's number of problems
    (modular and rule tasks); counted only when the chance levels are not cached yet."""
    def table() -> tuple[np.ndarray, np.ndarray]:
        c = np.asarray(counts(), dtype=np.int64)
        if len(c) != n_values:
            raise ValueError(f"{key}: {len(c)} counts for {n_values} values")
        keep = np.nonzero(c)[0]
        return keep, c[keep]
    return AnswerLaw(key, len(write(0)), write, table=table)

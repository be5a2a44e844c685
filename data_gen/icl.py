"""In-context learning: hidden-rule tasks, k-shot prompts for any task, and episode training rows.

k-shot prompts
    A k-shot prompt is k solved examples written exactly as the training stream writes them
    ("prompt answer\\n" each), then the query's prompt; the model must write the query's answer.
    `few_shot_set(task, k)` builds one for every evaluation problem. The solved examples come from
    the task's training sampler, which never yields an evaluation problem, and are fixed per
    (task, query): the same for every model, size and seed, and nested (the 2-shot examples are
    the first two of the 4-shot ones; for data_gen.recall, a subset of them, the query's own pair
    among them). `shots_fit(task, k, seq_len)` says whether a k-shot
    episode fits one training context (seq_len + 1 tokens, as in the stream).

Hidden-rule tasks (names are registered in `data_gen.make_task`)
    icl-op{n}        task recognition. `12?34=` where '?' stands for +, - or *, hidden for the
                     whole sequence; only the solved examples before the query say which. Operands
                     have n digits (1..4); every answer is a sign and 2n digits ("12?34=+0046"
                     for +, "-0022" for -, "+0408" for *), so all three operations have one width.
    icl-rule{p}      task learning (He et al. 2024, "Learning to grok"). A rule (a, b) maps a pair
                     to z = (a*x + b*y) mod p, p prime; a sequence shows examples of one hidden
                     rule, then a new pair. The p*p - 1 rules (a, b) != (0, 0) are split once, by
                     a permutation seeded by p alone, into held-out rules (a fifth) and training
                     rules. `icl-rule{p}` is evaluated on training rules (query pairs held out for
                     each rule), `icl-rule{p}-new` on held-out rules, which never appear in
                     training. Pairs exclude (0, 0), whose answer is 0 under every rule.
                     Encoded (p=7, rule (2, 3)): "3:4=4", as 2*3 + 3*4 = 18 = 2*7 + 4.
    icl-rule{p}-t{N} the same with only N training rules (the held-out rules do not change with N):
                     the "number of training rules" knob of He et al.
    icl-recall{m}    associative recall, a fresh map of m letters to digits in every episode
                     (data_gen.recall: the task of induction heads, Olsson et al. 2022).

Training rows for hidden-rule tasks are episodes (see EpisodeStream): one hidden rule per context,
its examples one after another, loss on every answer, so the model is trained at every shot count
from 0 to what fits. `data_gen.make_stream` picks EpisodeStream when a mixture holds a hidden-rule
task and the plain TrainStream otherwise.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .formats import write_number
from .modular import is_prime
from .stream import TrainStream
from .answer_laws import AnswerLaw, counts_law, operand_law
from .seeds import name_seed
from .task import Example, Task
from .tokenizer import PAD_ID, encode

HIDDEN_OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}
MAX_OP_DIGITS = 4
MAX_RULE_P = 97
HELDOUT_RULE_FRACTION = 0.2


# --------------------------------------------------------------------------------------------
# k-shot prompts for any task
# --------------------------------------------------------------------------------------------

def episode_text(shots: Sequence[Example], query: Example) -> Example:
    """k solved examples, then the query: the query's answer stays the one to write."""
    return Example("".join(s.text for s in shots) + query.prompt, query.answer)


def shots_fit(task: Task, k: int, seq_len: int) -> bool:
    """True if k solved examples and the answered query fit one context of the training stream
    (seq_len + 1 tokens: a k-shot prompt is then a prefix of a possible training row, and the
    model never reads past its block size while writing the answer)."""
    length = len(task.eval_set()[0].text)  # every example of a task has one length
    return (k + 1) * length <= seq_len + 1


def max_shots(task: Task, seq_len: int) -> int:
    """The largest k for which `shots_fit` holds (-1 if not even the query fits)."""
    return (seq_len + 1) // len(task.eval_set()[0].text) - 1


def few_shot_set(task: Task, k: int, limit: int | None = None) -> list[Example]:
    """The task's evaluation problems (the first `limit`), each preceded by k solved examples.

    Plain tasks: the solved examples are draws of the task's training sampler, which never yields
    an evaluation problem. Hidden-rule tasks: their `shots_for`, by default draws of the query's
    own hidden rule from its pool of non-evaluation pairs, without repeats (data_gen.recall shows
    the query's own pair among k of its map). Either way the draws are seeded by the task's name
    and the query's index only, so they are nested in k."""
    if not isinstance(k, int) or k < 0:
        raise ValueError(f"k (the number of shots) must be a non-negative integer, got {k!r}")
    queries = task.eval_set()[:limit]
    if k == 0:
        return list(queries)
    out = []
    for i, query in enumerate(queries):
        rng = random.Random(name_seed(task.name, f"shots|{i}"))
        if isinstance(task, HiddenRuleTask):
            shots = task.shots_for(i, k, rng)
        else:
            shots = [task.sample_train(rng) for _ in range(k)]
        out.append(episode_text(shots, query))
    return out


# --------------------------------------------------------------------------------------------
# Hidden-rule tasks
# --------------------------------------------------------------------------------------------

class HiddenRuleTask(Task):
    """A task whose examples depend on a rule hidden for the whole sequence.

    rule_list()                 every rule training can use
    sample_rule(rng)            one training rule, uniformly (a task with endless rules, such as
                                data_gen.recall's fresh maps, draws one instead of listing them)
    sample_with_rule(rng, r)    a training example of rule r (never an evaluation problem)
    sample_train(rng)           a training example of a uniformly drawn training rule
    shot_pool(i)                the solved examples that may precede evaluation query i
    shots_for(i, k, rng)        the k solved examples before query i (default: k of shot_pool(i))
    """

    def rule_list(self) -> list:
        raise NotImplementedError

    def sample_rule(self, rng: random.Random):
        rules = self.rule_list()
        return rules[rng.randrange(len(rules))]

    def sample_with_rule(self, rng: random.Random, rule) -> Example:
        raise NotImplementedError

    def sample_train(self, rng: random.Random) -> Example:
        return self.sample_with_rule(rng, self.sample_rule(rng))

    def shot_pool(self, i: int) -> list[Example]:
        raise NotImplementedError

    def shots_for(self, i: int, k: int, rng: random.Random) -> list[Example]:
        """k draws without repeats from shot_pool(i), by `rng`."""
        pool = self.shot_pool(i)
        if len(pool) < k:
            raise ValueError(f"{self.name}: only {len(pool)} non-evaluation examples share a "
                             f"query's rule, fewer than k={k}")
        return rng.sample(pool, k)


@dataclass
class HiddenOpTask(HiddenRuleTask):
    """Task recognition: "x?y=" with the operation (+, -, *) hidden; answer sign + 2n digits.

    Encoded examples (digits=2), one per hidden operation:
        +:  "12?34=+0046"     -:  "12?34=-0022"     *:  "12?34=+0408"     then "\\n"
    The evaluation set is a fixed seeded set of (operation, x, y) that training never yields.
    """
    digits: int
    eval_size: int = 500
    _eval_keys: set = field(init=False, repr=False)

    def __post_init__(self):
        if not isinstance(self.digits, int) or not 1 <= self.digits <= MAX_OP_DIGITS:
            raise ValueError(f"icl-op digits must be in 1..{MAX_OP_DIGITS}, got {self.digits!r}")
        space = 3 * 10 ** (2 * self.digits)
        if not 1 <= self.eval_size <= space // 4:
            raise ValueError(f"eval_size for icl-op{self.digits} must be in 1..{space // 4} (a "
                             f"quarter of the {space} problems), got {self.eval_size}")
        rng = random.Random(name_seed(f"icl-op{self.digits}", "eval"))
        top, chosen = 10 ** self.digits, {}
        while len(chosen) < self.eval_size:
            chosen[(rng.choice("+-*"), rng.randrange(top), rng.randrange(top))] = None
        self._eval = list(chosen)
        self._eval_keys = set(chosen)

    @property
    def name(self) -> str:
        return f"icl-op{self.digits}"

    @property
    def answer_len(self) -> int:
        return 2 * self.digits + 1

    def encode(self, op: str, x: int, y: int) -> Example:
        n = self.digits
        return Example(f"{x:0{n}d}?{y:0{n}d}=", self.write_answer(HIDDEN_OPS[op](x, y)))

    def rule_list(self) -> list[str]:
        return list(HIDDEN_OPS)

    def sample_with_rule(self, rng: random.Random, op: str) -> Example:
        top = 10 ** self.digits
        while True:  # rejection: at most a quarter of the problems are held out
            x, y = rng.randrange(top), rng.randrange(top)
            if (op, x, y) not in self._eval_keys:
                return self.encode(op, x, y)

    def eval_items(self) -> list[tuple[str, int, int]]:
        return list(self._eval)

    def eval_set(self) -> list[Example]:
        return [self.encode(*item) for item in self._eval]

    def shot_pool(self, i: int) -> list[Example]:
        """Solved examples of query i's operation: a fixed draw of 64 non-evaluation problems."""
        op = self._eval[i][0]
        rng = random.Random(name_seed(self.name, f"pool|{i}"))
        return [self.sample_with_rule(rng, op) for _ in range(64)]

    def write_answer(self, value: int) -> str:
        return ("-" if value < 0 else "+") + write_number(abs(value), 2 * self.digits, "plain")

    def answer_law(self) -> AnswerLaw:
        """The answer of a uniformly drawn (operation, x, y): the chance guesser ignores the
        examples, so it knows the mixture of + - * answers but not which operation is hidden.
        Its exact-match bar is far below op_guess_baseline, which also reads the operands."""
        key = self.name
        return operand_law(tuple(HIDDEN_OPS), self.digits, self.write_answer, key,
                           name_seed(key, "chance"))

    def op_guess_baseline(self) -> float:
        """Exact match of a model that computes all three operations perfectly but cannot tell
        which one is hidden, so picks one uniformly: the mean, over evaluation problems, of the
        fraction of operations that give the true answer (2+2 = 2*2, x-0 = x+0, ...). Clearing it
        needs the examples."""
        return sum(sum(HIDDEN_OPS[o](x, y) == HIDDEN_OPS[op](x, y) for o in HIDDEN_OPS) / 3
                   for op, x, y in self._eval) / len(self._eval)


@dataclass
class LinearRuleTask(HiddenRuleTask):
    """Task learning: z = (a*x + b*y) mod p for a hidden rule (a, b); p prime.

    Encoded (p=7, rule (2, 3)):  "3:4=4"  (2*3 + 3*4 = 18 = 2*7 + 4)  then "\\n"
    With p > 10 operands and answer are zero-padded to two digits: "03:04=..".

    `heldout=False`: training rules; the evaluation problems are (rule, pair) combinations that
    training never yields. `heldout=True`: the held-out rules, none of which training ever
    yields (sample_train draws training rules, so the two tasks train identically); their pairs
    are split per rule into evaluation queries and a pool of solved examples for the prompts.
    """
    p: int
    heldout: bool = False
    n_train_rules: int | None = None   # None: every rule not held out
    eval_size: int = 500

    def __post_init__(self):
        if not isinstance(self.p, int) or not 2 <= self.p <= MAX_RULE_P or not is_prime(self.p):
            raise ValueError(f"icl-rule p must be a prime in 2..{MAX_RULE_P}, got {self.p!r}")
        if self.eval_size < 1:
            raise ValueError(f"eval_size must be at least 1, got {self.eval_size}")
        rules = [(a, b) for a in range(self.p) for b in range(self.p) if (a, b) != (0, 0)]
        order = np.random.default_rng(name_seed(f"icl-rule{self.p}", "rules")).permutation(len(rules))
        n_held = max(1, round(HELDOUT_RULE_FRACTION * len(rules)))
        self._heldout_rules = [rules[i] for i in order[:n_held]]
        train = [rules[i] for i in order[n_held:]]
        if self.n_train_rules is not None:
            if not 1 <= self.n_train_rules <= len(train):
                raise ValueError(f"icl-rule{self.p}: the number of training rules must be in "
                                 f"1..{len(train)} ({n_held} of the {len(rules)} rules are held "
                                 f"out), got {self.n_train_rules}")
            train = train[: self.n_train_rules]
        self._train_rules = train
        self._pairs = [(x, y) for x in range(self.p) for y in range(self.p) if (x, y) != (0, 0)]
        self._draw_eval()

    @property
    def name(self) -> str:
        t = f"-t{self.n_train_rules}" if self.n_train_rules is not None else ""
        return f"icl-rule{self.p}{t}" + ("-new" if self.heldout else "")

    @property
    def width(self) -> int:
        return len(str(self.p - 1))

    @property
    def answer_len(self) -> int:
        return self.width

    def _draw_eval(self) -> None:
        # Seeded by the family (p and training-rule count), not by the -new suffix: both tasks
        # hold out the same (training rule, pair) combinations, so neither trains on the other's
        # evaluation problems.
        family = self.name.removesuffix("-new")
        rng = random.Random(name_seed(family, "eval"))
        space = [(r, xy) for r in self._train_rules for xy in self._pairs]
        n = min(self.eval_size, len(space) // 4)  # at most a quarter held out, as elsewhere
        train_eval = rng.sample(space, n)
        self._eval_keys = set(train_eval)
        if not self.heldout:
            self._eval = train_eval
            return
        # each held-out rule: half its pairs are queries, the other half its pool of shots
        rng = random.Random(name_seed(family, "heldout-eval"))
        self._query_pairs, self._pool_pairs = {}, {}
        for rule in self._heldout_rules:
            pairs = rng.sample(self._pairs, len(self._pairs))
            half = len(pairs) // 2
            self._query_pairs[rule], self._pool_pairs[rule] = pairs[:half], pairs[half:]
        items = [(r, xy) for r in self._heldout_rules for xy in self._query_pairs[r]]
        rng.shuffle(items)
        self._eval = items[: self.eval_size]

    def rule_value(self, rule: tuple[int, int], x: int, y: int) -> int:
        return (rule[0] * x + rule[1] * y) % self.p

    def encode(self, rule: tuple[int, int], x: int, y: int) -> Example:
        w = self.width
        return Example(f"{x:0{w}d}:{y:0{w}d}=", write_number(self.rule_value(rule, x, y), w, "plain"))

    def rule_list(self) -> list[tuple[int, int]]:
        return list(self._train_rules)

    def heldout_rules(self) -> list[tuple[int, int]]:
        return list(self._heldout_rules)

    def sample_with_rule(self, rng: random.Random, rule) -> Example:
        if rule in self._heldout_rules:
            raise ValueError(f"rule {rule} is held out of training")
        while True:  # rejection: at most a quarter of the combinations are held out
            x, y = self._pairs[rng.randrange(len(self._pairs))]
            if (rule, (x, y)) not in self._eval_keys:
                return self.encode(rule, x, y)

    def eval_items(self) -> list[tuple[tuple[int, int], tuple[int, int]]]:
        return list(self._eval)

    def eval_set(self) -> list[Example]:
        return [self.encode(rule, x, y) for rule, (x, y) in self._eval]

    def shot_pool(self, i: int) -> list[Example]:
        """Solved examples of query i's rule that are not evaluation problems and not the query."""
        rule, query = self._eval[i]
        if self.heldout:
            return [self.encode(rule, x, y) for x, y in self._pool_pairs[rule]]
        return [self.encode(rule, x, y) for x, y in self._pairs
                if (x, y) != query and (rule, (x, y)) not in self._eval_keys]

    def answer_law(self) -> AnswerLaw:
        """The answer of a uniformly drawn rule and pair, the same for training and held-out rules:
        for a rule (a, b) != (0, 0), z = a*x + b*y mod p takes each value on p of the p*p pairs
        (a linear map onto Z_p), so without the pair (0, 0) the answer 0 has p - 1 pairs and each
        other value p. The chance guesser ignores the examples and the pair; the baselines of
        no_context_baselines, measured on the evaluation set, are the bars that also know the
        training rules."""
        counts = [self.p - 1] + [self.p] * (self.p - 1)
        write = lambda v: write_number(v, self.width, "plain")  # noqa: E731
        return counts_law(self.p, lambda: counts, write, f"icl-rule{self.p}")

    def no_context_baselines(self) -> dict[str, float]:
        """Exact match, on this evaluation set, of guessers that ignore the solved examples:
        `constant`, the best single answer for every query (answers are not quite uniform: z = 0
        has p - 1 pairs per rule, the others p); `rule_prior`, for each query the answer most
        training rules give it (ties split evenly), the best a model can do that knows the
        training rules but reads nothing from the examples. Beating the larger of these and 1/p
        needs the examples."""
        truths = [self.rule_value(rule, x, y) for rule, (x, y) in self._eval]
        constant = max(truths.count(v) for v in range(self.p)) / len(truths)
        prior = 0.0
        for (_, (x, y)), truth in zip(self._eval, truths):
            counts = [0] * self.p
            for rule in self._train_rules:
                counts[self.rule_value(rule, x, y)] += 1
            best = [v for v in range(self.p) if counts[v] == max(counts)]
            prior += (truth in best) / len(best)
        return {"constant": constant, "rule_prior": prior / len(truths)}


# --------------------------------------------------------------------------------------------
# Episode rows
# --------------------------------------------------------------------------------------------

class EpisodeStream(TrainStream):
    """TrainStream whose rows are episodes: each row draws one task of the mixture (by weight)
    and, for a hidden-rule task, one of its training rules, then packs examples of that task
    (and rule) until the next would not fit. Loss on every answer, as in TrainStream. A plain
    task's row is i.i.d. examples of that task alone."""

    def _row(self) -> tuple[list[int], list[int]]:
        task = self.rng.choices(self.tasks, weights=self.weights)[0]
        if isinstance(task, HiddenRuleTask):
            rule = task.sample_rule(self.rng)
            draw = lambda: task.sample_with_rule(self.rng, rule)  # noqa: E731
        else:
            draw = lambda: task.sample_train(self.rng)  # noqa: E731
        tokens: list[int] = []
        is_answer: list[bool] = []
        room = self.seq_len + 1
        while True:
            ex = draw()
            prompt, rest = encode(ex.prompt), encode(ex.answer + "\n")
            if len(tokens) + len(prompt) + len(rest) > room:
                break
            tokens += prompt + rest
            is_answer += [False] * len(prompt) + [True] * len(rest)
        pad = room - len(tokens)
        return tokens + [PAD_ID] * pad, is_answer + [False] * pad


def heldout_task_name(name: str) -> str | None:
    """The eval-only task on held-out rules that goes with a trained task name: "icl-rule7" ->
    "icl-rule7-new"; None for a task without held-out rules."""
    if name.startswith("icl-rule") and not name.endswith("-new"):
        return name + "-new"
    return None

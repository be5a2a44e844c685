"""In-context associative recall: in every episode a fresh key -> value map, shown as solved pairs,
then a key whose value must be found among them.

This is the task that induction heads solve (Olsson et al. 2022, "In-context learning and induction
heads": attend to the earlier occurrence of the current token and copy what followed it); the
associative-recall task of Ba et al. 2016 ("Using fast weights") and of Zoology (Arora et al.
2023) in this project's example format. Nothing about a map can be learned in the weights: every
episode draws a new one, so any accuracy above chance comes from reading the context.

    icl-recall{m}   each episode draws m distinct keys from the 26 letters and gives each a digit,
                    uniformly and independently. One example is one pair: prompt "c=", answer
                    "5", then the end token ("c=5\\n", 4 tokens). m is 1..26.

Training rows (data_gen.icl.EpisodeStream, data_gen.fast_episodes): one fresh map per row, pairs
of it drawn with replacement until the row is full (16 pairs in 65 tokens), loss on every answer.
A pair whose key came earlier in the row can be answered by recall; a first occurrence cannot, and
its loss teaches only the uniform prior.

Evaluation: `eval_size` fixed problems (seeded by the task's name), each a map of m pairs and a
query key of it. The query answers are balanced, each digit eval_size/10 times (one more for some
digits when eval_size is not a multiple of 10), so no constant answer beats chance on this set.
`few_shot_set(task, k)` shows k pairs of the query's map: the query's own pair and k - 1 others,
in a shuffled order (fixed per problem and k), then the query key. The k-shot pairs are a subset of
the 2k-shot ones. k = 0 shows no pair: the answer is unknowable (chance). k = 1 shows only the
query's pair, so copying the one value shown is enough; from k = 2 the model must match the key.
A guesser that copies the value of a uniformly chosen shown pair scores 1/k + (1 - 1/k)/10 in
expectation (its distractor values are uniform digits): the bar for "matches the key", as opposed
to "copies a value from the context".

Evaluation maps are not kept out of training, unlike the finite tasks' problems: every episode
draws its map afresh, so a map met in training says nothing about a value in another episode (and
with m = 8 a row meets a given evaluation map with probability 1 / (26!/18! * 10^8), about 1.6e-19).
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from string import ascii_lowercase

from .answer_laws import AnswerLaw, counts_law
from .icl import HiddenRuleTask
from .seeds import name_seed
from .task import Example

KEYS = ascii_lowercase   # the key alphabet: one letter token each
VALUES = 10              # values are the digits 0..9

RecallMap = tuple[tuple[str, int], ...]  # (key, value) pairs, keys distinct


@dataclass
class RecallTask(HiddenRuleTask):
    """Associative recall over maps of `m` letter keys to digits (module docstring).

    Encoded example: "c=5" then "\\n". The hidden "rule" of an episode is its map."""
    m: int
    eval_size: int = 500
    _problems: list = field(init=False, repr=False)

    def __post_init__(self):
        if not isinstance(self.m, int) or not 1 <= self.m <= len(KEYS):
            raise ValueError(f"icl-recall needs a map size m in 1..{len(KEYS)} (keys are the "
                             f"{len(KEYS)} letters), got {self.m!r}")
        if not isinstance(self.eval_size, int) or self.eval_size < 1:
            raise ValueError(f"eval_size must be a positive integer, got {self.eval_size!r}")
        rng = random.Random(name_seed(self.name, "eval"))
        answers = [i % VALUES for i in range(self.eval_size)]
        rng.shuffle(answers)  # balanced answers: the best constant guess is right 1/10 of the time
        self._problems = []
        for answer in answers:
            pairs = list(self.sample_rule(rng))
            query = rng.randrange(self.m)
            pairs[query] = (pairs[query][0], answer)
            self._problems.append((tuple(pairs), query))

    @property
    def name(self) -> str:
        return f"icl-recall{self.m}"

    @property
    def answer_len(self) -> int:
        return 1

    @staticmethod
    def encode(key: str, value: int) -> Example:
        return Example(f"{key}=", str(value))

    def sample_rule(self, rng: random.Random) -> RecallMap:
        """A fresh map: m distinct letters, each with a uniform digit."""
        keys = rng.sample(KEYS, self.m)
        return tuple((k, rng.randrange(VALUES)) for k in keys)

    def rule_list(self) -> list:
        raise ValueError(f"{self.name} draws a fresh map for every episode; there is no list of "
                         f"its rules (use sample_rule)")

    def sample_with_rule(self, rng: random.Random, rule: RecallMap) -> Example:
        return self.encode(*rule[rng.randrange(len(rule))])

    def eval_items(self) -> list[tuple[RecallMap, int]]:
        """Each evaluation problem as (its map's pairs, the index of the query pair)."""
        return list(self._problems)

    def eval_set(self) -> list[Example]:
        return [self.encode(*pairs[q]) for pairs, q in self._problems]

    def shots_for(self, i: int, k: int, rng: random.Random) -> list[Example]:
        """The query's own pair and the first k - 1 other pairs of its map, shuffled by `rng`."""
        pairs, q = self._problems[i]
        if k > self.m:
            raise ValueError(f"{self.name}: a map holds {self.m} pairs, fewer than k={k} shots")
        shown = [pairs[q]] + [p for j, p in enumerate(pairs) if j != q][: k - 1]
        rng.shuffle(shown)
        return [self.encode(*p) for p in shown]

    def answer_law(self) -> AnswerLaw:
        """The query's value is a uniform digit, whatever the key: chance ignores the examples."""
        return counts_law(VALUES, lambda: [1] * VALUES, str, "icl-recall")

    def no_context_baselines(self) -> dict[str, float]:
        """Exact match on this evaluation set of guessers that ignore the examples, as
        LinearRuleTask gives them: `constant`, the best single answer (1/10 when eval_size is a
        multiple of 10, the answers being balanced); `rule_prior`, the answer most training maps
        give the query key, ties split evenly: training maps give every key each digit equally
        often, so all ten tie and the score is exactly 1/10."""
        answers = [pairs[q][1] for pairs, q in self._problems]
        constant = max(answers.count(v) for v in range(VALUES)) / len(answers)
        return {"constant": constant, "rule_prior": 1 / VALUES}

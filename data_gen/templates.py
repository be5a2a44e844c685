"""Natural-language instruction templates for every arithmetic and modular operation (T0 and FLAN
in miniature), and the tasks that write a problem through them.

A template is a hand-written phrasing with slots `{a}`, `{b}` (the operands, zero-padded exactly as
the symbolic task writes them) and, for modular operations, `{p}` (the modulus). Every prompt is the
filled-in template followed by the fixed answer cue CUE = " =", so the answer always follows an
"=" as it does in the symbolic form `12+34=046`: the prompt's end says unambiguously where the
answer starts, and an untuned model (trained only on `12+34=`) meets a cue it knows. The answer is
the symbolic task's own fixed-width answer, so `minigpt.evaluate` scores worded and symbolic forms
alike:

    add2 symbolic:            "12+34="                                        -> "046"
    add2, template add/0:     "what is 12 plus 34? ="                         -> "046"
    sub2, template sub/1:     "subtract 34 from 12. ="                        -> "-22"
    mod97-add, mod-add/6:     "on a 97 hour clock, 17 hours after 05 is ="    -> "22"

Each operation ("family": add, sub, mul for n-digit arithmetic; mod-add, mod-sub, mod-mul,
mod-div, mod-poly for modular arithmetic) has 14 templates. They were written to vary along the
axes T0's prompt writers varied: question or imperative or statement-to-complete, the operation as
a word, a verb, a noun, a symbol or a story, and the operands in order, reversed, or separated by
other words. Templates with the same index are parallel across families where the language allows
(index 0 is always "what is {a} <op> {b}?", index 5 always "compute ..." with the symbol), so a
phrasing learned on one operation can carry over to another: that is what makes zero-shot transfer
to a held-out task possible at all.

`split_templates(family, seed)` sorts a family's templates, by a seeded permutation, into HELD_OUT
(4) held-out and 10 training templates; the training list's order is the permutation's, and a task
that trains on k templates takes the first k, so the sets for k = 1, 3, 10 are nested. Held-out
templates never reach a training task (tests/test_templates.py checks it).

Task names (see `make_word_task`; `make_task` accepts them):

    add2-words          2-digit addition through its 10 training templates
    add2-words-k3       through the first 3 training templates (k = 1 .. 10)
    add2-words-held     through the 4 held-out templates (evaluation only)
    add2-words-all      through all 14 (a held-out *task*, evaluated in every phrasing)
    add2-words-t07      through template 7 alone (per-template evaluation)
    mod97-add-words...  the same for modular tasks

The problems are the symbolic task's: evaluation problems are its fixed evaluation set (problem i
written with the task's template i mod k), training problems come from its training pool, so no
evaluation problem is ever trained in any phrasing.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass

from .arithmetic import ArithmeticTask
from .modular import ModularTask
from .seeds import name_seed
from .task import Example, Task
from .tokenizer import encode

CUE = " ="
HELD_OUT = 4  # held-out templates per family; the other 10 are training templates


@dataclass(frozen=True)
class Template:
    """One phrasing: `text` with {a}, {b} (and {p}) slots, and a note on how it varies."""
    family: str
    index: int
    text: str
    note: str

    @property
    def id(self) -> str:
        return f"{self.family}/{self.index}"

    def render(self, a: str, b: str, p: str | None = None) -> str:
        """The prompt: the template filled with already-formatted operands, then the cue."""
        return self.text.format(a=a, b=b, p=p) + CUE

    def pattern(self) -> re.Pattern:
        """A regex matching this template's prompts, its slots captured: reading the numbers back
        out of a prompt is how the round-trip test checks that nothing is ambiguous."""
        out, seen, pos = [], set(), 0
        for m in re.finditer(r"\{([abp])\}", self.text):
            out.append(re.escape(self.text[pos:m.start()]))
            slot = m.group(1)
            out.append(f"(?P={slot})" if slot in seen else f"(?P<{slot}>\\d+)")
            seen.add(slot)
            pos = m.end()
        out.append(re.escape(self.text[pos:] + CUE))
        return re.compile("^" + "".join(out) + "$")


# (text, note). Notes name the axis each template varies; Q = question, I = imperative,
# S = a statement for the model to complete.
_WRITTEN: dict[str, list[tuple[str, str]]] = {
    "add": [
        ("what is {a} plus {b}?", "Q; operation as a word; operands in order"),
        ("add {a} and {b}.", "I; verb first"),
        ("the sum of {a} and {b} is", "S; operation as a noun"),
        ("{a} + {b} equals", "S; symbol inside words; numbers first"),
        ("what do you get if you add {b} to {a}?", "Q; verb; second operand named first"),
        ("compute {a} + {b}.", "I; symbol"),
        ("{a} apples and {b} more apples make how many?", "Q; a story; numbers first"),
        ("find the total of {a} and {b}.", "I; synonym noun (total)"),
        ("increase {a} by {b}.", "I; synonym verb (increase)"),
        ("{b} added to {a} gives", "S; passive; second operand first"),
        ("tell me {a} plus {b}.", "I; request form"),
        ("sum: {a}, {b}.", "terse label and list"),
        ("how much is {a} and {b} together?", "Q; colloquial"),
        ("please work out {a} + {b}.", "I; polite; symbol"),
    ],
    "sub": [
        ("what is {a} minus {b}?", "Q; operation as a word; operands in order"),
        ("subtract {b} from {a}.", "I; verb first; second operand named first"),
        ("the difference of {a} and {b} is", "S; operation as a noun"),
        ("{a} - {b} equals", "S; symbol inside words; numbers first"),
        ("what do you get if you take {b} away from {a}?", "Q; phrasal verb; second operand first"),
        ("compute {a} - {b}.", "I; symbol"),
        ("you have {a} apples and eat {b}. how many are left?", "Q; a story"),
        ("find {a} less {b}.", "I; synonym (less)"),
        ("decrease {a} by {b}.", "I; synonym verb (decrease)"),
        ("{b} taken from {a} gives", "S; passive; second operand first"),
        ("tell me {a} minus {b}.", "I; request form"),
        ("difference: {a}, {b}.", "terse label and list"),
        ("how much is {a} take away {b}?", "Q; colloquial"),
        ("please work out {a} - {b}.", "I; polite; symbol"),
    ],
    "mul": [
        ("what is {a} times {b}?", "Q; operation as a word; operands in order"),
        ("multiply {a} by {b}.", "I; verb first"),
        ("the product of {a} and {b} is", "S; operation as a noun"),
        ("{a} * {b} equals", "S; symbol inside words; numbers first"),
        ("what do you get if you multiply {b} by {a}?", "Q; verb; operands swapped"),
        ("compute {a} * {b}.", "I; symbol"),
        ("{a} boxes hold {b} apples each. how many apples?", "Q; a story; numbers first"),
        ("find {a} multiplied by {b}.", "I; participle"),
        ("scale {a} by a factor of {b}.", "I; synonym verb (scale)"),
        ("{b} lots of {a} gives", "S; colloquial; second operand first"),
        ("tell me {a} times {b}.", "I; request form"),
        ("product: {a}, {b}.", "terse label and list"),
        ("how much is {a} groups of {b}?", "Q; colloquial"),
        ("please work out {a} * {b}.", "I; polite; symbol"),
    ],
    "mod-add": [
        ("what is {a} plus {b} modulo {p}?", "Q; words; modulus last"),
        ("add {a} and {b}, then reduce mod {p}.", "I; two steps"),
        ("the sum of {a} and {b} mod {p} is", "S; noun"),
        ("({a} + {b}) mod {p} equals", "S; symbols and brackets; numbers first"),
        ("modulo {p}, what is {a} plus {b}?", "Q; modulus first"),
        ("compute ({a} + {b}) % {p}.", "I; fully symbolic inside words"),
        ("on a {p} hour clock, {b} hours after {a} is", "S; a clock story; modulus first, b before a"),
        ("find the remainder of {a} + {b} divided by {p}.", "I; remainder wording"),
        ("in arithmetic mod {p}, add {b} to {a}.", "I; modulus first; b before a"),
        ("{a} plus {b}, modulo {p}, gives", "S; modulus as an aside"),
        ("tell me {a} + {b} mod {p}.", "I; request form"),
        ("sum mod {p}: {a}, {b}.", "terse label and list"),
        ("working mod {p}, how much is {a} and {b}?", "Q; colloquial; modulus first"),
        ("please reduce {a} + {b} modulo {p}.", "I; polite"),
    ],
    "mod-sub": [
        ("what is {a} minus {b} modulo {p}?", "Q; words; modulus last"),
        ("subtract {b} from {a}, then reduce mod {p}.", "I; two steps; b before a"),
        ("the difference of {a} and {b} mod {p} is", "S; noun"),
        ("({a} - {b}) mod {p} equals", "S; symbols and brackets; numbers first"),
        ("modulo {p}, what is {a} minus {b}?", "Q; modulus first"),
        ("compute ({a} - {b}) % {p}.", "I; fully symbolic inside words"),
        ("on a {p} hour clock, {b} hours before {a} is", "S; a clock story; modulus first, b before a"),
        ("find the remainder of {a} - {b} divided by {p}.", "I; remainder wording"),
        ("in arithmetic mod {p}, take {b} from {a}.", "I; modulus first; b before a"),
        ("{a} minus {b}, modulo {p}, gives", "S; modulus as an aside"),
        ("tell me {a} - {b} mod {p}.", "I; request form"),
        ("difference mod {p}: {a}, {b}.", "terse label and list"),
        ("working mod {p}, how much is {a} take away {b}?", "Q; colloquial; modulus first"),
        ("please reduce {a} - {b} modulo {p}.", "I; polite"),
    ],
    "mod-mul": [
        ("what is {a} times {b} modulo {p}?", "Q; words; modulus last"),
        ("multiply {a} by {b}, then reduce mod {p}.", "I; two steps"),
        ("the product of {a} and {b} mod {p} is", "S; noun"),
        ("({a} * {b}) mod {p} equals", "S; symbols and brackets; numbers first"),
        ("modulo {p}, what is {a} times {b}?", "Q; modulus first"),
        ("compute ({a} * {b}) % {p}.", "I; fully symbolic inside words"),
        ("{a} bags of {b} shared by {p}: how many left over?", "Q; a story; numbers first"),
        ("find the remainder of {a} * {b} divided by {p}.", "I; remainder wording"),
        ("in arithmetic mod {p}, multiply {b} by {a}.", "I; modulus first; operands swapped"),
        ("{a} times {b}, modulo {p}, gives", "S; modulus as an aside"),
        ("tell me {a} * {b} mod {p}.", "I; request form"),
        ("product mod {p}: {a}, {b}.", "terse label and list"),
        ("working mod {p}, how much is {a} groups of {b}?", "Q; colloquial; modulus first"),
        ("please reduce {a} * {b} modulo {p}.", "I; polite"),
    ],
    "mod-div": [
        ("what is {a} divided by {b} modulo {p}?", "Q; words; modulus last"),
        ("divide {a} by {b} in arithmetic mod {p}.", "I; verb first; modulus last"),
        ("the quotient of {a} and {b} mod {p} is", "S; noun"),
        ("({a} / {b}) mod {p} equals", "S; symbols and brackets; numbers first"),
        ("modulo {p}, what is {a} over {b}?", "Q; modulus first; 'over'"),
        ("compute ({a} / {b}) % {p}.", "I; fully symbolic inside words"),
        ("which x has {b} times x equal to {a} mod {p}?", "Q; as an equation to solve; b first"),
        ("find {a} times the inverse of {b} mod {p}.", "I; the definition of division"),
        ("in arithmetic mod {p}, divide {a} by {b}.", "I; modulus first"),
        ("{a} over {b}, modulo {p}, gives", "S; modulus as an aside"),
        ("tell me {a} / {b} mod {p}.", "I; request form"),
        ("quotient mod {p}: {a}, {b}.", "terse label and list"),
        ("working mod {p}, how much is {a} shared by {b}?", "Q; colloquial; modulus first"),
        ("please reduce {a} / {b} modulo {p}.", "I; polite"),
    ],
    "mod-poly": [
        ("what is {a}^2 + {a}*{b} + {b}^2 mod {p}?", "Q; the polynomial written out"),
        ("add {a} squared, {b} squared and {a} times {b}, mod {p}.", "I; in words"),
        ("the value of a^2+ab+b^2 at a={a}, b={b} mod {p} is", "S; named variables"),
        ("({a}^2 + {a}*{b} + {b}^2) mod {p} equals", "S; symbols and brackets; numbers first"),
        ("modulo {p}, what is a^2+ab+b^2 with a={a}, b={b}?", "Q; modulus first"),
        ("compute ({a}^2 + {a}*{b} + {b}^2) % {p}.", "I; fully symbolic inside words"),
        ("with a={a} and b={b}, find a*a+a*b+b*b mod {p}.", "I; products instead of powers"),
        ("find the remainder of {a}^2+{a}*{b}+{b}^2 divided by {p}.", "I; remainder wording"),
        ("in arithmetic mod {p}, evaluate a^2+ab+b^2 at {a}, {b}.", "I; modulus first"),
        ("{b}^2 + {b}*{a} + {a}^2, modulo {p}, gives", "S; written from b's side"),
        ("tell me a^2+ab+b^2 mod {p} for {a} and {b}.", "I; numbers last"),
        ("poly mod {p}: {a}, {b}.", "terse label and list"),
        ("working mod {p}, how much is {a}^2+{a}*{b}+{b}^2?", "Q; colloquial; modulus first"),
        ("please reduce {a}*{a}+{a}*{b}+{b}*{b} modulo {p}.", "I; polite; products"),
    ],
}

TEMPLATES: dict[str, tuple[Template, ...]] = {
    family: tuple(Template(family, i, text, note) for i, (text, note) in enumerate(written))
    for family, written in _WRITTEN.items()
}
FAMILIES = tuple(TEMPLATES)


def family_of(task: Task) -> str:
    """The template family of a symbolic task: "add" for add3, "mod-div" for mod97-div."""
    if isinstance(task, ArithmeticTask):
        return task.op
    if isinstance(task, ModularTask):
        return f"mod-{task.op}"
    raise ValueError(f"no templates for task {getattr(task, 'name', task)!r}")


def split_templates(family: str, seed: int = 0) -> tuple[tuple[Template, ...], tuple[Template, ...]]:
    """(training, held_out) templates of a family, by a permutation seeded by (family, seed).

    The training tuple is in the permutation's order: its first k are the k-template set."""
    if family not in TEMPLATES:
        raise ValueError(f"unknown template family '{family}'; valid: {', '.join(FAMILIES)}")
    order = list(TEMPLATES[family])
    random.Random(name_seed(family, f"templates|{seed}")).shuffle(order)
    return tuple(order[HELD_OUT:]), tuple(sorted(order[:HELD_OUT], key=lambda t: t.index))


_SELECT = re.compile(r"^(?:k(\d+)|held|all|t(\d+))$")
SELECT_HELP = ("a words task is <symbolic task>-words[-k<n>|-held|-all|-t<i>], e.g. add2-words, "
               "add2-words-k3, add2-words-held, sub2-words-all, mod97-add-words-t05")


@dataclass
class WordTask(Task):
    """A symbolic task's problems written through a list of templates (see the module doc)."""
    base: Task
    templates: tuple[Template, ...]
    selector: str  # "" (training templates), "k3", "held", "all", "t05": part of the name

    def __post_init__(self):
        if not self.templates:
            raise ValueError("a words task needs at least one template")
        if type(self.base) not in (ArithmeticTask, ModularTask) or self.base.fmt != "plain":
            raise ValueError(f"words tasks take plain answers, not {self.base.name}")
        self.family = family_of(self.base)
        self.eval_size = self.base.eval_size
        self.answer_len = self.base.answer_len

    @property
    def name(self) -> str:
        return f"{self.base.name}-words" + (f"-{self.selector}" if self.selector else "")

    def answer_law(self):
        """The symbolic task's: a words task writes the same answers to the same problems."""
        return self.base.answer_law()

    def _operands(self, a: int, b: int) -> tuple[str, str, str | None]:
        if isinstance(self.base, ModularTask):
            w = self.base.width
            return f"{a:0{w}d}", f"{b:0{w}d}", str(self.base.p)
        n = self.base.digits
        return f"{a:0{n}d}", f"{b:0{n}d}", None

    def encode_with(self, template: Template, a: int, b: int) -> Example:
        """Problem (a, b) in `template`; the answer is the symbolic task's."""
        return Example(template.render(*self._operands(a, b)), self.base.encode(a, b).answer)

    def _eval_pairs(self) -> list[tuple[int, int]]:
        if isinstance(self.base, ModularTask):
            return [(int(a), int(b)) for a, b in self.base._eval_pairs]
        return list(self.base._eval_problems)

    def eval_set(self) -> list[Example]:
        k = len(self.templates)
        return [self.encode_with(self.templates[i % k], a, b)
                for i, (a, b) in enumerate(self._eval_pairs())]

    def sample_operands(self, rng: random.Random) -> tuple[int, int]:
        """A training problem of the symbolic task (never one of its evaluation problems)."""
        base = self.base
        if isinstance(base, ModularTask):
            a, b = base._train_pairs[rng.randrange(len(base._train_pairs))]
            return int(a), int(b)
        top = 10 ** base.digits
        while True:
            a, b = rng.randrange(top), rng.randrange(top)
            if (a, b) not in base._eval_keys:
                return a, b

    def sample_train(self, rng: random.Random) -> Example:
        template = self.templates[rng.randrange(len(self.templates))]
        return self.encode_with(template, *self.sample_operands(rng))

    @property
    def max_text_len(self) -> int:
        """Tokens in the longest example (templates differ in length; TrainStream sizes by it)."""
        top = self._operands(0, 0)
        return max(len(t.render(*top)) for t in self.templates) + self.answer_len + 1


def make_word_task(base: Task, selector: str, seed: int = 0) -> WordTask:
    """The words task for `base` with template `selector` ("", "k3", "held", "all", "t05")."""
    family = family_of(base)
    train, held = split_templates(family, seed)
    m = _SELECT.match(selector) if selector else None
    if selector and not m:
        raise ValueError(f"unknown template selector '{selector}': {SELECT_HELP}")
    if not selector:
        chosen = train
    elif m.group(1) is not None:
        k = int(m.group(1))
        if not 1 <= k <= len(train):
            raise ValueError(f"k{k}: a family has {len(train)} training templates, so k is in "
                             f"1..{len(train)}")
        chosen = train[:k]
    elif selector == "held":
        chosen = held
    elif selector == "all":
        chosen = TEMPLATES[family]
    else:
        i = int(m.group(2))
        if not 0 <= i < len(TEMPLATES[family]):
            raise ValueError(f"t{i}: family {family} has templates t00..t{len(TEMPLATES[family]) - 1:02d}")
        if selector != f"t{i:02d}":  # one name per task: results are keyed by it
            raise ValueError(f"write template {i} as t{i:02d}, e.g. {base.name}-words-t{i:02d}")
        chosen = (TEMPLATES[family][i],)
    for t in chosen:  # every character must be in the vocabulary (raises naming it)
        encode(re.sub(r"\{[abp]\}", "", t.text))
    return WordTask(base, tuple(chosen), selector)


def parse_word_task_name(name: str) -> tuple[str, str] | None:
    """("add2", "k3") for "add2-words-k3"; None if `name` is not a words task."""
    m = re.match(r"^(.+?)-words(?:-([a-z0-9]+))?$", name)
    return (m.group(1), m.group(2) or "") if m else None


__all__ = ["CUE", "HELD_OUT", "TEMPLATES", "FAMILIES", "Template", "WordTask", "family_of",
           "split_templates", "make_word_task", "parse_word_task_name", "SELECT_HELP"]

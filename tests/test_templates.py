"""data_gen.templates: every template round-trips, splits are seeded and never leak into training."""
import random

import pytest

from data_gen import TrainStream, decode, make_task
from data_gen.templates import (CUE, HELD_OUT, TEMPLATES, WordTask, split_templates)
from data_gen.tokenizer import VOCAB

# one symbolic task per family, at the widths the sweeps use
BASES = {"add": "add2", "sub": "sub2", "mul": "mul2", "mod-add": "mod97-add",
         "mod-sub": "mod97-sub", "mod-mul": "mod97-mul", "mod-div": "mod97-div",
         "mod-poly": "mod97-poly"}


def true_answer(family: str, a: int, b: int, p: int | None) -> int:
    """An independent reference: the value each family's answer must hold."""
    if family == "mod-div":
        return next(x for x in range(p) if (b * x) % p == a % p)
    value = {"add": a + b, "sub": a - b, "mul": a * b, "mod-add": a + b, "mod-sub": a - b,
             "mod-mul": a * b, "mod-poly": a * a + a * b + b * b}[family]
    return value % p if p else value


def test_every_family_has_at_least_ten_documented_templates_in_the_vocabulary():
    assert set(TEMPLATES) == set(BASES)
    allowed = set(VOCAB[2:])  # no padding, no end token inside a prompt
    for family, templates in TEMPLATES.items():
        assert len(templates) >= 10 + HELD_OUT  # ten training templates and the held-out ones
        assert len({t.text for t in templates}) == len(templates), f"{family}: repeated template"
        for t in templates:
            assert t.note.strip(), t.id
            assert "{a}" in t.text and "{b}" in t.text, t.id
            assert ("{p}" in t.text) == family.startswith("mod-"), t.id
            assert set(t.render("12", "34", "97")) <= allowed, t.id


@pytest.mark.parametrize("family", sorted(BASES))
def test_every_template_round_trips(family):
    """Read the numbers back out of each prompt and recompute the answer from them alone."""
    task = make_task(f"{BASES[family]}-words-all", eval_size=200)
    rng = random.Random(3)
    examples = task.eval_set() + [task.sample_train(rng) for _ in range(300)]
    matched = set()
    for ex in examples:
        hits = [t for t in task.templates if t.pattern().match(ex.prompt)]
        assert len(hits) == 1, (ex.prompt, [t.id for t in hits])  # exactly one phrasing fits
        m = hits[0].pattern().match(ex.prompt)
        matched.add(hits[0].index)
        a, b = int(m.group("a")), int(m.group("b"))
        p = int(m.group("p")) if family.startswith("mod-") else None
        value = true_answer(family, a, b, p)
        expected = (("-" if value < 0 else "+") + f"{abs(value):02d}" if family == "sub"
                    else f"{value:0{task.answer_len}d}")
        assert ex.answer == expected, ex
        assert ex.prompt.endswith(CUE) and len(ex.answer) == task.answer_len
    assert matched == set(range(len(task.templates)))  # every template was exercised


def test_examples_fit_the_sweep_context_and_stream_sizes_by_the_longest():
    for family, base in BASES.items():
        task = make_task(f"{base}-words-all", eval_size=10)
        assert task.max_text_len <= 65, family  # seq_len 64 holds one whole example
        rng = random.Random(0)
        assert max(len(task.sample_train(rng).text) for _ in range(500)) <= task.max_text_len
    with pytest.raises(ValueError, match="too short"):
        TrainStream([make_task("sub2-words-all")], 2, 40, seed=0)


def test_split_is_seeded_disjoint_and_nested():
    for family in TEMPLATES:
        train, held = split_templates(family, seed=0)
        assert len(held) == HELD_OUT and len(train) == len(TEMPLATES[family]) - HELD_OUT
        assert not {t.index for t in train} & {t.index for t in held}
        assert split_templates(family, seed=0) == (train, held)  # deterministic
    # another seed gives another split for at least one family
    assert any(split_templates(f, 1)[1] != split_templates(f, 0)[1] for f in TEMPLATES)
    k1, k3, k10 = (make_task(f"add2-words-k{k}").templates for k in (1, 3, 10))
    assert set(k1) < set(k3) < set(k10) == set(make_task("add2-words").templates)


@pytest.mark.parametrize("name", ["add2-words", "add2-words-k1", "add2-words-k3", "mod97-add-words",
                                  "sub2-words-k10"])
def test_held_out_templates_never_reach_a_training_stream(name):
    """Decode what the training stream really feeds the model; no held-out phrasing in it."""
    task = make_task(name, eval_size=100)
    held = make_task(name.split("-words")[0] + "-words-held").templates
    stream = TrainStream([task], 16, 64, seed=5)
    seen = set()
    for _ in range(20):
        x, _ = stream.next_batch()
        for row in x:
            for line in decode(row).split("\n"):
                if not line:
                    continue
                prompt = line[: line.rindex(CUE) + len(CUE)]
                hits = [t for t in task.templates if t.pattern().match(prompt)]
                assert len(hits) == 1, line
                assert not any(t.pattern().match(prompt) for t in held), line
                seen.add(hits[0].index)
    assert seen == {t.index for t in task.templates}


def test_words_tasks_share_the_symbolic_problems_and_never_train_an_eval_problem():
    words, symbolic = make_task("add2-words-all", eval_size=300), make_task("add2", eval_size=300)
    pattern = {t.index: t.pattern() for t in words.templates}

    def operands(ex):
        m = next(p.match(ex.prompt) for p in pattern.values() if p.match(ex.prompt))
        return int(m.group("a")), int(m.group("b"))

    eval_pairs = {operands(ex) for ex in words.eval_set()}
    assert eval_pairs == {(int(e.prompt[:2]), int(e.prompt[3:5])) for e in symbolic.eval_set()}
    rng = random.Random(9)
    assert not {operands(words.sample_train(rng)) for _ in range(3000)} & eval_pairs
    mod = make_task("mod13-mul-words", eval_size=1000)
    rng = random.Random(1)
    for _ in range(500):
        a, b = mod.sample_operands(rng)
        assert (a, b) not in mod.base.held_out_pairs()


def test_bad_words_names_are_refused_with_the_valid_forms():
    for bad, message in [("add2-words-k11", r"k is in 1\.\.10"), ("add2-words-k0", r"1\.\.10"),
                         ("add2-words-t14", "t00..t13"), ("add2-words-x", "unknown template selector"),
                         ("add2-rev-words", "plain answers"),
                         ("add2-scratch-words", "plain answers"), ("foo-words", "unknown task 'foo'")]:
        with pytest.raises(ValueError, match=message):
            make_task(bad)
    assert isinstance(make_task("mod7-poly-words-t03"), WordTask)
    with pytest.raises(ValueError, match="write template 3 as t03"):
        make_task("add2-words-t3")
    for name in ("add2-words-t03", "add2-words-k3", "add2-words-held", "sub2-words-all", "add2-words"):
        assert make_task(name).name == name  # result rows are keyed by the name asked for

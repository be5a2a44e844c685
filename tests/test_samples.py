"""Per-example logs (sweeps.records.sample_records, sweeps.results' reader and writer): what a real evaluation wrote comes back record by record;
writes are atomic; damaged files and results without per-problem values are refused."""
import gzip
import json

import pytest
import torch

from data_gen import make_task
from minigpt.config import GPTConfig
from minigpt.evaluate import evaluate_examples
from minigpt.gen_eval import evaluate_generative
from minigpt.model import GPT
from sweeps.records import sample_records
from sweeps.results import read_samples, write_sample_records


def write_samples(path, task, shots, examples, result):
    """One (task, shots) evaluation's log, as the runner writes a unit's."""
    write_sample_records(path, sample_records(task, shots, examples, result))


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return GPT(GPTConfig(n_layer=1, n_head=2, n_embd=32, block_size=48))


def test_a_log_round_trips_every_problem(model, tmp_path):
    examples = make_task("add2", eval_size=20).eval_set()
    result = evaluate_examples(model, examples, "cpu", per_problem=True)
    path = tmp_path / "unit.jsonl.gz"
    write_samples(path, "add2", 0, examples, result)
    records = read_samples(path)
    assert [r["i"] for r in records] == list(range(20))
    for r, ex, out in zip(records, examples, result["outputs"]):
        assert (r["task"], r["shots"], r["prompt"], r["target"], r["output"]) == \
            ("add2", 0, ex.prompt, ex.answer, out)
    for key in ("correct", "per_digit_acc", "edit_distance"):
        assert [r[key] for r in records] == result["per_problem"][key]
    assert [r["answer_logprob"] for r in records] == pytest.approx(
        result["per_problem"]["answer_logprob"], abs=5e-5)
    assert sum(r["correct"] for r in records) / 20 == result["exact_match"]
    with gzip.open(path, "rt") as f:  # plain gzip JSON lines, readable without this module
        assert json.loads(f.readline())["prompt"] == examples[0].prompt
    assert [p.name for p in tmp_path.iterdir()] == ["unit.jsonl.gz"]  # no temporary file left


def test_a_unit_log_holds_several_blocks_and_scratchpad_keys(model, tmp_path):
    task = make_task("add2-scratch", eval_size=5)
    scratch = evaluate_generative(model, task, device="cpu", per_problem=True)
    plain = evaluate_examples(model, make_task("add2", eval_size=5).eval_set(), "cpu", per_problem=True)
    records = sample_records("add2-scratch", 0, task.eval_set(), scratch) + \
        sample_records("add2", 2, make_task("add2", eval_size=5).eval_set(), plain)
    path = tmp_path / "unit.jsonl.gz"
    write_sample_records(path, records)
    back = read_samples(path)
    assert [(r["task"], r["shots"]) for r in back] == [("add2-scratch", 0)] * 5 + [("add2", 2)] * 5
    assert all("step_acc" in r and "no_answer" in r for r in back[:5])
    assert not any("step_acc" in r for r in back[5:])
    assert back[0]["output"] == scratch["outputs"][0]


def test_bad_input_is_refused_with_a_reason(model, tmp_path):
    examples = make_task("add2", eval_size=4).eval_set()
    result = evaluate_examples(model, examples, "cpu")
    with pytest.raises(ValueError, match="per_problem=True"):
        write_samples(tmp_path / "x.jsonl.gz", "add2", 0, examples, result)
    result = evaluate_examples(model, examples, "cpu", per_problem=True)
    with pytest.raises(ValueError, match="3 examples but per-problem lengths"):
        write_samples(tmp_path / "x.jsonl.gz", "add2", 0, examples[:3], result)
    with pytest.raises(FileNotFoundError):  # a missing folder: nothing written, nothing left
        write_samples(tmp_path / "no" / "x.jsonl.gz", "add2", 0, examples, result)
    path = tmp_path / "cut.jsonl.gz"
    write_samples(path, "add2", 0, examples, result)
    path.write_bytes(path.read_bytes()[:-12])  # cut short, as by a crash mid-copy
    with pytest.raises(ValueError, match="not a complete gzip"):
        read_samples(path)
    path.write_bytes(gzip.compress(b'{"i": 0}\n{"i": \n'))
    with pytest.raises(ValueError, match="line 2: not a JSON record"):
        read_samples(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.jsonl.gz"]

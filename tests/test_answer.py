"""`python -m minigpt.answer`: a checkpoint saved by the trainer answers as the model in memory
did; every bad input gets a message and exit status 2."""
import io
import subprocess
import sys

import pytest
import torch

from data_gen import make_stream, make_task
from data_gen.tokenizer import EOS_ID, decode, encode
from minigpt.answer import answer, describe, load_checkpoint, main
from minigpt.config import GPTConfig, TrainConfig
from minigpt.generate import greedy_generate
from minigpt.model import GPT
from minigpt.train import Trainer

PROMPTS = ["12+34=", "99+01=", "50+50="]


def train_tiny(path, task="add2", steps=3):
    torch.manual_seed(0)
    model = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=32, block_size=32))
    stream = make_stream([make_task(task)], 8, 32, seed=0)
    trainer = Trainer(model, stream, TrainConfig(steps=steps, batch_size=8, seq_len=32, warmup_steps=1),
                      3e-3, checkpoint_path=path, progress=False)
    trainer.run()
    trainer.save_checkpoint()
    return model


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "default-tiny-s0.pt"
    return path, train_tiny(path)


def in_memory(model, prompt):
    limit = model.config.block_size - len(prompt)
    return decode(greedy_generate(model, [encode(prompt)], limit, stop_id=EOS_ID)[0])


def test_a_saved_model_answers_as_it_did_in_memory(trained, capsys):
    path, model = trained
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert state["model_config"] == {"n_layer": 1, "n_head": 2, "n_embd": 32, "vocab_size": 57,
                                     "block_size": 32, "attn": "auto", "norm": "auto"}
    assert state["tasks"] == ["add2"]
    loaded = load_checkpoint(path)
    assert loaded.tasks == ["add2"] and loaded.step == 3 and not loaded.scratchpad
    expected = [in_memory(model, p) for p in PROMPTS]
    assert [answer(loaded, p) for p in PROMPTS] == expected
    assert answer(loaded, PROMPTS[0], max_new_tokens=2) == in_memory(model, PROMPTS[0])[:2]
    argv = [str(path)] + [x for p in PROMPTS for x in ("--prompt", p)]
    assert main(argv) == 0
    out = capsys.readouterr()
    assert out.out.splitlines() == [f"{p} {e}" for p, e in zip(PROMPTS, expected)]
    assert "trained on add2" in out.err


def test_prompts_typed_line_by_line(trained, capsys, monkeypatch):
    path, model = trained
    monkeypatch.setattr(sys, "stdin", io.StringIO("12+34=\n\nAB+1=\n50+50=\n"))
    assert main([str(path)]) == 0
    out = capsys.readouterr()
    answers = [x for x in out.out.replace("> ", "\n").split("\n") if x]  # "> " asks for each line
    assert answers == [in_memory(model, "12+34="), in_memory(model, "50+50=")]
    assert "character 'A' is not in the vocabulary" in out.err  # said, and the loop went on


def test_a_scratchpad_model_shows_its_steps_and_answer(tmp_path, capsys):
    path = tmp_path / "scratch.pt"
    train_tiny(path, task="add2-scratch", steps=2)
    assert load_checkpoint(path).scratchpad
    assert main([str(path), "--prompt", "12+34="]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("  scratchpad:") and lines[2].startswith("  answer:")
    assert describe("2+4+0=06,1+3+0=04;046", True) == [
        "2+4+0=06,1+3+0=04;046", "  scratchpad: 2+4+0=06,1+3+0=04", "  answer:     046"]
    assert describe("2+4+0", True)[2] == "  answer:     none (no ';' written)"
    assert describe("046", False) == ["046"]


def test_bad_files_and_prompts_exit_2_with_a_reason(trained, tmp_path, capsys):
    path, model = trained
    cases = {"missing.pt": None, "garbage.pt": b"not a checkpoint at all",
             "cut.pt": path.read_bytes()[:500]}
    for name, content in cases.items():
        if content is not None:
            (tmp_path / name).write_bytes(content)
    state = torch.load(path, map_location="cpu", weights_only=True)
    torch.save({"model": state["model"]}, tmp_path / "old.pt")
    torch.save({**state, "model_config": {**state["model_config"], "n_embd": 48}}, tmp_path / "misfit.pt")
    expect = {"missing.pt": "no checkpoint at", "garbage.pt": "not a readable checkpoint",
              "cut.pt": "not a readable checkpoint", "old.pt": "holds no model config",
              "misfit.pt": "do not fit the recorded model config"}
    for name, message in expect.items():
        assert main([str(tmp_path / name), "--prompt", "12+34="]) == 2, name
        assert message in capsys.readouterr().err, name
    assert main([str(path), "--prompt", "12×34="]) == 2
    assert "character '×' is not in the vocabulary (valid: digits" in capsys.readouterr().err
    assert main([str(path), "--prompt", "1" * 40]) == 2
    assert "reads at most 31" in capsys.readouterr().err


def test_a_checkpoint_trained_with_triton_kernels_loads_on_cpu(trained, tmp_path):
    path, model = trained
    state = torch.load(path, map_location="cpu", weights_only=True)
    torch.save({**state, "model_config": {**state["model_config"], "attn": "triton", "norm": "triton"}},
               tmp_path / "gpu.pt")
    assert answer(load_checkpoint(tmp_path / "gpu.pt"), "12+34=") == in_memory(model, "12+34=")


def test_the_documented_command_runs(trained):
    path, model = trained
    done = subprocess.run([sys.executable, "-m", "minigpt.answer", str(path), "--prompt", "12+34="],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"12+34= {in_memory(model, '12+34=')}\n"


def test_a_staged_stream_records_every_stage_task_once():
    from data_gen.staged import StagedStream
    from minigpt.train import model_record

    streams = [make_stream([make_task(t) for t in names], 4, 64, seed=0)
               for names in (("add2", "mod7-add"), ("add2-words", "add2"))]
    record = model_record(GPT(GPTConfig(n_layer=1, n_head=2, n_embd=32)), StagedStream(streams, [5, 10]))
    assert record["tasks"] == ["add2", "mod7-add", "add2-words"]
    assert model_record(torch.nn.Linear(2, 2), object()) == {"model_config": None, "tasks": None}

"""Activation checkpointing (TrainConfig.activation_checkpointing): the same training, less memory.

Recomputation repeats the same deterministic CPU kernels on the same inputs, so losses and
gradients must be identical bit for bit, not merely close. The memory saving is measured as the
peak resident memory of a fresh process (ru_maxrss) during one forward and backward pass at a size
where activations dominate, with glibc's mmap threshold fixed so that freed tensors go back to the
system at once and the high-water mark follows the live tensors.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import minigpt.model
from data_gen import TrainStream, make_task
from minigpt.config import GPTConfig, TrainConfig
from minigpt.flops import estimate_run, needs_activation_checkpointing
from minigpt.generate import greedy_generate
from minigpt.model import GPT
from minigpt.train import Trainer, main

ROOT = Path(__file__).resolve().parents[1]
CONFIG = GPTConfig(n_layer=3, n_head=2, n_embd=32, block_size=32)


@pytest.fixture
def count_checkpoints(monkeypatch):
    """Counts the blocks run under torch.utils.checkpoint from here on."""
    calls = []
    real = minigpt.model.checkpoint

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(minigpt.model, "checkpoint", counting)
    return calls


def test_same_loss_and_gradients_bit_for_bit(count_checkpoints):
    torch.manual_seed(0)
    model = GPT(CONFIG)
    x, y = TrainStream([make_task("add2")], 8, 32, seed=0).next_batch()
    results = []
    for enabled in (False, True):
        with model.checkpointing(enabled):
            _, loss = model(x, y)
        grads = torch.autograd.grad(loss, list(model.parameters()))
        results.append((loss, grads))
    assert len(count_checkpoints) == CONFIG.n_layer  # the second pass did recompute
    assert torch.equal(results[0][0], results[1][0])
    assert all(torch.equal(a, b) for a, b in zip(results[0][1], results[1][1]))


def _trainer(checkpointing, on_eval=None):
    torch.manual_seed(1)
    model = GPT(CONFIG)
    cfg = TrainConfig(steps=6, batch_size=8, seq_len=32, warmup_steps=2, eval_every=3,
                      activation_checkpointing=checkpointing)
    stream = TrainStream([make_task("add2")], cfg.batch_size, cfg.seq_len, seed=1)
    return Trainer(model, stream, cfg, 3e-3, on_eval=on_eval, progress=False)


def test_trainer_recomputes_its_training_passes_only(count_checkpoints):
    """The Trainer switches checkpointing on for its own forward passes: the same losses as
    without, every block of every step recomputed, and none during evaluation (the callback
    here decodes with a KV cache) or after training."""
    plain = _trainer(False).run().losses
    assert count_checkpoints == []

    def on_eval(step):
        assert not trainer.model.activation_checkpointing
        greedy_generate(trainer.model, [[1, 2, 3]], 4)
        return {}

    trainer = _trainer(True, on_eval)
    assert trainer.run().losses == plain
    assert len(count_checkpoints) == 6 * CONFIG.n_layer
    assert not trainer.model.activation_checkpointing


MEASURE = """
import json, sys, torch
from minigpt.config import GPTConfig
from minigpt.model import GPT
torch.set_num_threads(1)
config = GPTConfig(**json.loads(sys.argv[1]))
batch = int(sys.argv[2])
torch.manual_seed(0)
model = GPT(config)

def kib(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key + ":"))

def peak_during_step(batch, checkpointing):
    # Linux: writing 5 to clear_refs resets the peak resident set (VmHWM) to the current one, so
    # earlier spikes (library imports, other steps) cannot hide this step's peak
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before = kib("VmRSS")
    x = torch.randint(0, config.vocab_size, (batch, config.block_size))
    with model.checkpointing(checkpointing):
        _, loss = model(x, x)
    loss.backward()
    model.zero_grad(set_to_none=True)
    return (kib("VmHWM") - before) * 1024

for checkpointing in (True, False):  # libraries loaded, gradients allocated once, on both paths
    peak_during_step(2, checkpointing)
print(json.dumps({"recomputed": peak_during_step(batch, True),
                  "plain": peak_during_step(batch, False)}))
"""


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux's clear_refs")
def test_checkpointing_lowers_peak_memory_within_the_estimate():
    """8 blocks of width 64 at 32 x 128 tokens: each block's activations (~19 MiB) are 16 times
    its input, so keeping inputs only must cut the peak well below half (measured: 154 MiB ->
    32 MiB). Both peaks stay under minigpt.flops' estimate, which planning relies on."""
    shape = dict(n_layer=8, n_head=4, n_embd=64, block_size=128)
    batch = 32
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", MEASURE, json.dumps(shape), str(batch)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    peaks = json.loads(proc.stdout)
    config = GPTConfig(**shape)
    estimate = {key: estimate_run(config, 1, batch, 128, activation_checkpointing=flag)["bytes"]
                for key, flag in (("plain", False), ("recomputed", True))}
    assert peaks["recomputed"] < 0.5 * peaks["plain"], peaks
    assert peaks["plain"] <= estimate["plain"] and peaks["recomputed"] <= estimate["recomputed"], \
        (peaks, estimate)


def test_needs_activation_checkpointing_between_the_two_estimates():
    config = GPTConfig.from_size("100m", block_size=1024)
    plain, recomputed = (estimate_run(config, 1, 64, 1024, activation_checkpointing=flag)["bytes"]
                         for flag in (False, True))
    assert recomputed < plain / 4  # 12 layers: inputs alone, plus one block recomputed
    assert needs_activation_checkpointing(config, 64, 1024, plain) is False
    assert needs_activation_checkpointing(config, 64, 1024, (plain + recomputed) / 2) is True
    with pytest.raises(ValueError, match="neither fits"):
        needs_activation_checkpointing(config, 64, 1024, recomputed / 2)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="activation_checkpointing must be True or False"):
        TrainConfig(activation_checkpointing="yes")
    model = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match="Linear has none"):
        Trainer(model, None, TrainConfig(activation_checkpointing=True), 1e-3, progress=False)


def test_command_line_flag(count_checkpoints, capsys):
    assert main(["--size", "6k", "--tasks", "add2", "--steps", "2", "--device", "cpu",
                 "--activation-checkpointing"]) == 0
    assert len(count_checkpoints) == 2 * GPTConfig.from_size("6k").n_layer

"""The sweep CLI end to end: a tiny sweep, its files, bad input, and crash-safe resumption."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sweeps.results import read_jsonl

ROOT = Path(__file__).resolve().parents[1]
METRICS = ("exact_match", "per_digit_acc", "edit_distance", "answer_logprob")


def run_cli(*args, timeout=300):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("TRITON_INTERPRET", None)
    return subprocess.run([sys.executable, "-m", "sweeps.run", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _comparable(rows):
    """Result rows without the fields that measure time, sorted by their key."""
    return sorted(({k: v for k, v in r.items() if k != "wall_time_s"} for r in rows),
                  key=lambda r: (r["size"], r["seed"], r["task"]))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """The tiny sweep as a redirected run (no terminal, no --progress flag)."""
    out = tmp_path_factory.mktemp("sweep") / "run"
    proc = run_cli("tiny", "--out", str(out), "--workers", "2")
    assert proc.returncode == 0, proc.stderr
    return out, proc


def test_a_redirected_run_draws_no_progress_bars(tiny_run):
    """Not on a terminal, a sweep prints one line per finished run and no bar redraws (a bar
    writes carriage returns and 'it/s'): the whole log of the tiny sweep stays a few dozen
    lines."""
    _, proc = tiny_run
    log = proc.stdout + proc.stderr
    assert "\r" not in log and "it/s" not in log
    assert sum(line.startswith("[") and "done in" in line for line in log.splitlines()) == 2
    assert len(log.splitlines()) < 80


def test_tiny_sweep_writes_results_curves_config_and_tables(tiny_run):
    out, proc = tiny_run
    rows = read_jsonl(out / "results.jsonl")
    assert {(r["task"], r["size"], r["seed"]) for r in rows} == {
        (t, s, 0) for t in ("add2", "mod7-add") for s in ("25k", "50k")}
    for r in rows:
        assert r["status"] == "ok" and r["steps"] == 30 and r["tokens"] == 30 * 8 * 32
        assert r["params"] < r["params_total"] and r["flops"] > 6 * r["params"] * r["tokens"]
        assert 0 <= r["exact_match"] <= r["per_digit_acc"] <= 1 and r["answer_logprob"] < 0
    config = json.loads((out / "config.json").read_text())
    assert config["name"] == "tiny" and config["sizes"] == ["25k", "50k"]
    curve_steps = {r["step"] for r in read_jsonl(out / "curves.jsonl")}
    assert curve_steps == {10, 20, 30}
    assert (out / "tb" / "default-25k-s0").is_dir() and not list((out / "ckpt").glob("*.pt"))
    assert "No GPU in use: running sizes (25k, 50k)" in proc.stdout  # not "the CPU ladder"
    assert "budget per model: 30 steps x 8 contexts x 32 tokens = 7,680 tokens" in proc.stdout
    assert config["train"]["checkpoint_every"] == 3  # the interval really used, not 0
    assert "kernels: attention sdpa, LayerNorm torch (auto: Triton on CUDA" in proc.stdout
    assert "curve add2 (exact match; chance 1.0%)" in proc.stdout and "  verdict: " in proc.stdout
    assert (out / "report" / "report.md").exists()


def test_rerun_on_a_finished_folder_does_no_work(tiny_run):
    out, _ = tiny_run
    before = (out / "results.jsonl").read_text()
    proc = run_cli("tiny", "--out", str(out), "--no-progress", "--no-report")
    assert proc.returncode == 0, proc.stderr
    assert "4 of 4 runs already finished" in proc.stdout or "2 of 2 runs already finished" in proc.stdout
    assert (out / "results.jsonl").read_text() == before


@pytest.mark.parametrize("kill", [signal.SIGKILL, signal.SIGTERM])
def test_killed_sweep_resumes_to_the_same_rows(tiny_run, tmp_path, kill):
    reference = _comparable(read_jsonl(tiny_run[0] / "results.jsonl"))
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("TRITON_INTERPRET", None)
    proc = subprocess.Popen([sys.executable, "-m", "sweeps.run", "tiny", "--out", str(out),
                             "--no-progress", "--no-report"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    # wait until the second unit has a checkpoint: the first is finished, the second half-way
    while not (out / "ckpt" / "default-50k-s0.pt").exists() and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(kill)
    proc.communicate(timeout=60)
    assert proc.returncode != 0
    partial = read_jsonl(out / "results.jsonl")
    assert {r["size"] for r in partial} <= {"25k"}
    resumed = run_cli("tiny", "--out", str(out), "--no-progress", "--no-report")
    assert resumed.returncode == 0, resumed.stderr
    rows = read_jsonl(out / "results.jsonl")
    assert _comparable(rows) == reference  # same rows, none torn, none twice
    curves = read_jsonl(out / "curves.jsonl")
    keys = [(r["task"], r["size"], r["seed"], r["step"]) for r in curves]
    assert len(keys) == len(set(keys)) == len(read_jsonl(tiny_run[0] / "curves.jsonl"))


@pytest.mark.parametrize("args, message", [
    (["nosuch"], ("invalid choice: 'nosuch'", "arithmetic", "tiny")),
    (["tiny", "--sizes", "25k,7m"], "unknown size 7m; valid: 3k, 6k, 25k, 50k"),
    (["tiny", "--tasks", "add2,div3"], "unknown task 'div3'"),
    (["tiny", "--frobnicate"], "unrecognized arguments: --frobnicate"),
    (["tiny", "--seeds", "a,b"], "expected comma-separated non-negative integers"),
    (["tiny", "--shard", "2/2"], "need 0 <= i < n"),
    (["tiny", "--device", "tpu"], "valid: auto, cpu, cuda, cuda:N"),
    (["tiny", "--attn", "flash"], ("invalid choice: 'flash'", "sdpa", "reference")),
    (["tiny", "--attn", "triton"], "--attn triton cannot run here"),
    (["tiny", "--steps", "0"], "steps must be a positive integer"),
    (["tiny", "--conditions", "plain"], "unknown condition plain for sweep 'tiny'; valid: default"),
    (["tiny", "--budget", "flops"], ("invalid choice: 'flops'", "tokens", "examples")),
    (["scratchpad", "--conditions", "cot"],
     "unknown condition cot for sweep 'scratchpad'; valid: plain, scratchpad"),
    (["scratchpad", "--tasks", "mod7-add"],
     "unknown task 'mod7-add-scratch': scratchpad formats exist for n-digit add, sub and mul"),
])
def test_bad_input_exits_2_and_names_the_valid_choices(args, message, tmp_path):
    proc = run_cli(*args, "--out", str(tmp_path / "never"))
    assert proc.returncode == 2
    for part in (message,) if isinstance(message, str) else message:
        assert part in proc.stderr
    assert not (tmp_path / "never").exists()


def test_resuming_with_different_flags_is_refused_and_leaves_results_alone(tiny_run):
    out, _ = tiny_run
    before = (out / "results.jsonl").read_text()
    proc = run_cli("tiny", "--out", str(out), "--steps", "31", "--no-report")
    assert proc.returncode == 2 and "different config" in proc.stderr
    assert (out / "results.jsonl").read_text() == before


def test_help_answers():
    proc = run_cli("--help")
    assert proc.returncode == 0
    for flag in ("--sizes", "--tasks", "--seeds", "--steps", "--tokens", "--out", "--device",
                 "--attn", "--norm", "--shard"):
        assert flag in proc.stdout


def test_a_diverging_run_is_recorded_and_the_sweep_goes_on(tmp_path):
    """An absurd learning rate blows the 25k model up; it is recorded as diverged, the 50k run
    with the same rule is still trained, and the report and tables handle the gap."""
    from dataclasses import replace

    from sweeps.analysis.emergence_report import build
    from sweeps.catalog import tiny
    from sweeps.runner import run_sweep

    cfg = tiny("cpu")
    cfg = replace(cfg, train=replace(cfg.train, lr_base=1e6, lr_ref_width=32, grad_clip=0.0))
    rows = run_sweep(cfg, tmp_path / "run", "cpu", progress=False, log=lambda _: None)
    by_size = {(r["size"], r["task"]): r for r in rows}
    assert all(r["condition"] == "default" for r in rows)
    diverged = by_size[("25k", "add2")]
    assert diverged["status"] == "diverged" and diverged["exact_match"] is None
    assert diverged["steps"] < cfg.train.steps
    assert {r["size"] for r in rows} == {"25k", "50k"}  # the sweep went on to the next size
    folder, text = build(tmp_path / "run", n_boot=100, tensorboard=False)
    assert "curve add2" in text  # the 50k model's table still prints
    report = (folder / "report.md").read_text()
    assert "25k" in report.split("## Diverged runs")[1]
    summary = json.loads((folder / "summary.json").read_text())
    listed = {(d["size"], d["task"]) for d in summary["diverged"]}
    assert {("25k", "add2"), ("25k", "mod7-add")} <= listed
    assert listed == {(r["size"], r["task"]) for r in rows if r["status"] != "ok"}


@pytest.mark.parametrize("device_type", ["cpu", "cuda"])
def test_every_named_sweep_builds_and_its_examples_fit_the_context(device_type):
    from data_gen import TrainStream, make_task
    from sweeps.catalog import SWEEPS

    for name, build in SWEEPS.items():
        cfg = build(device_type)
        tasks = [make_task(t, eval_size=cfg.eval_size) for t in cfg.tasks]
        TrainStream(tasks, 2, cfg.train.seq_len, 0).next_batch()  # raises if an example is too long
        units = cfg.units()
        assert units and all(seed == cfg.seeds[0] for _, size, seed in units
                             if size in ("100m", "300m", "1b"))
    gpu = SWEEPS["arithmetic"]("cuda")
    assert {s for _, s, seed in gpu.units() if seed == 2} == {"1m", "3m", "10m", "30m"}  # 3 seeds to 30M

"""Several runs at once (sweeps.runner.run_parallel, `--workers`): the same rows as one process
with the same thread count, no row lost when processes write side by side, a clean stop on a
signal, and no worker left behind when the main process is killed."""
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from minigpt.config import TrainConfig
from sweeps.results import append_jsonl_atomic, read_jsonl
from sweeps.pool import group_cost, unit_groups
from sweeps.runner import run_sweep
from sweeps.catalog import SWEEPS
from sweeps.specs import Condition, Stage

ROOT = Path(__file__).resolve().parents[1]


def _tiny(seeds=(0, 1), steps=20):
    return replace(SWEEPS["tiny"]("cpu"), seeds=seeds, sizes=("25k", "50k"),
                   train=TrainConfig(steps=steps, batch_size=8, seq_len=32, warmup_steps=2,
                                     eval_every=10))


def _comparable(rows):
    return sorted(({k: v for k, v in r.items() if k != "wall_time_s"} for r in rows),
                  key=lambda r: (r["size"], r["seed"], r["task"], r.get("shots", 0)))


def _curves(path):
    return sorted(({k: v for k, v in r.items()} for r in read_jsonl(path)),
                  key=lambda r: (r["size"], r["seed"], r["task"], r["step"]))


def test_workers_give_the_rows_of_one_process_at_the_same_thread_count(tmp_path):
    cfg = _tiny()
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        serial = run_sweep(cfg, tmp_path / "serial", "cpu", progress=False, log=lambda m: None)
    finally:
        torch.set_num_threads(before)
    parallel = run_sweep(cfg, tmp_path / "parallel", "cpu", progress=False, log=lambda m: None,
                         workers=2, threads=1)
    assert len(serial) == len(parallel) == 2 * 2 * 2  # sizes x seeds x tasks
    assert {r["threads"] for r in parallel} == {1}
    assert _comparable(parallel) == _comparable(serial)
    assert _curves(tmp_path / "parallel" / "curves.jsonl") == _curves(tmp_path / "serial" /
                                                                       "curves.jsonl")
    assert not list((tmp_path / "parallel" / "ckpt").glob("*.pt"))  # deleted once rows exist


def _append_many(path, tag, n):
    for i in range(n):
        append_jsonl_atomic(path, [{"writer": tag, "i": i}])


def test_rows_added_from_several_processes_at_once_are_all_kept(tmp_path):
    path = tmp_path / "curves.jsonl"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(path, tag, 60)) for tag in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    rows = read_jsonl(path)
    assert sorted((r["writer"], r["i"]) for r in rows) == [(t, i) for t in range(3) for i in range(60)]
    assert not list(tmp_path.glob("*.tmp"))


def test_conditions_that_share_a_checkpoint_stay_in_one_worker_and_large_models_go_first():
    staged = Condition("tuned", stages=(Stage(("add2",), 0.5, name="pre"),
                                        Stage(("add2", "mod7-add"), 0.5, name="tune")))
    cfg = replace(_tiny(seeds=(0, 1, 2)), conditions=(Condition("plain"), staged))
    groups = unit_groups(cfg.units())
    assert len(groups) == 2 * 3  # sizes x seeds
    for g in groups:  # both conditions of one (size, seed), in the sweep's order
        assert [u[0] for u in g] == ["plain", "tuned"] and len({u[1:] for u in g}) == 1
    steps = {c.name: cfg.train.steps for c in cfg.conditions}
    costs = {g[0][1]: group_cost(g, steps) for g in groups}
    assert costs["50k"] > costs["25k"]


def _cli(*args, **kw):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("TRITON_INTERPRET", None)
    return subprocess.Popen([sys.executable, "-m", "sweeps.run", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


LONG = ["tiny", "--sizes", "25k,50k", "--seeds", "0", "--steps", "3000", "--no-progress",
        "--no-report", "--workers", "2"]


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def _wait_for(predicate, seconds=120):
    deadline = time.time() + seconds
    while not predicate() and time.time() < deadline:
        time.sleep(0.05)
    return predicate()


def test_sigterm_stops_every_worker_with_a_checkpoint_and_the_run_resumes(tmp_path):
    out = tmp_path / "run"
    proc = _cli(*LONG, "--out", str(out))
    assert _wait_for(lambda: len(list((out / "ckpt").glob("*.pt"))) == 2), proc.stderr
    proc.send_signal(signal.SIGTERM)  # to the main process only, as a scheduler would
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "interrupted; finished runs are saved" in stderr
    steps = {p.stem: torch.load(p, weights_only=False)["step"] for p in (out / "ckpt").glob("*.pt")}
    assert set(steps) == {"default-25k-s0", "default-50k-s0"} and min(steps.values()) > 0
    assert not (out / "results.jsonl").exists() or not read_jsonl(out / "results.jsonl")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_killing_the_main_process_leaves_no_worker_writing(tmp_path):
    out = tmp_path / "run"
    proc = _cli(*LONG, "--out", str(out))
    assert _wait_for(lambda: len(list((out / "ckpt").glob("*.pt"))) == 2), proc.stderr
    workers = _children(proc.pid)
    assert len(workers) >= 2  # the two workers (and multiprocessing's resource tracker)
    proc.kill()
    proc.communicate(timeout=60)
    assert _wait_for(lambda: not any(Path(f"/proc/{w}").exists() and
                                     "Z" not in Path(f"/proc/{w}/stat").read_text().split()[2]
                                     for w in workers), 20)
    # the folder is free again: a new sweep takes the lock (and is refused only by its flags)
    done = subprocess.run([sys.executable, "-m", "sweeps.run", *LONG[:-2], "--workers", "1",
                           "--steps", "3001", "--out", str(out)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert "different config" in done.stderr and "in use" not in done.stderr


def test_bad_workers_is_refused():
    proc = _cli("tiny", "--workers", "0")
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "--workers: expected auto or a whole number" in stderr


def test_the_cpu_demo_trains_every_size_with_at_least_two_seeds():
    cfg = SWEEPS["arithmetic"]("cpu")
    units = cfg.units()
    seeds_per_size = {size: sum(1 for _, s, _ in units if s == size) for size in cfg.sizes}
    assert min(seeds_per_size.values()) >= 2, seeds_per_size
    assert len(unit_groups(units)) == len(units)  # one condition: every run can go to a worker


def test_the_sweep_prints_the_seed_count_table(tmp_path):
    proc = _cli("tiny", "--seeds", "0,1", "--out", str(tmp_path / "run"), "--no-progress",
                "--workers", "2")
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    assert "seeds that learned / seeds trained" in stdout
    lines = [line for line in stdout.splitlines() if line.startswith("[")]  # one per run, as done
    assert sorted(line.split("]")[0] for line in lines) == ["[1/4", "[2/4", "[3/4", "[4/4"], stdout
    assert "| curve | 25k | 50k |" in stdout and "**0/2**" in stdout
    assert json.loads((tmp_path / "run" / "report" / "summary.json").read_text())["curves"]


def test_workers_on_one_gpu_each_get_an_even_share_of_its_memory(monkeypatch):
    """Several workers on one GPU: each sets PyTorch's per-process memory fraction to 1/N of the
    device it trains on, and then sees only its share as the device's memory, so the runner's
    checkpointing decision (runner.checkpointing_needed) is made against the share."""
    import torch

    from minigpt import flops
    from sweeps.pool import gpu_share_of

    assert gpu_share_of("cpu", 4) is None
    assert gpu_share_of("cuda:1", 4) == (0.25, "cuda:1")
    calls = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_per_process_memory_fraction",
                        lambda fraction, device=None: calls.append((fraction, device)))
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda index: type("Props", (), {"total_memory": 80 * 2**30})())
    monkeypatch.setitem(flops._GPU_SHARE, "fraction", 1.0)
    assert flops.memory_bytes("cuda") == 80 * 2**30
    flops.set_gpu_memory_share(*gpu_share_of("cuda:1", 4))
    assert calls == [(0.25, "cuda:1")]
    assert flops.memory_bytes("cuda") == 20 * 2**30
    for bad in (0, -0.5, 1.5):
        with pytest.raises(ValueError, match="fraction in \\(0, 1\\]"):
            flops.set_gpu_memory_share(bad)

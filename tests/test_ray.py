"""Sweeps on Ray (`--ray`, sweeps.ray_pool): the local pool's rows at equal thread counts, a killed
worker retried with its unit recorded once, a stopped driver resumed without Ray, a missing GPU
refused before anything is written; and without Ray, no change: the plain path never imports it
and --ray says how to install it.

The Ray tests share one local instance (2 CPUs, no dashboard) started once for the module, and
call sweeps.run.main in this process, which joins that instance instead of starting its own."""
import functools
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from minigpt.train import STOP_REQUESTED
from sweeps.results import read_jsonl, row_key

ROOT = Path(__file__).resolve().parents[1]
try:
    import ray
except ImportError:
    ray = None
needs_ray = pytest.mark.skipif(ray is None, reason="Ray is not installed (pip install -e '.[ray]')")
TINY = ["tiny", "--no-report", "--no-progress"]
MEASURED = {"wall_time_s"}  # how long, not what: differs between any two runs


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture
def driver():
    """sweeps.run.main in this process, its signal handlers and stop request undone after."""
    from sweeps.run import main

    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield main
    for s, handler in handlers.items():
        signal.signal(s, handler)
    STOP_REQUESTED.clear()


def _rows(out: Path) -> list[dict]:
    return sorted(({k: v for k, v in r.items() if k not in MEASURED}
                   for r in read_jsonl(out / "results.jsonl")), key=row_key)


def _one_row_per_key(out: Path) -> Counter:
    keys = Counter(row_key(r) for r in read_jsonl(out / "results.jsonl"))
    assert set(keys.values()) == {1}, keys
    return keys


def _after(predicate, action, seconds=240):
    """Run `action` on a helper thread once `predicate` holds (the driver keeps the main thread)."""
    def watch():
        deadline = time.time() + seconds
        while not predicate() and time.time() < deadline:
            time.sleep(0.05)
        action()
    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


@needs_ray
def test_ray_gives_the_rows_of_the_local_pool(tmp_path, local_ray):
    """The pool's rows at one thread per unit are one process's rows at one thread
    (tests/test_workers.py checks that), which this process computes without spawning a pool.
    The Ray tasks train as on a cluster of other machines: each in a temporary folder whose
    curves and TensorBoard files come back to the driver with the rows."""
    from sweeps.catalog import SWEEPS
    from sweeps.ray_cluster import connect
    from sweeps.ray_pool import run_on_ray
    from sweeps.runner import run_sweep

    cfg = SWEEPS["tiny"]("cpu")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        local = run_sweep(cfg, tmp_path / "local", "cpu", progress=False, log=lambda m: None)
    finally:
        torch.set_num_threads(before)
    elsewhere = replace(connect("local"), local=False)
    lines = []
    run_sweep(cfg, tmp_path / "ray", "cpu", progress=False, log=lines.append,
              scheduler=functools.partial(run_on_ray, cluster=elsewhere, threads=1))
    assert len(local) == 4 and {r["threads"] for r in local} == {1}  # 2 sizes x 2 tasks
    assert _rows(tmp_path / "ray") == _rows(tmp_path / "local")
    curves = [sorted(read_jsonl(tmp_path / run / "curves.jsonl"), key=lambda r: (row_key(r), r["step"]))
              for run in ("local", "ray")]
    assert curves[0] == curves[1] and curves[0]
    for unit in ("default-25k-s0", "default-50k-s0"):  # trained elsewhere, copied back
        assert list((tmp_path / "ray" / "tb" / unit).glob("events.out.tfevents.*"))
    assert any("no --storage" in line for line in lines)
    units = [line for line in lines if line.startswith("[")]
    assert [line[:5] for line in units] == ["[1/2]", "[2/2]"] and all(" on " in x for x in units)
    assert "1 left" in units[0] and not (tmp_path / "ray" / "ckpt").exists()


def _ray_workers() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "cmdline").read_bytes().startswith(b"ray::run_group"):
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


@needs_ray
@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="finds the worker in /proc")
def test_a_killed_worker_is_retried_and_its_unit_recorded_once(tmp_path, local_ray, driver,
                                                               capsys):
    out, shared = tmp_path / "run", tmp_path / "shared"
    ckpts = lambda: list(shared.glob("*/ckpt/default-25k-s0.pt"))  # noqa: E731
    killed = []

    def kill():
        for pid in _ray_workers():  # the one task's worker, mid-unit
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
    _after(lambda: ckpts() and _ray_workers(), kill)
    assert driver([*TINY, "--ray", "--sizes", "25k", "--steps", "300", "--storage", str(shared),
                   "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert killed, "the worker was never seen training"
    assert f"(pid {killed[0]} on " in text and "died; Ray ran its task again" in text
    assert "resumed from its checkpoint" in text and "resuming default-25k-s0 from its checkpoint" in text
    assert len(_one_row_per_key(out)) == 2  # 2 tasks
    assert {(r["steps"], r["status"]) for r in read_jsonl(out / "results.jsonl")} == {(300, "ok")}
    curve_keys = Counter((row_key(r), r["step"]) for r in read_jsonl(out / "curves.jsonl"))
    assert set(curve_keys.values()) == {1} and len(curve_keys) == 2 * 5  # eval every 60 steps
    assert not list(shared.iterdir())  # the work folder goes once every unit is recorded


@needs_ray
def test_a_stopped_driver_resumes_without_ray(tmp_path, local_ray, driver, capfd):
    """The resumed unit may train in this process or in a worker process (the run keeps the
    thread split it began with), so its lines are read at the file-descriptor level."""
    out = tmp_path / "run"
    # 400k takes several times as long as 25k, so it is still training when the stop lands (two
    # sizes of equal speed can both finish between the condition being seen and the stop)
    flags = [*TINY, "--sizes", "25k,400k", "--steps", "600", "--out", str(out)]

    def one_done_one_checkpointed():
        sizes = {r["size"] for r in read_jsonl(out / "results.jsonl")}
        return len(sizes) == 1 and (out / "ckpt" / f"default-{({'25k', '400k'} - sizes).pop()}"
                                                    "-s0.pt").exists()
    # 25k and 400k train side by side; once one has its rows and the other a checkpoint, Ctrl-C
    _after(one_done_one_checkpointed, lambda: os.kill(os.getpid(), signal.SIGINT))
    assert driver([*flags, "--ray"]) == 130
    assert "interrupted; finished runs are saved" in capfd.readouterr().err
    (finished,) = {r["size"] for r in read_jsonl(out / "results.jsonl")}
    stopped = ({"25k", "400k"} - {finished}).pop()
    step = torch.load(out / "ckpt" / f"default-{stopped}-s0.pt", weights_only=False)["step"]
    assert 0 < step < 600
    STOP_REQUESTED.clear()
    assert driver(flags) == 0  # the local runner, from the checkpoint
    assert f"resuming default-{stopped}-s0 from its checkpoint at step {step}" in \
        capfd.readouterr().out
    keys = _one_row_per_key(out)
    assert {k[2] for k in keys} == {"25k", "400k"} and len(keys) == 4
    assert not list((out / "ckpt").glob("*.pt"))


@needs_ray
def test_a_unit_needing_a_missing_gpu_is_refused_before_anything_is_written(
        tmp_path, local_ray, driver, capsys):
    with pytest.raises(SystemExit) as exit_:
        driver([*TINY, "--ray", "--device", "cuda", "--out", str(tmp_path / "run")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "--device cuda: the Ray instance this process had joined" in err and "has no GPU" in err
    assert not (tmp_path / "run").exists()


def _cluster(cpus=2.0, gpus=0.0, memory=8 * 2**30):
    from sweeps.ray_cluster import Cluster, Node

    return Cluster("a test cluster", (Node("a", "10.0.0.1", cpus, gpus, memory),
                                      Node("b", "10.0.0.2", 1.0, 0.0, 2**20)), local=False)


def test_the_device_follows_the_cluster_and_each_run_gets_one_gpu():
    assert _cluster().device("auto") == "cpu" and _cluster(gpus=8).device("auto") == "cuda"
    assert _cluster(gpus=8).device("cuda") == "cuda"
    with pytest.raises(ValueError, match="--device cuda: a test cluster: 2 nodes.*has no GPU"):
        _cluster().device("cuda")
    with pytest.raises(ValueError, match="valid: auto, cpu, cuda"):
        _cluster(gpus=8).device("cuda:1")


def test_a_cluster_too_small_for_a_unit_is_refused():
    from minigpt.config import GPTConfig
    from minigpt.flops import estimate_run
    from sweeps.catalog import SWEEPS
    from sweeps.ray_cluster import check_resources

    cfg = SWEEPS["arithmetic"]("cpu")  # 3k ... 100k: 100k needs the most
    assert cfg.sizes[-1] == "100k"
    t = cfg.train
    need = estimate_run(GPTConfig.from_size("100k", block_size=t.seq_len), t.steps, t.batch_size,
                        t.seq_len, "cpu")["bytes"]
    check_resources(_cluster(memory=need), cfg, "cpu", threads=2)  # just enough on node a
    with pytest.raises(ValueError, match="size 100k needs an estimated .* lower --batch-size"):
        check_resources(_cluster(memory=need - 1), cfg, "cpu", threads=1)
    with pytest.raises(ValueError, match="each run asks for 3 CPUs .* the largest node .* has 2"):
        check_resources(_cluster(), cfg, "cpu", threads=3)


BLOCK_RAY = """
import runpy, sys
class NoRay:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "ray":
            print("IMPORTED ray", file=sys.stderr)
            raise ImportError("ray is blocked by the test")
sys.meta_path.insert(0, NoRay())
sys.argv = ["sweeps.run"] + sys.argv[1:]
runpy.run_module("sweeps.run", run_name="__main__")
"""


def test_a_sweep_without_ray_never_imports_it(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    done = subprocess.run([sys.executable, "-c", BLOCK_RAY, *TINY, "--sizes", "25k", "--steps",
                           "10", "--out", str(tmp_path / "run")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "IMPORTED ray" not in done.stderr
    assert len(_one_row_per_key(tmp_path / "run")) == 2


def test_ray_asked_for_without_ray_names_the_install_command(tmp_path, monkeypatch, capsys):
    from sweeps.run import main

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as where it is missing
    with pytest.raises(SystemExit) as exit_:
        main([*TINY, "--ray", "--out", str(tmp_path / "run")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert 'pip install -e ".[ray]"' in err and "not installed" in err
    assert not (tmp_path / "run").exists()

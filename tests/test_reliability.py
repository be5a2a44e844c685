"""Exactly one row per (condition, task, size, seed) whatever happens: concurrent starts, lost
rows, damaged files, a full disk, SIGTERM with stderr closed."""
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from sweeps.results import read_jsonl

ROOT = Path(__file__).resolve().parents[1]
TINY = ["tiny", "--sizes", "25k", "--seeds", "0,1", "--no-progress", "--no-report"]


def start(out, close_stderr=False):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("TRITON_INTERPRET", None)
    return subprocess.Popen([sys.executable, "-m", "sweeps.run", *TINY, "--out", str(out)], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, text=True,
                            stderr=None if close_stderr else subprocess.PIPE,
                            preexec_fn=(lambda: os.close(2)) if close_stderr else None)


def keys(out):
    return Counter((r.get("condition"), r["task"], r["size"], r["seed"])
                   for r in read_jsonl(out / "results.jsonl"))


def test_a_folder_in_use_is_refused_and_each_row_written_once(tmp_path):
    """The lock is held here, in the test's own process, while a sweep starts on the folder: a
    second sweep racing a real first one would depend on which finished first (on a loaded machine
    the first could end before the second had imported torch)."""
    from sweeps.rundir import run_lock

    out = tmp_path / "run"
    with run_lock(out):
        second = start(out)
        _, err2 = second.communicate(timeout=300)
    assert second.returncode == 2 and f"in use by another sweep (pid {os.getpid()})" in err2
    assert not (out / "results.jsonl").exists()  # the refused start wrote nothing
    first = start(out)
    _, err1 = first.communicate(timeout=300)
    assert first.returncode == 0, err1
    again = start(out)  # the lock died with the first process: a later start just resumes
    again.communicate(timeout=120)
    assert again.returncode == 0
    assert set(keys(out).values()) == {1} and len(keys(out)) == 4  # 2 tasks x 2 seeds


def test_a_lost_row_is_regenerated_and_a_damaged_file_repaired(tmp_path):
    out = tmp_path / "run"
    assert start(out).wait(timeout=300) == 0
    rows = (out / "results.jsonl").read_text().splitlines()
    strip = lambda r: json.dumps({k: v for k, v in r.items() if k != "wall_time_s"},  # noqa: E731
                                 sort_keys=True)
    reference = {strip(json.loads(r)) for r in rows}
    # a torn last line, as a hand edit or a copy cut short would leave
    (out / "results.jsonl").write_text("\n".join(rows[:-1]) + "\n" + rows[-1][:25] + "\n")
    refused = start(out)
    _, err = refused.communicate(timeout=120)
    assert refused.returncode == 2 and "python -m sweeps.repair" in err
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    fixed = subprocess.run([sys.executable, "-m", "sweeps.repair", str(out)], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=60)
    assert fixed.returncode == 0 and "not valid JSON" in fixed.stdout
    assert list(out.glob("results.jsonl.bak-*"))
    assert len(keys(out)) == 3  # the torn row is gone; its unit is now incomplete
    assert start(out).wait(timeout=300) == 0  # ... so the resumed sweep retrains that unit
    rows_after = [json.loads(r) for r in (out / "results.jsonl").read_text().splitlines()]
    assert set(keys(out).values()) == {1} and len(rows_after) == 4
    assert {strip(r) for r in rows_after} == reference


def test_a_full_disk_leaves_no_partial_file_and_says_so(tmp_path, monkeypatch):
    import errno

    import torch

    from minigpt.train import StorageError, atomic_save
    from sweeps.results import write_text_atomic

    def full(obj, f, *a, **k):
        Path(f).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    target = tmp_path / "c.pt"
    target.write_bytes(b"old checkpoint")
    with pytest.raises(StorageError, match="could not write checkpoint .*No space left.*intact"):
        atomic_save({"x": 1}, target)
    assert target.read_bytes() == b"old checkpoint" and not list(tmp_path.glob("*.tmp"))

    real_open = open

    def open_full(path, mode="r", *a, **k):
        handle = real_open(path, mode, *a, **k)
        if "w" in mode:
            handle.write = lambda text: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left on device"))
        return handle

    monkeypatch.setattr("builtins.open", open_full)
    (tmp_path / "results.jsonl").write_text("old\n")
    with pytest.raises(OSError, match="No space left on device; the file as it was before is intact"):
        write_text_atomic(tmp_path / "results.jsonl", "new\n")
    monkeypatch.setattr("builtins.open", real_open)
    assert (tmp_path / "results.jsonl").read_text() == "old\n" and not list(tmp_path.glob("*.tmp"))


def test_sigterm_with_stderr_closed_still_checkpoints(tmp_path):
    out = tmp_path / "run"
    proc = start(out, close_stderr=True)  # as under nohup or a scheduler with stderr closed
    deadline = time.time() + 120
    while not list((out / "ckpt").glob("*.pt")) and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert list((out / "ckpt").glob("*.pt"))


def test_signal_handler_survives_a_closed_stderr(monkeypatch):
    import io

    from minigpt.train import STOP_REQUESTED
    from sweeps.run import _request_stop

    closed = io.StringIO()
    closed.close()
    monkeypatch.setattr(sys, "stderr", closed)
    STOP_REQUESTED.clear()
    try:
        _request_stop(signal.SIGTERM, None)  # printing to a closed stream must not raise
        assert STOP_REQUESTED.is_set()
    finally:
        STOP_REQUESTED.clear()


def test_wall_time_checkpoints(tmp_path, monkeypatch):
    from dataclasses import replace

    import minigpt.train as train
    from tests.test_train import _trainer

    trainer = _trainer(steps=6, ckpt=tmp_path / "c.pt")
    trainer.cfg = replace(trainer.cfg, checkpoint_minutes=1e-9)  # every step is "minutes" later
    saved = []
    monkeypatch.setattr(trainer, "save_checkpoint", lambda: saved.append(trainer.step))
    trainer.run()
    assert saved == [1, 2, 3, 4, 5, 6]

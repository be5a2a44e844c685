"""Every command-line tool given bad input: exit 2, a message naming what was wrong and what is
valid, no traceback, and a finished run folder left byte-identical."""
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def cli(module, *args, timeout=120):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("TRITON_INTERPRET", None)
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    proc = cli("sweeps.run", "tiny", "--sizes", "25k", "--out", str(out), "--no-progress",
               "--no-report", timeout=300)
    assert proc.returncode == 0, proc.stderr
    return out


def snapshot(folder: Path) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


CASES = [
    ("sweeps.run", ["tiny", "--tokens", "nan"], "--tokens must be a finite number"),
    ("sweeps.run", ["tiny", "--tokens", "inf"], "--tokens must be a finite number"),
    ("sweeps.run", ["tiny", "--tokens", "0"], "at least one step's tokens"),
    ("sweeps.run", ["tiny", "--tokens", "1000", "--batch-size", "0"], "--batch-size must be a positive"),
    ("sweeps.run", ["tiny", "--seeds", "-1"], "non-negative integers"),
    ("sweeps.run", ["tiny", "--sizes", ""], "valid: 3k, 6k, 25k"),
    ("sweeps.run", ["tiny", "--shard", "5/9"], "the sweep has only 2 runs"),
    ("sweeps.run", ["tiny", "--device", "meta"], "valid: auto, cpu, cuda, cuda:N"),
    ("sweeps.run", ["tiny", "--batch-size", "3000000"], "more than the"),
    ("sweeps.report", ["{missing}"], "does not exist"),
    ("sweeps.report", ["{run}", "--threshold", "2"], "--threshold must be in (0, 1)"),
    ("sweeps.merge", ["{new}", "{missing}"], "does not exist"),
    ("sweeps.merge", ["{run}", "{run}"], "must not be one of the inputs"),
    ("sweeps.repair", ["{missing}"], "not a folder"),
    ("minigpt.train", ["--device", "meta"], "valid: auto, cpu, cuda, cuda:N"),
    ("minigpt.train", ["--steps", "0"], "steps must be a positive integer"),
    ("minigpt.train", ["--tasks", "div3"], "unknown task 'div3'"),
    ("minigpt.train", ["--size", "7m"], "invalid choice: '7m'"),
    ("kernels.bench", ["nosuch"], "invalid choice"),
]
if not torch.cuda.is_available():
    CASES += [("minigpt.train", ["--device", "cuda"], "no CUDA device is available here"),
              ("sweeps.run", ["tiny", "--device", "cuda"], "no CUDA device is available here")]


@pytest.mark.parametrize("module, args, message", CASES, ids=[f"{m} {' '.join(a)}" for m, a, _ in CASES])
def test_bad_input_gets_a_message_and_exit_2(module, args, message, finished, tmp_path):
    before = snapshot(finished)
    paths = {"run": str(finished), "missing": str(tmp_path / "missing"), "new": str(tmp_path / "new")}
    args = [a.format(**paths) for a in args]
    if module == "sweeps.run":
        args += ["--out", str(tmp_path / "never")]
    proc = cli(module, *args)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert snapshot(finished) == before
    assert not (tmp_path / "never").exists()


def test_out_pointing_at_a_file_is_refused(tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("keep me")
    proc = cli("sweeps.run", "tiny", "--out", str(target))
    assert proc.returncode == 2 and "is a file" in proc.stderr and "Traceback" not in proc.stderr
    assert target.read_text() == "keep me"


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores folder permissions")
def test_read_only_output_folder_is_a_message(finished, tmp_path):  # pragma: no cover - non-root
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        proc = cli("sweeps.run", "tiny", "--out", str(ro / "run"))
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
    finally:
        ro.chmod(stat.S_IRWXU)


def test_repeated_flag_values_run_once(tmp_path):
    from sweeps.run import build_parser, apply_flags
    from sweeps.catalog import tiny

    parser = build_parser()
    args = parser.parse_args(["tiny", "--seeds", "0,0", "--sizes", "25k,25k", "--tasks", "add2,add2"])
    cfg = apply_flags(parser, args, tiny("cpu"))
    assert cfg.seeds == (0,) and cfg.sizes == ("25k",) and cfg.tasks == ("add2",)
    assert len(cfg.units()) == 1


def test_help_has_no_stray_backtick_and_train_help_shows_defaults():
    assert "`" not in cli("sweeps.run", "--help").stdout.splitlines()[2]
    assert "(default: 300)" in cli("minigpt.train", "--help").stdout

"""Where and with what a run was made: recorded in config.json and shown in the report.

Training results depend on the machine: float sums differ between CPU kernel paths (PyTorch picks
AVX-512, AVX2 or plain code at start-up; ATEN_CPU_CAPABILITY overrides it) and thread counts, so a
seed that sits near a threshold can end differently on another CPU. A run therefore records the
git commit of the code, the versions of Python, torch and Triton, the operating system, the CPU
model and the kernel path torch uses, the thread count, and the GPU and its driver where one is
used. Nothing here changes what is trained.
"""
from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent


def git_commit() -> str | None:
    """The commit of the code that runs (with "+changes" when the working tree differs), or None
    outside a git checkout."""
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+changes" if dirty else "") if commit else None


def cpu_model() -> str:
    """The CPU's model name ("AMD EPYC", "Intel(R) Xeon(R) ...", "Apple M2", ...)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def cpu_capability() -> str:
    """The kernel path torch's CPU operators use (default, avx2, avx512, ...)."""
    try:
        return torch.backends.cpu.get_cpu_capability().lower()
    except (AttributeError, RuntimeError):
        return os.environ.get("ATEN_CPU_CAPABILITY", "unknown")


def triton_version() -> str | None:
    try:
        import triton
    except ImportError:
        return None
    return getattr(triton, "__version__", "unknown")


def provenance(device: str) -> dict:
    """The record of where a run is made (see the module doc)."""
    record = {"git_commit": git_commit(), "python": platform.python_version(),
              "torch": torch.__version__, "triton": triton_version(),
              "os": f"{platform.system()} {platform.release()}", "cpu": cpu_model(),
              "cpu_capability": cpu_capability(), "threads": torch.get_num_threads(),
              "aten_cpu_capability_env": os.environ.get("ATEN_CPU_CAPABILITY")}
    if torch.device(device).type == "cuda" and torch.cuda.is_available():
        index = torch.device(device).index or 0
        record["gpu"] = torch.cuda.get_device_name(index)
        record["cuda"] = torch.version.cuda
        record["gpu_driver"] = _driver()
    return record


def _driver() -> str | None:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return out.strip().splitlines()[0] if out.strip() else None

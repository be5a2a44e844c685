"""How many CPU threads torch should use, chosen once by each command-line tool.

Rule: an explicit OMP_NUM_THREADS wins (a scheduler or a user who runs several jobs side by side
knows best). Otherwise use the number of *physical* cores this process may run on: a second
hyperthread on a core adds little to matrix arithmetic, and OpenMP threads that outnumber the free
cores spin while they wait for each other. On the 2-core development machine, with another job
running, 2 threads ran 40-60x slower than 1 (issue 12); so when you run two jobs at once, give each
OMP_NUM_THREADS=1.
"""
from __future__ import annotations

import os
from pathlib import Path


def physical_cores(cpuinfo: str | None = None, allowed: set[int] | None = None) -> int:
    """Physical cores among the logical CPUs this process may use (Linux /proc/cpuinfo); falls back
    to the logical count where the file is missing or says nothing of cores."""
    if allowed is None:
        allowed = set(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    logical = len(allowed) if allowed is not None else (os.cpu_count() or 1)
    if cpuinfo is None:
        path = Path("/proc/cpuinfo")
        try:
            cpuinfo = path.read_text()
        except OSError:
            return max(1, logical)
    cores = set()
    for block in cpuinfo.strip().split("\n\n"):
        fields = {}
        for line in block.splitlines():
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
        if "processor" not in fields or "core id" not in fields:
            continue
        processor = int(fields["processor"])
        physical = fields.get("physical id", "0")
        if allowed is None or processor in allowed:
            cores.add((physical, fields["core id"]))
    return max(1, len(cores)) if cores else max(1, logical)


def choose_threads(environ=None, cpuinfo: str | None = None, allowed: set[int] | None = None
                   ) -> tuple[int, str]:
    """(threads, why). OMP_NUM_THREADS if it is a positive whole number, else the physical cores."""
    environ = os.environ if environ is None else environ
    raw = environ.get("OMP_NUM_THREADS", "").strip()
    if raw:
        if raw.isdigit() and int(raw) >= 1:
            return int(raw), "set by OMP_NUM_THREADS"
        return physical_cores(cpuinfo, allowed), f"one per physical core; ignored OMP_NUM_THREADS={raw!r}, not a positive whole number"
    return physical_cores(cpuinfo, allowed), "one per physical core; set OMP_NUM_THREADS to change"


def configure_threads() -> tuple[int, str]:
    """Apply choose_threads() to torch; returns what it chose and why, for the tool to print."""
    import torch

    threads, why = choose_threads()
    torch.set_num_threads(threads)
    return threads, why

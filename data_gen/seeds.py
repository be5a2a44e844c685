"""Seeds that depend only on a name: the fixed evaluation sets, rule splits, template orders and
chance samples of data_gen are drawn from them, so they are the same in every process and on
every Python version (zlib's CRC-32, not Python's salted hash)."""
from __future__ import annotations

import zlib


def name_seed(name: str, salt: str = "") -> int:
    """A seed that depends only on a task's name: stable across processes and Python versions."""
    return zlib.crc32(f"{name}|{salt}".encode())

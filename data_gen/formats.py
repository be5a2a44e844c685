"""Answer formats: how a numeric answer is written as a fixed-width string.

plain     the digits most-significant first, zero-padded:   42 at width 4 -> "0042"
reversed  the same digits least-significant first:          42 at width 4 -> "2400"

Reversed answers let a left-to-right model produce the carry digit last, the order in which
column addition computes it; the project's reference calibration and the literature (e.g. Lee et al.
2023, "Teaching Arithmetic to Small Transformers") find it much easier to learn.
A leading sign, where a task has one, stays in front in both formats.
"""
from __future__ import annotations

FORMATS = ("plain", "reversed")


def check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"unknown answer format '{fmt}'; valid: {', '.join(FORMATS)}")


def write_number(value: int, width: int, fmt: str) -> str:
    """A non-negative integer as exactly `width` digits in format `fmt`."""
    if value < 0:
        raise ValueError(f"write_number takes a non-negative value, got {value}")
    digits = f"{value:0{width}d}"
    if len(digits) != width:
        raise ValueError(f"{value} does not fit in {width} digits")
    return digits[::-1] if fmt == "reversed" else digits


def write_signed(value: int, width: int, fmt: str) -> str:
    """A signed integer as a sign character ('+' or '-') followed by `width` digits."""
    sign = "-" if value < 0 else "+"
    return sign + write_number(abs(value), width, fmt)

"""Number formatting shared by every report and table: one way to print a score, an interval
(open ends printed as open), a size range, a p-value."""
from __future__ import annotations

import math


def num(v, spec: str = ".3g") -> str:
    return "—" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, spec)


def pct(v, digits: int = 1) -> str:
    """A fraction as a percentage; small ones keep their significant digits (0.03%)."""
    if v is None:
        return "—"
    if v != 0 and abs(v) < 0.001:
        return f"{100 * v:.2g}%"
    return f"{100 * v:.{digits}f}%"


def interval(iv, as_pct: bool = True) -> str:
    """[lo, hi]; an end that is None is open (printed as -inf/inf or 'open')."""
    if not iv:
        return "—"
    f = pct if as_pct else num
    lo = "open" if iv[0] is None else f(iv[0])
    hi = "open" if iv[1] is None else f(iv[1])
    return f"[{lo}, {hi}]"


def scale_range(iv, lo_open_text: str = "≤ smallest", hi_open_text: str = "beyond largest") -> str:
    """A range of model sizes in parameters; open ends say which way they are open."""
    if not iv:
        return ""
    lo = lo_open_text if iv[0] is None else num(iv[0])
    hi = hi_open_text if iv[1] is None else num(iv[1])
    return f"[{lo}, {hi}]"


def p_value(p) -> str:
    if p is None:
        return "—"
    return "<1e-300" if p < 1e-300 else f"{p:.2g}"

"""Emergence detection on sweep results: where, and how sharply, a task's score jumps with scale.

Follows "Emergent Abilities of Large Language Models" (Wei et al. 2022): an ability is emergent
when it sits near chance for small models and rises well above it past some scale; Table 1 reports
that scale in parameters and training FLOPs. Follows "Are Emergent Abilities of Large Language
Models a Mirage?" (Schaeffer et al. 2023) for the metric question: a jump in exact match may be an
artefact of a harsh metric, so every task is also judged on per-digit accuracy, edit distance and
answer log-probability.

Everything here is a pure function of plain data (the rows of `results.jsonl`); no plotting.

All judgements work on a normalised score q = (y - chance) / (perfect - chance): 0 at chance,
1 at a perfect score, whatever the metric's direction, so lower-is-better metrics are mirrored
once, here, and every rule below reads "higher q is better".
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import NamedTuple

import numpy as np


class Metric(NamedTuple):
    higher_is_better: bool
    label: str
    perfect: float  # the best possible value; with chance it fixes the q scale


METRICS: dict[str, Metric] = {
    "exact_match": Metric(True, "exact match (fraction)", 1.0),
    "per_digit_acc": Metric(True, "per-digit accuracy (fraction)", 1.0),
    "edit_distance": Metric(False, "edit distance (tokens, lower is better)", 0.0),
    "answer_logprob": Metric(True, "answer log-prob (nats)", 0.0),
}
CONTINUOUS_METRICS = ("per_digit_acc", "edit_distance", "answer_logprob")

# --- Verdict thresholds (all on the normalised score q, where chance = 0 and perfect = 1). ---
MIN_SIZES = 3            # fewer sizes than this: no verdict ("undetermined")
SHARPNESS_FLOOR = 0.05   # floor on the median rise, so one isolated step scores 1/0.05 = 20, finite
SHARPNESS_MIN = 3.0      # largest neighbour rise must be >= 3x the typical (median) one
MIN_TOTAL_RISE = 0.10    # the curve must climb >= 10% of the chance-to-perfect span to count at all
MIN_JUMP = 0.10          # ... and the single largest step must itself cover >= 10% of that span
NEAR_CHANCE_Q = 0.5      # "emergent" needs the size before the jump in the lower half of that span
SATURATED_Q = 0.9        # a flat curve whose every size is above this is "saturated", not "flat"
SHARP_VERDICTS = ("emergent", "jump")

# Logistic-fit search space: midpoint grid, width grid (s in decades), then Levenberg-Marquardt.
_S_MIN, _S_MAX = 0.01, 5.0
_LN9x2 = 2.0 * math.log(9.0)  # the 10-90% width of a sigmoid is 2 ln 9 times its scale s
_JUMP_TIE = 0.05  # rises this close (in units of the curve's range) count as equally large

REQUIRED_KEYS = ("task", "size", "seed", "params")


class ResultsError(ValueError):
    """The results file is missing, empty or malformed; the message names the file and the fault."""


def load_results(run_dir: str | Path) -> list[dict]:
    """Read RUN_DIR/results.jsonl, checking every line is a JSON object with the keys we need."""
    path = Path(run_dir) / "results.jsonl"
    if not Path(run_dir).is_dir():
        raise ResultsError(f"{run_dir}: run folder does not exist")
    if not path.is_file():
        raise ResultsError(f"{path}: file not found")
    rows = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ResultsError(f"{path}:{lineno}: invalid JSON ({e.msg})") from None
        if not isinstance(row, dict):
            raise ResultsError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}")
        missing = [k for k in REQUIRED_KEYS if k not in row]
        if missing:
            raise ResultsError(f"{path}:{lineno}: missing key(s) {', '.join(missing)}")
        rows.append(row)
    if not rows:
        raise ResultsError(f"{path}: no result rows (file is empty)")
    return rows


def _num(v) -> float | None:
    """A finite float, or None for null/NaN/inf/non-numbers."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)


def _clean(obj):
    """Make an analysis JSON-safe: numpy scalars to Python, NaN/inf to None."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return _num(float(obj))
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def is_ok(row: dict) -> bool:
    return row.get("status", "ok") == "ok"


# ----------------------------------------------------------------------------- threshold crossing
def crossing(x: list[float], q: list[float], q_thr: float) -> tuple[float | None, str]:
    """First place the curve q(x) reaches q_thr, linearly interpolated in x (x is already log10).

    Returns (x at the crossing or None, a note saying why not)."""
    for i, qi in enumerate(q):
        if qi >= q_thr:
            if i == 0:
                return None, "already past the threshold at the smallest size"
            t = (q_thr - q[i - 1]) / (qi - q[i - 1])
            return x[i - 1] + t * (x[i] - x[i - 1]), "interpolated between neighbouring sizes"
    return None, "never reaches the threshold"


# ------------------------------------------------------------------------------- logistic fit
def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))


def _linear_lo_hi(g: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each row of sigmoid features g (K, n), least-squares lo, hi and the residual sum."""
    a, b = 1.0 - g, g
    aa, ab, bb = (a * a).sum(1), (a * b).sum(1), (b * b).sum(1)
    ay, by = (a * y).sum(1), (b * y).sum(1)
    det = aa * bb - ab * ab
    safe = np.abs(det) > 1e-12
    det = np.where(safe, det, 1.0)
    lo = np.where(safe, (bb * ay - ab * by) / det, y.mean())
    hi = np.where(safe, (aa * by - ab * ay) / det, y.mean())
    sse = ((y - lo[:, None] * a - hi[:, None] * b) ** 2).sum(1)
    return lo, hi, sse


def _refine(theta: np.ndarray, x: np.ndarray, y: np.ndarray, iters: int = 50) -> np.ndarray:
    """Levenberg-Marquardt on (lo, hi, x0, log s); only ever accepts steps that lower the error."""
    def resid(t):
        return y - (t[0] + (t[1] - t[0]) * _sigmoid((x - t[2]) / math.exp(t[3])))

    lam, r = 1e-3, resid(theta)
    for _ in range(iters):
        lo, hi, x0, ls = theta
        s = math.exp(ls)
        g = _sigmoid((x - x0) / s)
        dg = g * (1 - g)
        # Jacobian of the model (not the residual) with respect to each parameter.
        jac = np.stack([1 - g, g, -(hi - lo) * dg / s, -(hi - lo) * dg * (x - x0) / s], 1)
        jtj, jtr = jac.T @ jac, jac.T @ r
        step = np.linalg.solve(jtj + lam * np.diag(np.diag(jtj) + 1e-9), jtr)
        cand = theta + step
        cand[3] = min(max(cand[3], math.log(_S_MIN)), math.log(_S_MAX))
        r_new = resid(cand)
        if (r_new ** 2).sum() < (r ** 2).sum():
            theta, r, lam = cand, r_new, lam / 3
        else:
            lam *= 10
    return theta


def fit_logistic(x, y) -> dict | None:
    """Fit y = lo + (hi - lo) * sigmoid((x - x0) / s) with x in log10 units.

    Deterministic: a grid over x0 (data range padded by half a decade) and s, with lo and hi
    solved exactly at each grid point, then Levenberg-Marquardt from the best grid point.
    Returns x0, s, the 10-90% width in decades, lo, hi, rmse and r2; None when x spans fewer
    than three distinct values."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(np.unique(np.round(x, 9))) < 3:
        return None
    x0s = np.linspace(x.min() - 0.5, x.max() + 0.5, 161)
    ss = np.geomspace(_S_MIN, _S_MAX, 50)
    X0, S = np.meshgrid(x0s, ss, indexing="ij")
    X0, S = X0.ravel(), S.ravel()
    lo, hi, sse = _linear_lo_hi(_sigmoid((x[None, :] - X0[:, None]) / S[:, None]), y[None, :])
    k = int(np.argmin(sse))
    theta = _refine(np.array([lo[k], hi[k], X0[k], math.log(S[k])]), x, y)
    lo_, hi_, x0, s = theta[0], theta[1], theta[2], math.exp(theta[3])
    resid = y - (lo_ + (hi_ - lo_) * _sigmoid((x - x0) / s))
    ss_tot = float(((y - y.mean()) ** 2).sum())
    return {
        "x0": float(x0), "s": float(s), "width_decades": _LN9x2 * s,
        "lo": float(lo_), "hi": float(hi_),
        "rmse": float(np.sqrt((resid ** 2).mean())),
        "r2": 1.0 - float((resid ** 2).sum()) / ss_tot if ss_tot > 0 else None,
        "midpoint_in_range": bool(x.min() <= x0 <= x.max()),
    }


# --------------------------------------------------------------------------- sharpness, verdict
def sharpness(q: list[float]) -> tuple[float, int | None]:
    """Largest neighbour rise over the median of the other rises; returns (score, index of jump).

    Rises r_i = (q[i+1] - q[i]) / (max q - min q), so a curve's own range is 1. The baseline is
    the median of the *other* rises with drops counted as 0, floored at SHARPNESS_FLOOR: a
    straight line in log-x scores 1, a lone step 1/SHARPNESS_FLOOR = 20. Excluding the largest
    rise keeps a three-size curve meaningful (a step [1, 0] scores 20, a line [.5, .5] scores 1).
    Where a later rise is within _JUMP_TIE of the largest (a seed that failed and recovered), the
    earliest is taken as the jump: the ability first appears there.
    """
    q = np.asarray(q, float)
    if len(q) < 2 or np.ptp(q) < 1e-12:
        return 0.0, None
    rises = np.diff(q) / np.ptp(q)
    k = int(np.argmax(rises >= rises.max() - _JUMP_TIE))  # earliest of near-equal largest rises
    others = np.clip(np.delete(rises, k), 0.0, None)
    base = max(float(np.median(others)) if len(others) else 0.0, SHARPNESS_FLOOR)
    return float(rises[k]) / base, k


def verdict(q: list[float], sharp: float, k: int | None) -> tuple[str, str]:
    """Classify a normalised curve (sizes sorted by params); returns (verdict, reason)."""
    q = np.asarray(q, float)
    if len(q) < MIN_SIZES:
        return "undetermined", f"only {len(q)} size(s); need {MIN_SIZES}"
    best = int(np.argmax(q))
    rise = float(q[best] - q[: best + 1].min())
    if rise < MIN_TOTAL_RISE:
        if q.min() >= SATURATED_Q:
            return "saturated", f"every size >= {SATURATED_Q} of the way to perfect"
        return "flat", f"total rise {rise:.2f} < {MIN_TOTAL_RISE} of the chance-to-perfect span"
    jump = float(q[k + 1] - q[k]) if k is not None else 0.0
    if sharp >= SHARPNESS_MIN and jump >= MIN_JUMP:
        if q[k] <= NEAR_CHANCE_Q:
            return "emergent", f"jump of {jump:.2f} from near chance, sharpness {sharp:.1f}"
        return "jump", f"sharp jump of {jump:.2f} starting well above chance (q={q[k]:.2f})"
    return "gradual", f"rise {rise:.2f} spread over sizes, sharpness {sharp:.1f} < {SHARPNESS_MIN}"


# ----------------------------------------------------------------------------- per-task analysis
def _size_table(rows: list[dict]) -> list[dict]:
    """Sizes present among ok rows, sorted by params, with their rows sorted by seed."""
    by_size: dict[str, list[dict]] = {}
    for r in rows:
        by_size.setdefault(r["size"], []).append(r)
    table = []
    for size, rs in by_size.items():
        rs = sorted(rs, key=lambda r: r["seed"])
        flops = [f for f in (_num(r.get("flops")) for r in rs) if f and f > 0]
        table.append({"size": size, "params": float(np.mean([r["params"] for r in rs])),
                      "flops": float(np.mean(flops)) if flops else None, "rows": rs})
    return sorted(table, key=lambda t: (t["params"], t["size"]))


def _chance(rows: list[dict], metric: str) -> float | None:
    vals = [_num((r.get("chance") or {}).get(metric)) for r in rows]
    vals = [v for v in vals if v is not None]
    return float(np.mean(vals)) if vals else None


def _per_size(sizes: list[dict], metric: str) -> list[dict]:
    """Mean, min and max over seeds of one metric at each size that has a finite value."""
    per_size = []
    for t in sizes:
        vals = [v for v in (_num(r.get(metric)) for r in t["rows"]) if v is not None]
        if vals:
            per_size.append({"size": t["size"], "params": t["params"], "flops": t["flops"],
                             "values": vals, "mean": float(np.mean(vals)),
                             "min": min(vals), "max": max(vals), "n_seeds": len(vals)})
    return per_size


def analyse_metric(sizes: list[dict], metric: str, threshold_frac: float = 0.5) -> dict:
    """One task, one metric: per-size stats, threshold crossing, logistic fit, sharpness, verdict."""
    spec = METRICS[metric]
    per_size = _per_size(sizes, metric)
    out = {"metric": metric, "label": spec.label, "higher_is_better": spec.higher_is_better,
           "per_size": per_size, "verdict": "undetermined", "emergent_params": None,
           "emergent_flops": None, "sharpness": None, "logistic": None}
    if not per_size:
        out["reason"] = "no finite values"
        return out
    sign = 1.0 if spec.higher_is_better else -1.0
    means = [p["mean"] for p in per_size]
    chance = _chance([r for t in sizes for r in t["rows"]], metric)
    out["chance_source"] = "rows" if chance is not None else "worst observed mean"
    if chance is None:
        chance = min(means, key=lambda m: sign * m)
    best = max(means, key=lambda m: sign * m)
    span = spec.perfect - chance
    if abs(span) < 1e-12:  # chance equals perfect: fall back to the observed range
        span = (best - chance) or sign
    q = [(m - chance) / span for m in means]
    q_best = max(q)
    q_thr = threshold_frac * q_best
    threshold = chance + q_thr * span
    for p in per_size:
        past = [q_best > 0 and (v - chance) / span >= q_thr for v in p["values"]]
        p["frac_past_threshold"] = sum(past) / len(past)
        p["q"] = (p["mean"] - chance) / span
    x_p = [math.log10(p["params"]) for p in per_size]
    xc, note = crossing(x_p, q, q_thr) if q_best > 0 else (None, "never better than chance")
    xf = None
    if xc is not None and all(p["flops"] for p in per_size):
        x_f = [math.log10(p["flops"]) for p in per_size]
        xf, _ = crossing(x_f, q, q_thr)
    sharp, k = sharpness(q)
    v, reason = verdict(q, sharp, k)
    fit = _fit(per_size, chance, span)
    out.update({
        "chance": chance, "best": best, "threshold": threshold, "threshold_frac": threshold_frac,
        "crossing_params": 10 ** xc if xc is not None else None,
        "crossing_flops": 10 ** xf if xf is not None else None, "crossing_note": note,
        "sharpness": sharp, "verdict": v, "reason": reason,
        "jump_interval": [per_size[k]["size"], per_size[k + 1]["size"]] if k is not None else None,
        "total_rise_q": q_best - min(q), "logistic": fit,
        # larger sizes that fall back below the threshold after the jump: near a threshold the
        # outcome of one run can depend on its seed (ANCHORS.md), so say so rather than hide it
        "falls_back": [p["size"] for p in per_size[k + 1:] if p["q"] < q_thr] if k is not None else [],
    })
    if v in SHARP_VERDICTS:  # a scale is only named where there is a jump to name
        out["emergent_params"], out["emergent_flops"] = out["crossing_params"], out["crossing_flops"]
    return out


def _fit(per_size: list[dict], chance: float, span: float) -> dict | None:
    """Logistic fits in log10 params and log10 FLOPs, on every seed's value, in raw units."""
    pts = [(p["params"], p["flops"], v) for p in per_size for v in p["values"]]
    fit = fit_logistic([math.log10(a) for a, _, _ in pts], [v for _, _, v in pts])
    if fit is None:
        return None
    fit["midpoint_params"] = 10 ** fit["x0"]
    if all(f for _, f, _ in pts):
        ff = fit_logistic([math.log10(f) for _, f, _ in pts], [v for _, _, v in pts])
        if ff is not None:
            fit["midpoint_flops"], fit["width_decades_flops"] = 10 ** ff["x0"], ff["width_decades"]
    return fit


def metric_question(metrics: dict[str, dict]) -> dict:
    """Schaeffer et al.'s question for one task: is the exact-match jump also sharp elsewhere?"""
    em = metrics.get("exact_match", {})
    side = [{"metric": m, "sharpness": metrics[m].get("sharpness"),
             "verdict": metrics[m].get("verdict"), "emergent_params": metrics[m].get("emergent_params"),
             "jump_interval": metrics[m].get("jump_interval")}
            for m in ("exact_match",) + CONTINUOUS_METRICS if m in metrics]
    if em.get("verdict") not in SHARP_VERDICTS:
        return {"summary": "no jump", "side_by_side": side,
                "detail": f"exact match is {em.get('verdict', 'missing')}: no jump to question"}
    cont = [m for m in CONTINUOUS_METRICS if metrics.get(m, {}).get("per_size")]
    if not cont:
        return {"summary": "no continuous metrics", "side_by_side": side,
                "detail": "exact match jumps, but no continuous metric was recorded"}
    sharp = [m for m in cont if metrics[m].get("verdict") in SHARP_VERDICTS]
    smooth = [m for m in cont if m not in sharp]
    if not smooth:
        summary = "sharp in all"
    elif not sharp:
        summary = "exact-match only (mirage-like)"
    else:
        summary = "mixed"
    detail = (f"exact match jumps (sharpness {em['sharpness']:.1f}); sharp also in: "
              f"{', '.join(sharp) or 'none'}; smooth/other in: {', '.join(smooth) or 'none'}")
    return {"summary": summary, "side_by_side": side, "detail": detail}


def analyse(rows: list[dict], threshold_frac: float = 0.5) -> dict:
    """Full analysis of a sweep's result rows: per task, per metric, plus the metric question."""
    if not 0.0 < threshold_frac < 1.0:
        raise ValueError(f"threshold_frac must be in (0, 1), got {threshold_frac}")
    tasks: dict[str, dict] = {}
    for task in dict.fromkeys(r["task"] for r in rows):  # first-appearance order
        sizes = _size_table([r for r in rows if r["task"] == task and is_ok(r)])
        metrics = {m: analyse_metric(sizes, m, threshold_frac) for m in METRICS}
        tasks[task] = {"sizes": [t["size"] for t in sizes], "params": [t["params"] for t in sizes],
                       "flops": [t["flops"] for t in sizes], "metrics": metrics,
                       "metric_question": metric_question(metrics)}
    diverged = [{k: r.get(k) for k in ("task", "size", "seed", "params", "status", "final_loss")}
                for r in rows if not is_ok(r)]
    constants = {k: globals()[k] for k in ("MIN_SIZES", "SHARPNESS_FLOOR", "SHARPNESS_MIN",
                                           "MIN_TOTAL_RISE", "MIN_JUMP", "NEAR_CHANCE_Q",
                                           "SATURATED_Q")}
    return _clean({"threshold_frac": threshold_frac, "constants": constants, "n_rows": len(rows),
                   "tasks": tasks, "diverged": diverged})


def emergence_table(analysis: dict, metric: str = "exact_match") -> list[dict]:
    """One row per task, like Wei et al. 2022 Table 1, plus sharpness and the metric question."""
    table = []
    for task, t in analysis["tasks"].items():
        m = t["metrics"][metric]
        fit = m.get("logistic") or {}
        table.append({
            "task": task, "metric": metric, "emergent_params": m.get("emergent_params"),
            "emergent_flops": m.get("emergent_flops"), "sharpness": m.get("sharpness"),
            "verdict": m.get("verdict"), "jump_interval": m.get("jump_interval"),
            "falls_back": m.get("falls_back") or [],
            "logistic_midpoint_params": fit.get("midpoint_params"),
            "logistic_width_decades": fit.get("width_decades"),
            "metric_question": t["metric_question"]["summary"],
        })
    return table

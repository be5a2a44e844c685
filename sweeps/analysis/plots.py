"""Figures for the emergence report: per ability, one curve per condition, with sampling error.

- Bounded metrics (exact match, per-digit accuracy) are drawn on a 0..1 axis, so chance and
  perfect are both in view; the chance level of each curve is a dashed line.
- Error bars are each size's interval over problems (sweeps.analysis.emergence); one dot per
  seed and a shaded band from the lowest to the highest seed show the spread between seeds.
- The bars each verdict is judged against are drawn: chance (dashed) and the floor a size must
  reach to count as clearly above chance (dotted); extra bars (the in-context report's guessers
  that ignore the examples) are drawn the same way with their names.
- The emergent scale (first size clearly above chance) is a star; FLOPs panels say which sizes
  have no FLOPs recorded instead of dropping them silently.
- A metric with no data in any curve gets no panel (no empty "no data" panels).
- For a projector (plot_seeds): exact match against size alone, one large dot per seed, the
  seeds that learned filled and the others hollow, and the verdict in the title.
"""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import LogLocator, NullFormatter  # noqa: E402

from .curves import BOUNDED_METRICS, METRICS  # noqa: E402
from .hparams import safe_name  # noqa: E402

_AXES = (("params", "non-embedding parameters"), ("flops", "training FLOPs"))
_COLOURS = plt.rcParams["axes.prop_cycle"].by_key()["color"]


def _draw(ax, m: dict, axis: str, colour: str, label: str) -> list[str]:
    """One curve on one panel; returns the sizes it could not place (no value on this axis)."""
    ps = [p for p in m["per_size"] if p.get(axis)]
    missing = [p["size"] for p in m["per_size"] if not p.get(axis)]
    if not ps:
        return missing
    x = np.array([p[axis] for p in ps])
    y = np.array([p["mean"] for p in ps])
    if any(p["n_seeds"] > 1 for p in ps):
        ax.fill_between(x, [p["min"] for p in ps], [p["max"] for p in ps], color=colour,
                        alpha=0.15, lw=0)
        sx = [p[axis] for p in ps for _ in p["values"]]
        sy = [v for p in ps for v in p["values"]]
        ax.scatter(sx, sy, s=10, color=colour, alpha=0.55, lw=0, zorder=3)  # one dot per seed
    lo = np.array([p["interval"][0] if p.get("interval") else p["mean"] for p in ps])
    hi = np.array([p["interval"][1] if p.get("interval") else p["mean"] for p in ps])
    ax.errorbar(x, y, yerr=[np.maximum(y - lo, 0), np.maximum(hi - y, 0)], fmt="o-", ms=4,
                color=colour, capsize=3, lw=1.3, label=label)
    chance, perfect = m.get("chance"), m.get("perfect")
    if chance is not None:
        ax.axhline(chance, color=colour, ls="--", lw=0.9, alpha=0.7)
        if perfect is not None and m.get("floor") is not None:
            ax.axhline(chance + m["floor"] * (perfect - chance), color=colour, ls=":", lw=0.8,
                       alpha=0.6)
    for name, bar in (m.get("bars") or {}).items():
        ax.axhline(bar, color="black", ls="-.", lw=0.8, alpha=0.6)
        ax.annotate(name, (x.min(), bar), fontsize=6, va="bottom")
    if m.get("emergent_size") and m.get(f"emergent_{axis}"):
        ym = next(p["mean"] for p in ps if p["size"] == m["emergent_size"])
        ax.plot([m[f"emergent_{axis}"]], [ym], "*", ms=15, color=colour, mec="black", mew=0.6,
                zorder=5)
    return missing


def plot_ability(ability: str, curves: dict[str, dict], out: Path) -> Path | None:
    """One figure for an ability: columns = metrics with data, rows = params (and FLOPs where any
    curve has FLOPs), one colour per condition. `curves` maps a label to an analysis curve."""
    return _save(ability_figure(ability, curves), out / f"{safe_name(ability)}_scale.png", 90)


def _save(fig, path: Path, dpi: int) -> Path | None:
    """Write and close `fig` (None: nothing to draw, nothing written)."""
    if fig is None:
        return None
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def ability_figure(ability: str, curves: dict[str, dict]):
    """The figure of `plot_ability`, not saved (None when no metric has data)."""
    metrics = [m for m in list(METRICS) + sorted({k for c in curves.values() for k in c["metrics"]}
                                                   - set(METRICS))
               if any((c["metrics"].get(m) or {}).get("per_size") for c in curves.values())]
    if not metrics:
        return None
    axes_used = [a for a in _AXES if a[0] == "params" or any(
        p.get("flops") for c in curves.values() for m in metrics
        for p in (c["metrics"].get(m) or {}).get("per_size", []))]
    fig, axes = plt.subplots(len(axes_used), len(metrics), squeeze=False,
                             figsize=(max(7.0, 3.9 * len(metrics)), 3.5 * len(axes_used) + 1.2))
    for row, (axis, xlabel) in enumerate(axes_used):
        for col, name in enumerate(metrics):
            ax = axes[row, col]
            missing = {}
            for k, (label, c) in enumerate(curves.items()):
                m = c["metrics"].get(name)
                if m and m.get("per_size"):
                    miss = _draw(ax, m, axis, _COLOURS[k % len(_COLOURS)], label)
                    if miss:
                        missing[label] = miss
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(LogLocator(base=10, numticks=6))
            ax.xaxis.set_minor_formatter(NullFormatter())  # under two decades, labels collide
            ax.tick_params(labelsize=8)
            if name in BOUNDED_METRICS:
                ax.set_ylim(-0.03, 1.03)
            spec = METRICS.get(name)
            ax.set_ylabel(spec.label if spec else name, fontsize=9)
            ax.set_xlabel(xlabel, fontsize=9)
            ax.grid(alpha=0.3, which="major", lw=0.5)
            title = name
            if row == 0 and len(curves) == 1:
                mm = next(iter(curves.values()))["metrics"][name]
                title += f"\n{mm.get('verdict')}; shape {mm.get('shape')}"
            if missing:
                title += "\nno FLOPs: " + "; ".join(
                    (f"{lab}: " if len(curves) > 1 else "") + ", ".join(s)
                    for lab, s in missing.items())
            ax.set_title(title, fontsize=8.5)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    extra = [plt.Line2D([], [], color="grey", ls="--", lw=0.9),
             plt.Line2D([], [], color="grey", ls=":", lw=0.8),
             plt.Line2D([], [], color="grey", marker="*", ls="", ms=12, mec="black")]
    ncol = min(len(labels) + 3, 2 if len(metrics) == 1 else 4)
    fig.legend(handles + extra, labels + ["chance", "floor (clearly above chance from here)",
                                          "emergent scale (first size clearly above chance)"],
               loc="lower center", ncol=ncol, fontsize=8)
    rows_legend = math.ceil((len(labels) + 3) / ncol)
    fig.suptitle(f"{ability}: score against scale\n(error bars: 95% interval over problems; "
                 f"dots: one per seed; band: seed min–max)", fontsize=10)
    fig.tight_layout(rect=(0, 0.03 + 0.035 * rows_legend * 4.7 / fig.get_figheight(), 1, 0.93))
    return fig


def plot_training(label: str, curves: list[dict], size_order: list[str], out: Path,
                  params: dict[str, float] | None = None) -> Path | None:
    """Exact match and per-digit accuracy over training steps, one line per size (mean of seeds).
    `curves` are the curves.jsonl rows of this one (condition, task)."""
    rows = [c for c in curves if isinstance(c.get("step"), (int, float))]
    if not rows:
        return None
    sizes = [s for s in size_order if any(c["size"] == s for c in rows)]
    sizes += sorted({str(c["size"]) for c in rows} - set(sizes))
    colours = plt.cm.viridis(np.linspace(0, 0.9, max(len(sizes), 1)))
    panels = [m for m in ("exact_match", "per_digit_acc")
              if any(isinstance(c.get(m), (int, float)) for c in rows)]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.2), squeeze=False)
    for ax, metric in zip(axes[0], panels):
        for colour, size in zip(colours, sizes):
            by_step: dict[int, list[float]] = {}
            for c in rows:
                v = c.get(metric)
                if str(c["size"]) == size and isinstance(v, (int, float)) and math.isfinite(v):
                    by_step.setdefault(int(c["step"]), []).append(float(v))
            steps = sorted(by_step)
            lab = f"{size} ({params[size]:.3g} params)" if params and size in params else size
            ax.plot(steps, [np.mean(by_step[s]) for s in steps], "-", color=colour, label=lab)
        ax.set_xlabel("training step")
        ax.set_ylabel(METRICS[metric].label)
        ax.set_ylim(-0.03, 1.03)
        ax.set_title(f"{label}: {metric} during training (mean over seeds)", fontsize=10)
        ax.grid(alpha=0.3, lw=0.5)
    axes[0, -1].legend(title="size", fontsize=8, loc="best")
    fig.tight_layout()
    return _save(fig, out / f"{safe_name(label)}_training.png", 90)


def plot_seeds(label: str, curve: dict, out: Path) -> Path | None:
    """`{label}_seeds.png` (seeds_figure); None when the curve has no exact match to show."""
    return _save(seeds_figure(label, curve), out / f"{safe_name(label)}_seeds.png", 100)


def seeds_figure(label: str, curve: dict):
    """Exact match (%) against parameters, one dot per seed, in type large enough to read from
    the back of a room. Seeds that learned (the report's rule) are filled, the others hollow; the
    dashed line is chance; the title gives the verdict."""
    m = (curve.get("metrics") or {}).get("exact_match")
    ps = [p for p in (m or {}).get("per_size", []) if p.get("params") and p.get("seeds")]
    if not ps:
        return None
    fig, ax = plt.subplots(figsize=(9, 6))
    for p in ps:
        for j, seed in enumerate(p["seeds"]):
            spread = 1 + 0.06 * (j - (len(p["seeds"]) - 1) / 2)  # side by side, not on top
            ax.scatter([p["params"] * spread], [100 * seed["value"]], s=160, zorder=3, lw=2,
                       color=_COLOURS[0] if seed.get("learned") else "white",
                       edgecolors=_COLOURS[0])
    ax.plot([p["params"] for p in ps], [100 * p["mean"] for p in ps], color=_COLOURS[0], lw=2,
            alpha=0.5)
    if m.get("chance") is not None:
        ax.axhline(100 * m["chance"], color="grey", ls="--", lw=1.5)
    ax.scatter([], [], s=160, lw=2, color=_COLOURS[0], label="a seed that learned")
    ax.scatter([], [], s=160, lw=2, color="white", edgecolors=_COLOURS[0], label="one that did not")
    ax.legend(fontsize=14, loc="lower right")  # where an emergence plot is usually empty
    ax.set_xscale("log")
    ax.set_xticks([p["params"] for p in ps], [p["size"] for p in ps])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_ylim(-5, 105)
    ax.tick_params(labelsize=16)
    ax.set_xlabel("model size (non-embedding parameters)", fontsize=18)
    ax.set_ylabel("exact match, % (one dot per seed)", fontsize=18)
    verdict = m.get("verdict", "undetermined").replace("_", " ")
    where = f" at {m['emergent_size']}" if m.get("emergent_size") else ""
    ax.set_title(f"{label}: {verdict}{where}", fontsize=20)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig

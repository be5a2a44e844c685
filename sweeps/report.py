"""python -m sweeps.report RUN_DIR: rebuild a run folder's report, whichever kind of sweep made it.

This is the one report command. A sweep records in config.json which report reads its results
(`report`, set by its spec in sweeps.catalog); KINDS maps each kind to the analysis module that
builds it, so a fourth kind is one module plus one entry here. Every kind writes RUN_DIR/report/
(report.md, summary.json and figures). A run folder written before kinds were recorded gets its
kind from what it holds (`infer_kind`). Asked for a kind that is not the folder's (`--kind`, or
the old per-kind commands), the command refuses, names the folder's kind, and writes nothing.

The running side (sweeps.run, sweeps.merge) reaches the analysis only through `build` and
`summarise` here. A kind module provides:

    build(run_dir: Path, **options) -> tuple[Path, str]
                        write RUN_DIR/report/; return that folder and the text for the terminal
    summarise(run_dir: Path, **options) -> str
                        the terminal text alone, writing nothing

and takes the options of DEFAULTS by keyword, ignoring those that do not apply to it.

    python -m sweeps.report RUN_DIR [--kind K] [--threshold 0.5] [--floor 0.05] [--bootstrap N]
"""
from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from .results import ResultsError, read_config, read_jsonl

KINDS = {
    "emergence": "sweeps.analysis.emergence_report",   # where each ability appears (Wei et al.)
    "icl": "sweeps.analysis.icl_report",               # accuracy against shots k, per size
    "instructions": "sweeps.analysis.instructions_report",  # tuned against untuned (FLAN, T0)
}
DEFAULTS = {"threshold_frac": 0.5, "floor": 0.05, "n_boot": 1000, "tensorboard": True}


def infer_kind(config: dict, rows: list[dict]) -> str:
    """The report kind of a folder whose config.json does not record one (written before kinds
    were recorded): from what the sweep trained and how its rows are keyed."""
    name = config.get("name") or config.get("sweep")
    conditions = {r.get("condition") for r in rows}
    if name == "instructions" or ("untuned" in conditions
                                  and any("-words" in str(r.get("task")) for r in rows)):
        return "instructions"
    shots = {r.get("shots", 0) for r in rows}
    if (name == "icl" or len(config.get("shots") or [0]) > 1 or config.get("eval_only")
            or len(shots) > 1 or any(r.get("trained") is False for r in rows)):
        return "icl"
    return "emergence"


def kind_of(run_dir: Path) -> str:
    """The folder's report kind: recorded in config.json, else inferred (`infer_kind`)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ResultsError(f"{run_dir}: run folder does not exist")
    config = read_config(run_dir)
    kind = config.get("report")
    if kind is None:
        return infer_kind(config, read_jsonl(run_dir / "results.jsonl"))
    if kind not in KINDS:
        raise ResultsError(f"{run_dir / 'config.json'}: unknown report kind {kind!r}; valid: "
                           f"{', '.join(KINDS)}")
    return kind


def _module(run_dir: Path, kind: str | None):
    found = kind_of(run_dir)
    if kind is not None and kind != found:
        raise ResultsError(f"{run_dir} holds a run whose report kind is '{found}', not "
                           f"'{kind}'; nothing was written. Build its own report with: "
                           f"python -m sweeps.report {run_dir}")
    return importlib.import_module(KINDS[found])


def build(run_dir: str | Path, kind: str | None = None, **options) -> tuple[Path, str]:
    """Write RUN_DIR/report/ with the folder's own kind of report; returns the report folder and
    the text to print on the terminal."""
    run_dir = Path(run_dir)
    return _module(run_dir, kind).build(run_dir, **{**DEFAULTS, **options})


def summarise(run_dir: str | Path, kind: str | None = None, **options) -> str:
    """The folder's report as terminal text, without writing anything."""
    run_dir = Path(run_dir)
    return _module(run_dir, kind).summarise(run_dir, **{**DEFAULTS, **options})


def build_parser(kind: str | None = None) -> argparse.ArgumentParser:
    prog = "python -m sweeps.report" if kind is None else f"python -m sweeps.{kind}_report"
    ap = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    ap.add_argument("run_dir", type=Path, help="a run folder holding config.json and results.jsonl")
    if kind is None:
        ap.add_argument("--kind", choices=sorted(KINDS),
                        help="refuse unless the folder is of this kind (default: the folder's own)")
    ap.add_argument("--threshold", type=float, default=DEFAULTS["threshold_frac"],
                    help="for the 50%%-of-best crossing: fraction of the way from chance to the "
                         "best score (default 0.5)")
    ap.add_argument("--floor", type=float, default=DEFAULTS["floor"],
                    help="'clearly above chance' also needs the mean this far from chance to "
                         "perfect (default 0.05)")
    ap.add_argument("--bootstrap", type=int, default=DEFAULTS["n_boot"],
                    help="bootstrap replicates (default 1000)")
    ap.add_argument("--no-tensorboard", action="store_true", help="skip the TensorBoard hparams")
    return ap


def main(argv: list[str] | None = None, kind: str | None = None) -> int:
    ap = build_parser(kind)
    args = ap.parse_args(argv)
    if not 0.0 < args.threshold < 1.0:
        ap.error(f"--threshold must be in (0, 1), got {args.threshold}")
    if not 0.0 <= args.floor < 1.0:
        ap.error(f"--floor must be in [0, 1), got {args.floor}")
    if not 100 <= args.bootstrap <= 100_000:
        ap.error(f"--bootstrap must be in [100, 100000], got {args.bootstrap}")
    options = {"threshold_frac": args.threshold, "floor": args.floor, "n_boot": args.bootstrap,
               "tensorboard": not args.no_tensorboard}
    kind = kind or getattr(args, "kind", None)
    try:
        out, text = build(args.run_dir, kind, **options)
    except (ResultsError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a read-only or full output folder
        print(f"error: cannot write the report under {args.run_dir / 'report'}: {e}; make the "
              "folder writable (or copy the run folder somewhere writable) and run again",
              file=sys.stderr)
        return 2
    print(text)
    print(f"\nreport written to {out / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

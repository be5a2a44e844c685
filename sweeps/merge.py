"""Merge the parts of one sweep, run as shards or size subsets on several machines, into one run.

    python -m sweeps.merge OUT_DIR RUN_DIR [RUN_DIR ...] [--force] [--threshold 0.5]

The merged folder looks like one runner's output (config.json, results.jsonl, curves.jsonl, tb/)
and gets its own kind of report (`python -m sweeps.report`: emergence, icl or instructions, as the
sweep recorded). Parts must agree on every config key except those that say which part of the
sweep they ran or where it ran; rows duplicated across parts (the same key, sweeps.results.row_key)
must be identical.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from . import report
from .results import (ResultsError, curve_row_key, flatten_config, jsonl_text, read_config,
                      read_curves, row_key, write_text_atomic)
from .validate import read_results

# Config keys allowed to differ between parts: what each part ran, and where/when it ran.
UNION_KEYS = ("tasks", "sizes", "seeds", "conditions")
PART_KEYS = frozenset({"device", "device_type", "shard", "provenance", "resumed_on"})
# Fields that measure how a run went on its machine rather than what it computed: two reruns of one
# shard differ in them and are still the same result.
MEASUREMENT_FIELDS = frozenset({"wall_time_s", "device", "attn", "norm", "threads"})


class MergeError(ValueError):
    """The parts cannot be merged; the message says which input and why."""


def _varies(key: str) -> bool:
    """Whether a (dotted, flattened) config key may differ between parts; nested keys such as
    train.device are judged by their last component."""
    leaf, top = key.rsplit(".", 1)[-1], key.split(".", 1)[0]
    return key in UNION_KEYS or leaf in PART_KEYS or top in PART_KEYS


def load_config(run_dir: Path) -> dict:
    """A part's config.json; MergeError when it is missing or unreadable."""
    if not (run_dir / "config.json").is_file():
        raise MergeError(f"{run_dir / 'config.json'}: file not found")
    try:
        return read_config(run_dir)
    except ResultsError as e:
        raise MergeError(str(e)) from None


def check_compatible(configs: list[dict], dirs: list[Path]) -> None:
    """Every part must match the first on all keys but the part-specific ones; nested keys are
    compared one by one so the message names e.g. train.lr_base, not all of train."""
    base = flatten_config(configs[0])
    for cfg, d in zip(configs[1:], dirs[1:]):
        cfg = flatten_config(cfg)
        keys = (set(base) | set(cfg)) - {k for k in set(base) | set(cfg) if _varies(k)}
        differ = sorted(k for k in keys if base.get(k, "<missing>") != cfg.get(k, "<missing>"))
        if differ:
            detail = "; ".join(f"{k}: {base.get(k, '<missing>')!r} vs {cfg.get(k, '<missing>')!r}"
                               for k in differ)
            raise MergeError(f"{d} is incompatible with {dirs[0]}: differing config key(s) "
                             f"{', '.join(differ)} ({detail})")


def merged_config(configs: list[dict], rows: list[dict], dirs: list[Path]) -> dict:
    """The first config with shard keys dropped and tasks/sizes/seeds unioned (sizes ordered by
    params); other part keys that differ (e.g. device_type) are listed under part_differences."""
    out = {k: v for k, v in configs[0].items() if not k.startswith("shard")}
    flat = [flatten_config(c) for c in configs]
    keys = dict.fromkeys(k for f in flat for k in f)
    diffs = {k: [f.get(k) for f in flat] for k in keys
             if k not in UNION_KEYS and not k.startswith("shard") and len({json.dumps(f.get(k))
                                                                           for f in flat}) > 1}
    for key in UNION_KEYS:  # conditions are dicts: unhashable, so union them by their JSON
        union = {json.dumps(v, sort_keys=True): v for c in configs for v in c.get(key) or []}
        if union or key in out:
            out[key] = list(union.values())
    params = {r["size"]: r["params"] for r in rows if isinstance(r.get("params"), (int, float))}
    if "sizes" in out:  # configs not written by the runner (sweeps.ingest's) list no sizes
        out["sizes"] = sorted(out["sizes"], key=lambda s: (s not in params, params.get(s, 0)))
    if "seeds" in out:
        out["seeds"] = sorted(out["seeds"])
    out["merged_from"] = [str(d) for d in dirs]
    if diffs:
        out["part_differences"] = diffs
    return out


def dedupe(parts: list[tuple[Path, list[dict]]], key, name: str) -> list[dict]:
    """Concatenate rows; drop exact duplicates, refuse ones that share a key but differ."""
    seen: dict[tuple, tuple[Path, dict]] = {}
    out = []
    for d, rows in parts:
        for r in rows:
            key_value = key(r)
            if key_value in seen:
                old = seen[key_value][1]
                differ = sorted(k for k in set(old) | set(r)
                                if k not in MEASUREMENT_FIELDS and old.get(k) != r.get(k))
                if differ:
                    detail = "; ".join(f"{k}: {old.get(k)!r} vs {r.get(k)!r}" for k in differ[:5])
                    raise MergeError(f"conflicting duplicate in {name} for {key_value}: "
                                     f"{seen[key_value][0]} and {d} differ "
                                     f"in {', '.join(differ)} ({detail})")
                continue
            seen[key_value] = (d, r)
            out.append(r)
    return out


def copy_tb(dirs: list[Path], out: Path) -> None:
    """Copy each part's tb/ entries into OUT/tb/; a clashing file gets the part's index appended.

    tb/hparams is skipped: the report rebuilds it for the merged run."""
    for i, d in enumerate(dirs):
        src = d / "tb"
        if not src.is_dir():
            continue
        for f in sorted(p for p in src.rglob("*") if p.is_file()):
            rel = f.relative_to(src)
            if rel.parts[0] == "hparams":
                continue
            dst = out / "tb" / rel
            if dst.exists() and dst.read_bytes() != f.read_bytes():
                dst = dst.with_name(f"{dst.name}.part{i}")
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, dst)


def _prepare_out(out: Path, dirs: list[Path], force: bool) -> None:
    if any(out.resolve() == d.resolve() for d in dirs):
        raise MergeError(f"{out}: OUT_DIR must not be one of the inputs")
    if out.exists() and not out.is_dir():
        raise MergeError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise MergeError(f"{out}: exists and is not empty (use --force to overwrite)")
        for stale in ("tb", "report"):  # rebuilt below; the jsonl files are replaced atomically
            shutil.rmtree(out / stale, ignore_errors=True)
        (out / "curves.jsonl").unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)


def merge_runs(out: str | Path, run_dirs: list[str | Path], force: bool = False,
               threshold_frac: float = 0.5) -> tuple[Path, str]:
    """Merge RUN_DIRs into OUT, then build its report; returns the report folder and the text the
    report prints."""
    out, dirs = Path(out), [Path(d) for d in run_dirs]
    if not dirs:
        raise MergeError("no RUN_DIR given")
    for d in dirs:
        if not d.is_dir():
            raise MergeError(f"{d}: run folder does not exist")
    configs = [load_config(d) for d in dirs]
    check_compatible(configs, dirs)
    try:
        results = [(d, read_results(d)[0]) for d in dirs]
        curves = [(d, read_curves(d)) for d in dirs]
    except ResultsError as e:
        raise MergeError(str(e)) from None
    rows = dedupe(results, row_key, "results.jsonl")
    curve_rows = dedupe(curves, curve_row_key, "curves.jsonl")
    _prepare_out(out, dirs, force)
    write_text_atomic(out / "config.json", json.dumps(merged_config(configs, rows, dirs), indent=1))
    write_text_atomic(out / "results.jsonl", jsonl_text(rows))
    if curve_rows:
        write_text_atomic(out / "curves.jsonl", jsonl_text(curve_rows))
    copy_tb(dirs, out)
    return report.build(out, threshold_frac=threshold_frac)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sweeps.merge", description=__doc__.split("\n")[0])
    ap.add_argument("out_dir", type=Path, help="folder to write the merged run into")
    ap.add_argument("run_dirs", type=Path, nargs="+", help="the part run folders")
    ap.add_argument("--force", action="store_true", help="overwrite a non-empty OUT_DIR")
    ap.add_argument("--threshold", type=float, default=0.5,
                    help="report threshold: fraction of the way from chance to the best score")
    args = ap.parse_args(argv)
    if not 0.0 < args.threshold < 1.0:
        ap.error(f"--threshold must be in (0, 1), got {args.threshold}")
    try:
        folder, text = merge_runs(args.out_dir, args.run_dirs, args.force, args.threshold)
    except (MergeError, ResultsError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(text)
    print(f"\nmerged {len(args.run_dirs)} part(s) into {args.out_dir}; report at {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

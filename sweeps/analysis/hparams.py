"""TensorBoard hparams of a run folder: one entry per (condition, size, seed) with its final
metrics per task, so runs can be compared in TensorBoard's HPARAMS tab (tensorboard --logdir).
The folder RUN_DIR/tb/hparams is ours alone and rebuilt from scratch, so reruns never pile up."""
from __future__ import annotations

import math
import shutil
from pathlib import Path

from sweeps.results import flatten_config

from .curves import METRICS, condition_of, is_ok

SIZE_HPARAMS = ("size", "seed", "params", "params_total", "n_layer", "n_head", "n_embd", "attn",
                "norm", "steps", "tokens", "flops", "status")


def safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def write_hparams(run_dir: Path, rows: list[dict], config: dict) -> int:
    """Write RUN_DIR/tb/hparams; returns the number of entries (0 without tensorboard)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard missing: the rest of the report still stands
        return 0
    root = Path(run_dir) / "tb" / "hparams"
    shutil.rmtree(root, ignore_errors=True)
    scalars = {k: v for k, v in flatten_config(config).items()
               if isinstance(v, (int, float, str, bool))}
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((condition_of(r), str(r["size"]), r["seed"]), []).append(r)
    with SummaryWriter(str(root)) as writer:
        for (condition, size, seed), rs in groups.items():
            hp = {**scalars, **{k: rs[0][k] for k in SIZE_HPARAMS
                                if isinstance(rs[0].get(k), (int, float, str, bool))}}
            metrics = {f"{r['task']}/k{r.get('shots') or 0}/{m}": float(r[m])
                       for r in rs if is_ok(r) for m in METRICS
                       if isinstance(r.get(m), (int, float)) and math.isfinite(r[m])}
            writer.add_hparams(hp, metrics or {"diverged": 1.0},
                               run_name=safe_name(f"{condition}-{size}_seed{seed}"))
    return len(groups)

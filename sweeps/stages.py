"""Training a condition in stages (pre-training, then instruction tuning), for sweeps.runner.

A staged condition (`specs.Condition.stages`) trains stage i's mixture for its share of the unit's
steps. The stream switches mixtures at the stage boundaries (`data_gen.staged.StagedStream`) and
the learning rate restarts in every stage: warm-up (the run's warm-up in the first stage, a tenth
of the stage at most in later ones), then cosine decay to the floor over the stage.

**Shared pre-training.** Conditions that differ only after a boundary (tuned on 1, 3 or 10
templates, or not tuned at all) train the same model up to it: same size, seed, config and
earlier stages give the same weights bit for bit. The first unit to reach a boundary copies its
checkpoint to ckpt/shared-<key>.pt, where <key> hashes everything that decides training up to
the boundary; a later unit with the same key starts from that copy instead of retraining the
prefix. Its rows are then exactly what training it from scratch would give (the tests check it)
and its wall_time_s includes the shared prefix's time. The shared copies are deleted when the
sweep has finished, unless checkpoints are kept.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict, replace
from pathlib import Path
from typing import Callable

from data_gen import TrainStream, make_task
from data_gen.staged import StagedStream
from minigpt.config import TrainConfig
from minigpt.train import lr_at

SHARED_PREFIX = "shared-"


def stage_seed(seed: int, stage: int) -> int:
    """The data seed of a stage's stream: the unit's seed in the first stage, distinct later."""
    return seed if stage == 0 else seed * 1009 + stage


def staged_stream(cfg, condition, steps: int, seed: int, make_stream=None,
                  device: str = "cpu") -> StagedStream:
    """One stream per stage, each of the sweep's stream kind through the runner's `make_stream`
    (the Python stream when none is given); a stage's weights go to whichever stream it gets."""
    t = cfg.train
    streams = []
    for i, stage in enumerate(condition.stages):
        tasks = [make_task(name, eval_size=cfg.eval_size) for name in stage.tasks]
        weights = list(stage.weights) or None
        if make_stream is None:
            streams.append(TrainStream(tasks, t.batch_size, t.seq_len, stage_seed(seed, i),
                                       weights=weights))
        else:
            streams.append(make_stream(cfg.stream, device, tasks, t.batch_size, t.seq_len,
                                       stage_seed(seed, i), weights))
    return StagedStream(streams, condition.stage_ends(steps))


def staged_lr(train: TrainConfig, peak: float, ends: list[int]) -> Callable[[int], float]:
    """The learning rate at each step: warm-up and cosine restarted in every stage."""
    starts = [0] + ends[:-1]
    local = [replace(train, steps=end - start,
                     warmup_steps=train.warmup_steps if i == 0
                     else min(train.warmup_steps, max(1, (end - start) // 10)))
             for i, (start, end) in enumerate(zip(starts, ends))]

    def lr(step: int) -> float:
        i = next((j for j, end in enumerate(ends) if step < end), len(ends) - 1)
        return lr_at(step - starts[i], peak, local[i])
    return lr


def prefix_key(cfg, condition, size: str, seed: int, steps: int, stage: int) -> str:
    """A hash of everything that decides training up to the end of `stage`."""
    record = {"size": size, "seed": seed, "steps": steps, "attn": cfg.attn, "norm": cfg.norm,
              "eval_size": cfg.eval_size,  # the training pools exclude the evaluation problems
              "train": {k: v for k, v in asdict(cfg.train).items()
                        if k not in ("eval_every", "checkpoint_every", "checkpoint_minutes")},
              "stages": [asdict(s) | {"name": ""} for s in condition.stages[: stage + 1]],
              "ends": condition.stage_ends(steps)[: stage + 1]}
    return hashlib.sha1(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()[:16]


def shared_paths(cfg, condition, size: str, seed: int, steps: int, ckpt_dir: Path) -> list[Path]:
    """Where the checkpoint at the end of each stage but the last is shared."""
    return [ckpt_dir / f"{SHARED_PREFIX}{prefix_key(cfg, condition, size, seed, steps, i)}.pt"
            for i in range(len(condition.stages) - 1)]


def _copy_atomic(src: Path, dst: Path) -> None:
    tmp = dst.with_name(dst.name + ".tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def start_from_shared(ckpt: Path, shared: list[Path]) -> int | None:
    """If the unit has no checkpoint of its own, copy the latest shared boundary one there.
    Returns the stage index whose end it starts from, or None."""
    if ckpt.exists():
        return None
    for i in reversed(range(len(shared))):
        if shared[i].exists():
            _copy_atomic(shared[i], ckpt)
            return i
    return None


def run_in_stages(trainer, ends: list[int], shared: list[Path]):
    """Run the trainer to the end of each stage in turn, sharing each boundary's checkpoint."""
    full = trainer.cfg
    result = None
    try:
        for i, end in enumerate(ends):
            last = i == len(ends) - 1
            if trainer.step >= end and not last:
                continue
            trainer.cfg = replace(full, steps=end)
            result = trainer.run()
            if result.status != "ok":
                break
            if not last and trainer.checkpoint_path is not None and not shared[i].exists():
                trainer.save_checkpoint()
                _copy_atomic(trainer.checkpoint_path, shared[i])
    finally:
        trainer.cfg = full
    return result


def remove_shared(ckpt_dir: Path) -> None:
    for path in Path(ckpt_dir).glob(f"{SHARED_PREFIX}*.pt"):
        path.unlink(missing_ok=True)

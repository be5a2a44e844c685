"""Named sweeps: plain functions returning a SweepConfig, registered in SWEEPS.

A sweep is a task mixture (one model learns all its tasks, as one language model learns many
abilities), a ladder of sizes, seeds, and one fixed training budget shared by every size: the
emergence question is "which sizes can do this at this budget", so the budget never varies with
size. Variants are `dataclasses.replace` of a registered sweep, not new flags.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from data_gen import make_task
from minigpt.config import CPU_LADDER, GPU_LADDER, SIZES, TrainConfig, nominal_params


@dataclass
class SweepConfig:
    name: str
    task_set: str                  # a name for the mixture, recorded in every result row
    tasks: tuple[str, ...]
    sizes: tuple[str, ...]
    seeds: tuple[int, ...]
    train: TrainConfig
    eval_size: int = 500           # problems per task in the final evaluation
    curve_eval_size: int = 100     # problems per task in the evaluations during training
    multi_seed_max_params: float = 3e7  # sizes above this train with the first seed only
    attn: str = "auto"
    norm: str = "auto"
    description: str = ""
    keep_checkpoints: bool = False

    def __post_init__(self):
        unknown = [s for s in self.sizes if s not in SIZES]
        if unknown:
            raise ValueError(f"unknown size(s) {', '.join(unknown)}; valid: {', '.join(SIZES)}")
        if not self.sizes or not self.tasks or not self.seeds:
            raise ValueError("a sweep needs at least one size, one task and one seed")
        for name in self.tasks:
            make_task(name, eval_size=self.eval_size)  # raises a ValueError naming valid forms
        if not 1 <= self.curve_eval_size:
            raise ValueError("curve_eval_size must be at least 1")

    def units(self) -> list[tuple[str, int]]:
        """Every (size, seed) training run, smallest size first."""
        out = []
        for size in sorted(self.sizes, key=nominal_params):
            seeds = self.seeds if nominal_params(size) <= self.multi_seed_max_params else self.seeds[:1]
            out += [(size, seed) for seed in seeds]
        return out


def arithmetic(device_type: str) -> SweepConfig:
    """The default experiment: a mixture of addition, multiplication and modular tasks.

    CPU: the CPU ladder (25K-1M parameters) on 2- and 3-digit addition, budget sized to finish in
    under 10 minutes on two cores (calibration in docs/benchmarks.md). GPU: the GPU ladder (1M-1B)
    with three seeds up to 30M; its tasks and budget are a first estimate pending GPU calibration.
    """
    if device_type == "cuda":
        # A first guess from ANCHORS.md, not yet calibrated on a GPU: addition of any length jumped
        # below 2M parameters there, so only harder tasks can land inside 1M-1B (2-digit
        # multiplication rose gradually over 14K-85M, 3-digit multiplication had not appeared by
        # 202M; modular division with held-out pairs is untested).
        return SweepConfig(
            name="arithmetic", task_set="arith-gpu-mix", tasks=("add8", "mul2", "mul3", "mod97-div"),
            sizes=GPU_LADDER, seeds=(0, 1, 2),
            train=TrainConfig(steps=1500, batch_size=256, seq_len=64, warmup_steps=100,
                              eval_every=250),
            eval_size=1000, curve_eval_size=200,
            description="GPU ladder, 1500 steps x 256 contexts x 64 tokens (uncalibrated)")
    return SweepConfig(
        name="arithmetic", task_set="arith-mix", tasks=("add2", "add3"), sizes=CPU_LADDER, seeds=(0,),
        train=TrainConfig(steps=1500, batch_size=32, seq_len=64, warmup_steps=100, eval_every=300),
        eval_size=300, curve_eval_size=100,
        description="CPU ladder, 1500 steps x 32 contexts x 64 tokens")


def tiny(device_type: str) -> SweepConfig:
    """A seconds-long smoke test: two tiny sizes, two tasks, a few steps."""
    return replace(arithmetic("cpu"), name="tiny", task_set="tiny-mix", tasks=("add2", "mod7-add"),
                   sizes=("25k", "50k"),
                   train=TrainConfig(steps=30, batch_size=8, seq_len=32, warmup_steps=5, eval_every=10),
                   eval_size=50, curve_eval_size=20, description="smoke test")


SWEEPS = {"arithmetic": arithmetic, "tiny": tiny}

"""The types a sweep is made of: SweepConfig, Condition, Stage (the named sweeps are in
sweeps.catalog).

A sweep is a task mixture, a ladder of sizes, seeds, and one fixed training budget shared by every
size. It trains one or more **conditions** over the same sizes, seeds and budget. A condition is
one way of training and prompting the same abilities, for example plain answers against a
scratchpad (Nye et al. 2021): it names a format that is applied to each of the sweep's tasks, so
`add3` is trained and evaluated as `add3-scratch` under the "scratchpad" condition. Every result row
records its condition and the report compares conditions ability by ability. Between conditions
the budget is held equal in training tokens (the default) or in training examples seen.

Every sweep records which report reads its results (`report`: a kind of sweeps.report.KINDS),
so the report never has to guess it from the sweep's name or shape.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from data_gen import (base_task, check_task_format, make_task, max_shots, shots_fit,
                      with_format)
from minigpt.config import SIZES, TrainConfig, nominal_params

from .report import KINDS as REPORT_KINDS

BUDGETS = ("tokens", "examples")
STREAMS = ("auto", "python", "fast")
_CONDITION_NAME = re.compile(r"^[a-z0-9_-]+$")


def task_in_format(name: str, fmt: str) -> str:
    """The task `name` written in format `fmt` ("" keeps it): ("add3", "scratch") -> "add3-scratch".
    data_gen owns the formats and refuses an unknown one (data_gen.with_format)."""
    return with_format(name, fmt)


def ability_of(name: str) -> str:
    """A task's name without its format suffix: the ability that conditions are compared on."""
    return base_task(name)


@dataclass(frozen=True)
class Stage:
    """One stage of a staged condition: a training mixture for a share of the unit's steps.

    Each stage has its own learning-rate schedule (warm-up, then cosine decay over the stage), as
    a fine-tuning run after pre-training would."""
    tasks: tuple[str, ...]            # task names this stage trains on
    fraction: float                   # share of the unit's steps
    weights: tuple[float, ...] = ()   # sampling weight per task (default: equal)
    name: str = ""                    # for logs: "pretrain", "tune"

    def __post_init__(self):
        if not self.tasks:
            raise ValueError("a stage needs at least one task")
        if not 0.0 < self.fraction <= 1.0:
            raise ValueError(f"a stage's fraction must be in (0, 1], got {self.fraction}")
        if self.weights and (len(self.weights) != len(self.tasks) or min(self.weights) < 0
                             or sum(self.weights) <= 0):
            raise ValueError(f"stage weights must be one non-negative number per task "
                             f"({len(self.tasks)}), not all zero; got {self.weights}")


@dataclass(frozen=True)
class Condition:
    """One way of training the sweep's abilities; its name is recorded in every result row.

    A plain condition trains and evaluates the sweep's tasks in its format. A **staged** one
    trains its `stages` in order (e.g. symbolic pre-training, then instruction tuning) and
    evaluates the sweep's tasks plus `eval_tasks` (e.g. held-out templates) at the end."""
    name: str = "default"
    fmt: str = ""               # applied to each of the sweep's tasks (see task_in_format)
    description: str = ""
    stages: tuple[Stage, ...] = ()
    eval_tasks: tuple[str, ...] = ()  # evaluated besides the sweep's tasks, not trained as such

    def __post_init__(self):
        if not isinstance(self.name, str) or not _CONDITION_NAME.match(self.name):
            raise ValueError(f"condition name must match [a-z0-9_-]+, got {self.name!r}")
        check_task_format(self.fmt)  # raises for an unknown format, naming the valid ones
        if self.stages and abs(sum(s.fraction for s in self.stages) - 1.0) > 1e-9:
            raise ValueError(f"condition {self.name}: stage fractions must sum to 1, got "
                             f"{' + '.join(str(s.fraction) for s in self.stages)}")

    def tasks(self, base_tasks) -> tuple[str, ...]:
        return tuple(task_in_format(t, self.fmt) for t in base_tasks)

    def stage_ends(self, steps: int) -> list[int]:
        """The step at which each stage ends, for a run of `steps` steps (each stage >= 1 step)."""
        ends, done = [], 0.0
        for i, stage in enumerate(self.stages):
            done += stage.fraction
            later = len(self.stages) - 1 - i  # stages after this one, one step each at least
            end = steps if not later else min(round(done * steps), steps - later)
            ends.append(max(end, (ends[-1] if ends else 0) + 1))
        if ends and ends[-1] > steps:
            raise ValueError(f"condition {self.name}: {len(self.stages)} stages need at least "
                             f"{len(self.stages)} steps, got {steps}")
        return ends


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
    conditions: tuple[Condition, ...] = field(default_factory=lambda: (Condition(),))
    budget: str = "tokens"         # held equal across conditions: "tokens" or "examples"
    # which training stream: "python" (data_gen.TrainStream), "fast" (data_gen.FastTrainStream,
    # numpy, whole batches at once) or "auto": fast on a GPU, where the Python one would starve the
    # small sizes, and python on a CPU, where it costs little and keeps the recorded CPU figures
    stream: str = "auto"
    # under an examples budget, the condition whose examples seen every condition matches: the
    # first condition unless set (a part run with --conditions keeps the whole sweep's first)
    budget_reference: Condition | None = None
    shots: tuple[int, ...] = (0,)  # k solved examples before each query (see data_gen.icl)
    eval_only: tuple[str, ...] = ()  # tasks evaluated but never trained on (held-out rules)
    report: str = "emergence"      # which report reads the results (sweeps.report.KINDS)

    def __post_init__(self):
        if self.report not in REPORT_KINDS:
            raise ValueError(f"unknown report kind '{self.report}'; valid: "
                             f"{', '.join(REPORT_KINDS)}")
        unknown = [s for s in self.sizes if s not in SIZES]
        if unknown:
            raise ValueError(f"unknown size(s) {', '.join(unknown)}; valid: {', '.join(SIZES)}")
        if not self.sizes or not self.tasks or not self.seeds or not self.conditions:
            raise ValueError("a sweep needs at least one size, one task, one seed and one condition")
        names = [c.name for c in self.conditions]
        if len(set(names)) != len(names):
            raise ValueError(f"condition names must be unique, got {', '.join(names)}")
        if self.stream not in STREAMS:
            raise ValueError(f"unknown stream '{self.stream}'; valid: {', '.join(STREAMS)}")
        if self.budget not in BUDGETS:
            raise ValueError(f"unknown budget '{self.budget}'; valid: {', '.join(BUDGETS)}")
        if not self.shots or any(not isinstance(k, int) or k < 0 for k in self.shots):
            raise ValueError(f"shots must be non-negative integers, got {self.shots!r}")
        for condition in self.conditions:
            trained = [t for stage in condition.stages for t in stage.tasks]
            for name in self.eval_tasks(condition.name) + tuple(trained):
                make_task(name, eval_size=self.eval_size)  # raises a ValueError naming valid forms
            if condition.stages and self.budget != "tokens":
                raise ValueError(f"condition {condition.name} trains in stages, which hold the "
                                 f"budget in steps; use budget 'tokens'")
        if not 1 <= self.curve_eval_size:
            raise ValueError("curve_eval_size must be at least 1")

    @property
    def reference_condition(self) -> Condition:
        return self.budget_reference or self.conditions[0]

    def condition(self, name: str) -> Condition:
        return next(c for c in self.conditions if c.name == name)

    def eval_tasks(self, condition: str) -> tuple[str, ...]:
        """The task names one condition's models are evaluated on: trained ones, then eval-only."""
        cond = self.condition(condition)  # a staged condition adds its own (held-out phrasings)
        return tuple(dict.fromkeys(cond.tasks(self.tasks + tuple(self.eval_only)) + cond.eval_tasks))

    def units(self) -> list[tuple[str, str, int]]:
        """Every (condition, size, seed) training run: smallest size first, conditions side by
        side at each size so that a sweep stopped early has compared them where it got to."""
        out = []
        for size in sorted(self.sizes, key=nominal_params):
            seeds = self.seeds if nominal_params(size) <= self.multi_seed_max_params else self.seeds[:1]
            out += [(c.name, size, seed) for seed in seeds for c in self.conditions]
        return out


def shot_plan(cfg: SweepConfig, condition: str) -> tuple[dict[str, tuple[int, ...]], list[str]]:
    """For each evaluated task, the shot counts of `cfg.shots` whose k-shot episode fits one
    training context, and a message for each (task, k) left out. ValueError if a task keeps none."""
    plan, dropped = {}, []
    for name in cfg.eval_tasks(condition):
        task = make_task(name, eval_size=cfg.eval_size)
        keep = tuple(k for k in cfg.shots if shots_fit(task, k, cfg.train.seq_len))
        gone = [k for k in cfg.shots if k not in keep]
        if gone:
            dropped.append(f"{name}: k = {', '.join(map(str, gone))} left out (with its "
                           f"{len(task.eval_set()[0].text)}-token examples at most {max_shots(task, cfg.train.seq_len)} "
                           f"shots in a {cfg.train.seq_len}-token context)")
        if not keep:
            raise ValueError(f"no shot count in {', '.join(map(str, cfg.shots))} fits task {name} "
                             f"in a {cfg.train.seq_len}-token context; at most "
                             f"{max_shots(task, cfg.train.seq_len)} shots fit")
        plan[name] = keep
    return plan, dropped

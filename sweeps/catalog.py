"""The named sweeps: plain functions of the device type returning a SweepConfig, in SWEEPS.

A sweep is a task mixture (one model learns all its tasks, as one language model learns many
abilities), a ladder of sizes, seeds, and one fixed training budget shared by every size: the
emergence question is "which sizes can do this at this budget", so the budget never varies with
size. Variants are `dataclasses.replace` of a registered sweep, not new flags. The types they are
made of (SweepConfig, Condition, Stage) live in sweeps.specs; each sweep names the report kind
that reads its results (sweeps.report).

    arithmetic    the default experiment (CPU: a calibrated demo; GPU: the 1M-1B ladder)
    tiny          a seconds-long smoke test
    scratchpad    plain answers against a scratchpad, on equal tokens (Nye et al. 2021)
    icl           in-context learning: hidden-rule episodes evaluated k-shot
    instructions  instruction tuning as a second stage, FLAN and T0 in miniature
"""
from __future__ import annotations

from dataclasses import replace

from data_gen import make_task
from data_gen.templates import family_of, split_templates
from minigpt.config import CPU_LADDER, GPU_LADDER, TrainConfig

from .specs import Condition, Stage, SweepConfig


def arithmetic(device_type: str) -> SweepConfig:
    """The default experiment: a mixture of addition, multiplication and modular tasks.

    CPU: 3-digit addition from 6K to 200K parameters, three seeds, in about 6.5 minutes on two
    cores (two runs at a time). Calibrated on seeds 100-105, not on the default seeds
    (docs/benchmarks.md): trained alone, add3 was learned by no 6K model, by some 25K and 50K
    models and by every model from 100K on; mixed with add2 at this budget, models from 100K to
    1M learned it in about half the seeds whatever their size, which made the demo a lottery.
    GPU: the GPU ladder (1M-1B) with three seeds up to 30M; its tasks are a first estimate
    pending GPU calibration, and its budget (1200 steps x 256 x 64 tokens) is what the planner
    (python -m sweeps.run arithmetic --plan, from the rates measured on an H200) fits in 20
    minutes on one H100 with a margin for evaluation and start-up: 17.3 min of training.
    """
    if device_type == "cuda":
        # A first guess from the project's reference calibration (one H100, one seed, 2026-11-22),
        # not yet calibrated here: addition of any length jumped below 2M parameters there, so only
        # harder tasks can land inside 1M-1B (2-digit multiplication rose gradually over 14K-85M,
        # 3-digit multiplication had not appeared by 202M; modular division with held-out pairs is
        # untested). 1500 steps were planned at 21.7 min on one H100, over the 20 asked for.
        return SweepConfig(
            name="arithmetic", task_set="arith-gpu-mix", tasks=("add8", "mul2", "mul3", "mod97-div"),
            sizes=GPU_LADDER, seeds=(0, 1, 2),
            train=TrainConfig(steps=1200, batch_size=256, seq_len=64, warmup_steps=100,
                              eval_every=300),
            eval_size=1000, curve_eval_size=200,
            description="GPU ladder on a harder mixture (uncalibrated)")
    return SweepConfig(
        name="arithmetic", task_set="arith-add3", tasks=("add3",),
        sizes=("6k",) + CPU_LADDER[:4], seeds=(0, 1, 2),
        train=TrainConfig(steps=1500, batch_size=32, seq_len=64, warmup_steps=100, eval_every=300),
        eval_size=300, curve_eval_size=100,
        description="3-digit addition, 6K-200K parameters, three seeds")


def tiny(device_type: str) -> SweepConfig:
    """A seconds-long smoke test: two tiny sizes, two tasks, a few steps."""
    return replace(arithmetic("cpu"), name="tiny", task_set="tiny-mix", tasks=("add2", "mod7-add"),
                   sizes=("25k", "50k"), seeds=(0,),
                   train=TrainConfig(steps=30, batch_size=8, seq_len=32, warmup_steps=5, eval_every=10),
                   eval_size=50, curve_eval_size=20, description="smoke test")


def icl(device_type: str) -> SweepConfig:
    """In-context learning: the ladder trained on hidden-rule episodes, evaluated k-shot.

    The mixture: task recognition (icl-op2: which of + - * hides behind '?') and task learning
    ((a*x + b*y) mod 7, 38 training rules), evaluated on training rules (icl-rule7) and on the 10
    held-out rules (icl-rule7-new, never trained on) at k = 0, 1, 2, 4, 8 shots (icl-op2 drops 8:
    nine of its 12-token examples do not fit 64 tokens). CPU: calibrated to finish in under 10
    minutes on two cores (docs/tutorial.md). GPU: a first guess, uncalibrated.
    """
    if device_type == "cuda":
        # Uncalibrated: He et al. 2024 saw held-out-rule ICL with depth and with hundreds of
        # training rules at p = 29; a first guess at that regime, not yet measured here.
        return SweepConfig(
            name="icl", task_set="icl-gpu", tasks=("icl-op2", "icl-rule29"),
            eval_only=("icl-rule29-new",), sizes=GPU_LADDER[:5], seeds=(0, 1, 2),
            train=TrainConfig(steps=4000, batch_size=256, seq_len=128, warmup_steps=200,
                              eval_every=0),
            eval_size=1000, shots=(0, 1, 2, 4, 8), report="icl",
            description="GPU ladder on hidden-rule episodes, p = 29 (uncalibrated)")
    return SweepConfig(
        name="icl", task_set="icl-mix", tasks=("icl-op2", "icl-rule7"), eval_only=("icl-rule7-new",),
        sizes=CPU_LADDER, seeds=(0,),
        train=TrainConfig(steps=1200, batch_size=32, seq_len=64, warmup_steps=100, eval_every=0),
        eval_size=300, shots=(0, 1, 2, 4, 8), report="icl",
        description="CPU ladder on hidden-rule episodes: operator recognition, (a*x+b*y) mod 7")


def scratchpad(device_type: str) -> SweepConfig:
    """Does a scratchpad move the emergent scale? The same ladder, seeds and token budget train
    twice: once answering directly ("plain") and once writing the column-by-column scratchpad of
    data_gen.scratchpad before the answer ("scratchpad"), both scored on the same problems.

    The budget is held equal in training tokens (compute), the x-axis of an emergence plot: a
    scratchpad example is longer, so that condition sees fewer examples (rows record how many).
    CPU: calibrated in docs/tutorial.md. GPU: a first guess, not yet measured on a GPU.
    """
    conditions = (Condition("plain", "", "the answer directly"),
                  Condition("scratchpad", "scratch", "column by column, then the answer"))
    if device_type == "cuda":
        # Uncalibrated: 8-digit addition (Nye et al.'s case) and 3-digit multiplication, which
        # had not appeared by 202M parameters when answered directly (the project's reference
        # calibration on an H100); seq_len 128
        # holds one add8 scratchpad example (100 tokens) or three mul3 ones (36).
        return SweepConfig(
            name="scratchpad", task_set="scratch-gpu", tasks=("add8", "mul3"), sizes=GPU_LADDER[:5],
            seeds=(0, 1, 2),
            train=TrainConfig(steps=1500, batch_size=128, seq_len=128, warmup_steps=100,
                              eval_every=250),
            eval_size=1000, curve_eval_size=200, conditions=conditions,
            description="plain vs scratchpad on add8 and mul3, GPU ladder to 100M (uncalibrated)")
    return SweepConfig(
        name="scratchpad", task_set="scratch-add5", tasks=("add5",),
        sizes=("25k", "50k", "100k"), seeds=(0, 1),
        train=TrainConfig(steps=1000, batch_size=32, seq_len=64, warmup_steps=100, eval_every=250),
        eval_size=200, curve_eval_size=50, conditions=conditions,
        description="plain vs scratchpad on 5-digit addition, CPU sizes 25k-100k")


# ------------------------------------------------------------------ instruction tuning
# The `instructions` sweep: instruction tuning as a second stage, FLAN and T0 in miniature.
#
# Every condition of the sweep trains each (size, seed) in two stages over the same token budget:
#
#     stage 1 "pretrain"   the symbolic tasks (`12+34=`), all of them, for 1 - f of the steps
#     stage 2              f of the steps, by condition:
#         untuned          more of the symbolic mixture (the control: same steps, no words)
#         tuned-k1/k3/k10  the template mixture: the word forms of the tuned tasks through their
#                          first k training templates, plus a replay share of the symbolic tasks
#         tuned-k10-cot    tuned-k10 with a share of scratchpad examples (FLAN's finding that a
#                          few chain-of-thought tasks in the mixture keep reasoning from degrading)
#
# Stage 1 is identical in every condition, so it is trained once per (size, seed) and shared
# (sweeps.stages). The **held-out task** (T0's protocol) is trained only in its symbolic form, never
# in words; it is evaluated zero-shot through all 14 of its templates. The tuned tasks are evaluated
# through each of their 4 held-out templates (never trained in any condition) and, for reference,
# through their training templates. Every phrasing is its own result row (task `add2-words-t05`), so
# `sweeps.instructions_report` gets the spread across phrasings from the results alone.
#
# FLAN tuned with 0.2% of the pre-training compute; models this small learn a phrasing only with
# far more, so f is a sweep parameter (CPU default 0.2; see docs/tutorial.md for what it gave).

TEMPLATE_COUNTS = (1, 3, 10)


def instruction_conditions(tuned: tuple[str, ...], held_out: str, tune_fraction: float,
                           replay: float = 1 / 3, counts: tuple[int, ...] = TEMPLATE_COUNTS,
                           cot: tuple[str, ...] = (), cot_share: float = 0.1,
                           split_seed: int = 0) -> tuple[tuple[str, ...], tuple[Condition, ...]]:
    """(symbolic tasks, conditions) for tuning on `tuned` tasks' templates, `held_out` kept out.

    `replay` is the symbolic mixture's share of stage 2's examples in the tuned conditions;
    `cot` names scratchpad tasks (e.g. add2-scratch) given `cot_share` in the -cot variant."""
    if held_out in tuned:
        raise ValueError(f"the held-out task {held_out} cannot also be tuned in words")
    if not 0 < tune_fraction < 1 or not 0 <= replay < 1 or not 0 < cot_share < 1:
        raise ValueError("tune_fraction and cot_share must be in (0, 1), replay in [0, 1)")
    if split_seed != 0:
        raise ValueError("task names select templates by the split of seed 0")
    symbolic = tuple(tuned) + (held_out,)
    held_phrasings = tuple(
        f"{t}-words-t{tpl.index:02d}" for t in tuned
        for tpl in split_templates(family_of(make_task(t, eval_size=1)), split_seed)[1])
    n_templates = len(make_task(f"{held_out}-words-all", eval_size=1).templates)
    held_task = tuple(f"{held_out}-words-t{i:02d}" for i in range(n_templates))
    eval_tasks = tuple(f"{t}-words" for t in tuned) + held_phrasings + held_task
    pretrain = Stage(symbolic, round(1 - tune_fraction, 9), name="pretrain")

    def tune(k: int, extra: tuple[str, ...] = (), extra_share: float = 0.0) -> Stage:
        words = tuple(f"{t}-words-k{k}" for t in tuned)
        share = (1 - replay - extra_share)
        weights = ((share / len(words),) * len(words) + (replay / len(symbolic),) * len(symbolic)
                   + ((extra_share / len(extra),) * len(extra) if extra else ()))
        return Stage(words + symbolic + extra, tune_fraction, weights, name="tune")

    conditions = [Condition("untuned", description="symbolic only, in both stages",
                            stages=(pretrain, Stage(symbolic, tune_fraction, name="continue")),
                            eval_tasks=eval_tasks)]
    conditions += [Condition(f"tuned-k{k}", description=f"tuned on {k} template(s) per task",
                             stages=(pretrain, tune(k)), eval_tasks=eval_tasks) for k in counts]
    if cot:
        k = max(counts)
        conditions.append(Condition(f"tuned-k{k}-cot", description=f"tuned on {k} templates per "
                                    f"task plus {cot_share:.0%} scratchpad examples",
                                    stages=(pretrain, tune(k, tuple(cot), cot_share)),
                                    eval_tasks=eval_tasks))
    return symbolic, tuple(conditions)


def instructions_sweep(device_type: str) -> SweepConfig:
    """CPU: add2 and mod13-add tuned in words, sub2 held out; GPU: a first guess, uncalibrated."""
    if device_type == "cuda":
        # Uncalibrated: a guess scaled from the CPU run, not yet measured on a GPU.
        tasks, conditions = instruction_conditions(("add3", "mul2", "mod97-add"), "sub3", 0.1,
                                                   cot=("add3-scratch", "mul2-scratch"))
        return SweepConfig(
            name="instructions", task_set="instr-gpu", tasks=tasks,
            sizes=("1m", "3m", "10m", "30m", "100m"), seeds=(0, 1, 2),
            train=TrainConfig(steps=3000, batch_size=256, seq_len=64, warmup_steps=100),
            eval_size=500, curve_eval_size=100, conditions=conditions, report="instructions",
            description="instruction tuning on the GPU ladder (uncalibrated)")
    tasks, conditions = instruction_conditions(("add2", "mod13-add"), "sub2", 0.3, replay=0.5,
                                               cot=("add2-scratch",))
    return SweepConfig(
        name="instructions", task_set="instr-cpu", tasks=tasks, sizes=("50k", "200k", "400k"),
        seeds=(0,), train=TrainConfig(steps=1000, batch_size=32, seq_len=64, warmup_steps=100),
        eval_size=50, curve_eval_size=50, conditions=conditions, report="instructions",
        description="instruction tuning on the CPU ladder: add2 and mod13-add tuned in words, "
                    "sub2 held out")


def instructions(device_type: str) -> SweepConfig:
    """Instruction tuning as a stage against no tuning (FLAN/T0 in miniature); see above."""
    return instructions_sweep(device_type)


SWEEPS = {"arithmetic": arithmetic, "tiny": tiny, "scratchpad": scratchpad, "icl": icl,
          "instructions": instructions}

"""The named sweeps: plain functions of the device type returning a SweepConfig, in SWEEPS.

A sweep is a task mixture (one model learns all its tasks, as one language model learns many
abilities), a ladder of sizes, seeds, and one fixed training budget shared by every size: the
emergence question is "which sizes can do this at this budget", so the budget never varies with
size. Variants are `dataclasses.replace` of a registered sweep, not new flags. The types they are
made of (SweepConfig, Condition, Stage) live in sweeps.specs; each sweep names the report kind
that reads its results (sweeps.report).

    arithmetic    the default experiment (CPU: a calibrated demo; GPU: the 1M-1B ladder)
    class         the jump for a lesson: the CPU default at three sizes, about 3 minutes
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


def cpu_train(steps: int, eval_every: int) -> TrainConfig:
    """The CPU sweeps' training: batch 32 x 64 tokens, a peak rate of 1e-2 at widths up to 32
    falling as 1/width above (TrainConfig.lr_for), cosine to a tenth after 100 warm-up steps.
    The rate was calibrated on the arithmetic demo (docs/calibration.md: at the previous 3e-3 a
    50K model learned 3-digit addition in one seed of three, at 1e-2 in every one)."""
    return TrainConfig(steps=steps, batch_size=32, seq_len=64, warmup_steps=100,
                       eval_every=eval_every, lr_base=1e-2, lr_ref_width=32)


def arithmetic(device_type: str) -> SweepConfig:
    """The default experiment.

    CPU: 3-digit addition from 3K to 100K parameters, three seeds, 2000 steps of 32 x 64 tokens
    (docs/calibration.md). Calibrated on seeds 100-109, never on the demo's 0-2, under two CPU
    kernel paths and thread counts: no 3K model learns (one layer cannot carry), the two largest
    sizes learn in every seed, and 6K and 25K are the transition. About 6.5 minutes on two cores
    of an AMD EPYC (two runs at a time); `--plan` estimates it on the machine at hand.
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
        sizes=("3k", "6k", "25k", "50k", "100k"), seeds=(0, 1, 2),
        train=cpu_train(2000, eval_every=100), eval_size=300, curve_eval_size=100, stream="fast",
        description="3-digit addition, 3K-100K parameters, three seeds")


def classroom(device_type: str) -> SweepConfig:
    """`python -m sweeps.run class`: the CPU default's training at three of its sizes (3K, which
    never learned in calibration; 6K, the transition; 50K, which always did), three seeds, so that
    the jump shows within a lesson: about 3 minutes on two cores (docs/benchmarks.md). Its report
    draws a figure for a projector, report/add3_seeds.png: exact match against size, one dot per
    seed. On a GPU it is the same CPU-sized sweep."""
    return replace(arithmetic("cpu"), name="class", sizes=("3k", "6k", "50k"),
                   description="3-digit addition at 3K, 6K and 50K parameters, for a lesson")


def tiny(device_type: str) -> SweepConfig:
    """A seconds-long smoke test: two tiny sizes, two tasks, a few steps."""
    return replace(arithmetic("cpu"), name="tiny", task_set="tiny-mix", tasks=("add2", "mod7-add"),
                   sizes=("25k", "50k"), seeds=(0,),
                   train=TrainConfig(steps=30, batch_size=8, seq_len=32, warmup_steps=5, eval_every=10),
                   eval_size=50, curve_eval_size=20, description="smoke test")


def icl(device_type: str) -> SweepConfig:
    """In-context learning: the ladder trained on hidden-rule episodes, evaluated k-shot.

    The mixture: task recognition (icl-op2: which of + - * hides behind '?'), task learning
    ((a*x + b*y) mod 7, 38 training rules), evaluated on training rules (icl-rule7) and on the 10
    held-out rules (icl-rule7-new, never trained on), and, on CPU, in-context associative recall
    (icl-recall8: a fresh map of 8 letters to digits in every episode, the ability induction heads
    give; Olsson et al. 2022), all at k = 0, 1, 2, 4, 8 shots (icl-op2 drops 8: nine of its
    12-token examples do not fit 64 tokens). CPU: 6K-100K, three seeds, sized to finish in under
    10 minutes on two cores; its figures are in docs/tutorial.md. GPU: a first guess, uncalibrated.
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
        name="icl", task_set="icl-mix", tasks=("icl-op2", "icl-rule7", "icl-recall8"),
        eval_only=("icl-rule7-new",), sizes=("6k", "25k", "50k", "100k"), seeds=(0, 1, 2),
        train=cpu_train(1200, eval_every=0), eval_size=300, shots=(0, 1, 2, 4, 8), report="icl",
        stream="fast",
        description="CPU sizes 6K-100K on episodes: associative recall, operator recognition, "
                    "(a*x+b*y) mod 7")


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
        sizes=("25k", "50k", "100k"), seeds=(0, 1, 2), train=cpu_train(1000, eval_every=250),
        eval_size=200, curve_eval_size=50, conditions=conditions, stream="fast",
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
        name="instructions", task_set="instr-cpu", tasks=tasks, sizes=("25k", "100k"),
        seeds=(0, 1, 2), train=cpu_train(1000, eval_every=0), eval_size=50, curve_eval_size=50,
        conditions=conditions, report="instructions", stream="fast",
        description="instruction tuning on the CPU ladder: add2 and mod13-add tuned in words, "
                    "sub2 held out")


def instructions(device_type: str) -> SweepConfig:
    """Instruction tuning as a stage against no tuning (FLAN/T0 in miniature); see above."""
    return instructions_sweep(device_type)


SWEEPS = {"arithmetic": arithmetic, "class": classroom, "tiny": tiny, "scratchpad": scratchpad,
          "icl": icl, "instructions": instructions}

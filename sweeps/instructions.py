"""The `instructions` sweep: instruction tuning as a second stage, FLAN and T0 in miniature.

Every condition of the sweep trains each (size, seed) in two stages over the same token budget:

    stage 1 "pretrain"   the symbolic tasks (`12+34=`), all of them, for 1 - f of the steps
    stage 2              f of the steps, by condition:
        untuned          more of the symbolic mixture (the control: same steps, no words)
        tuned-k1/k3/k10  the template mixture: the word forms of the tuned tasks through their
                         first k training templates, plus a replay share of the symbolic tasks
        tuned-k10-cot    tuned-k10 with a share of scratchpad examples (FLAN's finding that a
                         few chain-of-thought tasks in the mixture keep reasoning from degrading)

Stage 1 is identical in every condition, so it is trained once per (size, seed) and shared
(sweeps.stages). The **held-out task** (T0's protocol) is trained only in its symbolic form, never
in words; it is evaluated zero-shot through all 14 of its templates. The tuned tasks are evaluated
through each of their 4 held-out templates (never trained in any condition) and, for reference,
through their training templates. Every phrasing is its own result row (task `add2-words-t05`), so
`sweeps.instructions_report` gets the spread across phrasings from the results alone.

FLAN tuned with 0.2% of the pre-training compute; models this small learn a phrasing only with
far more, so f is a sweep parameter (CPU default 0.2; see docs/tutorial.md for what it gave).
"""
from __future__ import annotations

from minigpt.config import TrainConfig

from data_gen import make_task
from data_gen.templates import family_of, split_templates

from .specs import Condition, Stage, SweepConfig

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
            eval_size=500, curve_eval_size=100, conditions=conditions,
            description="instruction tuning on the GPU ladder (uncalibrated)")
    tasks, conditions = instruction_conditions(("add2", "mod13-add"), "sub2", 0.3, replay=0.5,
                                               cot=("add2-scratch",))
    return SweepConfig(
        name="instructions", task_set="instr-cpu", tasks=tasks, sizes=("50k", "200k", "400k"),
        seeds=(0,), train=TrainConfig(steps=1000, batch_size=32, seq_len=64, warmup_steps=100),
        eval_size=50, curve_eval_size=50, conditions=conditions,
        description="instruction tuning on the CPU ladder: add2 and mod13-add tuned in words, "
                    "sub2 held out")

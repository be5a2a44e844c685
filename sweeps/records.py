"""What a trained unit leaves behind: its result rows and its per-example log.

A result row (docs/results-schema.md) holds one (condition, task, size, seed, shots): the four
metrics, the counts their sampling error needs, and the per-problem outcomes that paired and
clustered analyses need:

    correct       a string of 0/1, problem i's exact-match outcome in the task's fixed problem
                  order (the same order for every size, seed and condition)
    per_problem   {metric: [value per problem]} for the continuous metrics (per-digit accuracy,
                  edit distance, answer log-prob; step accuracy for a scratchpad), rounded

The per-example log (minigpt.samples, as lm-evaluation-harness's --log_samples) keeps, for every
evaluated problem, the prompt, the model's output and the target.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from minigpt.evaluate import METRIC_NAMES
from minigpt.flops import count_params, training_flops

from .specs import SweepConfig, ability_of

SCRATCH_METRICS = ("step_acc", "no_answer")
LOGPROB_DECIMALS = 4  # in a per-example log: 300 add3 problems take 4.7 KB so, 6.6 KB unrounded
ROUND = {"per_digit_acc": 4, "edit_distance": 3, "answer_logprob": 3, "step_acc": 4,
         "no_answer": 0}


@dataclass
class UnitFacts:
    """What every row of one unit shares."""
    cfg: SweepConfig
    condition: str
    size: str
    seed: int
    model: torch.nn.Module
    result: object          # minigpt.train.TrainResult
    examples: int | None    # training examples seen
    device: str


def aggregate(metrics: dict) -> dict:
    """The metrics alone, without per-problem outcomes and outputs (for curves and logs)."""
    return {k: v for k, v in metrics.items() if k not in ("per_problem", "outputs")}


def per_problem_fields(metrics: dict) -> dict:
    """`correct` and `per_problem` from an evaluation's per-problem outcomes (empty if none)."""
    pp = metrics.get("per_problem")
    if not pp:
        return {}
    out = {"correct": "".join("1" if c else "0" for c in pp["correct"])}
    out["per_problem"] = {m: [round(float(v), ROUND.get(m, 4)) for v in values]
                          for m, values in pp.items() if m != "correct"}
    return out


def sample_records(task_name: str, shots: int, examples: Sequence, result: dict) -> list[dict]:
    """One record per example from an evaluation run with per_problem=True (module docstring)."""
    if "per_problem" not in result or "outputs" not in result:
        raise ValueError("the evaluation result holds no per-problem values: evaluate with "
                         "per_problem=True (minigpt.evaluate / minigpt.gen_eval)")
    rows, outputs = result["per_problem"], result["outputs"]
    lengths = {key: len(values) for key, values in rows.items()} | {"outputs": len(outputs)}
    if any(n != len(examples) for n in lengths.values()):
        raise ValueError(f"{task_name}: {len(examples)} examples but per-problem lengths {lengths}")
    records = []
    for i, ex in enumerate(examples):
        record = {"task": task_name, "shots": shots, "i": i, "prompt": ex.prompt,
                  "target": ex.answer, "output": outputs[i]}
        for key, values in rows.items():
            value = values[i]
            record[key] = round(value, LOGPROB_DECIMALS) if key == "answer_logprob" else value
        records.append(record)
    return records


def result_row(unit: UnitFacts, task, shots: int, metrics: dict | None) -> dict:
    """The result row of one task at one shot count (metrics None: the unit diverged)."""
    cfg, model, result = unit.cfg, unit.model, unit.result
    counts = count_params(model.config)
    names = METRIC_NAMES + (SCRATCH_METRICS if task.marker is not None else ())
    values = aggregate(metrics) if metrics else {name: None for name in names}
    n_eval = values.pop("n_eval", None) or len(task.eval_set())
    return {
        "sweep": cfg.name, "task_set": cfg.task_set, "condition": unit.condition,
        "task": task.name, "ability": ability_of(task.name), "size": unit.size,
        "seed": unit.seed, "shots": shots,
        "trained": task.name in cfg.condition(unit.condition).tasks(cfg.tasks),
        "params": counts["non_embedding"], "params_total": counts["total"],
        "flops": training_flops(model.config, result.tokens, cfg.train.seq_len),
        "tokens": result.tokens, "examples": unit.examples, "budget": cfg.budget,
        "steps": result.steps, "wall_time_s": round(result.wall_time_s, 3),
        **values, "n_eval": n_eval,
        "n_correct": (None if values["exact_match"] is None else
                      round(values["exact_match"] * n_eval)),
        **(per_problem_fields(metrics) if metrics else {}),
        "answer_len": task.answer_len, "chance": task.chance_levels(),
        "status": result.status, "final_loss": result.final_loss,
        "n_layer": model.config.n_layer, "n_head": model.config.n_head,
        "n_embd": model.config.n_embd, "attn": model.attn_impl, "norm": model.norm_impl,
        "device": torch.device(unit.device).type, "threads": torch.get_num_threads(),
    }

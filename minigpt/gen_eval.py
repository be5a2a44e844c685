"""Generative evaluation: the model writes freely until the end token, and its final answer is read
back and scored. This is how a task with a scratchpad is evaluated (data_gen.scratchpad); a plain
task evaluated here gets the same numbers as minigpt.evaluate.

Decoding is greedy and batched (minigpt.generate.greedy_generate, with its key/value cache). It
stops at the end token or after the longest gold answer plus its end token (capped by the model's
context), so a model that rambles is cut off there and scored on what it wrote.

The four metrics mean the same thing for every task, so plain and scratchpad conditions compare:

exact_match     the final answer equals the true one, character for character
per_digit_acc   fraction of the final answer's positions right
edit_distance   Levenshtein distance between written and true final answer (lower is better)
answer_logprob  teacher-forced log-probability of the true final answer, summed over its tokens
                (nats). For a scratchpad task it is conditioned on the prompt, the GOLD scratchpad
                and the marker: how sure the model is of the answer once the steps are right.

The final answer of a scratchpad task is the text after the last marker, up to the end token;
output with no marker (or garbage) has the empty string as its answer: wrong, with per-digit
accuracy 0 and edit distance the answer's length, as a plain model that stops at once. Two
further numbers for scratchpad tasks:

step_acc        fraction of scratchpad steps written correctly, position by position (continuous)
no_answer       fraction of outputs with no marker at all
"""
from __future__ import annotations

from typing import Sequence

import torch

from data_gen import parse_final, step_accuracy
from data_gen.task import Example, Task
from data_gen.tokenizer import EOS_ID, decode, encode

from .evaluate import METRIC_NAMES, PER_PROBLEM_KEYS, edit_distance
from .generate import autocast_for, greedy_generate

GEN_METRIC_NAMES = METRIC_NAMES + ("step_acc", "no_answer")


def score_final(written: str | None, gold: str) -> dict[str, float]:
    """exact_match, per_digit_acc and edit_distance of one written final answer (None: none)."""
    written = written or ""
    return {"exact_match": float(written == gold),
            "per_digit_acc": sum(w == g for w, g in zip(written, gold)) / len(gold),
            "edit_distance": float(edit_distance(written, gold))}


@torch.no_grad()
def final_answer_logprobs(model, task: Task, examples: Sequence[Example], device,
                          batch_size: int = 256) -> list[float]:
    """Teacher-forced log-probability of each example's true final answer (summed over its
    tokens, not the end token), given the prompt and everything the gold answer writes before
    the final answer (for a scratchpad task: the gold scratchpad and the marker)."""
    device = torch.device(device)
    out: dict[int, float] = {}
    groups: dict[tuple[int, int], list[int]] = {}
    for i, ex in enumerate(examples):
        final = task.final_answer(ex.answer)
        groups.setdefault((len(ex.prompt) + len(ex.answer), len(final)), []).append(i)
    for (total, final_len), idx in groups.items():
        for start in range(0, len(idx), batch_size):
            chunk = idx[start:start + batch_size]
            full = torch.tensor([encode(examples[i].prompt + examples[i].answer) for i in chunk],
                                device=device)                                   # (B, total)
            with autocast_for(device):
                logits, _ = model(full[:, :-1])
            # positions total-final_len-1 .. total-2 predict the final answer's tokens
            logp = torch.log_softmax(logits[:, total - final_len - 1:].float(), dim=-1)
            target = full[:, total - final_len:]
            sums = logp.gather(-1, target.unsqueeze(-1)).squeeze(-1).sum(-1).tolist()
            out.update(zip(chunk, sums))
    return [out[i] for i in range(len(examples))]


def generation_limit(model, examples: Sequence[Example]) -> int:
    """New tokens to allow: the longest gold answer and its end token, within the context."""
    limit = max(len(ex.answer) for ex in examples) + 1
    block = getattr(getattr(model, "config", None), "block_size", None)
    if block is not None:
        limit = min(limit, block - max(len(ex.prompt) for ex in examples))
    if limit < 1:
        raise ValueError(f"the model's context ({block}) has no room to answer these prompts")
    return limit


@torch.no_grad()
def evaluate_generative(model, task: Task, examples: Sequence[Example] | None = None,
                        device: torch.device | str = "cpu", batch_size: int = 256,
                        use_cache: bool = True, per_problem: bool = False) -> dict:
    """Decode every example's prompt greedily and score the final answer (module docstring).

    Returns the four metrics averaged over the examples, n_eval, and for a scratchpad task
    step_acc and no_answer. A plain task (no marker) is decoded for exactly its answer's width,
    as minigpt.evaluate does, and the text written is its answer.

    per_problem: also return "per_problem", {key: one value per example, in the order of
    `examples`} with the keys of minigpt.evaluate.PER_PROBLEM_KEYS (correct 0/1, per_digit_acc,
    edit_distance as an int, answer_logprob) and, for a scratchpad task, step_acc and no_answer
    (0/1); and "outputs", the text each example's model wrote (a scratchpad task's whole
    scratchpad, marker and final answer; up to the end token)."""
    examples = list(task.eval_set() if examples is None else examples)
    if not examples:
        raise ValueError("evaluate_generative needs at least one example")
    device = torch.device(device)
    was_training = model.training
    model.eval()
    try:
        scratch = task.marker is not None
        limit = generation_limit(model, examples) if scratch else \
            max(len(ex.answer) for ex in examples)
        written = greedy_generate(model, [encode(ex.prompt) for ex in examples], limit,
                                  stop_id=EOS_ID, batch_size=batch_size, use_cache=use_cache,
                                  device=device)
        logprobs = final_answer_logprobs(model, task, examples, device, batch_size)
    finally:
        model.train(was_training)
    texts = [decode(ids) for ids in written]
    rows = score_problems(task, examples, texts, logprobs)
    totals = dict.fromkeys(GEN_METRIC_NAMES, 0.0)
    for i in range(len(examples)):  # summed in the examples' order, as the metrics always were
        for key, total_key in ROW_TO_METRIC.items():
            if key in rows:
                totals[total_key] += rows[key][i]
    n = len(examples)
    metrics = {k: v / n for k, v in totals.items()}
    if not scratch:
        metrics["step_acc"] = metrics["no_answer"] = None
    metrics["n_eval"] = n
    if per_problem:
        metrics["per_problem"], metrics["outputs"] = rows, texts
    return metrics


# per-problem key -> the averaged metric it feeds
ROW_TO_METRIC = {"correct": "exact_match", "per_digit_acc": "per_digit_acc",
                 "edit_distance": "edit_distance", "answer_logprob": "answer_logprob",
                 "step_acc": "step_acc", "no_answer": "no_answer"}


def score_problems(task: Task, examples: Sequence[Example], texts: Sequence[str],
                   logprobs: Sequence[float]) -> dict[str, list]:
    """Per-problem values of what each example's model wrote (`texts`, decoded): the keys of
    ROW_TO_METRIC, step_acc and no_answer only for a scratchpad task."""
    scratch = task.marker is not None
    rows: dict[str, list] = {key: [] for key in PER_PROBLEM_KEYS}
    if scratch:
        rows["step_acc"], rows["no_answer"] = [], []
    for ex, text, lp in zip(examples, texts, logprobs):
        final = parse_final(text) if scratch else text
        scores = score_final(final, task.final_answer(ex.answer))
        rows["correct"].append(int(scores["exact_match"]))
        rows["per_digit_acc"].append(scores["per_digit_acc"])
        rows["edit_distance"].append(int(scores["edit_distance"]))
        rows["answer_logprob"].append(lp)
        if scratch:
            rows["step_acc"].append(step_accuracy(text, ex.answer))
            rows["no_answer"].append(int(final is None))
    return rows

"""Evaluation of a model on a task's fixed problems, with the four metrics every result carries.

exact_match     the greedy answer equals the true one, character for character (Wei et al. 2022)
per_digit_acc   fraction of answer positions right (Schaeffer et al. 2023's continuous view)
edit_distance   token Levenshtein distance between greedy and true answer (lower is better)
answer_logprob  teacher-forced log-probability of the true answer, summed over its tokens (nats)

Greedy decoding (`minigpt.generate.greedy_generate`, with its key/value cache when the model has
one) writes at most as many tokens as the answer has (every task's answers have one fixed width);
an end token written early truncates the prediction there.

With `per_problem=True` the result also keeps every problem's values and greedy answer, in the
order of the examples given, for paired comparisons and per-example logs (sweeps.records).
"""
from __future__ import annotations

from typing import Sequence

import torch

from data_gen.task import Example
from data_gen.tokenizer import EOS_ID, decode, encode

from .generate import autocast_for, greedy_generate

METRIC_NAMES = ("exact_match", "per_digit_acc", "edit_distance", "answer_logprob")
# per-problem values (per_problem=True): "correct" is exact match as 0/1, the rest as named
PER_PROBLEM_KEYS = ("correct", "per_digit_acc", "edit_distance", "answer_logprob")


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions each cost 1)."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


@torch.no_grad()
def _score_batch(model, batch: Sequence[Example], device: torch.device,
                 use_cache: bool) -> list[tuple[str, float]]:
    """Greedy answer and teacher-forced answer log-prob for examples of one prompt length."""
    answer_len = len(batch[0].answer)
    prompt_ids = [encode(ex.prompt) for ex in batch]
    prompts = torch.tensor(prompt_ids, device=device)                               # (B, Lp)
    answers = torch.tensor([encode(ex.answer) for ex in batch], device=device)      # (B, La)
    with autocast_for(device):
        full = torch.cat([prompts, answers], dim=1)
        logits, _ = model(full[:, :-1])
        logp = torch.log_softmax(logits[:, prompts.size(1) - 1:].float(), dim=-1)  # (B, La, V)
        answer_logprob = logp.gather(-1, answers.unsqueeze(-1)).squeeze(-1).sum(-1)
    generated = greedy_generate(model, prompt_ids, answer_len, stop_id=EOS_ID,
                                batch_size=len(batch), use_cache=use_cache, device=device)
    greedy = [decode(row) for row in generated]
    return list(zip(greedy, answer_logprob.tolist()))


@torch.no_grad()
def evaluate_examples(model, examples: Sequence[Example], device: torch.device | str,
                      batch_size: int = 500, use_cache: bool | None = None,
                      per_problem: bool = False) -> dict:
    """The four metrics, averaged over `examples` (all of one task).

    use_cache: decode with the key/value cache (True), by recomputing the prefix (False), or,
    by default, with the cache whenever the model has one (`minigpt.model.GPT` does).
    per_problem: also return "per_problem", {metric: one value per example, in the order of
    `examples`} (PER_PROBLEM_KEYS: correct 0/1, per_digit_acc, edit_distance as an int,
    answer_logprob), and "outputs", the greedy answer each example got. Each average is the
    mean of its per-problem values, summed in the order the batches ran (by prompt shape)."""
    if not examples:
        raise ValueError("evaluate_examples needs at least one example")
    if use_cache is None:
        use_cache = hasattr(model, "new_kv_cache")
    device = torch.device(device)
    was_training = model.training
    model.eval()
    by_shape: dict[tuple[int, int], list[int]] = {}
    for i, ex in enumerate(examples):
        by_shape.setdefault((len(ex.prompt), len(ex.answer)), []).append(i)
    n = len(examples)
    outputs: list[str] = [""] * n
    rows = {key: [0] * n for key in PER_PROBLEM_KEYS}
    exact = digit = dist = logprob = 0.0
    for group in by_shape.values():
        for start in range(0, len(group), batch_size):
            chunk = group[start:start + batch_size]
            batch = [examples[i] for i in chunk]
            for i, ex, (pred, lp) in zip(chunk, batch, _score_batch(model, batch, device, use_cache)):
                outputs[i] = pred
                rows["correct"][i] = int(pred == ex.answer)
                rows["per_digit_acc"][i] = sum(p == t for p, t in zip(pred, ex.answer)) / len(ex.answer)
                rows["edit_distance"][i] = edit_distance(pred, ex.answer)
                rows["answer_logprob"][i] = lp
                exact += rows["correct"][i]
                digit += rows["per_digit_acc"][i]
                dist += rows["edit_distance"][i]
                logprob += lp
    model.train(was_training)
    metrics = {"exact_match": exact / n, "per_digit_acc": digit / n, "edit_distance": dist / n,
               "answer_logprob": logprob / n}
    if per_problem:
        metrics["per_problem"], metrics["outputs"] = rows, outputs
    return metrics

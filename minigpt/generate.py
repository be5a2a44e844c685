"""Batched greedy decoding, with a key/value cache.

`greedy_generate` continues token-id prompts greedily (argmax at every step) until an end token or
a length limit. With the cache (the default) the prompt is run through the model once (the
prefill) and every later step feeds only the newest token of each sequence, attending to the
stored keys and values of the earlier ones (`minigpt.model.KVCache`); without it every step
recomputes the whole prefix, which is the reference the cache is tested against.

Prompts are grouped by length, so a batch never holds padding and each prompt's continuation is
the one it gets decoded alone. Outputs are token ids; cached and uncached decoding compute the same
logits up to float rounding (attention over the same keys, summed in another order), so they pick
the same tokens unless two logits tie to within that rounding.

Measured with `--bench` on the shared 2-core CPU, 1 thread, load average 8-11 (so inflated and
noisy), 300 add3 prompts of 8 tokens, best of 7: writing 4 tokens (the answer), cached decoding
took 0.36-0.49 of the uncached time at 200k and 0.37-0.47 at 1m over three runs; writing 16 it
took 0.18 and 0.15, since the prefill's cost is shared by more steps. Outputs were identical.
A cache written into a preallocated (B, nh, block_size, hs) buffer, attended through a slice,
measured 0.43-0.51 at 200k; the cache therefore grows by concatenation.

    python -m minigpt.generate --bench      # time cached vs uncached decoding on CPU
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Sequence

import torch

from data_gen.tokenizer import EOS_ID


def autocast_for(device: torch.device):
    """bf16 autocast on CUDA (as training runs there), none elsewhere: the one place evaluation and
    decoding choose their precision."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


def _check_inputs(model, prompts, max_new_tokens, stop_id, batch_size):
    if not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be an integer >= 0, got {max_new_tokens!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    config = getattr(model, "config", None)  # a stand-in model without one is checked less
    vocab = getattr(config, "vocab_size", float("inf"))
    block = getattr(config, "block_size", float("inf"))
    if stop_id is not None and not 0 <= stop_id < vocab:
        raise ValueError(f"stop_id {stop_id} is outside the vocabulary (0..{vocab - 1}), or pass None")
    for i, prompt in enumerate(prompts):
        if len(prompt) == 0:
            raise ValueError(f"prompt {i} is empty; every prompt needs at least one token")
        if len(prompt) + max_new_tokens > block:
            raise ValueError(f"prompt {i} has {len(prompt)} tokens; with max_new_tokens "
                             f"{max_new_tokens} that makes {len(prompt) + max_new_tokens}, more than "
                             f"the model's block_size {block}")
        bad = [t for t in prompt if not 0 <= t < vocab]
        if bad:
            raise ValueError(f"prompt {i} holds token id {bad[0]}, outside the vocabulary "
                             f"(0..{vocab - 1})")


def _decode_batch(model, prompts: torch.Tensor, max_new_tokens: int, stop_id: int | None,
                  use_cache: bool) -> torch.Tensor:
    """Greedy tokens (B, n) for prompts (B, Lp) of one length; n < max_new_tokens only when every
    row has written stop_id."""
    cache = model.new_kv_cache() if use_cache else None
    logits, _ = model(prompts, cache=cache) if use_cache else model(prompts)
    tokens = prompts
    written = []
    stopped = torch.zeros(prompts.size(0), dtype=torch.bool, device=prompts.device)
    for step in range(max_new_tokens):
        nxt = logits[:, -1].argmax(-1, keepdim=True)            # (B, 1)
        written.append(nxt)
        if stop_id is not None:
            stopped |= nxt[:, 0] == stop_id
            if bool(stopped.all()):
                break
        if step == max_new_tokens - 1:
            break  # the last token written is never fed back
        if use_cache:
            logits, _ = model(nxt, cache=cache)
        else:
            tokens = torch.cat([tokens, nxt], dim=1)
            logits, _ = model(tokens)
    return torch.cat(written, dim=1)


def greedy_generate(model, prompts: Sequence[Sequence[int]], max_new_tokens: int,
                    stop_id: int | None = EOS_ID, batch_size: int = 256, use_cache: bool = True,
                    device=None) -> list[list[int]]:
    """Greedy continuation of each prompt (token ids). Returns, per prompt in input order, the
    generated ids, cut just before the first stop_id (stop_id excluded), at most max_new_tokens.
    Prompts may have different lengths. Deterministic. use_cache=False recomputes the whole prefix
    each step (the reference the cache is tested against). Runs under torch.no_grad, model.eval(),
    restoring the model's training mode after; bf16 autocast on CUDA like minigpt/evaluate.py.

    Prompts are batched by length (at most batch_size per batch), so no padding is involved.
    use_cache=True needs a model with `new_kv_cache()` and `forward(idx, cache=...)`
    (minigpt.model.GPT); use_cache=False needs only `model(idx) -> (logits, _)`.
    Raises ValueError for an empty prompt, a token outside the vocabulary, or a prompt whose
    length plus max_new_tokens exceeds the model's block_size."""
    prompts = [list(p) for p in prompts]
    _check_inputs(model, prompts, max_new_tokens, stop_id, batch_size)
    if use_cache and not hasattr(model, "new_kv_cache"):
        raise TypeError(f"{type(model).__name__} has no key/value cache (new_kv_cache); "
                        f"pass use_cache=False to decode it by recomputing the prefix")
    if device is None:
        param = next(iter(model.parameters()), None)
        device = param.device if param is not None else "cpu"
    device = torch.device(device)
    results: list[list[int]] = [[] for _ in prompts]
    if max_new_tokens == 0 or not prompts:
        return results
    by_length: dict[int, list[int]] = {}
    for i, p in enumerate(prompts):
        by_length.setdefault(len(p), []).append(i)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), autocast_for(device):
            for indices in by_length.values():
                for start in range(0, len(indices), batch_size):
                    chunk = indices[start:start + batch_size]
                    batch = torch.tensor([prompts[i] for i in chunk], dtype=torch.long, device=device)
                    out = _decode_batch(model, batch, max_new_tokens, stop_id, use_cache).tolist()
                    for i, row in zip(chunk, out):
                        if stop_id is not None and stop_id in row:
                            row = row[:row.index(stop_id)]
                        results[i] = row
    finally:
        model.train(was_training)
    return results


def bench(sizes: Sequence[str] = ("200k", "1m"), task: str = "add3", n_prompts: int = 300,
          repeats: int = 3, device: str = "cpu", seed: int = 0,
          new_tokens: int | None = None) -> list[dict]:
    """Time cached against uncached greedy decoding of `n_prompts` of a task's evaluation prompts,
    writing `new_tokens` tokens (default: as many as its answers have) with no early stop, so the
    weights do not matter: the models are freshly initialised (block_size 64). Returns one dict
    per size; the best of `repeats` is kept, after one warm-up call whose outputs are compared."""
    from data_gen import make_task
    from data_gen.tokenizer import encode

    from .config import GPTConfig
    from .model import GPT

    examples = make_task(task, eval_size=n_prompts).eval_set()[:n_prompts]
    prompts = [encode(ex.prompt) for ex in examples]
    if new_tokens is None:
        new_tokens = max(len(ex.answer) for ex in examples)
    rows = []
    for size in sizes:
        torch.manual_seed(seed)
        model = GPT(GPTConfig.from_size(size), device=device)
        times, outputs = {}, {}
        for use_cache in (False, True):
            outputs[use_cache] = greedy_generate(model, prompts, new_tokens, stop_id=None,
                                                 use_cache=use_cache)  # warm-up
            best = float("inf")
            for _ in range(repeats):
                t0 = time.perf_counter()
                greedy_generate(model, prompts, new_tokens, stop_id=None, use_cache=use_cache)
                if device.startswith("cuda"):
                    torch.cuda.synchronize()
                best = min(best, time.perf_counter() - t0)
            times[use_cache] = best
        rows.append({"size": size, "task": task, "prompts": len(prompts), "new_tokens": new_tokens,
                     "uncached_s": times[False], "cached_s": times[True],
                     "ratio": times[True] / times[False],
                     "identical": outputs[True] == outputs[False]})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bench", action="store_true",
                        help="time cached vs uncached decoding and print both with their ratio")
    parser.add_argument("--sizes", default="200k,1m", help="comma-separated sizes (minigpt.config.SIZES)")
    parser.add_argument("--task", default="add3")
    parser.add_argument("--prompts", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--new-tokens", type=int, default=None,
                        help="tokens to write per prompt (default: the task's answer width)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    if not args.bench:
        parser.print_help()
        print("\nnothing to do: pass --bench", file=sys.stderr)
        return 2
    from data_gen import make_task

    from .config import SIZES, check_device
    sizes = [s for s in args.sizes.split(",") if s]
    try:
        unknown = [s for s in sizes if s not in SIZES]
        if unknown or not sizes:
            raise ValueError(f"unknown size(s) {', '.join(unknown) or '(none given)'}; "
                             f"valid: {', '.join(SIZES)}")
        if args.prompts < 1 or args.repeats < 1:
            raise ValueError(f"--prompts and --repeats must be >= 1, got {args.prompts} and "
                             f"{args.repeats}")
        if args.new_tokens is not None and args.new_tokens < 1:
            raise ValueError(f"--new-tokens must be >= 1, got {args.new_tokens}")
        make_task(args.task)
        device = check_device(args.device)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"greedy decoding on {device} (torch threads: {torch.get_num_threads()}; "
          f"best of {args.repeats} after a warm-up)")
    print(f"{'size':>6} {'task':>8} {'prompts':>7} {'new tok':>7} {'uncached s':>11} "
          f"{'cached s':>9} {'ratio':>6}  identical")
    try:
        for row in bench(sizes, args.task, args.prompts, args.repeats, device,
                         new_tokens=args.new_tokens):
            print(f"{row['size']:>6} {row['task']:>8} {row['prompts']:>7} {row['new_tokens']:>7} "
                  f"{row['uncached_s']:>11.3f} {row['cached_s']:>9.3f} {row['ratio']:>6.3f}  "
                  f"{row['identical']}", flush=True)
    except ValueError as exc:  # e.g. prompt + --new-tokens beyond the block size
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

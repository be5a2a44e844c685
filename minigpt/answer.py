"""Ask a trained model: load a checkpoint on the CPU and print its greedy answer to each prompt.

    python -m minigpt.answer runs/arith/ckpt/default-200k-s0.pt --prompt 123+456=
    python -m minigpt.answer runs/arith/ckpt/default-200k-s0.pt        # type prompts, Ctrl-D ends

A sweep keeps its models with `--keep-checkpoints` (ckpt/<condition>-<size>-s<seed>.pt). The
checkpoint holds the model's config and the tasks it trained on (minigpt.train.model_record), so
nothing of the sweep is needed. Decoding is greedy (minigpt.generate.greedy_generate) until the end
token, or until the context is full or --max-new-tokens are written. Type the prompt exactly as
the model was trained to read it, up to and including "=" (the answer's cue): "123+456=", or a
words prompt such as "what is 12 plus 34? =". For a model trained with a scratchpad the written
steps and the final answer after the marker are printed apart. The kernels are chosen afresh
("auto": plain PyTorch on a CPU); a checkpoint trained with Triton kernels loads the same weights.
Errors (a missing or damaged file, a checkpoint without a model config, a character outside the
vocabulary) print what was wrong and exit with status 2; in the interactive loop a bad prompt
prints its message and the loop goes on.
"""
from __future__ import annotations

import argparse
import pickle
import sys
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from data_gen import MARKER, make_task, parse_final, split_steps
from data_gen.tokenizer import EOS_ID, decode, encode

from .config import GPTConfig
from .generate import greedy_generate
from .model import GPT


class CheckpointError(ValueError):
    """A checkpoint that cannot be answered from; the message says why and what is valid."""


@dataclass
class LoadedModel:
    model: GPT
    tasks: list[str] | None    # the tasks it trained on, where the checkpoint names them
    step: int | None

    @property
    def scratchpad(self) -> bool:
        """Trained on a task with a scratchpad: its answers hold steps, a marker, a final answer."""
        return any(name.endswith("-scratch") for name in self.tasks or ())


def load_checkpoint(path: Path) -> LoadedModel:
    """The model of a checkpoint written by minigpt.train.Trainer, on the CPU, in eval mode."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}: give the path of a .pt file written by a "
                              f"sweep run with --keep-checkpoints (RUN_DIR/ckpt/<unit>.pt)")
    try:  # weights_only: tensors and plain data only, so a foreign file cannot run code
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, RuntimeError, OSError) as exc:
        raise CheckpointError(f"{path} is not a readable checkpoint ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0][:200]}); it should be a file written by "
                              f"minigpt.train (torch.save of a dict)") from None
    if not isinstance(state, dict) or "model" not in state:
        raise CheckpointError(f"{path} holds no model weights: a checkpoint is a dict with keys "
                              f"'model' (the weights) and 'model_config'")
    config = state.get("model_config")
    if config is None:
        raise CheckpointError(f"{path} holds no model config ('model_config'): it was written "
                              f"before checkpoints recorded one, or by another trainer. Valid "
                              f"checkpoints come from minigpt.train.Trainer; rerun the sweep with "
                              f"--keep-checkpoints to get them")
    try:
        gpt_config = replace(GPTConfig(**config), attn="auto", norm="auto")
        model = GPT(gpt_config, "cpu")
        model.load_state_dict(state["model"])
    except (TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: the weights do not fit the recorded model config "
                              f"{config} ({str(exc).splitlines()[0][:200]})") from None
    model.eval()
    return LoadedModel(model, state.get("tasks"), state.get("step"))


def answer(loaded: LoadedModel, prompt: str, max_new_tokens: int | None = None) -> str:
    """The model's greedy continuation of `prompt`, up to its end token (excluded), the end of its
    context, or max_new_tokens. ValueError for a character outside the vocabulary or a prompt that
    leaves no room to answer."""
    ids = encode(prompt)
    if not ids:
        raise ValueError("the prompt is empty; type a problem such as 123+456=")
    block = loaded.model.config.block_size
    room = block - len(ids)
    if room < 1:
        raise ValueError(f"the prompt has {len(ids)} characters; this model reads at most "
                         f"{block - 1} and then answers")
    limit = room if max_new_tokens is None else min(room, max_new_tokens)
    written = greedy_generate(loaded.model, [ids], limit, stop_id=EOS_ID, batch_size=1)[0]
    return decode(written)


def describe(text: str, scratchpad: bool) -> list[str]:
    """The lines printed for one answer: the text written, and for a scratchpad (or any text with
    the marker) its steps and final answer apart."""
    if not scratchpad and MARKER not in text:
        return [text]
    final = parse_final(text)
    return [text, f"  scratchpad: {','.join(split_steps(text))}",
            f"  answer:     {final if final is not None else f'none (no {MARKER!r} written)'}"]


def _header(loaded: LoadedModel) -> str:
    cfg = loaded.model.config
    params = sum(p.numel() for p in loaded.model.parameters())
    line = f"model: {cfg.n_layer} layers, {cfg.n_embd} wide, {params:,} parameters"
    if loaded.step is not None:
        line += f", {loaded.step} steps"
    if loaded.tasks:
        try:
            example = make_task(loaded.tasks[0], eval_size=1).eval_set()[0].prompt
            line += f"; trained on {', '.join(loaded.tasks)} (a prompt looks like {example!r})"
        except ValueError:
            line += f"; trained on {', '.join(loaded.tasks)}"
    return line


def _repl(loaded: LoadedModel, max_new_tokens: int | None) -> int:
    print("type a prompt and Enter; Ctrl-D ends", file=sys.stderr)
    while True:
        try:
            prompt = input("> ").rstrip("\r")
        except (EOFError, KeyboardInterrupt):
            print(file=sys.stderr)
            return 0
        if not prompt:
            continue
        try:
            print("\n".join(describe(answer(loaded, prompt, max_new_tokens), loaded.scratchpad)),
                  flush=True)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr, flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m minigpt.answer",
                                     description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path, help="a .pt file (RUN_DIR/ckpt/<unit>.pt)")
    parser.add_argument("--prompt", action="append", metavar="TEXT",
                        help="a prompt to answer (repeatable); none: read prompts typed line by line")
    parser.add_argument("--max-new-tokens", type=int, default=None,
                        help="stop after this many tokens (default: the end token or the context)")
    args = parser.parse_args(argv)
    if args.max_new_tokens is not None and args.max_new_tokens < 1:
        parser.error(f"--max-new-tokens must be >= 1, got {args.max_new_tokens}")
    try:
        loaded = load_checkpoint(args.checkpoint)
    except CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(_header(loaded), file=sys.stderr)
    if not args.prompt:
        return _repl(loaded, args.max_new_tokens)
    for prompt in args.prompt:
        try:
            lines = describe(answer(loaded, prompt, args.max_new_tokens), loaded.scratchpad)
        except ValueError as exc:
            print(f"error: prompt {prompt!r}: {exc}", file=sys.stderr)
            return 2
        print(f"{prompt} {lines[0]}", *lines[1:], sep="\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The trainer: AdamW, linear warm-up then cosine decay, gradient clipping, bf16 autocast on GPU
(fp32 on CPU), optional activation checkpointing (TrainConfig.activation_checkpointing), a progress
bar, TensorBoard scalars, periodic evaluation through a callback, and atomic, resumable checkpoints.

Like minGPT's, the trainer knows nothing of GPTs or tasks: it takes a module whose forward(x, y)
returns (logits, loss), a stream with next_batch()/state_dict()/load_state_dict(), and a callback
for evaluation. `python -m minigpt.train` trains one model on a task mixture from the command line
and reports tokens/s, for comparing kernels (`--attn triton` against `--attn sdpa`) on one size.
"""
from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Callable

import torch
from tqdm.auto import tqdm

from .config import TrainConfig

DIVERGED_LOSS = 1e4  # a loss above this (or NaN/inf) ends the run as diverged

# Set by a signal handler (see sweeps.run): the trainer finishes the step in flight, saves a
# checkpoint and raises KeyboardInterrupt, so an interrupted run never saves a half-applied update.
STOP_REQUESTED = threading.Event()


def lr_at(step: int, peak: float, cfg: TrainConfig) -> float:
    """Linear warm-up to `peak` over warmup_steps, then cosine decay to min_lr_frac * peak."""
    if step < cfg.warmup_steps:
        return peak * (step + 1) / cfg.warmup_steps
    span = max(1, cfg.steps - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    floor = peak * cfg.min_lr_frac
    return floor + (peak - floor) * 0.5 * (1 + math.cos(math.pi * progress))


@dataclass
class TrainResult:
    status: str            # "ok" or "diverged"
    steps: int             # optimizer steps taken
    tokens: int            # tokens processed (every position of every context)
    final_loss: float | None
    wall_time_s: float     # training time, summed over resumed pieces
    losses: list[float]


class StorageError(OSError):
    """A file could not be written (a full disk, a read-only folder); the message says which."""


def atomic_save(obj, path: Path) -> None:
    """torch.save to a temporary file, then rename: a crash never leaves a torn checkpoint, and a
    failed write (a full disk) removes its partial temporary file instead of leaving it to fill
    the disk further."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:  # torch reports a full disk as RuntimeError
        tmp.unlink(missing_ok=True)
        raise StorageError(f"could not write checkpoint {path}: {exc}. The previous checkpoint, "
                           f"if any, is intact; free disk space and resume.") from None


def model_record(model: torch.nn.Module, stream) -> dict:
    """What a checkpoint needs to be loaded without its sweep (minigpt.answer): the model's config
    as a plain dict ("model_config", None for a model without a dataclass config) and the names of
    the tasks its stream trains on, every stage's ("tasks", None where the stream names none)."""
    config = getattr(model, "config", None)
    names = [t.name for s in getattr(stream, "streams", [stream]) for t in getattr(s, "tasks", [])]
    return {"model_config": asdict(config) if is_dataclass(config) else None,
            "tasks": list(dict.fromkeys(names)) or None}


class Trainer:
    def __init__(self, model: torch.nn.Module, stream, cfg: TrainConfig, peak_lr: float,
                 checkpoint_path: Path | None = None, tb_dir: Path | None = None,
                 on_eval: Callable[[int], dict[str, float]] | None = None,
                 progress: bool | None = None, desc: str = "train",
                 lr_schedule: Callable[[int], float] | None = None, position: int | None = None):
        """`lr_schedule(step)`, if given, replaces the default warm-up + cosine (`lr_at`): a run
        trained in stages restarts the schedule in each stage (sweeps.stages). `position` is the
        progress bar's line, for trainers running side by side in worker processes. `progress`:
        True draws a bar, False none, None (the default) one only when stderr is a terminal, so
        a redirected log gets no bar redraws."""
        self.model, self.stream, self.cfg, self.peak_lr = model, stream, cfg, peak_lr
        self.lr_schedule = lr_schedule
        self.device = torch.device(cfg.device)
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
        self.on_eval, self.progress, self.desc, self.position = on_eval, progress, desc, position
        self._compiled = None  # the compiled model, once built
        self.eager_fallback = False  # set when "auto" compilation failed
        if cfg.activation_checkpointing and not hasattr(model, "checkpointing"):
            raise ValueError(f"activation_checkpointing needs a model with a checkpointing() "
                             f"context, as minigpt.model.GPT has; {type(model).__name__} has none")
        groups = model.optimizer_groups(cfg.weight_decay) if hasattr(model, "optimizer_groups") \
            else [{"params": list(model.parameters()), "weight_decay": cfg.weight_decay}]
        self.optimizer = torch.optim.AdamW(groups, lr=peak_lr, betas=cfg.betas,
                                           fused=self.device.type == "cuda")
        self.step, self.elapsed, self.losses = 0, 0.0, []
        self._last_save = time.monotonic()
        self.writer = None
        if tb_dir is not None:
            from torch.utils.tensorboard import SummaryWriter
            self.writer = SummaryWriter(str(tb_dir))
        if self.checkpoint_path and self.checkpoint_path.exists():
            self._load_checkpoint()

    # -- checkpoints ---------------------------------------------------------------------------
    def save_checkpoint(self) -> None:
        self._last_save = time.monotonic()
        if self.checkpoint_path is None:
            return
        atomic_save({"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                     "stream": self.stream.state_dict(), "step": self.step,
                     "elapsed": self.elapsed, "losses": self.losses,
                     "torch_rng": torch.get_rng_state(),
                     **model_record(self.model, self.stream)}, self.checkpoint_path)

    def _load_checkpoint(self) -> None:
        state = torch.load(self.checkpoint_path, map_location=self.device, weights_only=False)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.stream.load_state_dict(state["stream"])
        self.step, self.elapsed, self.losses = state["step"], state["elapsed"], state["losses"]
        torch.set_rng_state(state["torch_rng"])

    # -- the loop ------------------------------------------------------------------------------
    def compile_mode(self) -> str | None:
        """The torch.compile mode of the training forward pass, None for eager (TrainConfig)."""
        mode = self.cfg.compile
        if mode == "auto":
            return "reduce-overhead" if self.device.type == "cuda" else None
        return None if mode == "off" else mode

    def _forward(self, x, y):
        """The training forward pass, compiled the first time when the config asks for it. A
        failed compilation under "auto" falls back to eager and says so; an explicit mode
        raises, since the user asked for it."""
        if self._compiled is None and self.compile_mode() and not self.eager_fallback:
            self._compiled = torch.compile(self.model, mode=self.compile_mode(),
                                           backend=self.cfg.compile_backend)
        if self._compiled is not None and not self.eager_fallback:
            try:
                return self._compiled(x, y)
            except Exception as exc:  # noqa: BLE001 - any compiler failure; re-raised if asked for
                if self.cfg.compile != "auto":
                    raise
                tqdm.write(f"torch.compile failed ({type(exc).__name__}: {exc}); training eager")
                self.eager_fallback = True
        return self.model(x, y)

    def _train_step(self) -> float:
        x, y = self.stream.next_batch()
        x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
        lr = self.lr(self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if self.device.type == "cuda"
                    else torch.autocast("cpu", enabled=False))
        # recomputation in backward is switched on for this forward pass only, never for evaluation
        recompute = (self.model.checkpointing() if self.cfg.activation_checkpointing
                     else contextlib.nullcontext())
        with autocast, recompute:
            _, loss = self._forward(x, y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.optimizer.step()
        return loss.item()

    def lr(self, step: int) -> float:
        return self.lr_schedule(step) if self.lr_schedule else lr_at(step, self.peak_lr, self.cfg)

    def log_scalars(self, scalars: dict[str, float]) -> None:
        if self.writer is not None:
            for key, value in scalars.items():
                self.writer.add_scalar(key, value, self.step)

    def run(self) -> TrainResult:
        cfg = self.cfg
        tokens_per_step = cfg.batch_size * cfg.seq_len
        self.model.train()
        bar = tqdm(total=cfg.steps, initial=self.step, desc=self.desc,
                   disable=None if self.progress is None else not self.progress,
                   leave=False, dynamic_ncols=True, position=self.position)
        status, window_start, window_steps = "ok", time.perf_counter(), 0
        while self.step < cfg.steps:
            if STOP_REQUESTED.is_set():
                bar.close()
                self.save_checkpoint()
                raise KeyboardInterrupt(f"stopped at step {self.step}, checkpoint saved")
            t0 = time.perf_counter()
            loss = self._train_step()
            self.elapsed += time.perf_counter() - t0
            self.step += 1
            window_steps += 1
            self.losses.append(loss)
            if not math.isfinite(loss) or loss > DIVERGED_LOSS:
                status = "diverged"
                break
            bar.update(1)
            if self.step % 10 == 0 or self.step == cfg.steps:
                rate = window_steps * tokens_per_step / max(1e-9, time.perf_counter() - window_start)
                window_start, window_steps = time.perf_counter(), 0
                bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{rate:,.0f}", refresh=False)
                self.log_scalars({"train/loss": loss, "train/lr": self.lr(self.step - 1),
                           "train/tokens_per_s": rate})
            if self.on_eval and cfg.eval_every and self.step % cfg.eval_every == 0 \
                    and self.step < cfg.steps:
                self.log_scalars(self.on_eval(self.step))
            if (cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0) or (
                    cfg.checkpoint_minutes
                    and time.monotonic() - self._last_save >= 60 * cfg.checkpoint_minutes):
                self.save_checkpoint()
        bar.close()
        if self.writer is not None:
            self.writer.flush()
        # a run resumed from a checkpoint of its last step takes no step here: its loss is the last one
        final = self.losses[-1] if self.losses else None
        return TrainResult(status, self.step, self.step * tokens_per_step, final, self.elapsed,
                           self.losses)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _parser():
    import argparse

    from data_gen import TASK_NAME_HELP
    from kernels import ATTENTION_CHOICES, NORM_CHOICES

    from .config import SIZES

    parser = argparse.ArgumentParser(prog="python -m minigpt.train", description=main.__doc__,
                                     epilog=TASK_NAME_HELP,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--size", default="200k", choices=list(SIZES))
    parser.add_argument("--tasks", default="add2,add3-rev", help="comma-separated task names")
    parser.add_argument("--steps", type=int, default=300, help="optimizer steps")
    parser.add_argument("--batch-size", type=int, default=32, help="contexts per step")
    parser.add_argument("--seq-len", type=int, default=64, help="tokens per context")
    parser.add_argument("--seed", type=int, default=0, help="model init and data seed")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--attn", choices=ATTENTION_CHOICES, default="auto")
    parser.add_argument("--norm", choices=NORM_CHOICES, default="auto")
    parser.add_argument("--activation-checkpointing", action="store_true",
                        help="recompute each block's activations in the backward pass: less "
                             "memory for about one more forward pass of compute")
    return parser


def _build(parser, args):
    """(model, stream, tasks, config, device) from the flags; a bad value is a parser error."""
    from data_gen import TrainStream, make_task

    from .config import GPTConfig, check_device
    from .model import GPT

    try:
        device = check_device(args.device)
        tasks = [make_task(name) for name in args.tasks.split(",")]
        cfg = TrainConfig(steps=args.steps, batch_size=args.batch_size, seq_len=args.seq_len,
                          warmup_steps=min(100, max(1, args.steps // 10)), seed=args.seed,
                          device=device, activation_checkpointing=args.activation_checkpointing)
        torch.manual_seed(args.seed)
        model = GPT(GPTConfig.from_size(args.size, block_size=args.seq_len, attn=args.attn,
                                        norm=args.norm), device)
        return model, TrainStream(tasks, cfg.batch_size, cfg.seq_len, args.seed), tasks, cfg, device
    except (ValueError, RuntimeError) as exc:
        parser.error(str(exc))


def _evaluate(model, task, device) -> dict:
    from .evaluate import evaluate_examples
    from .gen_eval import evaluate_generative

    if getattr(task, "marker", None):  # a scratchpad: generate until the end token, then parse
        return evaluate_generative(model, task, device=device)
    return evaluate_examples(model, task.eval_set(), device)


def main(argv: list[str] | None = None) -> int:
    """Train one model on a task mixture; print tokens/s and the four metrics per task."""
    import sys

    from .flops import size_warnings
    from .threads import configure_threads

    parser = _parser()
    args = parser.parse_args(argv)
    model, stream, tasks, cfg, device = _build(parser, args)
    for warning in size_warnings(model.config, cfg.steps, cfg.batch_size, cfg.seq_len,
                                 torch.device(device).type,
                                 activation_checkpointing=cfg.activation_checkpointing):
        print(f"warning: {warning}", file=sys.stderr)
    threads = ""
    if torch.device(device).type == "cpu":
        count, why = configure_threads()
        threads = f", {count} CPU threads ({why})"
    print(f"size {args.size} on {device}: attention {model.attn_impl}, norm {model.norm_impl}{threads}",
          file=sys.stderr)
    try:
        result = Trainer(model, stream, cfg, cfg.lr_for(model.config.n_embd)).run()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    print(f"status {result.status}, final loss {result.final_loss:.4f}, "
          f"{result.tokens / result.wall_time_s:,.0f} tokens/s over {result.steps} steps "
          f"({result.wall_time_s:.1f}s)")
    for task in tasks:
        metrics = _evaluate(model, task, device)
        print(f"  {task.name}: " + ", ".join(f"{k} {v:.3f}" for k, v in metrics.items()))
    return 0 if result.status == "ok" else 1


if __name__ == "__main__":
    raise SystemExit(main())

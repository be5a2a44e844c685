"""Many small models at once: S same-shaped GPTs, one per seed, trained as one batched model.

At the smallest sizes of the CPU ladder a training step is a few milliseconds, and a fixed cost
per operation (Python, dispatch, one small kernel launch each) is a large part of it. Stacking S
models of one shape along a new leading dimension runs each operation once for all of them, so
that cost is paid once per step instead of S times (the "model ensembling" recipe of the
torch.func tutorials). Each model still has its own data stream, its own AdamW moments (AdamW is
elementwise, so one optimizer over stacked tensors updates each slice exactly as a separate
optimizer would), its own gradient clipping (each model's global norm, never the stack's), and its
own divergence check; a model that diverges is taken out of the stack and the others go on.

The batched forward pass is written out here (`stacked_loss`) rather than obtained by running
`GPT.forward` under `torch.vmap` with `torch.func.functional_call`: measured on CPU
(`python -m minigpt.stacked_bench`, docs/benchmarks.md; one thread, S = 3-10, batch 32 x 64), this
one took 0.69-0.84x the time per model of separate Trainer runs at 6K, 0.83-0.99x from 25K to
200K and 0.95-1.00x at 400K and 1M; the vmap version 0.79-1.00x at 6K and 0.95-1.20x above.
vmap has no batching rule for PyTorch's CPU attention kernel (it loops over the models) and its
batched kernels run on strided layouts. Here the models are folded into the batch for attention,
so any attention implementation of the registry serves, and each linear layer is one `baddbmm`.
The layout and the arithmetic follow minigpt.model.GPT line by line; tests/test_stacked.py checks
that stacked training gives the losses and weights of separate `Trainer` runs of each seed, to
rounding.
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch.func import stack_module_state
from torch.utils.checkpoint import checkpoint
from tqdm.auto import tqdm

from .config import GPTConfig, TrainConfig
from .model import GPT, apply_rotary
from .train import DIVERGED_LOSS, STOP_REQUESTED, TrainResult, atomic_save, lr_at

LN_EPS = 1e-5  # as minigpt.model.LayerNorm


def stacked_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None):
    """x (S, N, in), weight (S, out, in), bias (S, out) -> (S, N, out): S linear layers at once."""
    if bias is None:
        return torch.bmm(x, weight.transpose(1, 2))
    return torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))


def stacked_layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """LayerNorm of x (S, N, C) with each model's own weight and bias (S, C)."""
    normed = F.layer_norm(x, (x.shape[-1],), eps=LN_EPS)
    return torch.addcmul(bias.unsqueeze(1), normed, weight.unsqueeze(1))


def stacked_block(x: torch.Tensor, p: dict[str, torch.Tensor], prefix: str, batch: int,
                  n_head: int, rotary: tuple[torch.Tensor, torch.Tensor], attn_fn) -> torch.Tensor:
    """One transformer block (minigpt.model.Block) of every model: x (S, B*T, C) -> same shape."""
    S, BT, C = x.shape
    T = BT // batch
    h = stacked_layer_norm(x, p[prefix + "ln_attn.weight"], p[prefix + "ln_attn.bias"])
    qkv = stacked_linear(h, p[prefix + "attn.qkv.weight"], p[prefix + "attn.qkv.bias"])
    q, k, v = qkv.split(C, dim=2)
    # (S, B*T, C) -> (S*B, nh, T, hs): the models become more rows of one attention batch.
    # Contiguous copies first: the rotation's strided products on the transposed view ran 3x
    # slower than copy + rotate at these shapes (measured on CPU, S=5, 25K)
    q, k, v = (t.view(S * batch, T, n_head, C // n_head).transpose(1, 2) for t in (q, k, v))
    cos, sin = rotary[0][:T], rotary[1][:T]
    q, k = apply_rotary(q.contiguous(), cos, sin), apply_rotary(k.contiguous(), cos, sin)
    y = attn_fn(q, k, v).transpose(1, 2).reshape(S, BT, C)
    x = x + stacked_linear(y, p[prefix + "attn.proj.weight"], p[prefix + "attn.proj.bias"])
    h = stacked_layer_norm(x, p[prefix + "ln_mlp.weight"], p[prefix + "ln_mlp.bias"])
    h = F.gelu(stacked_linear(h, p[prefix + "mlp.0.weight"], p[prefix + "mlp.0.bias"]))
    return x + stacked_linear(h, p[prefix + "mlp.2.weight"], p[prefix + "mlp.2.bias"])


def stacked_loss(p: dict[str, torch.Tensor], model: GPT, idx: torch.Tensor, targets: torch.Tensor,
                 recompute: bool = False) -> torch.Tensor:
    """Each model's mean cross-entropy (S,) on its own batch: idx, targets (S, B, T), -100 ignored.

    `p` holds the stacked parameters under GPT's names (tok_emb.weight (S, vocab, C), ...); `model`
    supplies the shape, the rotary tables and the attention function. With `recompute`, each block
    keeps only its input and is recomputed in backward (activation checkpointing)."""
    S, B, T = idx.shape
    config = model.config
    if T > config.block_size:
        raise ValueError(f"sequence of {T} tokens exceeds block_size {config.block_size}")
    emb = p["tok_emb.weight"]                                       # (S, vocab, C), tied to lm_head
    vocab, C = emb.shape[1], emb.shape[2]
    offsets = torch.arange(S, device=idx.device).view(S, 1, 1) * vocab
    x = F.embedding(idx + offsets, emb.reshape(S * vocab, C)).view(S, B * T, C)
    attn = model.blocks[0].attn
    rotary, attn_fn = (attn.rotary_cos, attn.rotary_sin), attn.attn_fn
    for i in range(config.n_layer):
        args = (p, f"blocks.{i}.", B, config.n_head, rotary, attn_fn)
        x = (checkpoint(stacked_block, x, *args, use_reentrant=False) if recompute
             else stacked_block(x, *args))
    x = stacked_layer_norm(x, p["ln_final.weight"], p["ln_final.bias"])
    logits = stacked_linear(x, emb)                                 # (S, B*T, vocab)
    per_token = F.cross_entropy(logits.float().view(-1, vocab), targets.reshape(-1),
                                ignore_index=-100, reduction="none").view(S, B * T)
    # the mean over each model's own counted targets, as F.cross_entropy's default reduction
    return per_token.sum(1) / (targets.view(S, B * T) != -100).sum(1)


def clip_grad_norm_per_model(grads: list[torch.Tensor], max_norm: float) -> torch.Tensor:
    """torch.nn.utils.clip_grad_norm_ applied to each model of a stack on its own: gradients
    (S, ...) are scaled in place so that each model's global 2-norm is at most max_norm; returns
    the norms (S,) before clipping."""
    norms = torch.stack([g.flatten(1).norm(dim=1) for g in grads]).norm(dim=0)   # (S,)
    scale = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(scale.view(-1, *[1] * (g.dim() - 1)))
    return norms


class StackedTrainer:
    """Trains one GPT per seed, all of one shape, as one stacked model; see the module docstring.

    Each seed's model starts exactly as `torch.manual_seed(seed); GPT(config)` does, reads batches
    from its own stream (`streams[i]` for `seeds[i]`), and follows the Trainer's rules: the same
    learning-rate schedule (`lr_at`, or `lr_schedule(step)`), AdamW with decay on matrices only,
    per-model clipping, divergence (loss NaN, inf or above DIVERGED_LOSS) ending that model's run
    after its step, checkpoints by step count or wall time, written atomically, and the stop
    protocol (STOP_REQUESTED: finish the step, checkpoint, raise KeyboardInterrupt).

    `on_eval(step, models)` is called every cfg.eval_every steps (not at the last) with one GPT per
    seed in `seeds` order holding its current weights; `status[i]` says whether seed i still trains
    ("ok") or has diverged (its model keeps the weights of its last step). A model's wall_time_s is
    its share of the stack's training time: each step's time divided among the models in it.
    """

    # (stacked params, a GPT of the shape, idx, targets, recompute) -> (S,) losses; the benchmark
    # (minigpt.stacked_bench) puts the torch.vmap formulation here to compare the two
    loss_fn = staticmethod(stacked_loss)

    def __init__(self, config: GPTConfig, seeds: list[int], streams: list, cfg: TrainConfig,
                 peak_lr: float, checkpoint_path: Path | None = None, progress: bool = True,
                 desc: str = "train", on_eval: Callable[[int, list[GPT]], None] | None = None,
                 lr_schedule: Callable[[int], float] | None = None, position: int | None = None):
        seeds = list(seeds)
        if not seeds or len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds must be one or more distinct integers, got {seeds}")
        if len(streams) != len(seeds):
            raise ValueError(f"one stream per seed is needed: {len(seeds)} seeds, "
                             f"{len(streams)} streams")
        self.seeds, self.streams, self.cfg, self.peak_lr = seeds, list(streams), cfg, peak_lr
        self.lr_schedule, self.on_eval = lr_schedule, on_eval
        self.progress, self.desc, self.position = progress, desc, position
        self.device = torch.device(cfg.device)
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
        self.shells = []  # one ordinary GPT per seed: its initial weights, later a copy of them
        for seed in seeds:
            torch.manual_seed(seed)
            self.shells.append(GPT(config, self.device))
        if self.shells[0].norm_impl != "torch":
            raise ValueError(f"stacked training computes LayerNorm with F.layer_norm; norm "
                             f"'{config.norm}' resolved to '{self.shells[0].norm_impl}' "
                             f"(valid: torch, or auto on CPU)")
        decayed = {id(p) for p in self.shells[0].optimizer_groups(cfg.weight_decay)[0]["params"]}
        self.decayed = {name for name, p in self.shells[0].named_parameters() if id(p) in decayed}
        self.live = list(range(len(seeds)))          # indices of the seeds still in the stack
        self.status = ["ok"] * len(seeds)
        self.losses: list[list[float]] = [[] for _ in seeds]
        self.steps, self.elapsed = [0] * len(seeds), [0.0] * len(seeds)
        self.step = 0
        self._last_save = time.monotonic()
        self._stack()
        if self.checkpoint_path and self.checkpoint_path.exists():
            self._load_checkpoint()

    # -- the stack -----------------------------------------------------------------------------
    def _stack(self) -> None:
        """Stacked leaf parameters (n_live, ...) from the live models' shells, and a fresh AdamW."""
        self.params, _ = stack_module_state([self.shells[i] for i in self.live])
        groups = [{"params": [p for n, p in self.params.items() if n in self.decayed],
                   "weight_decay": self.cfg.weight_decay},
                  {"params": [p for n, p in self.params.items() if n not in self.decayed],
                   "weight_decay": 0.0}]
        self.optimizer = torch.optim.AdamW(groups, lr=self.peak_lr, betas=self.cfg.betas,
                                           fused=self.device.type == "cuda")

    def models(self) -> list[GPT]:
        """One GPT per seed, in `seeds` order, holding that seed's current weights."""
        with torch.no_grad():
            for row, i in enumerate(self.live):
                own = dict(self.shells[i].named_parameters())
                for name, stacked in self.params.items():
                    own[name].copy_(stacked[row])
        return self.shells

    def _drop(self, gone: list[int]) -> None:
        """Take the seeds `gone` out of the stack; the others keep their weights and AdamW state."""
        self.models()  # the shells of the leaving models keep their last weights
        state = self.optimizer.state_dict()
        keep = torch.tensor([row for row, i in enumerate(self.live) if i not in gone])
        self.live = [i for i in self.live if i not in gone]
        if not self.live:
            return
        for per_param in state["state"].values():  # moments (n_live, ...); the step count is shared
            for key, value in per_param.items():
                if torch.is_tensor(value) and value.dim() > 0:
                    per_param[key] = value[keep.to(value.device)]
        self._stack()
        self.optimizer.load_state_dict(state)

    # -- checkpoints ---------------------------------------------------------------------------
    def save_checkpoint(self) -> None:
        self._last_save = time.monotonic()
        if self.checkpoint_path is None:
            return
        atomic_save({"seeds": self.seeds, "models": [m.state_dict() for m in self.models()],
                     "live": self.live, "optimizer": self.optimizer.state_dict(),
                     "streams": [s.state_dict() for s in self.streams], "step": self.step,
                     "steps": self.steps, "elapsed": self.elapsed, "losses": self.losses,
                     "status": self.status, "torch_rng": torch.get_rng_state()},
                    self.checkpoint_path)

    def _load_checkpoint(self) -> None:
        state = torch.load(self.checkpoint_path, map_location=self.device, weights_only=False)
        if state["seeds"] != self.seeds:
            raise ValueError(f"{self.checkpoint_path} holds a stack of seeds {state['seeds']}, not "
                             f"{self.seeds}; resume with the same seeds or remove the checkpoint")
        for shell, weights in zip(self.shells, state["models"]):
            shell.load_state_dict(weights)
        for stream, stream_state in zip(self.streams, state["streams"]):
            stream.load_state_dict(stream_state)
        self.live, self.status, self.step = state["live"], state["status"], state["step"]
        self.steps, self.elapsed, self.losses = state["steps"], state["elapsed"], state["losses"]
        torch.set_rng_state(state["torch_rng"])
        if self.live:
            self._stack()
            self.optimizer.load_state_dict(state["optimizer"])

    # -- the loop ------------------------------------------------------------------------------
    def lr(self, step: int) -> float:
        return self.lr_schedule(step) if self.lr_schedule else lr_at(step, self.peak_lr, self.cfg)

    def _train_step(self) -> list[float]:
        """One optimizer step of every live model; returns their losses in `live` order."""
        batches = [self.streams[i].next_batch() for i in self.live]
        x = torch.stack([b[0] for b in batches]).to(self.device, non_blocking=True)
        y = torch.stack([b[1] for b in batches]).to(self.device, non_blocking=True)
        lr = self.lr(self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if self.device.type == "cuda"
                    else torch.autocast("cpu", enabled=False))
        with autocast:
            losses = self.loss_fn(self.params, self.shells[0], x, y,
                                  recompute=self.cfg.activation_checkpointing)
        self.optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()  # the models share no parameter: each gets its own gradient
        if self.cfg.grad_clip > 0:
            clip_grad_norm_per_model([p.grad for p in self.params.values()], self.cfg.grad_clip)
        self.optimizer.step()
        return losses.tolist()

    def _record(self, losses: list[float], seconds: float) -> list[int]:
        """Book one step's losses and time to each live model; returns the seeds that diverged."""
        gone = []
        for i, loss in zip(self.live, losses):
            self.losses[i].append(loss)
            self.steps[i] += 1
            self.elapsed[i] += seconds / len(self.live)
            if not math.isfinite(loss) or loss > DIVERGED_LOSS:
                self.status[i] = "diverged"
                gone.append(i)
        return gone

    def run(self) -> list[TrainResult]:
        """Train until cfg.steps or until every model has diverged; one TrainResult per seed."""
        cfg = self.cfg
        tokens_per_step = cfg.batch_size * cfg.seq_len
        bar = tqdm(total=cfg.steps, initial=self.step, desc=self.desc, disable=not self.progress,
                   leave=False, dynamic_ncols=True, position=self.position)
        window_start, window_tokens = time.perf_counter(), 0
        while self.step < cfg.steps and self.live:
            if STOP_REQUESTED.is_set():
                bar.close()
                self.save_checkpoint()
                raise KeyboardInterrupt(f"stopped at step {self.step}, checkpoint saved")
            t0 = time.perf_counter()
            losses = self._train_step()
            window_tokens += len(losses) * tokens_per_step
            gone = self._record(losses, time.perf_counter() - t0)
            self.step += 1
            if gone:
                self._drop(gone)
            bar.update(1)
            if self.step % 10 == 0 or self.step == cfg.steps:
                rate = window_tokens / max(1e-9, time.perf_counter() - window_start)
                window_start, window_tokens = time.perf_counter(), 0
                live_losses = [self.losses[i][-1] for i in self.live]
                mean = sum(live_losses) / len(live_losses) if live_losses else float("nan")
                bar.set_postfix(loss=f"{mean:.3f}", live=f"{len(self.live)}/{len(self.seeds)}",
                                tok_s=f"{rate:,.0f}", refresh=False)
            if self.on_eval and cfg.eval_every and self.step % cfg.eval_every == 0 \
                    and self.step < cfg.steps and self.live:
                self.on_eval(self.step, self.models())
            if (cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0) or (
                    cfg.checkpoint_minutes
                    and time.monotonic() - self._last_save >= 60 * cfg.checkpoint_minutes):
                self.save_checkpoint()
        bar.close()
        self.models()
        return [TrainResult(self.status[i], self.steps[i], self.steps[i] * tokens_per_step,
                            self.losses[i][-1] if self.losses[i] else None, self.elapsed[i],
                            self.losses[i]) for i in range(len(self.seeds))]

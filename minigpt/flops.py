"""Parameter and FLOP counts, following Kaplan et al. 2020 ("Scaling Laws for Neural Language
Models", Table 1).

Non-embedding parameters N exclude the token embedding (and the tied output layer, which shares
its weight); positions are rotary and have no parameters. Training FLOPs per token are 6·N (forward 2·N, backward 4·N) plus
the attention term 6·n_layer·n_ctx·d_model (forward 2·n_layer·n_ctx·d_model for QKᵀ and AV).
"""
from __future__ import annotations

import torch.nn as nn

from .config import GPTConfig


def count_params(config: GPTConfig) -> dict[str, int]:
    """{'non_embedding': N, 'embedding': E, 'total': N + E} from the config alone."""
    d, n_layer = config.n_embd, config.n_layer
    per_block = (
        2 * 2 * d             # two LayerNorms (weight, bias)
        + 3 * d * d + 3 * d   # qkv projection
        + d * d + d           # attention output projection
        + 4 * d * d + 4 * d   # MLP up
        + 4 * d * d + d       # MLP down
    )
    non_embedding = n_layer * per_block + 2 * d  # + final LayerNorm
    embedding = config.vocab_size * d
    return {"non_embedding": non_embedding, "embedding": embedding, "total": non_embedding + embedding}


def count_module_params(model: nn.Module) -> dict[str, int]:
    """The same counts read off a built model (tied weights counted once)."""
    total = sum(p.numel() for p in model.parameters())
    embedding = sum(p.numel() for name, p in model.named_parameters()
                    if name.startswith("tok_emb"))
    return {"non_embedding": total - embedding, "embedding": embedding, "total": total}


def training_flops(config: GPTConfig, tokens: int, n_ctx: int | None = None) -> float:
    """Training FLOPs for `tokens` tokens at context length n_ctx (default: block_size)."""
    n_ctx = config.block_size if n_ctx is None else n_ctx
    n = count_params(config)["non_embedding"]
    return float(tokens) * (6 * n + 6 * config.n_layer * n_ctx * config.n_embd)


# Rough sustained training rates, for warnings only (not benchmarks): 2 CPU cores trained the 1M
# model at about 1.2e11 FLOP/s (docs/benchmarks.md); a GPU is taken at 25% of an H100's bf16 peak.
_RATE = {"cpu": 1e11, "cuda": 2e14}
GPU_ACTIVATION_BYTES = 45.0  # per token x width x layer, bf16 training on our kernels (measured)
WARN_SECONDS = 3600.0
WARN_MEMORY_FRAC = 0.5


def estimate_run(config: GPTConfig, steps: int, batch_size: int, seq_len: int,
                 device_type: str = "cpu",
                 activation_checkpointing: bool = False) -> dict[str, float]:
    """Estimated wall seconds and peak bytes of one training run, to warn before a mistake.

    Memory: fp32 weights, gradients and two AdamW moments (16 bytes a parameter), plus stored
    activations, plus the logits and their gradient. Activations per layer: on a CPU (fp32, and
    attention that may keep its scores) about T*B*d*(34 + 5*heads*T/d) values at 4 bytes
    (Korthikanti et al. 2022); on a GPU (bf16 autocast, fused attention that keeps no scores)
    GPU_ACTIVATION_BYTES per token, width and layer, as measured on an H200 at 10m, 100m and 1b
    (42.6-45 bytes; docs/benchmarks.md), a tenth of what the CPU formula gives there. With activation checkpointing a block keeps only
    its input (T*B*d fp32 values) and the one block being recomputed in the backward pass holds its
    full activations: the "full recomputation" case of Korthikanti et al. (2sbh bytes a layer in fp16).
    The seconds leave out the recomputation (about a third more compute)."""
    n_total = count_params(config)["total"]
    d, heads, layers = config.n_embd, config.n_head, config.n_layer
    tokens = batch_size * seq_len
    per_block = (tokens * d * GPU_ACTIVATION_BYTES if device_type == "cuda" else
                 tokens * d * (34 + 5 * heads * seq_len / d) * 4)
    if activation_checkpointing:
        activations = layers * tokens * d * 4 + per_block
    else:
        activations = layers * per_block
    logits = 3 * tokens * config.vocab_size * 4
    flops = training_flops(config, steps * tokens, seq_len)
    return {"seconds": flops / _RATE.get(device_type, _RATE["cpu"]),
            "bytes": 16 * n_total + activations + logits}


def needs_activation_checkpointing(config: GPTConfig, batch_size: int, seq_len: int,
                                   memory_bytes: float, device_type: str = "cpu") -> bool:
    """Whether training at this batch needs activation checkpointing to fit in `memory_bytes` by
    estimate_run's estimate: False if it fits without, True if only with; a ValueError naming both
    estimates if it fits in neither way."""
    plain, recomputed = (estimate_run(config, 1, batch_size, seq_len, device_type, flag)["bytes"]
                         for flag in (False, True))
    if plain <= memory_bytes:
        return False
    if recomputed <= memory_bytes:
        return True
    raise ValueError(f"{batch_size} x {seq_len} tokens need an estimated {plain / 2**30:.2f} GiB, "
                     f"{recomputed / 2**30:.2f} GiB with activation checkpointing; neither fits in "
                     f"{memory_bytes / 2**30:.2f} GiB: lower the batch size or the context length")


_GPU_SHARE = {"fraction": 1.0}  # this process's share of the GPU (set_gpu_memory_share)


def set_gpu_memory_share(fraction: float, device: str | None = None) -> None:
    """Give this process `fraction` of the GPU's memory: several worker processes training on one
    GPU each take 1/workers. PyTorch's caching allocator then refuses (out of memory) past the
    share instead of starving the other processes, and memory_bytes("cuda") reports the share,
    so a unit that would not fit in it trains with activation checkpointing."""
    if not 0 < fraction <= 1:
        raise ValueError(f"a GPU memory share is a fraction in (0, 1], got {fraction}")
    import torch
    _GPU_SHARE["fraction"] = float(fraction)
    if torch.cuda.is_available():
        torch.cuda.set_per_process_memory_fraction(fraction, device)


def memory_bytes(device_type: str) -> float | None:
    """The memory of the device type here in bytes (this process's share of the GPU's, or the
    machine's RAM), or None."""
    import os

    import torch
    if device_type == "cuda" and torch.cuda.is_available():
        total = torch.cuda.get_device_properties(0).total_memory
        return float(total * _GPU_SHARE["fraction"])
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def size_warnings(config: GPTConfig, steps: int, batch_size: int, seq_len: int,
                  device_type: str = "cpu", label: str = "this run",
                  activation_checkpointing: bool = False) -> list[str]:
    """Sentences warning that a run will take over an hour or half the machine's memory."""
    est = estimate_run(config, steps, batch_size, seq_len, device_type, activation_checkpointing)
    out = []
    if est["seconds"] > WARN_SECONDS:
        out.append(f"{label} is estimated to take about {est['seconds'] / 3600:.1f} hours on "
                   f"{device_type} ({steps} steps x {batch_size} x {seq_len} tokens)")
    memory = memory_bytes(device_type)
    if memory and est["bytes"] > WARN_MEMORY_FRAC * memory:
        remedy = "lower --batch-size or the context length"
        recomputed = estimate_run(config, steps, batch_size, seq_len, device_type, True)["bytes"]
        if not activation_checkpointing and recomputed <= WARN_MEMORY_FRAC * memory:
            remedy = "use --activation-checkpointing, or " + remedy
        out.append(f"{label} needs an estimated {est['bytes'] / 2**30:.1f} GiB, "
                   f"{est['bytes'] / memory:.0%} of the {memory / 2**30:.0f} GiB here; {remedy}")
    return out

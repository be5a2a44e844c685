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

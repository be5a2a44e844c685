"""Plain-PyTorch references for the Triton kernels in this package.

These are the slow, obviously-correct versions: explicit masked-softmax causal attention that
materialises the full N x N score matrix, and LayerNorm written out from its definition
(Ba et al. 2016). Tests compare the Triton kernels against these (in float64), benchmarks time them,
and the model can run on them (`--attn reference`) for teaching.
"""
from __future__ import annotations

import math

import torch


def attention_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                        scale: float | None = None) -> torch.Tensor:
    """Causal softmax attention. q, k, v: (B, H, N, D) -> (B, H, N, D)."""
    n_q, n_k, head_dim = q.shape[-2], k.shape[-2], q.shape[-1]
    scale = 1.0 / math.sqrt(head_dim) if scale is None else scale
    scores = (q @ k.transpose(-2, -1)) * scale  # (B, H, N, N)
    # query i may look at keys 0..i; the mask is built on the scores' device
    future = torch.ones(n_q, n_k, dtype=torch.bool, device=q.device).triu(1)
    scores = scores.masked_fill(future, float("-inf"))
    probs = torch.softmax(scores.float(), dim=-1).to(q.dtype)
    return probs @ v


def layer_norm_reference(x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None,
                         eps: float = 1e-5) -> torch.Tensor:
    """LayerNorm over the last dimension, from its definition (biased variance, as PyTorch)."""
    mean = x.mean(dim=-1, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)
    y = (x - mean) / torch.sqrt(var + eps)
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y

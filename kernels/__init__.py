"""The kernel registry: which attention and LayerNorm implementation the model runs.

An implementation is chosen once, by a validated config string, through `resolve_attention` and
`resolve_norm`; nothing monkeypatches torch. The choices:

    attention: triton (ours, kernels/attention.py) | sdpa (torch's scaled_dot_product_attention)
               | reference (explicit masked softmax, kernels/reference.py) | auto
    norm:      triton (ours, kernels/layer_norm.py) | torch (F.layer_norm) | auto

`auto` picks Triton on CUDA and PyTorch elsewhere, and says which it picked. An explicit `triton`
where Triton cannot run (a CPU tensor without TRITON_INTERPRET=1) is an error, never a silent
fallback. Every attention function takes q, k, v of shape (B, H, N, D) and is causal; every norm
function takes (x, weight, bias, eps) and normalises the last dimension.
"""
from __future__ import annotations

import os
from typing import Callable

import torch
import torch.nn.functional as F

from .reference import attention_reference, layer_norm_reference

ATTENTION_CHOICES = ("auto", "triton", "sdpa", "reference")
NORM_CHOICES = ("auto", "triton", "torch")


def _sdpa(q, k, v, scale=None):
    return F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale)


def _torch_layer_norm(x, weight, bias, eps=1e-5):
    return F.layer_norm(x, (x.shape[-1],), weight, bias, eps)


def triton_unavailable_reason(device: torch.device | str) -> str | None:
    """None if our Triton kernels can run on `device`, else a sentence saying why not."""
    device = torch.device(device)
    try:
        import triton  # noqa: F401
    except ImportError as exc:  # pragma: no cover - triton is a hard dependency
        return f"triton is not importable ({exc})"
    if device.type == "cuda":
        return None
    if device.type == "cpu" and os.environ.get("TRITON_INTERPRET") == "1":
        return None
    return (f"Triton kernels need a CUDA device, or TRITON_INTERPRET=1 set before import for CPU "
            f"tensors; got device '{device}'")


def _check_choice(kind: str, name: str, choices: tuple[str, ...]) -> None:
    if name not in choices:
        raise ValueError(f"unknown {kind} implementation '{name}'; valid: {', '.join(choices)}")


def resolve_attention(name: str, device: torch.device | str) -> tuple[str, Callable]:
    """Return (resolved_name, fn) for an attention choice on `device`."""
    _check_choice("attention", name, ATTENTION_CHOICES)
    device = torch.device(device)
    if name == "auto":
        name = "triton" if device.type == "cuda" and triton_unavailable_reason(device) is None else "sdpa"
    if name == "triton":
        reason = triton_unavailable_reason(device)
        if reason is not None:
            raise ValueError(f"--attn triton cannot run here: {reason}. Use --attn sdpa or reference.")
        from .attention import attention
        return name, attention
    if name == "sdpa":
        return name, _sdpa
    return name, attention_reference


def resolve_norm(name: str, device: torch.device | str) -> tuple[str, Callable]:
    """Return (resolved_name, fn) for a LayerNorm choice on `device`."""
    _check_choice("norm", name, NORM_CHOICES)
    device = torch.device(device)
    if name == "auto":
        name = "triton" if device.type == "cuda" and triton_unavailable_reason(device) is None else "torch"
    if name == "triton":
        reason = triton_unavailable_reason(device)
        if reason is not None:
            raise ValueError(f"--norm triton cannot run here: {reason}. Use --norm torch.")
        from .layer_norm import layer_norm
        return name, layer_norm
    return name, _torch_layer_norm


__all__ = [
    "ATTENTION_CHOICES", "NORM_CHOICES", "resolve_attention", "resolve_norm",
    "triton_unavailable_reason", "attention_reference", "layer_norm_reference",
]

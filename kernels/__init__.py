"""The kernel registry: which attention and LayerNorm implementation the model runs.

An implementation is chosen once, by a validated config string, through `resolve_attention` and
`resolve_norm`; nothing monkeypatches torch. The choices:

    attention: triton (ours: kernels/attention.py, attention_backward.py, registered as torch ops in
               kernels/ops.py) | sdpa (torch's scaled_dot_product_attention)
               | reference (explicit masked softmax, kernels/reference.py) | auto
    norm:      triton (ours: kernels/layer_norm.py, registered in kernels/ops.py) | torch (F.layer_norm)
               | auto

`auto` picks Triton on CUDA and PyTorch elsewhere, and says which it picked. An explicit `triton`
where Triton cannot run (a CPU tensor without TRITON_INTERPRET=1) is an error, never a silent
fallback. Every attention function takes q, k, v of shape (B, H, N, D) and is causal; every norm
function takes (x, weight, bias, eps) and normalises the last dimension.

Triton is optional: it has no wheels for macOS or Windows. This module and everything a PyTorch-only
run needs import without it; the Triton modules are imported only when `triton` is chosen, and
choosing it where Triton is missing is an error that says so.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from .checks import KERNEL_DTYPES, check_kernel_tensor, triton_unavailable_reason
from .reference import attention_reference, layer_norm_reference

def _sdpa(q, k, v, scale=None):
    return F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale)


def _torch_layer_norm(x, weight, bias, eps=1e-5):
    return F.layer_norm(x, (x.shape[-1],), weight, bias, eps)




def _load_triton_attention() -> Callable:
    from .ops import attention
    return attention


def _load_triton_layer_norm() -> Callable:
    from .ops import layer_norm
    return layer_norm


# flag -> {choice: loader}; Triton modules are imported only when chosen
_REGISTRY: dict[str, dict[str, Callable[[], Callable]]] = {
    "attn": {"triton": _load_triton_attention, "sdpa": lambda: _sdpa,
             "reference": lambda: attention_reference},
    "norm": {"triton": _load_triton_layer_norm, "torch": lambda: _torch_layer_norm},
}
_PYTORCH_DEFAULT = {"attn": "sdpa", "norm": "torch"}
ATTENTION_CHOICES = ("auto", *_REGISTRY["attn"])  # auto, triton, sdpa, reference
NORM_CHOICES = ("auto", *_REGISTRY["norm"])       # auto, triton, torch


def _resolve(flag: str, name: str, device: torch.device | str) -> tuple[str, Callable]:
    choices = ("auto", *_REGISTRY[flag])
    if name not in choices:
        raise ValueError(f"unknown --{flag} implementation '{name}'; valid: {', '.join(choices)}")
    device = torch.device(device)
    reason = triton_unavailable_reason(device)
    if name == "auto":  # the only choice that may fall back; the caller records what it became
        name = "triton" if device.type == "cuda" and reason is None else _PYTORCH_DEFAULT[flag]
    if name == "triton" and reason is not None:
        others = " or ".join(c for c in _REGISTRY[flag] if c != "triton")
        raise ValueError(f"--{flag} triton cannot run here: {reason}. Use --{flag} {others}.")
    return name, _REGISTRY[flag][name]()


def resolve_attention(name: str, device: torch.device | str) -> tuple[str, Callable]:
    """Return (resolved_name, fn) for an attention choice on `device`."""
    return _resolve("attn", name, device)


def resolve_norm(name: str, device: torch.device | str) -> tuple[str, Callable]:
    """Return (resolved_name, fn) for a LayerNorm choice on `device`."""
    return _resolve("norm", name, device)


__all__ = [
    "ATTENTION_CHOICES", "NORM_CHOICES", "KERNEL_DTYPES", "check_kernel_tensor", "resolve_attention",
    "resolve_norm",
    "triton_unavailable_reason", "attention_reference", "layer_norm_reference",
]

"""Our Triton attention and LayerNorm as differentiable torch ops: what the registry hands the model.

Each kernel pair is registered once (kernels/launch.py says how, and why it differs under the
interpreter): a forward op that also returns what the backward needs, a backward op, the autograd
formula joining them (`register_autograd` with `setup_context`), and a fake implementation giving
the outputs' shapes, dtypes and strides, so `torch.compile(model, fullgraph=True)` traces a whole
training step through them without a graph break:

    minigpt::attention_fwd(q, k, v, scale) -> (o, lse)
    minigpt::attention_bwd(do, q, k, v, o, lse, scale) -> (dq, dk, dv)
    minigpt::layer_norm_fwd(x, weight?, bias?, eps) -> (y, mean, rstd)
    minigpt::layer_norm_bwd(dy, x, weight?, has_bias, mean, rstd) -> (dx, dw, db)

A missing weight or bias has an empty (0,) gradient placeholder in the op (an op returns tensors
only) and None in autograd.

`attention` and `layer_norm`, what the registry hands the model, call the ops only while
torch.compile traces. In eager mode they run the same launchers inside a torch.autograd.Function
(`AttentionFunction`, `LayerNormFunction`), which costs less host time per call than dispatching
the op (`python -m kernels.overhead`; docs/benchmarks.md) and gives the same bits
(tests/test_kernel_compile.py). On a torch without torch.library.custom_op (< 2.4) the Functions
are the only path, and torch.compile breaks the graph around them.
"""
# No `from __future__ import annotations` here: torch infers each op's schema from its annotations,
# and real types are what every torch version's schema inference reads.
from typing import Optional

import torch

from .attention import attention_fwd, check_attention_inputs, default_scale
from .attention_backward import attention_bwd
from .launch import define_op
from .layer_norm import check_layer_norm_inputs, layer_norm_bwd, layer_norm_fwd

Tensor = torch.Tensor


def _attention_fwd(q: Tensor, k: Tensor, v: Tensor, scale: float) -> tuple[Tensor, Tensor]:
    return attention_fwd(q, k, v, scale, traceable=True)


def _attention_fwd_fake(q, k, v, scale):
    check_attention_inputs(q, k, v)
    batch, heads, seq_len, _ = q.shape
    return (torch.empty(q.shape, dtype=q.dtype, device=q.device),
            torch.empty((batch * heads, seq_len), dtype=torch.float32, device=q.device))


def _attention_bwd(do: Tensor, q: Tensor, k: Tensor, v: Tensor, o: Tensor, lse: Tensor,
                   scale: float) -> tuple[Tensor, Tensor, Tensor]:
    return attention_bwd(do, q, k, v, o, lse, scale, traceable=True)


def _attention_bwd_fake(do, q, k, v, o, lse, scale):
    return tuple(torch.empty(q.shape, dtype=q.dtype, device=q.device) for _ in range(3))


def _layer_norm_fwd(x: Tensor, weight: Optional[Tensor], bias: Optional[Tensor],
                    eps: float) -> tuple[Tensor, Tensor, Tensor]:
    return layer_norm_fwd(x, weight, bias, eps, traceable=True)


def _layer_norm_fwd_fake(x, weight, bias, eps):
    check_layer_norm_inputs(x, weight, bias)
    n_rows = x.numel() // x.shape[-1]
    stats = lambda: torch.empty(n_rows, dtype=torch.float32, device=x.device)  # noqa: E731
    return torch.empty(x.shape, dtype=x.dtype, device=x.device), stats(), stats()


def _layer_norm_bwd(dy: Tensor, x: Tensor, weight: Optional[Tensor], has_bias: bool, mean: Tensor,
                    rstd: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    dx, dw, db = layer_norm_bwd(dy, x, weight, has_bias, mean, rstd, traceable=True)
    none = x.new_empty(0)  # an op returns tensors only; autograd turns these back into None
    return dx, none if dw is None else dw, none.clone() if db is None else db


def _layer_norm_bwd_fake(dy, x, weight, has_bias, mean, rstd):
    param = (x.shape[-1],)
    param_dtype = x.dtype if weight is None else weight.dtype
    return (torch.empty(x.shape, dtype=x.dtype, device=x.device),
            torch.empty(param if weight is not None else (0,), dtype=param_dtype, device=x.device),
            torch.empty(param if has_bias else (0,), dtype=param_dtype, device=x.device))


attention_fwd_op = define_op("attention_fwd", _attention_fwd, _attention_fwd_fake)
attention_bwd_op = define_op("attention_bwd", _attention_bwd, _attention_bwd_fake)
layer_norm_fwd_op = define_op("layer_norm_fwd", _layer_norm_fwd, _layer_norm_fwd_fake)
layer_norm_bwd_op = define_op("layer_norm_bwd", _layer_norm_bwd, _layer_norm_bwd_fake)


def _attention_setup_context(ctx, inputs, output):
    q, k, v, scale = inputs
    o, lse = output
    ctx.save_for_backward(q, k, v, o, lse)
    ctx.scale = scale


def _attention_backward(ctx, do, _dlse):
    q, k, v, o, lse = ctx.saved_tensors
    dq, dk, dv = attention_bwd_op(do, q, k, v, o, lse, ctx.scale)
    return dq, dk, dv, None


def _layer_norm_setup_context(ctx, inputs, output):
    x, weight, bias, _eps = inputs
    _y, mean, rstd = output
    ctx.save_for_backward(x, weight, mean, rstd)
    ctx.has_bias = bias is not None
    ctx.bias_dtype = None if bias is None else bias.dtype


def _layer_norm_backward(ctx, dy, _dmean, _drstd):
    x, weight, mean, rstd = ctx.saved_tensors
    dx, dw, db = layer_norm_bwd_op(dy, x, weight, ctx.has_bias, mean, rstd)
    return (dx, None if weight is None else dw,
            db.to(ctx.bias_dtype) if ctx.has_bias else None, None)


class AttentionFunction(torch.autograd.Function):
    """Causal attention through the launchers alone: the eager path, and all paths on a torch
    without custom ops."""

    @staticmethod
    def forward(ctx, q, k, v, scale):
        o, lse = attention_fwd(q, k, v, scale)
        ctx.save_for_backward(q, k, v, o, lse)
        ctx.scale = scale
        return o

    @staticmethod
    def backward(ctx, do):
        q, k, v, o, lse = ctx.saved_tensors
        return (*attention_bwd(do, q, k, v, o, lse, ctx.scale), None)


class LayerNormFunction(torch.autograd.Function):
    """LayerNorm through the launchers alone: the eager path, and all paths on a torch without
    custom ops."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps):
        y, mean, rstd = layer_norm_fwd(x, weight, bias, eps)
        ctx.save_for_backward(x, weight, mean, rstd)
        ctx.has_bias = bias is not None
        ctx.bias_dtype = None if bias is None else bias.dtype
        return y

    @staticmethod
    def backward(ctx, dy):
        x, weight, mean, rstd = ctx.saved_tensors
        dx, dw, db = layer_norm_bwd(dy, x, weight, ctx.has_bias, mean, rstd)
        return dx, dw, None if db is None else db.to(ctx.bias_dtype), None


if attention_fwd_op is not None:
    attention_fwd_op.register_autograd(_attention_backward, setup_context=_attention_setup_context)
    layer_norm_fwd_op.register_autograd(_layer_norm_backward, setup_context=_layer_norm_setup_context)


def _through_op(op) -> bool:
    """Whether a call should go through the registered op: while torch.compile traces (so the graph
    holds it), not in eager mode, where the op's dispatch costs more host time per call than the
    autograd.Function over the same launchers (docs/benchmarks.md, "host overhead")."""
    return op is not None and torch.compiler.is_compiling()


def attention(q: Tensor, k: Tensor, v: Tensor, scale: float | None = None) -> Tensor:
    """Causal attention. q, k, v: (B, H, N, D) -> (B, H, N, D); scale defaults to 1/sqrt(D)."""
    scale = default_scale(q.shape[-1]) if scale is None else float(scale)
    if _through_op(attention_fwd_op):
        return attention_fwd_op(q, k, v, scale)[0]
    return AttentionFunction.apply(q, k, v, scale)


def layer_norm(x: Tensor, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """LayerNorm of x over its last dimension (any leading shape); weight and bias may be None."""
    if _through_op(layer_norm_fwd_op):
        return layer_norm_fwd_op(x, weight, bias, float(eps))[0]
    return LayerNormFunction.apply(x, weight, bias, eps)


__all__ = ["attention", "layer_norm", "AttentionFunction", "LayerNormFunction", "attention_fwd_op",
           "attention_bwd_op", "layer_norm_fwd_op", "layer_norm_bwd_op"]

"""Triton LayerNorm over the last dimension: forward and backward kernels and their launchers.

Algorithm (Ba et al. 2016, "Layer Normalization"), for one row x of width N:

    mean = sum(x) / N,   rstd = 1 / sqrt(sum((x - mean)^2) / N + eps),   xhat = (x - mean) * rstd
    y    = xhat * w + b

Forward: each program normalises a (BLOCK_M, BLOCK_N) tile of whole rows (BLOCK_N =
next_power_of_2(N), masked loads for the padding; several rows per program when rows are narrow).
x is read once and y written once; statistics are accumulated in fp32 whatever the input dtype, and
mean and rstd are saved in fp32 for the backward.

Backward: with g = dy * w (the gradient reaching xhat),

    dx = rstd * (g - xhat * mean(g * xhat) - mean(g))
    dw = sum over rows of dy * xhat,   db = sum over rows of dy

dx is row-local. dw and db are column sums over all M rows; rather than a lock-protected shared
buffer (which races without a barrier), the backward uses a persistent grid: program p handles
row blocks p, p + P, p + 2P, ..., keeps its own fp32 partial dw/db in registers, and writes them to
row p of a (P, N) fp32 buffer that nobody else touches. A final `.sum(0)` over P rows gives dw and db
(the two-pass partial-sum scheme of Triton's LayerNorm tutorial without its locks). No atomics, so
the result is deterministic.

The backward's launch was reshaped after the first GPU measurements (docs/benchmarks.md; not yet
measured since): 1024-element tiles on 4 warps where the width allows (it shared the forward's
4096-element tiles on up to 16 warps), as many programs as fill 24 warps on each SM (6 programs at
width 1024, where there were 2 of 16 warps), a software-pipelined row loop
(`tl.range(..., num_stages=2)`), and partial sums kept per tile row and folded once at the end
instead of a sum across the tile's rows at every step.

kernels/ops.py registers both as one differentiable torch op.

Widths up to MAX_WIDTH (65536) are supported, which covers every model width in this project; wider
rows raise a ValueError rather than spill registers silently.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from .checks import check_kernel_tensor
from .launch import INTERPRET, wrap_triton

MAX_WIDTH = 65536
# warps per SM the backward's persistent grid fills (an H100 holds 64, registers permitting:
# kernels.gpu_compile reports the registers of each width's program)
_BWD_WARPS_PER_SM = 24
_BWD_STAGES = 1 if INTERPRET else 2


@triton.jit
def _layer_norm_fwd_kernel(
    x_ptr,      # (M, N) input, row stride stride_x_row, unit column stride
    y_ptr,      # (M, N) output, row stride stride_y_row, unit column stride
    w_ptr,      # (N,) weight; unused when HAS_WEIGHT is False
    b_ptr,      # (N,) bias; unused when HAS_BIAS is False
    mean_ptr,   # (M,) fp32, written: row means
    rstd_ptr,   # (M,) fp32, written: row reciprocal standard deviations
    stride_x_row, stride_y_row,
    M, N, eps,
    HAS_WEIGHT: tl.constexpr, HAS_BIAS: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = tl.arange(0, BLOCK_N)
    row_ok = rows < M
    col_ok = cols < N
    mask = row_ok[:, None] & col_ok[None, :]
    rows64 = rows.to(tl.int64)
    x = tl.load(x_ptr + rows64[:, None] * stride_x_row + cols[None, :], mask=mask, other=0.0).to(tl.float32)
    mean = tl.sum(x, axis=1) / N
    # One correction pass: the fp32 sum above can leave the mean an ulp off, and on a row of equal
    # values that ulp, times rstd = 1/sqrt(eps), became an output error ~1000x PyTorch's. The mean
    # of the residuals recovers the lost ulp (the compensated two-pass mean).
    mean += tl.sum(tl.where(mask, x - mean[:, None], 0.0), axis=1) / N
    # padding lanes must not add (0 - mean)^2 to the variance
    centred = tl.where(mask, x - mean[:, None], 0.0)
    var = tl.sum(centred * centred, axis=1) / N
    rstd = 1.0 / tl.sqrt(var + eps)
    y = centred * rstd[:, None]
    if HAS_WEIGHT:
        y = y * tl.load(w_ptr + cols, mask=col_ok, other=0.0).to(tl.float32)[None, :]
    if HAS_BIAS:
        y = y + tl.load(b_ptr + cols, mask=col_ok, other=0.0).to(tl.float32)[None, :]
    tl.store(mean_ptr + rows, mean, mask=row_ok)
    tl.store(rstd_ptr + rows, rstd, mask=row_ok)
    tl.store(y_ptr + rows64[:, None] * stride_y_row + cols[None, :], y.to(y_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _layer_norm_bwd_kernel(
    x_ptr,        # (M, N) forward input, row stride stride_x_row
    dy_ptr,       # (M, N) upstream gradient, row stride stride_dy_row
    dx_ptr,       # (M, N) written: input gradient, row stride stride_dx_row
    w_ptr,        # (N,) weight; unused when HAS_WEIGHT is False
    mean_ptr,     # (M,) fp32 row means saved by the forward
    rstd_ptr,     # (M,) fp32 row rstd saved by the forward
    dw_part_ptr,  # (P, N) fp32 written: this program's partial dw in row pid (when HAS_WEIGHT)
    db_part_ptr,  # (P, N) fp32 written: this program's partial db in row pid (when HAS_BIAS)
    stride_x_row, stride_dy_row, stride_dx_row,
    M, N,
    HAS_WEIGHT: tl.constexpr, HAS_BIAS: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, NUM_STAGES: tl.constexpr,
):
    pid = tl.program_id(0)
    n_programs = tl.num_programs(0)
    cols = tl.arange(0, BLOCK_N)
    col_ok = cols < N
    if HAS_WEIGHT:
        w = tl.load(w_ptr + cols, mask=col_ok, other=0.0).to(tl.float32)
    # (BLOCK_M, BLOCK_N) partial sums, folded over rows once at the end: a sum across the tile's rows
    # at every step would cross warps through shared memory, with a barrier, on every iteration
    dw_acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    db_acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    # this program owns row blocks pid, pid + P, pid + 2P, ...; NUM_STAGES > 1 lets the compiler
    # issue the next blocks' loads while this one computes
    for row_block in tl.range(pid, tl.cdiv(M, BLOCK_M), n_programs, num_stages=NUM_STAGES):
        rows = row_block * BLOCK_M + tl.arange(0, BLOCK_M)
        row_ok = rows < M
        mask = row_ok[:, None] & col_ok[None, :]
        rows64 = rows.to(tl.int64)
        x = tl.load(x_ptr + rows64[:, None] * stride_x_row + cols[None, :], mask=mask, other=0.0).to(tl.float32)
        dy = tl.load(dy_ptr + rows64[:, None] * stride_dy_row + cols[None, :], mask=mask, other=0.0).to(tl.float32)
        mean = tl.load(mean_ptr + rows, mask=row_ok, other=0.0)
        rstd = tl.load(rstd_ptr + rows, mask=row_ok, other=0.0)
        # zero in padding lanes and rows, so they add nothing to the sums below
        xhat = tl.where(mask, (x - mean[:, None]) * rstd[:, None], 0.0)
        g = dy
        if HAS_WEIGHT:
            g = dy * w[None, :]
        mean_gx = tl.sum(g * xhat, axis=1) / N
        mean_g = tl.sum(g, axis=1) / N
        dx = (g - xhat * mean_gx[:, None] - mean_g[:, None]) * rstd[:, None]
        tl.store(dx_ptr + rows64[:, None] * stride_dx_row + cols[None, :], dx.to(dx_ptr.dtype.element_ty), mask=mask)
        dw_acc += dy * xhat
        db_acc += dy
    if HAS_WEIGHT:
        tl.store(dw_part_ptr + pid * N + cols, tl.sum(dw_acc, axis=0), mask=col_ok)
    if HAS_BIAS:
        tl.store(db_part_ptr + pid * N + cols, tl.sum(db_acc, axis=0), mask=col_ok)


def fwd_launch_config(width: int) -> tuple[int, int, int]:
    """Forward (BLOCK_M, BLOCK_N, num_warps): whole rows per program, several rows at once when they
    are narrow so a program still moves a few thousand elements, more warps for bigger tiles."""
    block_n = triton.next_power_of_2(width)
    block_m = max(1, min(16, 4096 // block_n))
    num_warps = min(max(block_m * block_n // 256, 1), 16)
    return block_m, block_n, num_warps


def bwd_launch_config(width: int) -> tuple[int, int, int]:
    """Backward (BLOCK_M, BLOCK_N, num_warps): tiles of whole rows, 1024 elements where the width
    allows, 8 elements per thread (16 from width 8192). The backward keeps about seven tile-sized
    values live per thread (x, dy, xhat, g, dx and two partial sums); compiled for sm_90 a 1024-wide
    program on 4 warps needs 70 registers, so 7 fit on an SM (kernels.gpu_compile)."""
    block_n = triton.next_power_of_2(width)
    block_m = max(1, min(16, 1024 // block_n))
    num_warps = min(max(block_m * block_n // 256, 1), 16)
    return block_m, block_n, num_warps


def _as_rows(t: torch.Tensor) -> torch.Tensor:
    """View `t` as (rows, last dim) with a unit column stride, copying only when it must."""
    rows = t.reshape(-1, t.shape[-1])
    return rows if rows.stride(-1) == 1 else rows.contiguous()


def check_layer_norm_inputs(x: torch.Tensor, weight, bias) -> None:
    """Refuse, with a message naming what is valid, inputs our LayerNorm kernels cannot take."""
    if x.dim() < 1 or x.shape[-1] < 1:
        raise ValueError(f"layer_norm needs a tensor with a non-empty last dimension, got {tuple(x.shape)}")
    check_kernel_tensor("layer_norm", x)
    width = x.shape[-1]
    if width > MAX_WIDTH:
        raise ValueError(f"layer_norm supports widths up to {MAX_WIDTH}, got {width}")
    for name, param in (("weight", weight), ("bias", bias)):
        if param is None:
            continue
        if param.shape != (width,):
            raise ValueError(f"{name} must have shape ({width},), got {tuple(param.shape)}")
        if param.device != x.device:
            raise ValueError(f"{name} is on {param.device} but x is on {x.device}")
        if not param.dtype.is_floating_point or param.dtype == torch.float64:
            raise ValueError(f"layer_norm: {name} dtype {param.dtype} is not supported; valid: "
                             f"float32, float16, bfloat16")


def layer_norm_fwd(x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None,
                   eps: float = 1e-5, out: torch.Tensor | None = None, traceable: bool = False):
    """Forward launcher. x: (..., N). Returns (y shaped like x, mean (M,) fp32, rstd (M,) fp32).

    `out`, if given, is a contiguous tensor shaped and typed like x that receives y (tests pass one
    filled with NaN to prove every element is written). `traceable` only from inside a torch op
    (kernels/launch.py, `wrap_triton`).
    """
    check_layer_norm_inputs(x, weight, bias)
    x_rows = _as_rows(x)
    n_rows, width = x_rows.shape
    if out is None:
        out = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    elif out.shape != x.shape or out.dtype != x.dtype or not out.is_contiguous():
        raise ValueError("out must be a contiguous tensor with x's shape and dtype")
    y_rows = out.view(-1, width)
    mean = torch.empty(n_rows, dtype=torch.float32, device=x.device)
    rstd = torch.empty(n_rows, dtype=torch.float32, device=x.device)
    if n_rows == 0:
        return out, mean, rstd
    block_m, block_n, num_warps = fwd_launch_config(width)
    wrap_triton(_layer_norm_fwd_kernel, traceable)[(triton.cdiv(n_rows, block_m),)](
        x_rows, y_rows, weight, bias, mean, rstd,
        x_rows.stride(0), y_rows.stride(0), n_rows, width, eps,
        HAS_WEIGHT=weight is not None, HAS_BIAS=bias is not None,
        BLOCK_M=block_m, BLOCK_N=block_n, num_warps=num_warps,
    )
    return out, mean, rstd


def _n_persistent_programs(device: torch.device, n_row_blocks: int, num_warps: int) -> int:
    """Enough programs to fill each SM with _BWD_WARPS_PER_SM warps, never more than row blocks."""
    if device.type == "cuda" and torch.cuda.is_available():
        per_sm = max(1, _BWD_WARPS_PER_SM // num_warps)
        slots = per_sm * torch.cuda.get_device_properties(device).multi_processor_count
    else:
        # the interpreter runs programs one after another; a few still test the reduction (and a
        # CUDA device torch cannot query is a fake one, traced on a machine without a GPU)
        slots = 4
    return max(1, min(slots, n_row_blocks))


def layer_norm_bwd(dy: torch.Tensor, x: torch.Tensor, weight: torch.Tensor | None, has_bias: bool,
                   mean: torch.Tensor, rstd: torch.Tensor, dx: torch.Tensor | None = None,
                   traceable: bool = False):
    """Backward launcher. Returns (dx shaped like x, dw or None, db or None).

    `dx`, if given, is a contiguous tensor shaped and typed like x that receives the input gradient.
    dw and db come back in the weight's dtype, reduced in fp32 without atomics. `traceable` as in
    `layer_norm_fwd`.
    """
    x_rows = _as_rows(x)
    dy_rows = _as_rows(dy)
    n_rows, width = x_rows.shape
    if dx is None:
        dx = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    elif dx.shape != x.shape or dx.dtype != x.dtype or not dx.is_contiguous():
        raise ValueError("dx must be a contiguous tensor with x's shape and dtype")
    dx_rows = dx.view(-1, width)
    block_m, block_n, num_warps = bwd_launch_config(width)
    n_programs = _n_persistent_programs(x.device, triton.cdiv(n_rows, block_m), num_warps)
    has_weight = weight is not None
    dw_part = torch.empty((n_programs, width) if has_weight else (1,), dtype=torch.float32, device=x.device)
    db_part = torch.empty((n_programs, width) if has_bias else (1,), dtype=torch.float32, device=x.device)
    param_dtype = weight.dtype if has_weight else x.dtype
    if n_rows == 0:
        zeros = torch.zeros(width, dtype=param_dtype, device=x.device)
        return dx, (zeros if has_weight else None), (zeros.clone() if has_bias else None)
    wrap_triton(_layer_norm_bwd_kernel, traceable)[(n_programs,)](
        x_rows, dy_rows, dx_rows, weight, mean, rstd, dw_part, db_part,
        x_rows.stride(0), dy_rows.stride(0), dx_rows.stride(0), n_rows, width,
        HAS_WEIGHT=has_weight, HAS_BIAS=has_bias,
        BLOCK_M=block_m, BLOCK_N=block_n, NUM_STAGES=_BWD_STAGES, num_warps=num_warps,
    )
    dw = dw_part.sum(0).to(param_dtype) if has_weight else None
    db = db_part.sum(0).to(param_dtype) if has_bias else None
    return dx, dw, db


# the kernels by name, for kernels.gpu_compile
KERNELS = {"fwd": _layer_norm_fwd_kernel, "bwd": _layer_norm_bwd_kernel}

__all__ = ["layer_norm_fwd", "layer_norm_bwd", "check_layer_norm_inputs", "fwd_launch_config",
           "bwd_launch_config", "KERNELS", "MAX_WIDTH"]

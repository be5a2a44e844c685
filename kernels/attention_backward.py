"""The deterministic backward of our causal FlashAttention-2 (kernels/attention.py): kernels and launcher.

Follows Dao 2023 (FlashAttention-2), section 3.1.2. With S = scale * Q K^T, P = softmax(S) rebuilt
from the forward's log-sum-exp, dP = dO V^T and dS = P * (dP - delta):
  1. `_attn_bwd_preprocess_kernel`: delta = rowsum(dO * O), fp32, one value per query row.
  2. `_attn_bwd_dkdv_kernel`: one program per key block; walks the query blocks at or below the
     diagonal and accumulates dV = P^T dO and dK = scale * dS^T Q in fp32 registers.
  3. `_attn_bwd_dq_kernel`: one program per query block; walks the key blocks at or below the
     diagonal and accumulates dQ = scale * dS K.
Computing dQ in its own kernel recomputes P once more, but each output element is then owned by
exactly one program and written once: no atomic adds, so the backward is deterministic (bitwise
repeatable) and any output buffer may start with garbage in it.

Both walks split as the forward does (Triton's fused-attention tutorial): only the blocks that cross
the diagonal carry the causal mask; every other block is seen in full and computed without one.
Blocks above the diagonal are never visited. Loads that may pass the sequence end carry a row mask
(the dK/dV walk always does, for its ragged last query block: a mask that is the same along a row
does not stop vector loads), and a column mask only when the head dim is padded (PAD_D). Query
rows past the end load as zeros, with lse = delta = 0: their P is finite and their dO is zero, so
they add nothing to dK or dV and need no mask in the arithmetic.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from .attention import WIDE_HEAD, autotuned, launch_args, load_tile, output_like, strides
from .launch import INTERPRET, wrap_triton


@triton.jit
def _attn_bwd_preprocess_kernel(
    o_ptr,      # (B, H, N, D) forward output, strides stride_o*
    do_ptr,     # (B, H, N, D) upstream gradient, strides stride_do*
    delta_ptr,  # (B*H, N) fp32 written: rowsum(dO * O)
    stride_ob, stride_oh, stride_on, stride_od,
    stride_dob, stride_doh, stride_don, stride_dod,
    H, N, D,
    BLOCK_M: tl.constexpr, BLOCK_D: tl.constexpr,
):
    offs_m = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    bh = tl.program_id(1)
    batch = (bh // H).to(tl.int64)
    head = (bh % H).to(tl.int64)
    offs_d = tl.arange(0, BLOCK_D)
    mask = (offs_m < N)[:, None] & (offs_d < D)[None, :]
    o = tl.load(o_ptr + batch * stride_ob + head * stride_oh
                + offs_m[:, None] * stride_on + offs_d[None, :] * stride_od, mask=mask, other=0.0)
    do = tl.load(do_ptr + batch * stride_dob + head * stride_doh
                 + offs_m[:, None] * stride_don + offs_d[None, :] * stride_dod, mask=mask, other=0.0)
    delta = tl.sum(o.to(tl.float32) * do.to(tl.float32), axis=1)
    tl.store(delta_ptr + bh.to(tl.int64) * N + offs_m, delta, mask=offs_m < N)


@triton.jit
def _attn_bwd_dkdv_blocks(dk, dv, k, v, q_ptr, do_ptr, lse_ptr, delta_ptr,
                          stride_qn, stride_qd, stride_don, stride_dod, offs_n, offs_d, lo, hi,
                          qk_scale, N, D, CAUSAL: tl.constexpr, BLOCK_M: tl.constexpr,
                          PAD_D: tl.constexpr, DOT_PRECISION: tl.constexpr):
    """Accumulate dK (unscaled) and dV of one key block over query blocks lo, lo + BLOCK_M, ...
    below hi. CAUSAL: the blocks cross the diagonal, so queries before a key are dropped. Query rows
    are always bounds-checked (the last block may be ragged): a row mask is the same along a whole
    row, so it does not stop the compiler from issuing vector loads. Tiles are transposed (keys
    along rows) so dK and dV come out without a transpose."""
    for start_m in range(lo, hi, BLOCK_M):
        offs_m = start_m + tl.arange(0, BLOCK_M)
        row_ok = offs_m < N
        if PAD_D:
            mask = row_ok[:, None] & (offs_d < D)[None, :]
        else:
            mask = row_ok[:, None]
        q = tl.load(q_ptr + offs_m[:, None] * stride_qn + offs_d[None, :] * stride_qd, mask=mask, other=0.0)
        do = tl.load(do_ptr + offs_m[:, None] * stride_don + offs_d[None, :] * stride_dod, mask=mask, other=0.0)
        lse = tl.load(lse_ptr + offs_m, mask=row_ok, other=0.0)
        delta = tl.load(delta_ptr + offs_m, mask=row_ok, other=0.0)
        scores_t = tl.dot(k, tl.trans(q), input_precision=DOT_PRECISION)  # (BLOCK_N, BLOCK_M)
        p_t = tl.exp2(scores_t * qk_scale - lse[None, :] * 1.4426950408889634)
        if CAUSAL:
            p_t = tl.where(offs_m[None, :] >= offs_n[:, None], p_t, 0.0)
        dv += tl.dot(p_t.to(do.dtype), do, input_precision=DOT_PRECISION)
        dp_t = tl.dot(v, tl.trans(do), input_precision=DOT_PRECISION)  # (BLOCK_N, BLOCK_M)
        ds_t = p_t * (dp_t - delta[None, :])
        dk += tl.dot(ds_t.to(q.dtype), q, input_precision=DOT_PRECISION)
    return dk, dv


@triton.jit
def _attn_bwd_dkdv_kernel(
    q_ptr, k_ptr, v_ptr,  # (B, H, N, D) forward inputs, strides stride_q*/stride_k*/stride_v*
    do_ptr,               # (B, H, N, D) upstream gradient, strides stride_do*
    dk_ptr, dv_ptr,       # (B, H, N, D) written: key and value gradients, strides stride_dk*
    lse_ptr,              # (B*H, N) fp32 log-sum-exp saved by the forward
    delta_ptr,            # (B*H, N) fp32 rowsum(dO * O) from the preprocess kernel
    sm_scale,
    stride_qb, stride_qh, stride_qn, stride_qd,
    stride_kb, stride_kh, stride_kn, stride_kd,
    stride_vb, stride_vh, stride_vn, stride_vd,
    stride_dob, stride_doh, stride_don, stride_dod,
    stride_dkb, stride_dkh, stride_dkn, stride_dkd,  # shared by dk and dv (both allocated alike)
    H, N, D,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, PAD_D: tl.constexpr,
    DOT_PRECISION: tl.constexpr,
):
    start_n = tl.program_id(0) * BLOCK_N
    bh = tl.program_id(1)
    batch = (bh // H).to(tl.int64)
    head = (bh % H).to(tl.int64)
    q_ptr += batch * stride_qb + head * stride_qh
    do_ptr += batch * stride_dob + head * stride_doh
    lse_ptr += bh.to(tl.int64) * N
    delta_ptr += bh.to(tl.int64) * N

    offs_n = start_n + tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    kv_mask = (offs_n < N)[:, None] & (offs_d < D)[None, :]
    k = tl.load(k_ptr + batch * stride_kb + head * stride_kh + offs_n[:, None] * stride_kn
                + offs_d[None, :] * stride_kd, mask=kv_mask, other=0.0)
    v = tl.load(v_ptr + batch * stride_vb + head * stride_vh + offs_n[:, None] * stride_vn
                + offs_d[None, :] * stride_vd, mask=kv_mask, other=0.0)
    qk_scale = sm_scale * 1.4426950408889634
    dk = tl.zeros((BLOCK_N, BLOCK_D), dtype=tl.float32)
    dv = tl.zeros((BLOCK_N, BLOCK_D), dtype=tl.float32)
    # query blocks from the one holding query start_n up to (not including) the first whose every
    # query is at or after the block's last key cross the diagonal; the blocks after see every key
    diag_lo = (start_n // BLOCK_M) * BLOCK_M
    full_lo = tl.minimum(tl.cdiv(start_n + BLOCK_N - 1, BLOCK_M) * BLOCK_M, N)
    dk, dv = _attn_bwd_dkdv_blocks(dk, dv, k, v, q_ptr, do_ptr, lse_ptr, delta_ptr, stride_qn,
                                   stride_qd, stride_don, stride_dod, offs_n, offs_d, diag_lo,
                                   full_lo, qk_scale, N, D, True, BLOCK_M, PAD_D, DOT_PRECISION)
    dk, dv = _attn_bwd_dkdv_blocks(dk, dv, k, v, q_ptr, do_ptr, lse_ptr, delta_ptr, stride_qn,
                                   stride_qd, stride_don, stride_dod, offs_n, offs_d, full_lo, N,
                                   qk_scale, N, D, False, BLOCK_M, PAD_D, DOT_PRECISION)

    out_offs = (batch * stride_dkb + head * stride_dkh + offs_n[:, None] * stride_dkn
                + offs_d[None, :] * stride_dkd)
    tl.store(dk_ptr + out_offs, (dk * sm_scale).to(dk_ptr.dtype.element_ty), mask=kv_mask)
    tl.store(dv_ptr + out_offs, dv.to(dv_ptr.dtype.element_ty), mask=kv_mask)


@triton.jit
def _attn_bwd_dq_blocks(dq, q, do, lse, delta, k_ptr, v_ptr, stride_kn, stride_kd, stride_vn,
                        stride_vd, offs_m, offs_d, lo, hi, qk_scale, N, D, MASKED: tl.constexpr,
                        BLOCK_N: tl.constexpr, PAD_D: tl.constexpr, DOT_PRECISION: tl.constexpr):
    """Accumulate dQ (unscaled) of one query block over key blocks lo, lo + BLOCK_N, ... below hi;
    MASKED and PAD_D as in the forward's `_attn_fwd_blocks`."""
    for start_n in range(lo, hi, BLOCK_N):
        offs_n = start_n + tl.arange(0, BLOCK_N)
        k_ptrs = k_ptr + offs_n[:, None] * stride_kn + offs_d[None, :] * stride_kd
        v_ptrs = v_ptr + offs_n[:, None] * stride_vn + offs_d[None, :] * stride_vd
        k = load_tile(k_ptrs, offs_n, offs_d, N, D, MASKED, PAD_D)
        scores = tl.dot(q, tl.trans(k), input_precision=DOT_PRECISION)  # (BLOCK_M, BLOCK_N)
        p = tl.exp2(scores * qk_scale - lse[:, None])
        if MASKED:
            p = tl.where(offs_m[:, None] >= offs_n[None, :], p, 0.0)
        v = load_tile(v_ptrs, offs_n, offs_d, N, D, MASKED, PAD_D)
        dp = tl.dot(do, tl.trans(v), input_precision=DOT_PRECISION)
        ds = p * (dp - delta[:, None])
        dq += tl.dot(ds.to(k.dtype), k, input_precision=DOT_PRECISION)
    return dq


@triton.jit
def _attn_bwd_dq_kernel(
    q_ptr, k_ptr, v_ptr,  # (B, H, N, D) forward inputs, strides stride_q*/stride_k*/stride_v*
    do_ptr,               # (B, H, N, D) upstream gradient, strides stride_do*
    dq_ptr,               # (B, H, N, D) written: query gradient, strides stride_dq*
    lse_ptr,              # (B*H, N) fp32 log-sum-exp saved by the forward
    delta_ptr,            # (B*H, N) fp32 rowsum(dO * O) from the preprocess kernel
    sm_scale,
    stride_qb, stride_qh, stride_qn, stride_qd,
    stride_kb, stride_kh, stride_kn, stride_kd,
    stride_vb, stride_vh, stride_vn, stride_vd,
    stride_dob, stride_doh, stride_don, stride_dod,
    stride_dqb, stride_dqh, stride_dqn, stride_dqd,
    H, N, D,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, PAD_D: tl.constexpr,
    DOT_PRECISION: tl.constexpr,
):
    start_m = (tl.num_programs(0) - 1 - tl.program_id(0)) * BLOCK_M
    bh = tl.program_id(1)
    batch = (bh // H).to(tl.int64)
    head = (bh % H).to(tl.int64)
    k_ptr += batch * stride_kb + head * stride_kh
    v_ptr += batch * stride_vb + head * stride_vh

    offs_m = start_m + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    row_ok = offs_m < N
    mask = row_ok[:, None] & (offs_d < D)[None, :]
    q = tl.load(q_ptr + batch * stride_qb + head * stride_qh
                + offs_m[:, None] * stride_qn + offs_d[None, :] * stride_qd, mask=mask, other=0.0)
    do = tl.load(do_ptr + batch * stride_dob + head * stride_doh
                 + offs_m[:, None] * stride_don + offs_d[None, :] * stride_dod, mask=mask, other=0.0)
    # lse in base 2, ready for exp2
    lse = tl.load(lse_ptr + bh.to(tl.int64) * N + offs_m, mask=row_ok, other=0.0) * 1.4426950408889634
    delta = tl.load(delta_ptr + bh.to(tl.int64) * N + offs_m, mask=row_ok, other=0.0)
    qk_scale = sm_scale * 1.4426950408889634
    dq = tl.zeros((BLOCK_M, BLOCK_D), dtype=tl.float32)
    # as the forward: key blocks ending at or before this block's first query need no mask
    unmasked_end = ((start_m + 1) // BLOCK_N) * BLOCK_N
    dq = _attn_bwd_dq_blocks(dq, q, do, lse, delta, k_ptr, v_ptr, stride_kn, stride_kd, stride_vn,
                             stride_vd, offs_m, offs_d, 0, unmasked_end, qk_scale, N, D, False,
                             BLOCK_N, PAD_D, DOT_PRECISION)
    dq = _attn_bwd_dq_blocks(dq, q, do, lse, delta, k_ptr, v_ptr, stride_kn, stride_kd, stride_vn,
                             stride_vd, offs_m, offs_d, unmasked_end,
                             tl.minimum(start_m + BLOCK_M, N), qk_scale, N, D, True, BLOCK_N,
                             PAD_D, DOT_PRECISION)

    tl.store(dq_ptr + batch * stride_dqb + head * stride_dqh + offs_m[:, None] * stride_dqn
             + offs_d[None, :] * stride_dqd, (dq * sm_scale).to(dq_ptr.dtype.element_ty), mask=mask)


# (BLOCK_M, BLOCK_N, num_warps, num_stages); dK/dV holds a key block and walks query blocks, so its
# BLOCK_N is the larger; dQ the other way round
_attn_bwd_dkdv_narrow = autotuned(
    _attn_bwd_dkdv_kernel, [(32, 64, 4, 3), (64, 64, 4, 2), (32, 128, 8, 2), (64, 128, 8, 2), (16, 64, 4, 3)])
_attn_bwd_dkdv_wide = autotuned(
    _attn_bwd_dkdv_kernel, [(16, 32, 4, 1), (32, 32, 4, 2), (16, 64, 8, 2), (32, 64, 8, 2), (64, 64, 8, 1)])
_attn_bwd_dq_narrow = autotuned(
    _attn_bwd_dq_kernel, [(64, 32, 4, 3), (64, 64, 4, 2), (128, 32, 8, 2), (128, 64, 8, 2), (64, 16, 4, 3)])
_attn_bwd_dq_wide = autotuned(
    _attn_bwd_dq_kernel, [(32, 16, 4, 1), (32, 32, 4, 2), (64, 32, 8, 2), (64, 16, 4, 2), (64, 64, 8, 1)])
# the kernels by name, for tests and kernels.gpu_compile
KERNELS = {"preprocess": _attn_bwd_preprocess_kernel,
           "dkdv_narrow": _attn_bwd_dkdv_narrow, "dkdv_wide": _attn_bwd_dkdv_wide,
           "dq_narrow": _attn_bwd_dq_narrow, "dq_wide": _attn_bwd_dq_wide}


def attention_bwd(do: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                  o: torch.Tensor, lse: torch.Tensor, scale: float | None = None,
                  dq: torch.Tensor | None = None, dk: torch.Tensor | None = None,
                  dv: torch.Tensor | None = None, traceable: bool = False
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Backward launcher: returns (dq, dk, dv), each (B, H, N, D). Outputs may be preallocated;
    `traceable` only from inside a torch op (kernels/launch.py, `wrap_triton`)."""
    batch, heads, seq_len, _ = q.shape
    dq = output_like(q, dq, "dq")
    dk = torch.empty_like(q, memory_format=torch.contiguous_format) if dk is None else output_like(q, dk, "dk")
    dv = torch.empty_like(dk) if dv is None else output_like(q, dv, "dv")
    if dk.stride() != dv.stride():
        raise ValueError("attention: dk and dv must share strides")
    if q.numel() == 0:
        return dq, dk, dv
    args = launch_args(q, scale)
    sm_scale = args.pop("sm_scale")
    delta = torch.empty_like(lse)
    # 4096-element tiles: 32 values of O and of dO per thread on 4 warps, whatever the head dim
    pre_block = 16 if INTERPRET else max(16, 4096 // args["BLOCK_D"])
    grid_pre = (triton.cdiv(seq_len, pre_block), batch * heads)
    wrap_triton(_attn_bwd_preprocess_kernel, traceable)[grid_pre](
        o, do, delta, *strides(o), *strides(do), heads, seq_len, args["D"],
        BLOCK_M=pre_block, BLOCK_D=args["BLOCK_D"])
    wide = args["BLOCK_D"] > WIDE_HEAD
    inputs = (*strides(q), *strides(k), *strides(v), *strides(do))
    dkdv_kernel = _attn_bwd_dkdv_wide if wide else _attn_bwd_dkdv_narrow
    grid_kv = lambda meta: (triton.cdiv(seq_len, meta["BLOCK_N"]), batch * heads)  # noqa: E731
    wrap_triton(dkdv_kernel, traceable)[grid_kv](q, k, v, do, dk, dv, lse, delta, sm_scale,
                                                 *inputs, *strides(dk), **args)
    dq_kernel = _attn_bwd_dq_wide if wide else _attn_bwd_dq_narrow
    grid_q = lambda meta: (triton.cdiv(seq_len, meta["BLOCK_M"]), batch * heads)  # noqa: E731
    wrap_triton(dq_kernel, traceable)[grid_q](q, k, v, do, dq, lse, delta, sm_scale,
                                              *inputs, *strides(dq), **args)
    return dq, dk, dv


__all__ = ["attention_bwd", "KERNELS"]

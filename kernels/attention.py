"""Causal FlashAttention-2 in Triton: the forward kernel, its launcher, and what the backward shares.

Follows Dao 2023, "FlashAttention-2: Faster Attention with Better Parallelism and Work
Partitioning", with the causal split of Triton's fused-attention tutorial. The N x N score matrix is
never stored: every kernel walks over tiles of it. The backward is in kernels/attention_backward.py;
kernels/ops.py registers both as one differentiable torch op.

Forward (`_attn_fwd_kernel`), one program per (query block, batch*head): stream the key/value
blocks at or below the diagonal, keeping a running row maximum m, running normaliser l and an
unnormalised fp32 output accumulator (the online softmax). The walk has two stages: first the key
blocks that lie wholly at or before the block's first query, which every query sees, with no mask at
all; then the few blocks that cross the diagonal (or the sequence end), with the causal mask. Key
blocks wholly above the diagonal are never loaded. The split works for any BLOCK_M and BLOCK_N: the
unmasked stage ends at the last multiple of BLOCK_N not past the block's first query. At the end
O = acc / l, and the per-row log-sum-exp lse = m + log(l) is saved in fp32 so the backward can
rebuild any tile of P = exp(S - lse) without another reduction.

Any sequence length works (blocks that may pass the end load with a row mask; query rows past the
end compute on zeros and are never stored), head dims 16..256 including non powers of two (the head
dim is padded to BLOCK_D = next_power_of_2(D) with masked loads; an unpadded one needs no column
mask, and the unmasked stage's loads then carry none at all), fp32, fp16 and bf16 (casts go to the input's element type; fp32 products use
IEEE precision, not TF32), and any strides (every tensor passes its four strides).
"""
from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from .checks import check_kernel_tensor
from .launch import autotune_configs, wrap_triton

MIN_HEAD_DIM, MAX_HEAD_DIM = 16, 256
WIDE_HEAD = 128  # head dims above this pad to BLOCK_D = 256 and get their own smaller tiles
# tuned again per sequence length and padded head dim; the autotuner adds the argument dtypes itself
TUNE_KEY = ["N", "BLOCK_D", "DOT_PRECISION"]
_DTYPES = (torch.float16, torch.bfloat16, torch.float32)


def autotuned(kernel, gpu_shapes):
    """`kernel` autotuned over (BLOCK_M, BLOCK_N, num_warps, num_stages) candidates on a GPU. Each
    kernel is tuned twice, once per head class: a 256-wide head needs smaller tiles (its Q, K, V tiles
    and fp32 accumulators are twice as large); the first wide candidate of each kernel fits in
    shared memory even for fp32 inputs."""
    return triton.autotune(configs=autotune_configs(gpu_shapes), key=TUNE_KEY)(kernel)


@triton.jit
def load_tile(ptrs, offs_n, offs_d, N, D, MASKED: tl.constexpr, PAD_D: tl.constexpr):
    """A (BLOCK_N, BLOCK_D) tile of K or V: its rows bounds-checked where MASKED (a block that may
    cross the sequence end), its columns where PAD_D (a head dim padded to a power of two), and no
    mask at all otherwise, so off-diagonal blocks load unmasked."""
    if MASKED:
        mask = (offs_n < N)[:, None]
        if PAD_D:
            mask = mask & (offs_d < D)[None, :]
        tile = tl.load(ptrs, mask=mask, other=0.0)
    elif PAD_D:
        tile = tl.load(ptrs, mask=(offs_d < D)[None, :], other=0.0)
    else:
        tile = tl.load(ptrs)
    return tile


@triton.jit
def _attn_fwd_blocks(acc, l_i, m_i, q, k_ptr, v_ptr, stride_kn, stride_kd, stride_vn, stride_vd,
                     offs_m, offs_d, lo, hi, qk_scale, N, D,
                     MASKED: tl.constexpr, BLOCK_N: tl.constexpr, PAD_D: tl.constexpr,
                     DOT_PRECISION: tl.constexpr):
    """Online softmax over the key blocks starting at lo, lo + BLOCK_N, ... below hi. MASKED: the
    blocks may cross the diagonal or the sequence end, so keys after a query are dropped and key
    rows are bounds-checked; otherwise every key is visible to every query and lies before the end,
    and the loads carry no mask at all unless the head dim is padded (PAD_D)."""
    for start_n in range(lo, hi, BLOCK_N):
        offs_n = start_n + tl.arange(0, BLOCK_N)
        k_ptrs = k_ptr + offs_n[:, None] * stride_kn + offs_d[None, :] * stride_kd
        v_ptrs = v_ptr + offs_n[:, None] * stride_vn + offs_d[None, :] * stride_vd
        k = load_tile(k_ptrs, offs_n, offs_d, N, D, MASKED, PAD_D)
        scores = tl.dot(q, tl.trans(k), input_precision=DOT_PRECISION) * qk_scale  # (BLOCK_M, BLOCK_N)
        if MASKED:
            # a key past the end sits after every real query, so the causal test drops it too
            scores = tl.where(offs_m[:, None] >= offs_n[None, :], scores, float("-inf"))
        # key 0 is visible to every row and comes first, so m_new is finite from the first block on
        m_new = tl.maximum(m_i, tl.max(scores, axis=1))
        p = tl.exp2(scores - m_new[:, None])
        alpha = tl.exp2(m_i - m_new)
        l_i = l_i * alpha + tl.sum(p, axis=1)
        v = load_tile(v_ptrs, offs_n, offs_d, N, D, MASKED, PAD_D)
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision=DOT_PRECISION)
        m_i = m_new
    return acc, l_i, m_i


@triton.jit
def _attn_fwd_kernel(
    q_ptr,    # (B, H, N, D) queries, strides stride_q*
    k_ptr,    # (B, H, N, D) keys, strides stride_k*
    v_ptr,    # (B, H, N, D) values, strides stride_v*
    o_ptr,    # (B, H, N, D) written: output, strides stride_o*
    lse_ptr,  # (B*H, N) fp32 written: natural-log log-sum-exp of each row of scaled scores
    sm_scale,
    stride_qb, stride_qh, stride_qn, stride_qd,
    stride_kb, stride_kh, stride_kn, stride_kd,
    stride_vb, stride_vh, stride_vn, stride_vd,
    stride_ob, stride_oh, stride_on, stride_od,
    H, N, D,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, PAD_D: tl.constexpr,
    DOT_PRECISION: tl.constexpr,
):
    # the longest (bottom) query blocks are launched first so the ragged causal tail fills in last
    start_m = (tl.num_programs(0) - 1 - tl.program_id(0)) * BLOCK_M
    bh = tl.program_id(1)
    batch = (bh // H).to(tl.int64)
    head = (bh % H).to(tl.int64)
    k_ptr += batch * stride_kb + head * stride_kh
    v_ptr += batch * stride_vb + head * stride_vh

    offs_m = start_m + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    mask = (offs_m < N)[:, None] & (offs_d < D)[None, :]
    q = tl.load(q_ptr + batch * stride_qb + head * stride_qh + offs_m[:, None] * stride_qn
                + offs_d[None, :] * stride_qd, mask=mask, other=0.0)
    qk_scale = sm_scale * 1.4426950408889634  # fold log2(e) in once, then use exp2
    m_i = tl.full((BLOCK_M,), float("-inf"), dtype=tl.float32)
    l_i = tl.zeros((BLOCK_M,), dtype=tl.float32)
    acc = tl.zeros((BLOCK_M, BLOCK_D), dtype=tl.float32)
    # stage 1: key blocks ending at or before the first query of this block, seen by all its rows
    unmasked_end = ((start_m + 1) // BLOCK_N) * BLOCK_N
    acc, l_i, m_i = _attn_fwd_blocks(acc, l_i, m_i, q, k_ptr, v_ptr, stride_kn, stride_kd,
                                     stride_vn, stride_vd, offs_m, offs_d, 0, unmasked_end,
                                     qk_scale, N, D, False, BLOCK_N, PAD_D, DOT_PRECISION)
    # stage 2: the blocks crossing the diagonal; keys beyond the block's last query are never needed
    acc, l_i, m_i = _attn_fwd_blocks(acc, l_i, m_i, q, k_ptr, v_ptr, stride_kn, stride_kd,
                                     stride_vn, stride_vd, offs_m, offs_d, unmasked_end,
                                     tl.minimum(start_m + BLOCK_M, N), qk_scale, N, D, True,
                                     BLOCK_N, PAD_D, DOT_PRECISION)

    acc = acc / l_i[:, None]
    lse = (m_i + tl.log2(l_i)) * 0.6931471805599453  # back from base 2 to natural log
    tl.store(lse_ptr + bh.to(tl.int64) * N + offs_m, lse, mask=offs_m < N)
    tl.store(o_ptr + batch * stride_ob + head * stride_oh + offs_m[:, None] * stride_on
             + offs_d[None, :] * stride_od, acc.to(o_ptr.dtype.element_ty), mask=mask)


_attn_fwd_narrow = autotuned(  # head dims up to 128
    _attn_fwd_kernel, [(64, 64, 4, 3), (128, 64, 8, 3), (128, 32, 4, 3), (128, 128, 8, 2), (64, 32, 4, 4)])
_attn_fwd_wide = autotuned(  # head dims 129..256
    _attn_fwd_kernel, [(32, 32, 4, 1), (64, 32, 4, 2), (64, 64, 8, 2), (128, 32, 8, 2), (128, 64, 8, 1)])


def check_attention_inputs(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    """Refuse, with a message naming what is valid, q, k, v our attention kernels cannot take."""
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor) or t.dim() != 4:
            got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise ValueError(f"attention: {name} must be a 4-D (B, H, N, D) tensor, got {got}")
    if not (q.shape == k.shape == v.shape):
        raise ValueError(f"attention: q, k, v shapes differ: {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    if not (q.dtype == k.dtype == v.dtype) or q.dtype not in _DTYPES:
        raise ValueError(f"attention: q, k, v must share one dtype among fp16/bf16/fp32, "
                         f"got {q.dtype}, {k.dtype}, {v.dtype}")
    if not (q.device == k.device == v.device):
        raise ValueError(f"attention: q, k, v on different devices: {q.device}, {k.device}, {v.device}")
    check_kernel_tensor("attention", q)
    head_dim = q.shape[-1]
    if not MIN_HEAD_DIM <= head_dim <= MAX_HEAD_DIM:
        raise ValueError(f"attention: head dim {head_dim} is not supported; valid: any head dim from "
                         f"{MIN_HEAD_DIM} to {MAX_HEAD_DIM} (e.g. 64, 80, 128, 160, 256)")


def strides(t: torch.Tensor) -> tuple[int, int, int, int]:
    return tuple(t.stride())


def output_like(q: torch.Tensor, given: torch.Tensor | None, name: str) -> torch.Tensor:
    """A fresh contiguous tensor shaped like q, or `given` once checked to match it."""
    if given is None:
        return torch.empty(q.shape, dtype=q.dtype, device=q.device)
    if given.shape != q.shape or given.dtype != q.dtype or given.device != q.device:
        raise ValueError(f"attention: {name} must match q's shape, dtype and device")
    return given


def default_scale(head_dim: int) -> float:
    return 1.0 / math.sqrt(head_dim)


def launch_args(q: torch.Tensor, scale: float | None) -> dict:
    """The scalar and constexpr arguments every attention kernel takes, from q's shape and dtype."""
    batch, heads, seq_len, head_dim = q.shape
    block_d = max(16, triton.next_power_of_2(head_dim))
    return dict(
        sm_scale=default_scale(head_dim) if scale is None else float(scale),
        H=heads, N=seq_len, D=head_dim, BLOCK_D=block_d, PAD_D=block_d != head_dim,
        DOT_PRECISION="ieee" if q.dtype == torch.float32 else "tf32",  # tf32 is ignored for 16-bit
    )


def attention_fwd(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float | None = None,
                  out: torch.Tensor | None = None, traceable: bool = False
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward launcher: returns (o (B, H, N, D), lse (B*H, N) fp32). `out` may be preallocated;
    `traceable` only from inside a torch op (kernels/launch.py, `wrap_triton`)."""
    check_attention_inputs(q, k, v)
    batch, heads, seq_len, _ = q.shape
    o = output_like(q, out, "out")
    lse = torch.empty((batch * heads, seq_len), dtype=torch.float32, device=q.device)
    if q.numel() == 0:
        return o, lse
    args = launch_args(q, scale)
    kernel = _attn_fwd_wide if args["BLOCK_D"] > WIDE_HEAD else _attn_fwd_narrow
    grid = lambda meta: (triton.cdiv(seq_len, meta["BLOCK_M"]), batch * heads)  # noqa: E731
    wrap_triton(kernel, traceable)[grid](q, k, v, o, lse, args.pop("sm_scale"),
                                         *strides(q), *strides(k), *strides(v), *strides(o), **args)
    return o, lse


# the kernels by name, for tests (which force block shapes on the autotuned ones) and kernels.gpu_compile
KERNELS = {"fwd_narrow": _attn_fwd_narrow, "fwd_wide": _attn_fwd_wide}

__all__ = ["attention_fwd", "check_attention_inputs", "launch_args", "output_like", "strides", "default_scale",
           "autotuned", "KERNELS", "MIN_HEAD_DIM", "MAX_HEAD_DIM", "WIDE_HEAD"]

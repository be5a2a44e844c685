"""A pre-LayerNorm GPT (Radford et al. 2019; the layout of nanoGPT), small enough to read in one go.

Attention and LayerNorm are not hard-wired: each is looked up once, at construction, in the
`kernels` registry by the config's `attn` and `norm` strings, so the same model runs on our
Triton kernels, on PyTorch's SDPA, or on the explicit reference, for benchmarking and teaching.
Token embeddings are learned and shared with the output layer; positions are rotary (Su et al.
2021), applied to queries and keys inside attention, so a model has no position parameters and an
example scores alike at any offset in a packed context.

For decoding, `forward` also takes a `KVCache`: the tokens given are appended after those the
cache has seen, at the right rotary positions, and each layer's rotated keys and values are kept,
so a generator feeds one new token per step instead of the whole prefix (`minigpt.generate`).

Activation checkpointing (Chen et al. 2016, "Training Deep Nets with Sublinear Memory Cost"): with
`activation_checkpointing` set (the trainer sets it around its own forward pass only), each block
keeps just its input and recomputes its activations during the backward pass
(`torch.utils.checkpoint`, non-reentrant). Evaluation and KV-cached decoding, which run without
gradients, never recompute.
"""
from __future__ import annotations

import math
from contextlib import contextmanager

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from kernels import resolve_attention, resolve_norm

from .config import GPTConfig


class LayerNorm(nn.Module):
    """LayerNorm whose arithmetic comes from the registry (`F.layer_norm` or our Triton kernel)."""

    def __init__(self, dim: int, norm_fn):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.norm_fn = norm_fn

    def forward(self, x):
        return self.norm_fn(x, self.weight, self.bias, 1e-5)


def rotary_tables(head_dim: int, max_len: int, base: float = 10000.0):
    """cos and sin tables (max_len, head_dim/2) for rotary position embeddings (Su et al. 2021)."""
    inv_freq = 1.0 / base ** (torch.arange(0, head_dim, 2).float() / head_dim)
    angles = torch.outer(torch.arange(max_len).float(), inv_freq)  # (T, hs/2)
    return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate each pair (x[2i], x[2i+1]) of x (B, nh, T, hs) by position-dependent angles."""
    x1, x2 = x[..., 0::2], x[..., 1::2]
    out = torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)
    return out.flatten(-2).type_as(x)


class LayerKV:
    """One layer's cached keys and values, (B, nh, length, hs) each, in the dtype they arrive in
    (bf16 under CUDA autocast). Each write appends by concatenation, so the tensors attention
    reads stay contiguous: on CPU that measured faster than writing into a preallocated
    (B, nh, block_size, hs) buffer and attending to a slice of it (docstring of minigpt.generate)."""

    def __init__(self):
        self.k: torch.Tensor | None = None
        self.v: torch.Tensor | None = None

    def write(self, k: torch.Tensor, v: torch.Tensor, start: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Append k, v (B, nh, T, hs), the positions start..start+T-1; return all keys and values."""
        if start == 0 or self.k is None:
            if start != 0:
                raise ValueError(f"an empty layer cache cannot continue at position {start}")
            self.k, self.v = k, v
        else:
            if self.k.shape[0] != k.shape[0] or self.k.shape[2] != start:
                raise ValueError(f"this cache holds {self.k.shape[0]} sequences of "
                                 f"{self.k.shape[2]} tokens; got {k.shape[0]} continuing at {start}")
            self.k, self.v = torch.cat([self.k, k], dim=2), torch.cat([self.v, v], dim=2)
        return self.k, self.v


class KVCache:
    """The keys and values of every layer for a batch of sequences that all have `length` tokens.

    Made by `GPT.new_kv_cache()` and filled by `GPT.forward(idx, cache=...)`: the first call (the
    prefill) stores the prompt's keys and values, each later call appends its tokens after them.
    Every row of the batch shares one length, so prompts of different lengths go in separate
    caches (`minigpt.generate` groups them by length)."""

    def __init__(self, n_layer: int, max_len: int):
        self.max_len = max_len
        self.length = 0
        self.layers = [LayerKV() for _ in range(n_layer)]


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig, attn_fn):
        super().__init__()
        self.n_head = config.n_head
        self.qkv = nn.Linear(config.n_embd, 3 * config.n_embd)
        self.proj = nn.Linear(config.n_embd, config.n_embd)
        self.attn_fn = attn_fn
        cos, sin = rotary_tables(config.head_dim, config.block_size)
        self.register_buffer("rotary_cos", cos, persistent=False)
        self.register_buffer("rotary_sin", sin, persistent=False)

    def forward(self, x, kv: LayerKV | None = None, start: int = 0):
        """x (B, T, C) at positions start..start+T-1; with `kv`, attend to its cached keys too."""
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        # (B, T, C) -> (B, nh, T, hs)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        cos, sin = self.rotary_cos[start:start + T], self.rotary_sin[start:start + T]
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        if kv is not None:
            k_all, v_all = kv.write(k, v, start)
        if kv is None or start == 0:
            # training, or a cache's prefill: queries and keys are the same T positions, so any
            # registered implementation (our Triton kernel included) computes it
            y = self.attn_fn(q, k, v)                   # (B, nh, T, hs), causal
        elif T == 1:
            # a decode step: one query, the newest position, sees every cached key, so no mask.
            # Torch's SDPA, not the registry's function: our Triton kernel needs equal q and k
            # lengths (and every registered function applies a causal mask aligned at position 0)
            y = F.scaled_dot_product_attention(q, k_all, v_all)
        else:
            # several new tokens after a cache: query i (position start+i) sees keys 0..start+i
            visible = (torch.arange(start + T, device=x.device)
                       <= torch.arange(start, start + T, device=x.device)[:, None])
            y = F.scaled_dot_product_attention(q, k_all, v_all, attn_mask=visible)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.proj(y)


class Block(nn.Module):
    def __init__(self, config: GPTConfig, attn_fn, norm_fn):
        super().__init__()
        self.ln_attn = LayerNorm(config.n_embd, norm_fn)
        self.attn = CausalSelfAttention(config, attn_fn)
        self.ln_mlp = LayerNorm(config.n_embd, norm_fn)
        self.mlp = nn.Sequential(
            nn.Linear(config.n_embd, 4 * config.n_embd),
            nn.GELU(),
            nn.Linear(4 * config.n_embd, config.n_embd),
        )

    def forward(self, x, kv: LayerKV | None = None, start: int = 0):
        x = x + self.attn(self.ln_attn(x), kv, start)
        return x + self.mlp(self.ln_mlp(x))


class GPT(nn.Module):
    def __init__(self, config: GPTConfig, device: torch.device | str = "cpu"):
        super().__init__()
        self.config = config
        # resolved once; `auto` becomes a concrete name the run records
        self.attn_impl, attn_fn = resolve_attention(config.attn, device)
        self.norm_impl, norm_fn = resolve_norm(config.norm, device)
        self.tok_emb = nn.Embedding(config.vocab_size, config.n_embd)
        self.blocks = nn.ModuleList(Block(config, attn_fn, norm_fn) for _ in range(config.n_layer))
        self.ln_final = LayerNorm(config.n_embd, norm_fn)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.tok_emb.weight  # weight tying (Press & Wolf 2017)
        self.apply(self._init_weights)
        # GPT-2's scaled init: residual projections shrink with depth so the stream's variance
        # does not grow with the number of blocks
        for name, p in self.named_parameters():
            if name.endswith(("attn.proj.weight", "mlp.2.weight")):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))
        self.activation_checkpointing = False  # see checkpointing()
        self.to(device)

    @staticmethod
    def _init_weights(module):
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    @contextmanager
    def checkpointing(self, enabled: bool = True):
        """Within this block, forward passes that build a graph (gradients on, no cache) keep only
        each block's input and recompute the rest during backward: the same values, less memory,
        about one more forward pass of compute."""
        before, self.activation_checkpointing = self.activation_checkpointing, enabled
        try:
            yield self
        finally:
            self.activation_checkpointing = before

    def new_kv_cache(self) -> KVCache:
        """An empty key/value cache for `forward(idx, cache=...)`, holding up to block_size tokens."""
        return KVCache(len(self.blocks), self.config.block_size)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None,
                cache: KVCache | None = None):
        """idx (B, T) token ids -> logits (B, T, vocab); loss if targets (-100 = ignore) given.

        With `cache`, idx continues the cache's sequences: its tokens sit at positions
        cache.length.., attend to the cached keys as well, and are added to the cache."""
        B, T = idx.shape
        start = 0 if cache is None else cache.length
        if cache is None and T > self.config.block_size:
            raise ValueError(f"sequence of {T} tokens exceeds block_size {self.config.block_size}")
        if cache is not None and start + T > cache.max_len:
            raise ValueError(f"{start} cached + {T} new tokens exceed the cache's "
                             f"{cache.max_len} positions (block_size {self.config.block_size})")
        x = self.tok_emb(idx)                            # (B, T, C)
        recompute = self.activation_checkpointing and cache is None and torch.is_grad_enabled()
        for i, block in enumerate(self.blocks):
            if recompute:
                x = checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x) if cache is None else block(x, cache.layers[i], start)
        if cache is not None:
            cache.length += T
        logits = self.lm_head(self.ln_final(x))          # (B, T, vocab)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.view(-1),
                                   ignore_index=-100)
        return logits, loss

    def optimizer_groups(self, weight_decay: float) -> list[dict]:
        """Decay matrices only; biases, LayerNorm parameters and embeddings are not decayed."""
        decay, no_decay = [], []
        for name, p in self.named_parameters():
            (decay if p.dim() >= 2 and "emb" not in name else no_decay).append(p)
        return [{"params": decay, "weight_decay": weight_decay},
                {"params": no_decay, "weight_decay": 0.0}]

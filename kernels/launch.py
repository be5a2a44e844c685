"""What our Triton kernels share on the host: autotune configs, launching, registration as torch ops.

Importing this module imports Triton; the registry (kernels/__init__.py) imports it only when a Triton
kernel is chosen, so a machine without Triton (macOS, Windows) can run everything else.

How the kernels reach torch.compile (torch.library, PyTorch 2.4+ for custom_op, 2.6+ for triton_op):

- Where Triton compiles kernels for a GPU, each op is a `torch.library.triton_op` and every launch
  inside it goes through `torch.library.wrap_triton`: torch.compile traces through the op into its
  Triton kernels, so the graph keeps no opaque call and Inductor schedules the kernels itself.
- Under TRITON_INTERPRET=1 a kernel is a Python function that reads tensor memory, which the fake
  tensors torch.compile traces with do not have. There each op is an opaque
  `torch.library.custom_op` with a separate fake (shape-only) implementation: the compiled graph
  holds one node per op and calls the interpreted kernels when it runs. The same holds on a torch
  that has custom_op but not triton_op.
- On a torch without custom_op (< 2.4) `define_op` returns None and the caller falls back to a
  torch.autograd.Function, which torch.compile cannot trace without a graph break.
"""
from __future__ import annotations

import os
from typing import Callable

import torch
import triton

# Triton decides at decoration time whether a kernel is compiled or interpreted; so do we
INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"
HAS_CUSTOM_OP = hasattr(torch.library, "custom_op") and hasattr(torch.library, "register_fake")
# wrap_triton was called capture_triton in torch 2.5; the triton_op path needs the current names
TRACEABLE = (not INTERPRET and hasattr(torch.library, "triton_op")
             and hasattr(torch.library, "wrap_triton"))
OP_NAMESPACE = "minigpt"


def autotune_configs(gpu_shapes: list[tuple[int, int, int, int]]) -> list[triton.Config]:
    """(BLOCK_M, BLOCK_N, num_warps, num_stages) candidates on a GPU; one small config under the
    interpreter (it runs programs one at a time, and a single config skips the autotuner's timing)."""
    if INTERPRET:
        return [triton.Config({"BLOCK_M": 16, "BLOCK_N": 16}, num_warps=1, num_stages=1)]
    return [triton.Config({"BLOCK_M": m, "BLOCK_N": n}, num_warps=w, num_stages=s)
            for m, n, w, s in gpu_shapes]


def wrap_triton(kernel, traceable: bool):
    """What a launcher indexes with its grid: `torch.library.wrap_triton(kernel)` when the launch
    runs inside one of our triton_ops (`traceable`; inside an eager op call torch hands back the
    bare kernel, under torch.compile it records the launch in the graph), else `kernel` itself.
    A direct call must not be wrapped: outside an op, torch would route every eager launch through
    its triton-kernel higher-order op, which is slower and keeps a record of each call. Named after
    torch's function so that torch's source analysis of a triton_op body, which keys the
    AOTAutograd cache on the kernels' source, finds our kernels."""
    return torch.library.wrap_triton(kernel) if traceable and TRACEABLE else kernel


def define_op(name: str, impl: Callable, fake: Callable) -> Callable | None:
    """Register `impl` (type-annotated, returns fresh tensors, mutates nothing) as torch op
    `minigpt::<name>` and return it; `fake` computes the outputs' shapes, dtypes and strides alone.

    A triton_op traces `impl` itself with fake tensors, so `fake` is used only for the opaque
    custom_op; both must agree, which tests/test_kernel_compile.py checks under the interpreter.
    Returns None where torch has no custom_op."""
    qualified = f"{OP_NAMESPACE}::{name}"
    if TRACEABLE:
        return torch.library.triton_op(qualified, impl, mutates_args=())
    if not HAS_CUSTOM_OP:
        return None
    op = torch.library.custom_op(qualified, impl, mutates_args=())
    op.register_fake(fake)
    return op


__all__ = ["INTERPRET", "HAS_CUSTOM_OP", "TRACEABLE", "OP_NAMESPACE", "autotune_configs", "wrap_triton",
           "define_op"]

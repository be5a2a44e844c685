"""Where our Triton kernels can run, and which tensors they accept: the guards every kernel module
and the registry (kernels/__init__.py) share, in a module of their own so that the kernel modules
need not import the registry that imports them."""
from __future__ import annotations

import os

import torch


def triton_unavailable_reason(device: torch.device | str) -> str | None:
    """None if our Triton kernels can run on `device`, else a sentence saying why not."""
    device = torch.device(device)
    try:
        import triton  # noqa: F401
    except ImportError as exc:
        return (f"Triton is not installed or cannot be imported ({exc}); it has wheels for Linux "
                f"only (pip install triton)")
    if device.type == "cuda":
        return None
    if device.type == "cpu" and os.environ.get("TRITON_INTERPRET") == "1":
        return None
    return (f"Triton kernels need a CUDA device, or TRITON_INTERPRET=1 set before import for CPU "
            f"tensors; got device '{device}'")


KERNEL_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def check_kernel_tensor(op: str, t: torch.Tensor) -> None:
    """Refuse, with a message naming what is valid, a tensor our Triton kernels would mishandle.

    Without this guard a CPU tensor outside the interpreter fails deep inside Triton with "0 active
    drivers", an integer tensor returns zeros, and bf16 under the interpreter returns values wrong
    by up to 1e8 (the interpreter emulates fp32 and fp16 only)."""
    reason = triton_unavailable_reason(t.device)
    if reason is not None:
        raise ValueError(f"{op}: {reason}")
    if t.dtype not in KERNEL_DTYPES:
        raise ValueError(f"{op}: dtype {t.dtype} is not supported; valid: float32, float16, bfloat16")
    if t.device.type == "cpu" and t.dtype == torch.bfloat16:
        raise ValueError(f"{op}: bfloat16 cannot run under Triton's CPU interpreter (it computes wrong "
                         f"values); use float32 or float16 on CPU, or bfloat16 on a CUDA GPU")

"""Test-wide set-up.

Triton decides at decoration time whether a kernel is compiled or interpreted, so with no CUDA
device TRITON_INTERPRET=1 must be in the environment before `kernels.attention` or
`kernels.layer_norm` is first imported. Setting it here, before any test module is collected,
lets the kernel tests run on CPU tensors through Triton's interpreter (fp32/fp16, small shapes).
"""
import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

"""Our Triton kernels given bad input: a clear error naming what is valid, never wrong numbers."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
cpu_only = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU interpreter path")


@cpu_only
@pytest.mark.parametrize("dtype", [torch.int32, torch.float64])
def test_layer_norm_refuses_dtypes_it_cannot_compute(dtype):
    from kernels.ops import layer_norm

    x = torch.arange(12).reshape(3, 4).to(dtype)
    with pytest.raises(ValueError, match=f"dtype {dtype} is not supported; valid: float32, float16"):
        layer_norm(x, torch.ones(4), torch.zeros(4))


@cpu_only
def test_bf16_under_the_interpreter_is_refused_not_computed_wrong():
    from kernels.ops import attention
    from kernels.ops import layer_norm

    with pytest.raises(ValueError, match="bfloat16 cannot run under Triton's CPU interpreter"):
        layer_norm(torch.randn(2, 16, dtype=torch.bfloat16))
    q = torch.randn(1, 1, 8, 16, dtype=torch.bfloat16)
    with pytest.raises(ValueError, match="bfloat16 cannot run under Triton's CPU interpreter"):
        attention(q, q, q)


@cpu_only
@pytest.mark.parametrize("value", [0.1, 3.7, -12.345, 1e3])
def test_rows_of_equal_values_normalise_as_exactly_as_pytorch(value):
    """A zero-variance row: any error in the mean is multiplied by 1/sqrt(eps) ~ 316."""
    from kernels.ops import layer_norm

    torch.manual_seed(0)
    x, w, b = torch.full((5, 96), value), torch.randn(96), torch.randn(96)
    exact = F.layer_norm(x.double(), (96,), w.double(), b.double(), 1e-5)
    ours = (layer_norm(x, w, b, 1e-5).double() - exact).abs().max().item()
    torch_err = (F.layer_norm(x, (96,), w, b, 1e-5).double() - exact).abs().max().item()
    assert ours <= max(2 * torch_err, 1e-6)


@cpu_only
def test_cpu_tensors_without_the_interpreter_get_the_registry_message():
    code = ("import torch\nfrom kernels.ops import layer_norm\n"
            "try:\n    layer_norm(torch.randn(2, 8))\nexcept ValueError as e:\n    print('MSG', e)\n")
    env = {k: v for k, v in __import__("os").environ.items() if k != "TRITON_INTERPRET"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert "MSG layer_norm: Triton kernels need a CUDA device, or TRITON_INTERPRET=1" in proc.stdout, \
        proc.stdout + proc.stderr

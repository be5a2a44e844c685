"""Tests for the Triton LayerNorm (kernels/layer_norm.py, through the torch op of kernels/ops.py)
against the float64 reference.

Output and every gradient (dx, dweight, dbias) are compared under one shared random upstream
gradient, on fresh random inputs, across awkward widths (1, 97, 1023, 4096) and leading shapes
whose row counts are multiples of nothing the kernels use (91, 264 rows: the backward's persistent
programs each walk several row blocks, the last one ragged, and their partial sums are reduced).
fp32/fp16 run on CPU through Triton's interpreter (tests/conftest.py sets TRITON_INTERPRET=1);
bf16 needs a GPU.
"""
import pytest
import torch

from kernels.layer_norm import layer_norm_bwd, layer_norm_fwd
from kernels.ops import layer_norm
from kernels.reference import layer_norm_reference

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
gpu = pytest.mark.gpu
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="bf16 needs a CUDA device")

# max |ours - reference| / max(max |reference|, 1): fp32 is rounding noise of an fp32 reduction;
# fp16/bf16 are dominated by rounding the output itself to the storage type
REL_TOL = {torch.float32: 1e-5, torch.float16: 1e-2, torch.bfloat16: 2e-2}
# (8, 33, 100) and (7, 13, 97): 264 and 91 rows, several 8-row blocks (1024-element backward tiles of
# 128-wide rows) for each of the interpreter's 4 persistent backward programs, the last block ragged
SHAPES = [(1, 1, 1), (1, 1, 1023), (3, 1023), (2, 3, 1023), (4, 4096), (3, 7, 256), (8, 33, 100),
          (7, 13, 97)]


def rel_err(ours: torch.Tensor, ref: torch.Tensor) -> float:
    return ((ours.double() - ref).abs().max() / ref.abs().max().clamp_min(1.0)).item()


def make_inputs(shape, dtype, affine=True, seed=0):
    """Fresh random x, weight, bias in `dtype`, plus float64 leaf copies of the same values."""
    gen = torch.Generator().manual_seed(seed)
    width = shape[-1]
    x = torch.randn(shape, generator=gen) * 2 + 0.5
    params = [x]
    if affine:
        params += [torch.randn(width, generator=gen) * 0.5 + 1, torch.randn(width, generator=gen)]
    ours = [p.to(DEVICE, dtype).requires_grad_() for p in params]
    refs = [p.detach().double().requires_grad_() for p in ours]
    upstream = torch.randn(shape, generator=gen).to(DEVICE, dtype)
    return ours, refs, upstream


def check_against_reference(shape, dtype, affine=True):
    ours, refs, upstream = make_inputs(shape, dtype, affine)
    w, b = (ours[1], ours[2]) if affine else (None, None)
    w_ref, b_ref = (refs[1], refs[2]) if affine else (None, None)
    y = layer_norm(ours[0], w, b)
    y_ref = layer_norm_reference(refs[0], w_ref, b_ref)
    assert y.dtype == dtype and y.shape == y_ref.shape
    y.backward(upstream)
    y_ref.backward(upstream.double())
    tol = REL_TOL[dtype]
    assert rel_err(y, y_ref) < tol, "output"
    for name, mine, ref in zip(("dx", "dweight", "dbias"), ours, refs):
        assert mine.grad.dtype == dtype, name
        assert rel_err(mine.grad, ref.grad) < tol, name


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_matches_reference(shape, dtype):
    check_against_reference(shape, dtype)


@pytest.mark.parametrize("shape", [(5, 1023), (2, 1)])
def test_without_weight_and_bias(shape):
    check_against_reference(shape, torch.float32, affine=False)


@gpu
@needs_cuda
@pytest.mark.parametrize("shape", SHAPES + [(8, 16384), (64, 8192)])
def test_bf16_matches_reference(shape):
    check_against_reference(shape, torch.bfloat16)


@pytest.mark.parametrize("shape", [(3, 1023), (2, 1)])
def test_every_output_element_written(shape):
    """Launchers write into NaN-filled buffers; any element left unwritten stays NaN."""
    (x, w, b), (x_ref, w_ref, b_ref), upstream = make_inputs(shape, torch.float32)
    y = torch.full_like(x, float("nan"))
    _, mean, rstd = layer_norm_fwd(x.detach(), w.detach(), b.detach(), out=y)
    dx = torch.full_like(x, float("nan"))
    _, dw, db = layer_norm_bwd(upstream, x.detach(), w.detach(), True, mean, rstd, dx=dx)
    y_ref = layer_norm_reference(x_ref, w_ref, b_ref)
    y_ref.backward(upstream.double())
    for name, mine, ref in (("y", y, y_ref.detach()), ("dx", dx, x_ref.grad), ("dw", dw, w_ref.grad),
                            ("db", db, b_ref.grad)):
        assert torch.isfinite(mine).all(), name
        assert rel_err(mine, ref) < REL_TOL[torch.float32], name
    assert mean.dtype == rstd.dtype == torch.float32


def test_non_contiguous_input():
    """Rows that are not evenly strided, and a last dim that is not unit-stride, both work."""
    gen = torch.Generator().manual_seed(1)
    width = 48
    weight = torch.randn(width, generator=gen).to(DEVICE)
    bias = torch.randn(width, generator=gen).to(DEVICE)
    for x in (torch.randn(5, 3, width, generator=gen).to(DEVICE).transpose(0, 1),
              torch.randn(width, 6, generator=gen).to(DEVICE).t()):
        assert not x.is_contiguous()
        x = x.requires_grad_()
        x_ref = x.detach().double().requires_grad_()
        upstream = torch.randn(x.shape, generator=gen).to(DEVICE)
        y = layer_norm(x, weight, bias)
        y_ref = layer_norm_reference(x_ref, weight.double(), bias.double())
        y.backward(upstream)
        y_ref.backward(upstream.double())
        assert rel_err(y, y_ref) < REL_TOL[torch.float32]
        assert rel_err(x.grad, x_ref.grad) < REL_TOL[torch.float32]


def test_bad_inputs_raise():
    x = torch.randn(2, 8, device=DEVICE)
    with pytest.raises(ValueError):
        layer_norm(x, torch.ones(7, device=DEVICE), torch.zeros(8, device=DEVICE))
    with pytest.raises(ValueError):
        layer_norm(x, torch.ones(8, device=DEVICE), torch.zeros(2, 8, device=DEVICE))
    with pytest.raises(ValueError):
        layer_norm(torch.randn(2, 0, device=DEVICE), None, None)

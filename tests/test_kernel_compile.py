"""Our kernels as torch ops (kernels/ops.py) under torch.compile, and the GPU path traced without a GPU.

- The op contract (schema, fake implementation, autograd registration) is checked by
  `torch.library.opcheck` on every op.
- `torch.compile(model, fullgraph=True)` (which fails on any graph break) compiles a GPT training
  step on our kernels; the forward graph must hold our forward ops, the backward graph our backward
  ops (on a GPU: their Triton kernel launches), and the loss and every gradient must match eager
  mode. On CPU the kernels run in Triton's interpreter, so the ops are opaque there and `aot_eager`
  is the backend (Inductor on CPU works too, but its C++ compile took 2 minutes on the shared two
  cores; docs/benchmarks.md); on a GPU Inductor is tested as well.
- The GPU path (triton_op + wrap_triton) is traced in a subprocess without the interpreter, on fake
  CUDA tensors: every op must decompose into Triton kernel launches with no opaque op left. Nothing
  runs, so this needs no GPU; it catches launch code that torch cannot trace.
- Eager calls (an autograd.Function over the same launchers) and the ops give the same bits.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from kernels import launch, ops
from minigpt.config import GPTConfig
from minigpt.model import GPT

ROOT = Path(__file__).resolve().parents[1]
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
needs_ops = pytest.mark.skipif(ops.attention_fwd_op is None, reason="this torch has no custom ops")


def _randn(*shape, dtype=torch.float32, grad=False, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=gen).to(DEVICE, dtype).requires_grad_(grad)


@needs_ops
def test_opcheck_every_op():
    """Schema, fake tensors against real outputs, autograd registration, and AOT dispatch."""
    q, k, v = (_randn(1, 1, 17, 24, grad=True, seed=s) for s in range(3))
    o, lse = ops.attention_fwd_op(q, k, v, 0.2)
    x, w, b = _randn(2, 3, 24, grad=True), _randn(24, grad=True, seed=1), _randn(24, grad=True, seed=2)
    y, mean, rstd = ops.layer_norm_fwd_op(x, w, b, 1e-5)
    plain = [t.detach() for t in (q, k, v, o, lse)]
    cases = [
        (ops.attention_fwd_op, (q, k, v, 0.2)),
        (ops.attention_bwd_op, (_randn(1, 1, 17, 24, seed=3), *plain, 0.2)),
        (ops.layer_norm_fwd_op, (x, w, b, 1e-5)),
        (ops.layer_norm_fwd_op, (x, None, None, 1e-5)),
        (ops.layer_norm_bwd_op, (_randn(2, 3, 24, seed=4), x.detach(), w.detach(), True,
                                 mean.detach(), rstd.detach())),
    ]
    for op, args in cases:
        torch.library.opcheck(op, args)


def _model() -> GPT:
    torch.manual_seed(0)
    config = GPTConfig(n_layer=1, n_head=2, n_embd=32, vocab_size=19, block_size=20,
                       attn="triton", norm="triton")
    return GPT(config, device=DEVICE)


def _graph_recorder(graphs: list):
    """A torch.compile backend that runs AOTAutograd's graphs as they are (aot_eager) and keeps them."""
    from functorch.compile import make_boxed_func
    from torch._dynamo.backends.common import aot_autograd

    def keep(gm, _inputs):
        graphs.append(gm)
        return make_boxed_func(gm.forward)

    return aot_autograd(fw_compiler=keep, bw_compiler=keep)


def _calls(gm, text: str) -> list[str]:
    return [str(node.target) for node in gm.graph.nodes
            if node.op == "call_function" and text in str(node.target)]


def _compile_step_and_compare(backend):
    """Compile a training step with `backend` (fullgraph: any graph break fails), compare its loss
    and every gradient with eager mode's, and return the compiled model."""
    idx = torch.randint(0, 19, (2, 20), generator=torch.Generator().manual_seed(1)).to(DEVICE)
    targets = torch.roll(idx, 1, dims=1)
    eager, compiled = _model(), _model()
    _, eager_loss = eager(idx, targets)
    eager_loss.backward()
    _, loss = torch.compile(compiled, backend=backend, fullgraph=True)(idx, targets)
    loss.backward()
    assert torch.allclose(loss, eager_loss, rtol=1e-6, atol=0)
    for (name, p), (_, ref) in zip(compiled.named_parameters(), eager.named_parameters()):
        err = (p.grad - ref.grad).abs().max() / ref.grad.abs().max().clamp_min(1e-12)
        assert err < 1e-5, name  # the same kernels; only the ops around them may round differently


@needs_ops
def test_compiled_training_step_matches_eager():
    """The graphs hold our ops (CPU: opaque) or their kernel launches (GPU: traced into), forward
    and backward, and nothing else of ours."""
    graphs = []
    _compile_step_and_compare(_graph_recorder(graphs))
    forward, backward = graphs  # one forward and one backward graph: no graph break
    if launch.TRACEABLE:
        assert not _calls(forward, launch.OP_NAMESPACE) and not _calls(backward, launch.OP_NAMESPACE)
        # attention: 1 launch forward, 3 backward; LayerNorm 1 and 1, three times (two in the block)
        assert len(_calls(forward, "triton_kernel_wrapper")) == 1 + 3
        assert len(_calls(backward, "triton_kernel_wrapper")) == 3 + 3
    else:
        calls = _calls(forward, launch.OP_NAMESPACE)
        assert calls.count("minigpt.attention_fwd.default") == 1
        assert calls.count("minigpt.layer_norm_fwd.default") == 3  # two in the block, the final one
        calls = _calls(backward, launch.OP_NAMESPACE)
        assert calls.count("minigpt.attention_bwd.default") == 1
        assert calls.count("minigpt.layer_norm_bwd.default") == 3


@pytest.mark.gpu
@pytest.mark.skipif(not (torch.cuda.is_available() and launch.TRACEABLE), reason="needs a CUDA device")
def test_inductor_compiles_a_training_step_through_our_kernels():
    """The target: Inductor schedules our Triton kernels itself (on CPU its C++ build of the rest
    takes minutes here, so CPU runs only aot_eager above)."""
    _compile_step_and_compare("inductor")


GPU_TRACE = r"""
import logging
import sys
import torch
try:  # torch internals (what torch.export builds on); a torch that moved them skips the test
    from torch._functorch.aot_autograd import aot_export_module
    from torch._subclasses.fake_tensor import FakeTensorMode
except ImportError as exc:
    print("SKIP", exc)
    sys.exit(0)
from kernels import launch, ops

# without a GPU torch cannot ask Triton which tensors a kernel mutates, warns, and assumes all
logging.getLogger("torch._higher_order_ops.triton_kernel_wrap").setLevel(logging.ERROR)
assert launch.TRACEABLE, "the ops should be triton_ops outside the interpreter"

class Step(torch.nn.Module):
    def forward(self, q, k, v, do, x, w, b, dy):
        o, lse = ops.attention_fwd_op(q, k, v, 0.125)
        grads = ops.attention_bwd_op(do, q, k, v, o, lse, 0.125)
        y, mean, rstd = ops.layer_norm_fwd_op(x, w, b, 1e-5)
        return (o, *grads, y, *ops.layer_norm_bwd_op(dy, x, w, True, mean, rstd))

with FakeTensorMode():
    for head_dim in (64, 160):
        qkv = [torch.randn(2, 3, 40, head_dim, device="cuda", dtype=torch.bfloat16) for _ in range(4)]
        x, dy = (torch.randn(5, 7, 96, device="cuda", dtype=torch.bfloat16) for _ in range(2))
        w, b = (torch.randn(96, device="cuda", dtype=torch.bfloat16) for _ in range(2))
        gm, _ = aot_export_module(Step(), (*qkv, x, w, b, dy), trace_joint=False)
        targets = [str(n.target) for n in gm.graph.nodes if n.op == "call_function"]
        print(head_dim, sum("triton_kernel_wrapper" in t for t in targets),
              sum(launch.OP_NAMESPACE in t for t in targets))
"""


@pytest.mark.skipif(not hasattr(torch.library, "triton_op"), reason="this torch has no triton_op")
def test_gpu_path_traces_into_triton_kernels():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-c", GPU_TRACE], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    if proc.stdout.startswith("SKIP"):
        pytest.skip(proc.stdout.strip())
    # attention: forward 1 + backward 3 (preprocess, dK/dV, dQ); LayerNorm: 1 + 1; no opaque op
    assert proc.stdout.split("\n")[:2] == ["64 6 0", "160 6 0"], proc.stdout + proc.stderr[-2000:]


@needs_ops
def test_eager_functions_and_ops_give_the_same_bits():
    """Eager calls run the launchers in an autograd.Function, compiled ones the registered ops
    (kernels/ops.py); both must give the same outputs and gradients, bit for bit."""
    q, k, v = (_randn(1, 2, 19, 24, grad=True, seed=s) for s in range(3))
    x, w, b = _randn(4, 24, grad=True), _randn(24, grad=True, seed=1), _randn(24, grad=True, seed=2)
    upstream, dy = _randn(1, 2, 19, 24, seed=5), _randn(4, 24, seed=6)
    results = []
    for attention, layer_norm in ((ops.attention, ops.layer_norm),
                                  (lambda *a: ops.attention_fwd_op(*a, 24 ** -0.5)[0],
                                   lambda *a: ops.layer_norm_fwd_op(*a, 1e-5)[0])):
        for t in (q, k, v, x, w, b):
            t.grad = None
        out, y = attention(q, k, v), layer_norm(x, w, b)
        out.backward(upstream)
        y.backward(dy)
        results.append([out, y] + [t.grad for t in (q, k, v, x, w, b)])
    for mine, theirs in zip(*results):
        assert torch.equal(mine, theirs)

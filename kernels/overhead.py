"""Host time per call of our kernels: through the torch op, through an autograd.Function, and alone.

    TRITON_INTERPRET=1 python -m kernels.overhead [--calls 200] [--rounds 15] [--seq-len 0]  # CPU
    python -m kernels.overhead                                                               # GPU

What dispatching our registered torch ops (kernels/ops.py) costs on every call, against calling the
launchers directly and against a plain torch.autograd.Function over the same launchers (which is
what `kernels.ops.attention` and `layer_norm` run in eager mode; the ops serve torch.compile). Each
variant runs attention and LayerNorm, forward alone and forward + backward (`torch.autograd.grad`,
so nothing accumulates), on tiny tensors, `calls` times in a row; the variants alternate within a
round and rounds repeat, so a change in machine load hits all of them alike. The table gives the
median time per call and the median over rounds of each variant's excess over the launchers.

With --seq-len 0 (the default) the tensors are empty: the launchers check their inputs, allocate
their outputs and return before any kernel, so the figures are pure host overhead. With a
positive length the kernels run too; under the interpreter that means Python executing each
program, which dwarfs the overhead.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

VARIANTS = ("launcher", "op", "autograd_function")


def _workloads(device: str, seq_len: int) -> dict[str, dict[str, object]]:
    """{"attention fwd" | ...: {variant: zero-argument callable}}."""
    from . import ops
    from .attention import attention_fwd
    from .attention_backward import attention_bwd
    from .layer_norm import layer_norm_bwd, layer_norm_fwd

    gen = torch.Generator().manual_seed(0)

    def rand(*shape, grad=False):
        return torch.randn(*shape, generator=gen).to(device).requires_grad_(grad)

    q, k, v = (rand(1, 2, seq_len, 16, grad=True) for _ in range(3))
    do = rand(1, 2, seq_len, 16)
    x, w, b = rand(seq_len, 32, grad=True), rand(32, grad=True), rand(32, grad=True)
    dy = rand(seq_len, 32)
    qkv, xwb = (q.detach(), k.detach(), v.detach()), (x.detach(), w.detach(), b.detach())
    scale = 0.25

    def attn_launchers(backward):
        o, lse = attention_fwd(*qkv, scale)
        return attention_bwd(do, *qkv, o, lse, scale) if backward else o

    def ln_launchers(backward):
        y, mean, rstd = layer_norm_fwd(*xwb, 1e-5)
        return layer_norm_bwd(dy, xwb[0], xwb[1], True, mean, rstd) if backward else y

    def through_autograd(fn, inputs, upstream, backward):
        out = fn(*inputs)
        return torch.autograd.grad(out, inputs, upstream) if backward else out

    def attn_op(*t):
        return ops.attention_fwd_op(*t, scale)[0]

    def attn_function(*t):
        return ops.AttentionFunction.apply(*t, scale)

    def ln_op(*t):
        return ops.layer_norm_fwd_op(*t, 1e-5)[0]

    def ln_function(*t):
        return ops.LayerNormFunction.apply(*t, 1e-5)

    loads = {}
    for backward, mode in ((False, "fwd"), (True, "fwd+bwd")):
        loads[f"attention {mode}"] = {
            "launcher": lambda bw=backward: attn_launchers(bw),
            "op": lambda bw=backward: through_autograd(attn_op, (q, k, v), do, bw),
            "autograd_function": lambda bw=backward: through_autograd(attn_function, (q, k, v), do, bw)}
        loads[f"layernorm {mode}"] = {
            "launcher": lambda bw=backward: ln_launchers(bw),
            "op": lambda bw=backward: through_autograd(ln_op, (x, w, b), dy, bw),
            "autograd_function": lambda bw=backward: through_autograd(ln_function, (x, w, b), dy, bw)}
    return loads


def measure(device: str, seq_len: int, calls: int, rounds: int) -> dict[tuple[str, str], list[float]]:
    """{(workload, variant): [microseconds per call, one per round]}, variants alternating."""
    loads = _workloads(device, seq_len)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    times = {(load, variant): [] for load in loads for variant in VARIANTS}
    for fns in loads.values():  # warm-up: first-call compilation, autotuning, caches
        for fn in fns.values():
            fn()
    sync()
    for round_index in range(rounds):
        for load, fns in loads.items():
            order = VARIANTS if round_index % 2 == 0 else VARIANTS[::-1]
            for variant in order:
                start = time.perf_counter()
                for _ in range(calls):
                    fns[variant]()
                sync()
                times[(load, variant)].append((time.perf_counter() - start) / calls * 1e6)
    return times


def print_table(times: dict[tuple[str, str], list[float]]) -> None:
    loads = list(dict.fromkeys(load for load, _ in times))
    print(f"{'workload':<20}" + "".join(f"{v + ' us':>22}" for v in VARIANTS)
          + f"{'op - launcher':>16}{'function - launcher':>22}")
    for load in loads:
        base = times[(load, "launcher")]
        line = f"{load:<20}" + "".join(f"{statistics.median(times[(load, v)]):>22.1f}" for v in VARIANTS)
        for variant, width in (("op", 16), ("autograd_function", 22)):
            excess = [t - b for t, b in zip(times[(load, variant)], base)]
            line += f"{statistics.median(excess):>{width}.1f}"
        print(line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kernels.overhead", description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=200, help="calls per variant per round")
    parser.add_argument("--rounds", type=int, default=15, help="rounds (variants alternate within each)")
    parser.add_argument("--seq-len", type=int, default=0,
                        help="tokens (attention) and rows (LayerNorm); 0: empty tensors, host time alone")
    args = parser.parse_args(argv)
    if args.calls < 1 or args.rounds < 1 or args.seq_len < 0:
        parser.error("--calls and --rounds must be positive and --seq-len not negative")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    from . import triton_unavailable_reason
    reason = triton_unavailable_reason(device)
    if reason is not None:
        parser.error(reason)
    import triton
    print(f"device {device} | torch {torch.__version__} | triton {triton.__version__} | "
          f"threads {torch.get_num_threads()} | seq_len {args.seq_len} | {args.calls} calls x "
          f"{args.rounds} rounds", flush=True)
    print_table(measure(device, args.seq_len, args.calls, args.rounds))
    return 0


if __name__ == "__main__":
    sys.exit(main())

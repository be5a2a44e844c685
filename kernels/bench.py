"""Benchmarks: our Triton attention and LayerNorm against PyTorch's own, on one GPU.

    python -m kernels.bench {attention,layernorm,all} [--out DIR] [--quick]

Timing is `triton.testing.do_bench`, median, for forward, backward and forward+backward.

attention: causal, bf16, B*N = 16384 tokens per call, hidden 2048 (H = 2048 / D), N from 512 to
  8192, D in {64, 128} (16..256 with --head-dims; H = 2048 // D). Ours against every SDPA backend (flash, cuDNN, memory-efficient, math),
  each pinned with `torch.nn.attention.sdpa_kernel`; a backend that refuses a shape is noted and
  skipped. TFLOP/s uses FlashAttention's convention: causal forward = 2*B*H*N^2*D, backward = 2.5x.
layernorm: bf16, M*N = 2^26 elements, widths 256..8192. Ours against `F.layer_norm` eager and
  `torch.compile`d. GB/s counts forward as 2*M*N*bytes, backward as 3*M*N*bytes.

Ours is called as the model calls it, through kernels/ops.py (in eager mode an autograd.Function
over the launchers). Host overhead per call is measured separately, on CPU or GPU, by
`python -m kernels.overhead`.

Results are data first: one CSV per kind under --out (default bench_out/), then a PNG drawn from
that CSV alone (`plot_csv`), and a table of ours / each reference printed to stdout.
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

MIN_HEAD_DIM, MAX_HEAD_DIM = 16, 256  # kernels/attention.py's range (not imported: it needs Triton)
KINDS = ("attention", "layernorm", "all")
MODES = ("fwd", "bwd", "fwd_bwd")
OURS = "triton"
FIELDS = ["kind", "shape", "x", "series", "provider", "mode", "ms", "metric", "unit", "note"]


def _median_ms(fn, grad_to_none, quick: bool) -> float:
    from triton.testing import do_bench
    return do_bench(fn, warmup=10 if quick else 25, rep=30 if quick else 100,
                    grad_to_none=grad_to_none, return_mode="median")


def _time_modes(forward, inputs, quick: bool) -> dict[str, float]:
    """Median ms of forward, backward alone (graph kept), and forward+backward of `forward()`."""
    out = forward()
    upstream = torch.randn_like(out)
    times = {"fwd": _median_ms(forward, None, quick)}
    times["bwd"] = _median_ms(lambda: out.backward(upstream, retain_graph=True), inputs, quick)
    times["fwd_bwd"] = _median_ms(lambda: forward().backward(upstream), inputs, quick)
    return times


def _attention_providers():
    """name -> attention fn(q, k, v). SDPA backends are pinned one at a time."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from .ops import attention

    def pinned(backend):
        def run(q, k, v):
            with sdpa_kernel(backend):
                return F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return run

    providers = {OURS: attention}
    for name in ("FLASH_ATTENTION", "CUDNN_ATTENTION", "EFFICIENT_ATTENTION", "MATH"):
        backend = getattr(SDPBackend, name, None)
        if backend is not None:
            providers[f"sdpa_{name.split('_')[0].lower()}"] = pinned(backend)
    return providers


def bench_attention(quick: bool, seq_lens=None, head_dims=None) -> list[dict]:
    rows = []
    seq_lens = seq_lens or ((512, 1024) if quick else (512, 1024, 2048, 4096, 8192))
    providers = _attention_providers()
    for head_dim in head_dims or (64, 128):
        for seq_len in seq_lens:
            batch, heads = 16384 // seq_len, 2048 // head_dim
            shape = f"B{batch} H{heads} N{seq_len} D{head_dim}"
            fwd_flops = 2.0 * batch * heads * seq_len ** 2 * head_dim
            flops = {"fwd": fwd_flops, "bwd": 2.5 * fwd_flops, "fwd_bwd": 3.5 * fwd_flops}
            gen = torch.Generator(device="cuda").manual_seed(0)
            qkv = [torch.randn(batch, heads, seq_len, head_dim, device="cuda", dtype=torch.bfloat16,
                               generator=gen).requires_grad_() for _ in range(3)]
            for name, fn in providers.items():
                base = dict(kind="attention", shape=shape, x=seq_len, series=f"D{head_dim}", provider=name)
                try:
                    times = _time_modes(lambda fn=fn, qkv=qkv: fn(*qkv), qkv, quick)
                except Exception as exc:  # a backend that cannot run this shape (or OOM) is skipped
                    note = f"skipped: {type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"
                    print(f"  {shape} {name}: {note}")
                    rows += [dict(base, mode=m, ms="", metric="", unit="TFLOP/s", note=note) for m in MODES]
                    torch.cuda.empty_cache()
                    continue
                rows += [dict(base, mode=m, ms=times[m], metric=flops[m] / (times[m] * 1e-3) / 1e12,
                              unit="TFLOP/s", note="") for m in MODES]
            qkv = None  # free this shape's inputs before the next allocation
            torch.cuda.empty_cache()
    return rows


def bench_layernorm(quick: bool, widths=None) -> list[dict]:
    from .ops import layer_norm

    def torch_ln(x, w, b):
        return F.layer_norm(x, (x.shape[-1],), w, b, 1e-5)

    # The backward is timed on a kept graph (retain_graph=True); a compiled backward that donates
    # its saved buffers refuses that (seen on an H200, torch 2.11, widths >= 2048), so keep them.
    import torch._functorch.config as functorch_config
    if hasattr(functorch_config, "donated_buffer"):
        functorch_config.donated_buffer = False
    providers = {OURS: layer_norm, "torch": torch_ln, "torch_compile": torch.compile(torch_ln)}
    rows = []
    widths = widths or ((256, 1024, 4096) if quick else (256, 512, 1024, 2048, 4096, 8192))
    for width in widths:
        n_rows = 2 ** 26 // width
        elem_bytes = 2
        moved = {"fwd": 2 * n_rows * width * elem_bytes, "bwd": 3 * n_rows * width * elem_bytes}
        moved["fwd_bwd"] = moved["fwd"] + moved["bwd"]
        gen = torch.Generator(device="cuda").manual_seed(0)
        x = torch.randn(n_rows, width, device="cuda", dtype=torch.bfloat16, generator=gen).requires_grad_()
        w = torch.randn(width, device="cuda", dtype=torch.bfloat16, generator=gen).requires_grad_()
        b = torch.randn(width, device="cuda", dtype=torch.bfloat16, generator=gen).requires_grad_()
        for name, fn in providers.items():
            base = dict(kind="layernorm", shape=f"M{n_rows} N{width}", x=width, series="bf16", provider=name)
            try:
                times = _time_modes(lambda: fn(x, w, b), [x, w, b], quick)
            except Exception as exc:
                note = f"skipped: {type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"
                print(f"  width {width} {name}: {note}")
                rows += [dict(base, mode=m, ms="", metric="", unit="GB/s", note=note) for m in MODES]
                continue
            rows += [dict(base, mode=m, ms=times[m], metric=moved[m] / (times[m] * 1e-3) / 1e9,
                          unit="GB/s", note="") for m in MODES]
    return rows


def print_table(rows: list[dict]) -> None:
    """One line per (shape, mode): our figure, then each reference's figure and ours / theirs."""
    if not rows:
        return
    refs = list(dict.fromkeys(r["provider"] for r in rows if r["provider"] != OURS))
    by_key = {(r["shape"], r["mode"], r["provider"]): r["metric"] for r in rows}
    unit = rows[0]["unit"]
    header = f"{'shape':<24}{'mode':<9}{OURS + ' ' + unit:>16}" + "".join(f"{p:>16}{'ratio':>8}" for p in refs)
    print(f"\n{rows[0]['kind']} ({unit}; ratio = ours / reference)\n{header}\n{'-' * len(header)}")
    for shape in dict.fromkeys(r["shape"] for r in rows):
        for mode in MODES:
            ours = by_key.get((shape, mode, OURS), "")
            line = f"{shape:<24}{mode:<9}{_fmt(ours):>16}"
            for ref in refs:
                theirs = by_key.get((shape, mode, ref), "")
                ratio = f"{ours / theirs:.2f}" if ours != "" and theirs not in ("", 0) else "-"
                line += f"{_fmt(theirs):>16}{ratio:>8}"
            print(line)


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive whole numbers, got {text!r}")
    return values


def _fmt(value) -> str:
    return "-" if value == "" else f"{value:.1f}"


def write_csv(rows: list[dict], path: Path) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)


def plot_csv(csv_path: Path, png_path: Path) -> None:
    """Draw a results CSV: one panel per (series, mode), metric against x, one line per provider."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with csv_path.open() as handle:
        rows = [r for r in csv.DictReader(handle) if r["metric"]]
    if not rows:
        return
    series = list(dict.fromkeys(r["series"] for r in rows))
    fig, axes = plt.subplots(len(series), len(MODES), figsize=(5 * len(MODES), 3.6 * len(series)),
                             squeeze=False)
    for i, ser in enumerate(series):
        for j, mode in enumerate(MODES):
            ax = axes[i][j]
            for provider in dict.fromkeys(r["provider"] for r in rows):
                points = sorted((int(r["x"]), float(r["metric"])) for r in rows
                                if r["series"] == ser and r["mode"] == mode and r["provider"] == provider)
                if points:
                    ax.plot(*zip(*points), marker="o", label=provider,
                            linewidth=2.5 if provider == OURS else 1.2)
            ax.set_xscale("log", base=2)
            ax.set_title(f"{rows[0]['kind']} {ser} {mode}")
            ax.set_xlabel("sequence length" if rows[0]["kind"] == "attention" else "row width")
            ax.set_ylabel(rows[0]["unit"])
            ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png_path, dpi=120)
    plt.close(fig)


def _environment() -> str:
    import triton
    return (f"{torch.cuda.get_device_name()} | torch {torch.__version__} | triton {triton.__version__}"
            f" | CUDA {torch.version.cuda}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kernels.bench", description=__doc__.split("\n")[0])
    parser.add_argument("kind", choices=KINDS, help="what to benchmark")
    parser.add_argument("--out", type=Path, default=Path("bench_out"), help="folder for CSV and PNG files")
    parser.add_argument("--quick", action="store_true", help="fewer shapes and shorter timing runs")
    parser.add_argument("--seq-lens", type=_ints, default=None,
                        help="attention sequence lengths, e.g. 1024,4096 (default: 512..8192)")
    parser.add_argument("--head-dims", type=_ints, default=None, help="attention head dims (default: 64,128)")
    parser.add_argument("--widths", type=_ints, default=None,
                        help="LayerNorm row widths, e.g. 1024,8192 (default: 256..8192)")
    args = parser.parse_args(argv)
    if args.head_dims and any(d < MIN_HEAD_DIM or d > MAX_HEAD_DIM for d in args.head_dims):
        parser.error(f"--head-dims {args.head_dims}: the kernel takes head dims "
                     f"{MIN_HEAD_DIM}..{MAX_HEAD_DIM}")
    if args.seq_lens and any(n > 16384 or 16384 % n for n in args.seq_lens):
        parser.error(f"--seq-lens {args.seq_lens}: each must divide 16384 (tokens per call)")
    if args.widths and any(w > 2 ** 16 or 2 ** 26 % w for w in args.widths):
        parser.error(f"--widths {args.widths}: each must be a power of two up to 65536")
    if not torch.cuda.is_available():
        print("kernels.bench: no CUDA GPU is present, so there is nothing to benchmark; "
              "run this on a machine with an NVIDIA GPU.")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    print(_environment())
    suites = {"attention": lambda q: bench_attention(q, args.seq_lens, args.head_dims),
              "layernorm": lambda q: bench_layernorm(q, args.widths)}
    for kind in (("attention", "layernorm") if args.kind == "all" else (args.kind,)):
        print(f"benchmarking {kind} ...", flush=True)
        rows = suites[kind](args.quick)
        csv_path = args.out / f"{kind}.csv"
        write_csv(rows, csv_path)
        plot_csv(csv_path, args.out / f"{kind}.png")
        print_table(rows)
        print(f"wrote {csv_path} and {args.out / (kind + '.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

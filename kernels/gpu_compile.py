"""Compile every Triton kernel and autotune candidate for a GPU, on any machine: no GPU needed.

    python -m kernels.gpu_compile [--arch 90] [--dtypes bf16,fp16,fp32] [--quick]

Triton's interpreter (the CPU test path) runs kernels as Python, so code it accepts can still fail
the real compiler, and a tile that fits the interpreter can exceed a GPU's shared memory. This
compiles each kernel ahead of time for the target (Triton's own front end, LLVM and the ptxas that
ships with Triton), then reads the shared memory from the compiled kernel and the registers and
spills from `ptxas -v`. A candidate over the shared-memory limit is only reported: the autotuner
skips it at run time. The exit status is 1 if a kernel fails to compile, or if some (kernel, head
class, dtype) has no candidate that fits, since the autotuner would then have nothing to run.

Inputs are compiled as a launch of contiguous tensors would specialise them: pointers 16-byte
aligned, the head dim's stride 1 (Triton turns a 1 into a constant), the other strides and the head
dim or row width marked divisible by 16 where they are (the cases use head dims 80, 128, 160, 256),
the sequence length and row count general.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile

SMEM_LIMIT = {80: 166912, 86: 101376, 89: 101376, 90: 232448}  # bytes per block, opt-in maximum
DTYPES = ("bf16", "fp16", "fp32")
FP32_POINTERS = {"lse_ptr", "delta_ptr", "mean_ptr", "rstd_ptr", "dw_part_ptr", "db_part_ptr"}
FLOAT_SCALARS = {"sm_scale", "eps"}


def _signature(fn, dtype: str, constexprs: dict, ints: dict) -> tuple[dict, dict, dict]:
    """(signature, constexprs, attrs) for triton.compile, as a launch from our launchers would see:
    pointers 16-byte aligned, head-dim strides 1, and the integers in `ints` specialised as Triton
    specialises them at launch (divisible by 16: an attribute the compiler uses for vector loads)."""
    signature, attrs, constants = {}, {}, dict(constexprs)
    for index, name in enumerate(fn.arg_names):
        if name in constants:
            signature[name] = "constexpr"
        elif name.endswith("_ptr"):
            signature[name] = "*fp32" if name in FP32_POINTERS else f"*{dtype}"
            attrs[(index,)] = [["tt.divisibility", 16]]
        elif name in FLOAT_SCALARS:
            signature[name] = "fp32"
        elif re.fullmatch(r"stride_\w+d", name):
            signature[name], constants[name] = "constexpr", 1
        else:
            signature[name] = "i32"
            # a contiguous tensor's other strides are multiples of its head dim or width
            if ints.get(name, 16 if name.startswith("stride_") else 1) % 16 == 0:
                attrs[(index,)] = [["tt.divisibility", 16]]
    return signature, constants, attrs


def _ptxas_usage(ptx: str, arch: int) -> tuple[int, int]:
    """(registers per thread, spill-store bytes) that ptxas reports for `ptx`."""
    from triton.backends.nvidia.compiler import get_ptxas

    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "kernel.ptx")
        with open(src, "w") as handle:
            handle.write(ptx)
        log = subprocess.run([get_ptxas(arch).path, "-v", f"--gpu-name=sm_{arch}a", src, "-o",
                              os.path.join(tmp, "kernel.cubin")], capture_output=True, text=True).stderr
    regs = max((int(r) for r in re.findall(r"Used (\d+) registers", log)), default=-1)
    spills = sum(int(s) for s in re.findall(r"(\d+) bytes spill stores", log))
    return regs, spills


def compile_one(fn, dtype: str, constexprs: dict, num_warps: int, num_stages: int, arch: int,
                ints: dict | None = None) -> dict:
    """Compile `fn` (a JITFunction) once; return its resource use or the error."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    signature, constants, attrs = _signature(fn, dtype, constexprs, ints or {})
    try:
        kernel = triton.compile(ASTSource(fn, signature, constants, attrs),
                                target=GPUTarget("cuda", arch, 32),
                                options={"num_warps": num_warps, "num_stages": num_stages})
    except Exception as exc:  # any front-end, LLVM or ptxas failure is what this tool reports
        return {"error": f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1][:200]}"}
    regs, spills = _ptxas_usage(kernel.asm["ptx"], arch)
    return {"shared": kernel.metadata.shared, "regs": regs, "spills": spills}


def _cases(dtype: str, quick: bool):
    """(label, JITFunction, [(block constexprs, num_warps, num_stages)], launch constexprs,
    runtime integers that Triton would specialise)."""
    from . import attention, attention_backward, layer_norm

    precision = "ieee" if dtype == "fp32" else "tf32"
    autotuned = {**attention.KERNELS, **attention_backward.KERNELS}
    for name, kernel in autotuned.items():
        if not hasattr(kernel, "configs"):
            continue
        wide = name.endswith("wide")
        configs = [(c.kwargs, c.num_warps, c.num_stages) for c in kernel.configs[:1 if quick else None]]
        for head_dim in ((256, 160) if wide else (128, 80)):
            block_d = 256 if wide else 128
            yield (f"{name} D{head_dim}", kernel.fn, configs,
                   dict(BLOCK_D=block_d, PAD_D=head_dim != block_d, DOT_PRECISION=precision),
                   {"D": head_dim})
    yield ("preprocess D160", attention_backward.KERNELS["preprocess"], [({"BLOCK_M": 16}, 4, 1)],
           dict(BLOCK_D=256), {"D": 160})
    for width in ((1024,) if quick else (256, 1000, 4096, 8192)):
        for direction, config in (("fwd", layer_norm.fwd_launch_config), ("bwd", layer_norm.bwd_launch_config)):
            block_m, block_n, warps = config(width)
            launch = dict(HAS_WEIGHT=True, HAS_BIAS=True)
            if direction == "bwd":
                launch["NUM_STAGES"] = 2
            yield (f"layer_norm_{direction} N{width}", layer_norm.KERNELS[direction],
                   [({"BLOCK_M": block_m, "BLOCK_N": block_n}, warps, 1)], launch, {"N": width})


def run(arch: int, dtypes: list[str], quick: bool) -> int:
    """Compile every case; print one line per candidate; return the exit status (module docstring)."""
    limit = SMEM_LIMIT.get(arch, SMEM_LIMIT[90])
    failed = False
    print(f"{'kernel':<24}{'dtype':<6}{'config (M, N, warps, stages)':<30}{'shared B':>10}{'regs':>6}"
          f"{'spill B':>9}  verdict")
    for dtype in dtypes:
        for label, fn, configs, launch, ints in _cases(dtype, quick):
            fits = 0
            for blocks, warps, stages in configs:
                result = compile_one(fn, dtype, {**blocks, **launch}, warps, stages, arch, ints)
                shape = f"({blocks.get('BLOCK_M')}, {blocks.get('BLOCK_N', '-')}, {warps}, {stages})"
                if "error" in result:
                    failed = True
                    print(f"{label:<24}{dtype:<6}{shape:<30}  FAILED {result['error']}")
                    continue
                ok = result["shared"] <= limit
                fits += ok
                print(f"{label:<24}{dtype:<6}{shape:<30}{result['shared']:>10}{result['regs']:>6}"
                      f"{result['spills']:>9}  {'ok' if ok else 'over shared memory (skipped)'}", flush=True)
            if not fits:
                failed = True
                print(f"{label:<24}{dtype:<6}no candidate fits sm_{arch}'s {limit} bytes of shared memory")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kernels.gpu_compile", description=__doc__.split("\n")[0])
    parser.add_argument("--arch", type=int, default=90, choices=sorted(SMEM_LIMIT),
                        help="compute capability x10 (90: H100/H200)")
    parser.add_argument("--dtypes", default="bf16,fp16,fp32",
                        help=f"comma-separated, from {', '.join(DTYPES)}")
    parser.add_argument("--quick", action="store_true", help="the first candidate of each kernel only")
    args = parser.parse_args(argv)
    dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    unknown = [d for d in dtypes if d not in DTYPES]
    if unknown or not dtypes:
        parser.error(f"--dtypes {args.dtypes!r}: valid are {', '.join(DTYPES)}")
    if os.environ.get("TRITON_INTERPRET") == "1":
        parser.error("unset TRITON_INTERPRET: the interpreter replaces the kernels this tool compiles")
    try:
        import triton  # noqa: F401
    except ImportError as exc:
        parser.error(f"this tool needs Triton ({exc})")
    return run(args.arch, dtypes, args.quick)


if __name__ == "__main__":
    sys.exit(main())

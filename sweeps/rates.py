"""The device a plan is for (DeviceSpec), measured GPU training rates, and the time of one
training step estimated from them.

MEASURED holds `python -m minigpt.throughput` rows (docs/benchmarks.md), keyed by the device's
name as `torch.cuda.get_device_name()` gives it, the size, and the kernel pair; new measurements
(scripts/gpu_session.sh writes them to throughput_eager.csv) are added as rows. A step is estimated as

    max(host time, device time)

because an eager step's kernel launches are queued by the CPU while the GPU runs earlier ones:
the slower of the two sets the pace (the roofline idea applied to the launch queue).

- **host time** = layers x a per-layer launch time, taken from rows whose step is launch-bound
  (MFU under 1%: the GPU idles, so the step time is all host). Launches grow with the layers;
  measured only at 6-layer sizes so far, so deeper models are extrapolated by the layer count.
- **device time** = the step's FLOPs (minigpt.flops.training_flops) / (peak x MFU), with the
  MFU of rows where the device sets the pace.

Both are interpolated linearly in log(non-embedding parameters) between measured sizes and held
flat beyond them, with the basis saying so ("extrapolated"). A device with no rows takes the MFU
and host times of the first measured device, scaled to its own peak (PEAK_TFLOPS): the MFU-based
fallback. Start-up, Triton autotuning, compilation and evaluations are not in these figures.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from minigpt.config import GPTConfig
from minigpt.flops import count_params, memory_bytes, training_flops

H200_SOURCE = ("docs/benchmarks.md, 2026-12-04: one H200, torch 2.11.0+cu130, Triton 3.6.0, "
               "bf16 autocast, fused AdamW")


@dataclass(frozen=True)
class DeviceSpec:
    """What the plan needs of a device: its name (rates are keyed by it), kind and memory."""
    name: str
    type: str                    # "cpu" or "cuda"
    memory_bytes: float | None   # the GPU's memory, or the machine's RAM; None: unknown

    def __post_init__(self):
        if self.type not in ("cpu", "cuda"):
            raise ValueError(f"device type must be cpu or cuda, got '{self.type}'")


def cpu_name() -> str:
    """The CPU's model name as /proc/cpuinfo gives it, else the platform's, else 'CPU'."""
    import platform
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "CPU"


def describe_device(device: str) -> DeviceSpec:
    """The DeviceSpec of a torch device string of this machine ("cpu", "cuda", "cuda:1")."""
    import torch
    dev = torch.device(device)
    if dev.type == "cuda":
        return DeviceSpec(torch.cuda.get_device_name(dev), "cuda",
                          float(torch.cuda.get_device_properties(dev).total_memory))
    return DeviceSpec(cpu_name(), "cpu", memory_bytes("cpu"))


@dataclass(frozen=True)
class Measurement:
    """One measured training-throughput row (minigpt.throughput's fields)."""
    device: str          # torch.cuda.get_device_name()
    size: str            # a name of minigpt.config.SIZES
    kernels: str         # "triton" (our attention + LayerNorm) or "torch" (SDPA + F.layer_norm)
    mode: str            # "sync" (eager, loss read each step as the trainer does) or "eager"
    batch_size: int
    seq_len: int
    tokens_per_s: float
    source: str = H200_SOURCE

    @property
    def step_s(self) -> float:
        return self.batch_size * self.seq_len / self.tokens_per_s


MEASURED: tuple[Measurement, ...] = (
    # the CPU ladder's batch (32 x 64): launch-bound, 0.05-0.19% MFU
    Measurement("NVIDIA H200", "1m", "triton", "sync", 32, 64, 69_666),
    Measurement("NVIDIA H200", "1m", "triton", "eager", 32, 64, 79_230),
    Measurement("NVIDIA H200", "3m", "triton", "sync", 32, 64, 74_319),
    Measurement("NVIDIA H200", "3m", "triton", "eager", 32, 64, 65_348),
    Measurement("NVIDIA H200", "1m", "torch", "sync", 32, 64, 100_142),
    Measurement("NVIDIA H200", "1m", "torch", "eager", 32, 64, 98_268),
    Measurement("NVIDIA H200", "3m", "torch", "sync", 32, 64, 105_498),
    Measurement("NVIDIA H200", "3m", "torch", "eager", 32, 64, 114_495),
    # 64K tokens a step: the device sets the pace
    Measurement("NVIDIA H200", "10m", "triton", "eager", 64, 1024, 1_444_083),
    Measurement("NVIDIA H200", "100m", "triton", "eager", 64, 1024, 396_716),
    Measurement("NVIDIA H200", "1b", "triton", "eager", 32, 2048, 59_557),
    Measurement("NVIDIA H200", "10m", "torch", "eager", 64, 1024, 1_404_367),
    Measurement("NVIDIA H200", "100m", "torch", "eager", 64, 1024, 403_854),
    Measurement("NVIDIA H200", "1b", "torch", "eager", 32, 2048, 60_727),
)

# dense bf16 TFLOP/s by NVIDIA's datasheets (SXM unless named), matched in this order
PEAK_TFLOPS: tuple[tuple[str, float], ...] = (("H100 PCIe", 756.0), ("H100", 989.0),
                                              ("H200", 989.0))
DEFAULT_PEAK_TFLOPS = 989.0
HOST_BOUND_MFU = 0.01  # a row under this MFU is launch-bound: its step time is host time
MODE_PREFERENCE = ("sync", "eager")  # the trainer reads the loss every step, as "sync" does


@dataclass(frozen=True)
class StepEstimate:
    seconds: float
    basis: str      # what the figure rests on, for the plan's table
    extrapolated: bool


def peak_tflops(device_name: str) -> tuple[float, bool]:
    """(dense bf16 peak, whether it is known) for a device name; unknown ones get the H100's."""
    for key, value in PEAK_TFLOPS:
        if key in device_name:
            return value, True
    return DEFAULT_PEAK_TFLOPS, False


def kernel_pair(attn: str, norm: str) -> str:
    """Which measured kernel pair a sweep's choices run: ours unless both are PyTorch's."""
    return "torch" if attn in ("sdpa", "reference") and norm == "torch" else "triton"


def _params(size: str) -> float:
    return float(count_params(GPTConfig.from_size(size))["non_embedding"])


def _rows(device: str, kernels: str, table, peak: float) -> tuple[list, list]:
    """(launch-bound rows, arithmetic-bound rows) of one device and kernel pair, one per size in
    each: the preferred mode's, then the fewest tokens a step for launch-bound rows (the purest
    host time) and the most for the others (the purest arithmetic)."""
    def rank(row: Measurement, host: bool) -> tuple[int, int]:
        tokens = row.batch_size * row.seq_len
        return MODE_PREFERENCE.index(row.mode), tokens if host else -tokens

    best: dict[tuple[str, bool], Measurement] = {}
    for row in table:
        if row.device == device and row.kernels == kernels and row.mode in MODE_PREFERENCE:
            host = _mfu(row, peak) < HOST_BOUND_MFU
            held = best.get((row.size, host))
            if held is None or rank(row, host) < rank(held, host):
                best[(row.size, host)] = row
    ordered = sorted(best.items(), key=lambda item: _params(item[0][0]))
    return ([r for (_, host), r in ordered if host], [r for (_, host), r in ordered if not host])


def _mfu(row: Measurement, peak: float) -> float:
    config = GPTConfig.from_size(row.size, block_size=row.seq_len)
    flops = training_flops(config, row.batch_size * row.seq_len, row.seq_len)
    return flops / row.step_s / (peak * 1e12)


def log_interpolate(points: list[tuple[float, float, str]], x: float) -> tuple[float, str, bool]:
    """y at x from (x, y, label) points sorted by x, linear in log(x), flat beyond the ends:
    (y, a phrase naming the points it rests on, whether x lies outside them)."""
    if not points:
        raise ValueError("no measured points to interpolate")
    for xa, ya, label in points:
        if math.isclose(x, xa, rel_tol=1e-9):
            return ya, f"measured at {label}", False
    if x < points[0][0]:
        return points[0][1], f"extrapolated from {points[0][2]}", True
    if x > points[-1][0]:
        return points[-1][1], f"extrapolated from {points[-1][2]}", True
    for (xa, ya, la), (xb, yb, lb) in zip(points, points[1:]):
        if xa < x < xb:
            t = (math.log(x) - math.log(xa)) / (math.log(xb) - math.log(xa))
            return ya + t * (yb - ya), f"interpolated {la}-{lb}", False
    raise ValueError(f"points must be sorted by x, got {[p[0] for p in points]}")


def gpu_step_seconds(size: str, batch_size: int, seq_len: int, device_name: str,
                     kernels: str = "triton", table=MEASURED) -> StepEstimate:
    """One training step's estimated seconds on `device_name` (see the module doc)."""
    measured = [r.device for r in table if r.kernels == kernels]
    if not measured:
        raise ValueError(f"no measured rates for kernel pair '{kernels}'; measured: "
                         f"{', '.join(sorted({r.kernels for r in table}))}")
    source = device_name if device_name in measured else measured[0]
    source_peak, _ = peak_tflops(source)
    peak, known = peak_tflops(device_name)
    host, busy = _rows(source, kernels, table, source_peak)
    if not host or not busy:
        raise ValueError(f"the rates of {source} ({kernels}) need a launch-bound row (MFU under "
                         f"{HOST_BOUND_MFU:.0%}) and an arithmetic-bound one")
    config = GPTConfig.from_size(size, block_size=seq_len)
    n = _params(size)
    layer_s, host_at, host_out = log_interpolate(
        [(_params(r.size), r.step_s / GPTConfig.from_size(r.size).n_layer, r.size) for r in host], n)
    mfu, busy_at, busy_out = log_interpolate(
        [(_params(r.size), _mfu(r, source_peak), r.size) for r in busy], n)
    host_s = config.n_layer * layer_s
    device_s = training_flops(config, batch_size * seq_len, seq_len) / (peak * 1e12 * mfu)
    if host_s >= device_s:
        what, at, out = "launch-bound", host_at, host_out
    else:
        what, at, out = f"{mfu:.0%} MFU", busy_at, busy_out
    basis = f"{what}, {at}"
    if source != device_name:
        basis += f"; {source}'s rates" + ("" if known else f", peak assumed {peak:.0f} TFLOP/s")
    return StepEstimate(max(host_s, device_s), basis, out)

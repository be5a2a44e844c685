"""The sweep planner (sweeps.plan, sweeps.rates, sweeps.cpu_timing): rates interpolated in
log-parameters, a step as the slower of launches and arithmetic, the worker schedule simulated,
memory and checkpointing verdicts, `--plan` and `--max-minutes` through the CLI, a plan for every
named sweep on CPU and on simulated GPUs, and the CPU estimate against a measured sweep.
"""
from __future__ import annotations

import math
import os
import re
import shlex
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest

from minigpt.config import SIZES, GPTConfig
from minigpt.flops import estimate_run, training_flops
from sweeps import run
from sweeps.catalog import SWEEPS
from sweeps.cpu_timing import CpuTiming
from sweeps.plan import (RECOMPUTE, build_plan, checkpointed_peak_bytes, cpu_unit_seconds,
                         drop_to_fit, format_plan, refusal, simulate_schedule, trained_steps)
from sweeps.rates import (MEASURED, DeviceSpec, Measurement, gpu_step_seconds, log_interpolate,
                          peak_tflops)
from sweeps.runner import run_sweep

H100 = DeviceSpec("NVIDIA H100 80GB HBM3", "cuda", 80e9)
H200 = DeviceSpec("NVIDIA H200", "cuda", 141e9)
CPU = DeviceSpec("test CPU", "cpu", 16 * 2**30)


# ------------------------------------------------------------------ rates
def test_log_interpolation_is_linear_in_log_x_and_flat_beyond():
    points = [(1.0, 0.0, "a"), (100.0, 2.0, "b"), (1e4, 3.0, "c")]
    assert log_interpolate(points, 10.0)[:2] == (pytest.approx(1.0), "interpolated a-b")
    assert log_interpolate(points, 1e3)[0] == pytest.approx(2.5)
    assert log_interpolate(points, 100.0) == (2.0, "measured at b", False)
    assert log_interpolate(points, 0.5) == (0.0, "extrapolated from a", True)
    assert log_interpolate(points, 1e6) == (3.0, "extrapolated from c", True)


def _mfu(size, batch, seq, tokens_per_s, peak=989e12):
    config = GPTConfig.from_size(size, block_size=seq)
    return training_flops(config, batch * seq, seq) * tokens_per_s / (batch * seq) / peak


def test_a_step_is_the_slower_of_launches_and_arithmetic():
    """A launch-bound row at 1m and an arithmetic-bound one at 100m: a deep model at a small
    batch is paced by its launches (per layer, from 1m), a large batch by the 100m row's MFU."""
    table = (Measurement("GPU X", "1m", "triton", "eager", 32, 64, 80_000),  # not the trainer's
             Measurement("GPU X", "1m", "triton", "sync", 64, 64, 120_000),  # not the fewest tokens
             Measurement("GPU X", "1m", "triton", "sync", 32, 64, 64_000),   # 32 ms a step: this
             Measurement("GPU X", "100m", "triton", "eager", 64, 1024, 400_000))
    per_layer = 32 * 64 / 64_000 / SIZES["1m"][0]
    small = gpu_step_seconds("300m", 4, 64, "GPU X", table=table)
    assert small.seconds == pytest.approx(SIZES["300m"][0] * per_layer)
    assert small.extrapolated and "launch-bound" in small.basis
    mfu = _mfu("100m", 64, 1024, 400_000, peak_tflops("GPU X")[0] * 1e12)
    big = gpu_step_seconds("300m", 256, 1024, "GPU X", table=table)
    flops = training_flops(GPTConfig.from_size("300m", block_size=1024), 256 * 1024, 1024)
    assert big.seconds == pytest.approx(flops / (989e12 * mfu))
    assert f"{mfu:.0%} MFU" in big.basis


def test_every_measured_row_is_reproduced_at_its_own_shape():
    """Launch time extrapolated over layers must not exceed any arithmetic-bound measurement."""
    for row in MEASURED:
        if row.mode == "sync" or not any(r.mode == "sync" and r.size == row.size
                                         and r.kernels == row.kernels for r in MEASURED):
            est = gpu_step_seconds(row.size, row.batch_size, row.seq_len, row.device, row.kernels)
            assert est.seconds == pytest.approx(row.step_s, rel=1e-9), row
            assert not est.extrapolated


def test_an_unmeasured_gpu_takes_the_measured_mfu_at_its_own_peak():
    measured = gpu_step_seconds("1b", 256, 1024, "NVIDIA H200")
    pcie = gpu_step_seconds("1b", 256, 1024, "NVIDIA H100 PCIe")
    assert pcie.seconds == pytest.approx(measured.seconds * 989 / 756)
    unknown = gpu_step_seconds("1b", 256, 1024, "Some GPU")
    assert unknown.seconds == pytest.approx(measured.seconds)
    assert "NVIDIA H200's rates" in unknown.basis and "peak assumed 989" in unknown.basis
    launch = gpu_step_seconds("1m", 32, 64, "NVIDIA H100 PCIe")  # host time does not scale
    assert launch.seconds == pytest.approx(gpu_step_seconds("1m", 32, 64, "NVIDIA H200").seconds)


# ------------------------------------------------------------------ schedule
def test_list_schedule_known_answers():
    assert simulate_schedule([5, 4, 3, 3, 3], 2) == 10  # 5+3 | 4+3+3
    assert simulate_schedule([5, 4, 3, 3, 3], 2, start_s=2) == 12
    assert simulate_schedule([5, 4, 3], 1, start_s=1) == 13
    assert simulate_schedule([5, 4, 3], 8) == 5
    assert simulate_schedule([6, 1, 1, 1, 1, 1, 1], 2) == 6  # not the sum halved (6.5)


def test_list_schedule_matches_an_executor_of_sleeps():
    """The pool hands groups in order to whichever worker is free first, as an executor does."""
    durations = [0.5, 0.4, 0.3, 0.3, 0.3]
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(time.sleep, durations))
    wall = time.perf_counter() - started
    assert wall == pytest.approx(simulate_schedule(durations, 2), abs=0.15)


# ------------------------------------------------------------------ unit time and memory
def test_cpu_unit_seconds_counts_what_the_trainer_does():
    """Against a step-by-step replay of minigpt.train.Trainer's evaluation and save rules."""
    timing = CpuTiming(setup_s=1.0, first_step_s=1.3, step_s=0.7, curve_eval_s=3.0,
                       final_eval_s=5.0, checkpoint_s=0.11)
    cfg = SWEEPS["arithmetic"]("cpu")
    for steps, eval_every, every, minutes in [(1500, 300, 0, 5.0), (1000, 0, 0, 0.0),
                                              (2000, 250, 400, 1.0), (10, 2, 1, 0.0)]:
        train = replace(cfg.train, steps=steps, eval_every=eval_every, checkpoint_every=every,
                        checkpoint_minutes=minutes)
        every = every or max(1, steps // 10)
        clock = last_save = 0.0
        expected = timing.setup_s + timing.final_eval_s
        for step in range(1, steps + 1):
            took = timing.first_step_s if step == 1 else timing.step_s
            clock += took
            expected += took
            if eval_every and step % eval_every == 0 and step < steps:
                expected += timing.curve_eval_s
            if step % every == 0 or (minutes and clock - last_save >= 60 * minutes):
                expected += timing.checkpoint_s
                last_save = clock
        got = cpu_unit_seconds(timing, replace(cfg, train=train), steps, steps)
        assert got == pytest.approx(expected, rel=1e-9), (steps, eval_every, every, minutes)


def test_staged_units_after_the_first_train_only_past_the_shared_stage():
    cfg = SWEEPS["instructions"]("cpu")
    steps = trained_steps(cfg, cfg.units())
    for (condition, size, seed), n in steps.items():
        pretrain_end = cfg.condition(condition).stage_ends(cfg.train.steps)[0]
        first = condition == cfg.conditions[0].name
        assert n == (cfg.train.steps if first else cfg.train.steps - pretrain_end)


def test_checkpointing_one_block_keeps_its_input_besides():
    """With a single block nothing is freed: the input kept for recomputation is extra."""
    config = GPTConfig(n_layer=1, n_head=2, n_embd=32, block_size=64)
    plain = estimate_run(config, 1, 8, 64)["bytes"]
    assert checkpointed_peak_bytes(config, 8, 64) == pytest.approx(plain + 8 * 64 * 32 * 4)
    deep = GPTConfig.from_size("1b", block_size=64)
    assert checkpointed_peak_bytes(deep, 256, 64) < estimate_run(deep, 1, 256, 64)["bytes"] / 3


def test_memory_verdicts_and_the_recomputation_time():
    cfg = replace(SWEEPS["arithmetic"]("cuda"), sizes=("1m", "1b"))
    model = GPTConfig.from_size("1b", block_size=cfg.train.seq_len)
    plain = estimate_run(model, 1, cfg.train.batch_size, cfg.train.seq_len, "cuda")["bytes"]
    recomputed = checkpointed_peak_bytes(model, cfg.train.batch_size, cfg.train.seq_len, "cuda")
    roomy = build_plan(cfg, replace(H100, memory_bytes=plain * 1.01))
    tight = build_plan(cfg, replace(H100, memory_bytes=(plain + recomputed) / 2))
    shared = build_plan(cfg, replace(H100, memory_bytes=plain * 1.01), workers=2)
    tiny = build_plan(cfg, replace(H100, memory_bytes=recomputed * 0.99))
    roomy_1b, tight_1b, shared_1b, tiny_1b = (next(u for u in p.units if u.size == "1b")
                                              for p in (roomy, tight, shared, tiny))
    assert not roomy_1b.checkpointing and roomy_1b.fits
    assert tight_1b.checkpointing and tight_1b.fits
    assert tight_1b.seconds == pytest.approx(roomy_1b.seconds * RECOMPUTE)
    assert shared_1b.checkpointing  # two workers: half the memory each
    assert not tiny_1b.fits
    text = format_plan(tiny)
    assert "will not fit at all: 1b seed 0" in text and "(does not fit)" in text
    assert "needs activation checkpointing to fit" in format_plan(tight).splitlines()[-2]


# ------------------------------------------------------------------ whole plans
def _measure(parts, start_s=3.0):
    """A stand-in for sweeps.cpu_timing.measure: parts(size) for every pair, a fixed start."""
    return lambda cfg, pairs, workers, threads: ({p: parts(p[1]) for p in pairs}, start_s)


def _parts(size):
    step = 1e-3 * (1 + math.log10(SIZES[size][2]))
    return CpuTiming(0.1, 2 * step, step, 0.05, 0.2, 0.01)


@pytest.mark.parametrize("name", sorted(SWEEPS))
def test_every_named_sweep_gets_a_plan_on_cpu_and_on_simulated_gpus(name):
    for device, cfg, workers in [(CPU, SWEEPS[name]("cpu"), 2), (H100, SWEEPS[name]("cuda"), 1),
                                 (H200, SWEEPS[name]("cuda"), 1)]:
        plan = build_plan(cfg, device, workers, threads=1, cpu_measure=_measure(_parts))
        assert [u.unit for u in plan.units] == cfg.units()
        seconds = [u.seconds for u in plan.units]
        assert all(0 < s < math.inf for s in seconds)
        busy = plan.total_seconds - plan.start_seconds
        assert max(seconds) * (1 - 1e-9) <= busy <= sum(seconds) * (1 + 1e-9)
        text = format_plan(plan)
        assert len(text.splitlines()) == len(plan.units) + 6
        assert all(u.fits for u in plan.units), text


def test_cpu_plan_simulates_largest_groups_first():
    """Two workers, units of known length (1.5, 6 and 10.5 s; 200k with one seed): the pool's
    order, largest first, on whichever worker is free first after its 2 s start. The sweep's own
    order would give 20 s, half the sum 14.75 s; the schedule gives 2 + max(10.5 + 1.5,
    6 + 6 + 1.5) = 15.5 s."""
    cfg = SWEEPS["arithmetic"]("cpu")
    cfg = replace(cfg, sizes=("25k", "100k", "200k"), seeds=(0, 1), multi_seed_max_params=1.5e5,
                  train=replace(cfg.train, steps=1500))
    step = {"25k": 0.001, "100k": 0.004, "200k": 0.007}
    measure = _measure(lambda size: CpuTiming(0, step[size], step[size], 0, 0, 0), start_s=2.0)
    plan = build_plan(cfg, CPU, workers=2, threads=1, cpu_measure=measure)
    assert plan.total_seconds == pytest.approx(15.5)
    alone = build_plan(cfg, CPU, workers=1, threads=1, cpu_measure=measure)
    assert alone.total_seconds == pytest.approx(2.0 + 2 * 1.5 + 2 * 6 + 10.5)


def test_gpu_default_fits_twenty_minutes_on_one_h100():
    plan = build_plan(SWEEPS["arithmetic"]("cuda"), H100, workers=1)
    assert plan.total_seconds < 20 * 60, format_plan(plan)


def test_refusal_names_the_units_to_drop():
    plan = build_plan(SWEEPS["arithmetic"]("cuda"), H200, workers=1)
    message = refusal(plan, 16)
    dropped, total = drop_to_fit(plan, 16 * 60)
    assert [u.size for u in dropped] == ["1b"] and total <= 16 * 60 < plan.total_seconds
    assert "1b seed 0" in message and "--sizes 1m,3m,10m,30m,100m,300m" in message
    assert "--seeds 0" in message


# ------------------------------------------------------------------ the command line
def test_plan_flag_prints_and_trains_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    assert run.main(["tiny", "--plan", "--out", str(out), "--workers", "1"]) == 0
    text = capsys.readouterr().out
    assert "plan for sweep 'tiny'" in text and "25k   0" in text and "estimated wall time" in text
    assert not out.exists()


def test_max_minutes_refuses_before_training(tmp_path, capsys):
    out = tmp_path / "run"
    assert run.main(["tiny", "--max-minutes", "0.001", "--out", str(out), "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert "over --max-minutes 0.001" in err and "50k seed 0" in err
    assert not out.exists()
    with pytest.raises(SystemExit):
        run.main(["tiny", "--max-minutes", "-1"])
    assert "positive number of minutes" in capsys.readouterr().err


def test_cpu_estimate_is_within_30_percent_of_the_measured_wall_time(tmp_path):
    """The CPU default at a tenth of a percent of its steps: planned, then run, back to back."""
    cfg = SWEEPS["arithmetic"]("cpu")
    steps = 10
    cfg = replace(cfg, eval_size=50, curve_eval_size=50,
                  train=replace(cfg.train, steps=steps, warmup_steps=1, eval_every=steps // 5))
    workers = min(2, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)
    plan = build_plan(cfg, CPU, workers=workers, threads=1)
    started = time.perf_counter()
    run_sweep(cfg, tmp_path / "run", "cpu", progress=False, log=lambda s: None, workers=workers,
              threads=1)
    measured = time.perf_counter() - started
    assert plan.total_seconds == pytest.approx(measured, rel=0.3), format_plan(plan)


# ------------------------------------------------------------------ the GPU session script
SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "gpu_session.sh"


def _dry_run(**env) -> list[tuple[str, int, int, list[str]]]:
    done = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "GPU_SESSION_DRY_RUN": "1", **env}, check=True)
    steps = re.findall(r"^step (\S+) limit (-?\d+)s grace (\d+)s: (.*)$", done.stdout, re.M)
    return [(name, int(limit), int(grace), shlex.split(command))
            for name, limit, grace, command in steps]


def test_gpu_session_dry_run_lists_every_step_within_nine_minutes(tmp_path):
    steps = _dry_run(OUT=str(tmp_path / "out"))
    names = [name for name, *_ in steps]
    assert names == ["environment", "kernel_tests", "gpu_tests", "bench_attention",
                     "bench_layernorm", "host_overhead", "throughput_eager", "throughput_compile",
                     "calibration"]
    assert sum(limit + grace for _, limit, grace, _ in steps) <= 9 * 60
    assert all(limit >= 15 for _, limit, _, _ in steps)
    assert steps[-1][1] >= 120  # the calibration sweep keeps at least two minutes
    assert not (tmp_path / "out").exists()  # a dry run writes nothing
    command = {name: cmd for name, _, _, cmd in steps}
    attention, layernorm = command["bench_attention"], command["bench_layernorm"]
    assert attention[attention.index("--seq-lens") + 1] == "1024,4096"
    assert attention[attention.index("--head-dims") + 1] == "64,128"
    assert len(layernorm[layernorm.index("--widths") + 1].split(",")) == 4
    for name in ("throughput_eager", "throughput_compile"):
        assert command[name][command[name].index("--sizes") + 1] == "1m,10m,100m,1b"
    assert "eager" in command["throughput_eager"][command["throughput_eager"].index("--modes") + 1]
    assert command["throughput_compile"][command["throughput_compile"].index("--modes") + 1] \
        == "compile"
    shorter = _dry_run(OUT=str(tmp_path / "out"), T_TOTAL="300")
    assert sum(limit + grace for _, limit, grace, _ in shorter) <= 300


def test_gpu_session_commands_parse_here(tmp_path, capsys):
    """Each Python command of the dry run passes its own argument checks (here, without a GPU,
    the benchmarks stop right after them)."""
    from kernels import bench
    from minigpt import throughput
    command = {name: cmd for name, _, _, cmd in _dry_run(OUT=str(tmp_path / "out"))}
    for name in ("bench_attention", "bench_layernorm"):
        assert bench.main(command[name][3:]) == 0
    for name in ("throughput_eager", "throughput_compile"):
        assert throughput.main(command[name][3:]) == 2
        assert "no CUDA GPU" in capsys.readouterr().err
    sweep = [("100" if a.startswith("<fit") else "5" if a.startswith("<3/4") else a)
             for a in command["calibration"][3:]]
    args = run.build_parser().parse_args(sweep)
    assert args.sizes == "1m,3m,10m,30m,100m" and args.seeds == "0,1,2" and args.max_minutes == 5

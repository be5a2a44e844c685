#!/usr/bin/env bash
# One short GPU session's checks (issue 21, item 7), in order of value, each under its own time
# limit and all within 9 minutes, so that a slow step cannot starve the ones after it and a step
# that is cut leaves the earlier steps' files whole. From the repository root of a CUDA machine
# that has torch and triton (this package need not be installed: PYTHONPATH is set here):
#
#     OUT=/some/dir bash scripts/gpu_session.sh       # OUT defaults to gpu_out
#     GPU_SESSION_DRY_RUN=1 bash scripts/gpu_session.sh  # print each step, its limit, its command
#
# Steps: environment; the kernel tests and every gpu-marked test (the compile path included);
# the kernel benchmark (attention at D 64/128, N 1024/4096; LayerNorm at 4 widths); the kernels'
# host overhead per call (launcher, autograd.Function, torch op); training
# throughput at 1m, 10m, 100m and 1b, eager then compiled, at the GPU default sweep's batch
# (256 x 64 tokens: what sweeps.plan needs); then a calibration sweep from 1m to 100m with 3 seeds
# up to 30m, its steps sized by the planner (sweeps.run --max-minutes) to what time is left.
# Each step writes its own files under $OUT and a line to $OUT/summary.txt as it ends;
# everything printed also goes to $OUT/session.log. A step whose Python modules are missing is
# skipped with their names. Limits in seconds: T_TOTAL and T_<STEP> below.
set -u
cd "$(dirname "$0")/.." || exit 1
OUT=${OUT:-gpu_out}
PY=${PY:-python3}
DRY=${GPU_SESSION_DRY_RUN:-0}
T_TOTAL=${T_TOTAL:-525}      # all steps, each with its kill grace: under 9 minutes (540 s)
GRACE=5                      # after a step's limit: SIGINT, then SIGKILL this much later
T_ENV=${T_ENV:-15}
T_KERNEL_TESTS=${T_KERNEL_TESTS:-85}
T_GPU_TESTS=${T_GPU_TESTS:-40}
T_BENCH_ATTN=${T_BENCH_ATTN:-50}
T_BENCH_LN=${T_BENCH_LN:-25}
T_OVERHEAD=${T_OVERHEAD:-15}
T_EAGER=${T_EAGER:-45}
T_COMPILE=${T_COMPILE:-85}   # the calibration sweep gets the rest (at least 120 s)
CALIB_SIZES=1m,3m,10m,30m,100m
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

if [ "$DRY" != 1 ]; then
    mkdir -p "$OUT"
    exec > >(tee -a "$OUT/session.log") 2>&1
fi
START=$(date +%s)  # wall-clock seconds, so that the steps' own shells read the same clock
SPENT=0            # a dry run's clock: each step counted at its full limit
elapsed() { if [ "$DRY" = 1 ]; then echo "$SPENT"; else echo $(($(date +%s) - START)); fi; }
left() { echo $((T_TOTAL - $(elapsed))); }
stamp() { echo "=== $(date -u +%H:%M:%S) +$(elapsed)s $*"; }

missing_modules() {  # the Python modules among "$@" that cannot be imported here
    [ $# -eq 0 ] && return 0
    $PY - "$@" <<'PYEOF'
import importlib.util, sys
print(" ".join(m for m in sys.argv[1:] if importlib.util.find_spec(m) is None))
PYEOF
}

# step NAME LIMIT "MODULES" CMD...: run CMD (a program or a function of this script) under at
# most LIMIT seconds (less if less is left), its output also in $OUT/NAME.log; then one line to
# $OUT/summary.txt.
step() {
    local name=$1 limit=$2 needs=$3 rc=0 t0=$SECONDS
    shift 3
    local rest=$(($(left) - GRACE))
    [ "$limit" -gt "$rest" ] && limit=$rest
    if [ "$DRY" = 1 ]; then
        printf 'step %s limit %ss grace %ss: %s\n' "$name" "$limit" "$GRACE" "$*"
        SPENT=$((SPENT + limit + GRACE))
        return 0
    fi
    stamp "$name (limit ${limit}s)"
    local missing
    missing=$(missing_modules $needs)
    if [ "$limit" -lt 5 ] || [ -n "$missing" ]; then
        local why=${missing:+missing Python modules: $missing}
        echo "skipped: ${why:-no time left}"
        echo "$name skipped (${why:-no time left})" >> "$OUT/summary.txt"
        return 0
    fi
    # shellcheck disable=SC2016 - $@ is expanded by the inner shell
    # SIGINT first: pytest then writes its report, a sweep checkpoints, throughput keeps its rows
    timeout -s INT -k "$GRACE" "$limit" bash -c '"$@"' _ "$@" 2>&1 | tee "$OUT/$name.log"
    rc=${PIPESTATUS[0]}
    [ "$rc" = 124 ] || [ "$rc" = 130 ] && echo "$name: stopped at its limit of ${limit}s"
    echo "$name exit $rc after $((SECONDS - t0))s (limit ${limit}s)" >> "$OUT/summary.txt"
}

environment() {
    date -u
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,power.limit \
        --format=csv
    $PY -c "import sys, torch, triton; print('python', sys.version.split()[0], '| torch',
torch.__version__, '| triton', triton.__version__, '| CUDA', torch.version.cuda, '|',
torch.cuda.get_device_name(), torch.cuda.get_device_properties(0).multi_processor_count, 'SMs')"
    echo "missing Python modules: $(missing_modules numpy pytest hypothesis xdist tqdm einops \
        scipy matplotlib tensorboard filelock)"
}

kernel_tests() {  # every test of the kernel files, the compile path's included
    local files xdist=""
    files=$(ls tests/test_attention*.py tests/test_layer_norm*.py tests/test_kernel*.py \
        tests/test_*compile*.py tests/test_gpu_training.py 2>/dev/null | sort -u)
    [ -z "$files" ] && { echo "no kernel test files under tests/"; return 1; }
    [ -z "$(missing_modules xdist)" ] && xdist="-n 8"
    # shellcheck disable=SC2086 - the file list and xdist's flag split on purpose
    $PY -m pytest -q -p no:cacheprovider $xdist --durations=8 --junitxml="$OUT/kernel_tests.xml" \
        $files
}

gpu_tests() {  # every other gpu-marked test
    local ignore="" f
    for f in tests/test_attention*.py tests/test_layer_norm*.py tests/test_kernel*.py \
        tests/test_*compile*.py tests/test_gpu_training.py; do
        [ -e "$f" ] && ignore="$ignore --ignore=$f"
    done
    # shellcheck disable=SC2086
    $PY -m pytest -q -p no:cacheprovider -m gpu --durations=8 --junitxml="$OUT/gpu_tests.xml" \
        $ignore tests
}

calibrate() {  # the calibration sweep, its steps sized by the planner to the time left
    local steps=1500 try rc=2 budget minutes estimate
    for try in 1 2 3; do
        budget=$(($(left) - GRACE))
        # the GPU plan leaves out start-up, autotuning and evaluations: a quarter is kept for them
        minutes=$(awk -v s="$budget" 'BEGIN { printf "%.2f", s * 0.75 / 60 }')
        stamp "calibration try $try: --steps $steps --max-minutes $minutes"
        timeout -s INT -k "$GRACE" "$budget" $PY -m sweeps.run arithmetic --sizes "$CALIB_SIZES" \
            --seeds 0,1,2 --steps "$steps" --max-minutes "$minutes" --out "$OUT/calibration" \
            --no-report --no-progress 2>&1 | tee "$OUT/calibration-try$try.log"
        rc=${PIPESTATUS[0]}
        [ "$rc" != 2 ] && return "$rc"
        estimate=$(sed -n 's/^estimated wall time: \([0-9]*\) s.*/\1/p' \
            "$OUT/calibration-try$try.log" | tail -1)
        [ -z "$estimate" ] || [ "$estimate" = 0 ] && return "$rc"
        steps=$(awk -v n="$steps" -v m="$minutes" -v e="$estimate" \
            'BEGIN { s = int(n * m * 60 / e * 0.95 / 10) * 10; print (s < 10 ? 10 : s) }')
    done
    return "$rc"
}

export -f environment kernel_tests gpu_tests calibrate missing_modules left elapsed stamp
export OUT PY GRACE T_TOTAL START DRY SPENT CALIB_SIZES
if [ "$DRY" = 1 ]; then
    echo "dry run: total ${T_TOTAL}s; steps as they would run, each at its full limit"
fi
step environment "$T_ENV" "torch triton" environment
step kernel_tests "$T_KERNEL_TESTS" "pytest numpy" kernel_tests
step gpu_tests "$T_GPU_TESTS" "pytest numpy" gpu_tests
step bench_attention "$T_BENCH_ATTN" "numpy" $PY -m kernels.bench attention \
    --out "$OUT/bench" --seq-lens 1024,4096 --head-dims 64,128
step bench_layernorm "$T_BENCH_LN" "numpy" $PY -m kernels.bench layernorm \
    --out "$OUT/bench" --widths 1024,2048,4096,8192
step host_overhead "$T_OVERHEAD" "numpy" $PY -m kernels.overhead --calls 200 --rounds 15
step throughput_eager "$T_EAGER" "numpy" $PY -m minigpt.throughput --sizes 1m,10m,100m,1b \
    --kernels triton,torch --modes sync,eager --tokens-per-step 16384 --seq-len 64 --steps 20 \
    --warmup 3 --out "$OUT/throughput_eager.csv"
step throughput_compile "$T_COMPILE" "numpy" $PY -m minigpt.throughput --sizes 1m,10m,100m,1b \
    --kernels triton --modes compile --tokens-per-step 16384 --seq-len 64 --steps 20 \
    --warmup 3 --out "$OUT/throughput_compile.csv"
if [ "$DRY" = 1 ]; then
    step calibration "$(($(left) - GRACE))" "" $PY -m sweeps.run arithmetic --sizes \
        "$CALIB_SIZES" --seeds 0,1,2 --steps "<fit-by-the-planner>" --max-minutes \
        "<3/4-of-the-time-left>" --out "$OUT/calibration" --no-report --no-progress
    echo "dry run: worst case $(elapsed)s of ${T_TOTAL}s"
else
    step calibration "$(($(left) - GRACE))" "numpy tqdm tensorboard filelock" calibrate
    stamp "done; summary:"
    cat "$OUT/summary.txt"
fi

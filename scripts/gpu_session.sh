#!/usr/bin/env bash
# One GPU session's checks, in order of value, each under its own time limit, so that a slow step
# cannot starve the ones after it. Run from the repository root on a CUDA machine:
#     OUT=/some/dir bash scripts/gpu_session.sh
# Writes session.log (everything printed), attention.csv, layernorm.csv and throughput.csv to $OUT.
# Limits (seconds) can be changed with T_TESTS, T_BENCH, T_E2E.
set -u
OUT=${OUT:-gpu_out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
exec > >(tee "$OUT/session.log") 2>&1
T_TESTS=${T_TESTS:-170} T_BENCH=${T_BENCH:-170} T_E2E=${T_E2E:-150}
PY=${PY:-python3}
stamp() { echo "=== $(date -u +%H:%M:%S) $*"; }

stamp environment
date -u
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,power.limit --format=csv
$PY -c "import torch, triton, sys; print('python', sys.version.split()[0], '| torch', torch.__version__, '| triton', triton.__version__, '| CUDA', torch.version.cuda, '|', torch.cuda.get_device_name(), torch.cuda.get_device_properties(0).multi_processor_count, 'SMs')"

stamp "kernel tests on the GPU (bf16, long sequences, wide rows, 200-step parity, determinism)"
timeout "$T_TESTS" $PY -m pytest -q -p no:cacheprovider -n 8 --durations=8 \
    tests/test_attention.py tests/test_layer_norm.py tests/test_kernel_parity.py \
    tests/test_kernel_inputs.py tests/test_kernel_compile.py tests/test_gpu_training.py -s 2>&1 | grep -v "^$"
echo "pytest exit: ${PIPESTATUS[0]}"

stamp "kernel benchmarks"
timeout "$T_BENCH" $PY -m kernels.bench all --out /tmp/bench --seq-lens 1024,4096 --head-dims 64,128 \
    --widths 1024,2048,4096,8192
echo "bench exit: $?"
cp /tmp/bench/*.csv "$OUT"/ 2>/dev/null

stamp "host overhead per call: launchers, autograd.Function, torch op"
timeout 60 $PY -m kernels.overhead --calls 200 --rounds 15

stamp "end-to-end training throughput"
e2e_end=$((SECONDS + T_E2E))
left() { echo $((e2e_end - SECONDS > 5 ? e2e_end - SECONDS : 5)); }
timeout "$(left)" $PY -m minigpt.throughput --sizes 1b --kernels triton,torch --modes eager \
    --tokens-per-step 65536 --seq-len 2048 --steps 5 --warmup 2 --out /tmp/tp_1b.csv
timeout "$(left)" $PY -m minigpt.throughput --sizes 10m,100m --kernels triton,torch --modes eager \
    --tokens-per-step 65536 --seq-len 1024 --steps 10 --warmup 3 --out /tmp/tp_mid.csv
timeout "$(left)" $PY -m minigpt.throughput --sizes 1m,3m --kernels triton,torch --modes sync,eager \
    --tokens-per-step 2048 --seq-len 64 --steps 100 --warmup 10 --out /tmp/tp_small.csv
timeout "$(left)" $PY -m minigpt.throughput --sizes 1m --kernels torch,triton --modes reduce-overhead \
    --tokens-per-step 2048 --seq-len 64 --steps 100 --warmup 10 --out /tmp/tp_graph.csv
timeout "$(left)" $PY -m minigpt.throughput --sizes 100m --kernels torch,triton --modes compile \
    --tokens-per-step 65536 --seq-len 1024 --steps 10 --warmup 3 --out /tmp/tp_compile.csv
$PY - "$OUT/throughput.csv" /tmp/tp_1b.csv /tmp/tp_mid.csv /tmp/tp_small.csv /tmp/tp_graph.csv /tmp/tp_compile.csv <<'PYEOF'
import csv, sys, os
rows, fields = [], None
for path in sys.argv[2:]:
    if os.path.exists(path):
        with open(path) as f:
            r = csv.DictReader(f); fields = fields or r.fieldnames; rows += list(r)
if fields:
    with open(sys.argv[1], "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields); w.writeheader(); w.writerows(rows)
    for row in rows:
        print(f"{row['size']:>5} {row['kernels']:>7} {row['mode']:>16} {row['tokens_per_s']:>10} tok/s "
              f"mfu {row['mfu']:>7} mem {row['peak_mem_gib']:>6} GiB {row['note']}")
PYEOF
stamp done

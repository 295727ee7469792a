#!/usr/bin/env bash
# The GPU checks of Issues 2 and 6 in one run, sized for a ~9-minute lease of one GPU:
#
#     bash benchmarks/gpu.sh OUTDIR [TOTAL_SECONDS=540]
#
# A. Kalman: our parallel filter and smoother against dynamax's at T = 10^5, D = 8, N = 50 (the issue's
#    H100 target cell), then the sequential ones at T = 2000, D = 8, N = 200, then the combine variants and
#    both scan schedules ("tree", "blocked") at the target cell (benchmarks/kalman_combine_variants.py).
# B. benchmarks/seq.py at T = 1k, 16k, 64k and the diagonal scan's bandwidth against a device copy.
# C. The copy task: every arm at L = 20 (3 seeds), the main arms at L = 50 (seed 0), three nu-Wave
#    variants at L = 20, and at L = 50 the Transformer, the 16-cell two-velocity nu-Wave, the 16-cell nu = 1
#    control and width-16 Mamba at lr 8e-3 decayed over 4,000 steps (the short schedule that put the SSM
#    arms within 2x at L = 20 on the CPU, benchmarks/results/copy_horizon), all at once as separate
#    processes sharing the GPU (each stops at string
#    accuracy 0.99 or when the time left runs out; their training time is therefore not comparable
#    across runs, their step counts are).
# Every part runs under its own timeout and the script ends by itself within TOTAL_SECONDS.
set -u
OUT=${1:-benchmarks/results/gpu}
TOTAL=${2:-540}
PY=${PYTHON:-python3}
mkdir -p "$OUT/copy"
start=$(date +%s)
left() { echo $((TOTAL - ($(date +%s) - start))); }
export XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; $PY -c "import jax; print(jax.__version__, jax.devices())"; } > "$OUT/device.txt" 2>&1

echo "A: Kalman at $(left) s left"
timeout 110 $PY benchmarks/inference.py --ops parallel_filter parallel_smoother --cells 8,50,100000 \
    --max-seconds 60 --out "$OUT/inference_gpu.json" > "$OUT/inference.log" 2>&1
timeout 40 $PY benchmarks/inference.py --ops filter smoother parallel_smoother --cells 8,200,2000 \
    --max-seconds 10 --out "$OUT/inference_gpu_seq.json" > "$OUT/inference_seq.log" 2>&1
BUDGET=45 OUTJSON="$OUT/kalman_variants.json" timeout 90 $PY benchmarks/kalman_combine_variants.py 8,50,100000 \
    > "$OUT/kalman_variants.log" 2>&1

echo "B: seq layers at $(left) s left"
timeout 100 $PY benchmarks/seq.py --lengths 1024 16384 65536 --bandwidth-shape 32768 4096 \
    --out "$OUT/seq_gpu.json" > "$OUT/seq.log" 2>&1

train=$(($(left) - 100))  # training seconds per run; the final evaluation at L, 2L, 4L fits in the rest
echo "C: copy task at $(left) s left, $train s of training each"
run() {  # name, then harness arguments
    local name=$1; shift
    timeout $(($(left) - 8)) $PY -m ssmneuro.seq.copy "$@" --time-limit "$train" --stop-at 0.99 \
        --gen-eval-size 64 --out "$OUT/copy/$name.json" > "$OUT/copy/$name.log" 2>&1 &
}
for seed in 0 1 2; do
    for arm in transformer-rope nuwave-mamba nuwave-fixed1 mamba; do
        run "${arm}_L20_s$seed" --model $arm --max-len 20 --seed $seed --steps 10000
    done
done
for arm in transformer-rope nuwave-mamba nuwave-fixed1 mamba; do
    run "${arm}_L50_s0" --model $arm --max-len 50 --seed 0 --steps 15000
done
run nuwave-mamba-v2spread_L20_s0 --model nuwave-mamba --velocities 2 --nu-init spread --max-len 20 --seed 0 --steps 10000
run nuwave-mamba-input_L20_s0 --model nuwave-mamba --nu-mode input --max-len 20 --seed 0 --steps 10000
run nuwave-mamba-cells16_L20_s0 --model nuwave-mamba --cells 16 --max-len 20 --seed 0 --steps 10000
short="--lr 8e-3 --steps 4000 --max-len 50 --seed 0"  # the short schedule of benchmarks/results/copy_horizon
run transformer-rope-short_L50_s0 --model transformer-rope $short
run nuwave-mamba-v2spread-cells16-short_L50_s0 --model nuwave-mamba --velocities 2 --nu-init spread --cells 16 $short
run nuwave-fixed1-cells16-short_L50_s0 --model nuwave-fixed1 --cells 16 $short
run mamba-conv16-short_L50_s0 --model mamba --conv-width 16 $short
wait
echo "done at $(left) s left"

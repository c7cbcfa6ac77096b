#!/usr/bin/env bash
# The GPU checks, as one prepared command for a session that the `device` tool lends a GPU
# (15 minutes of device time, 10 per command; its image has torch, numpy, typer, pytest but no
# faiss, mlflow or k-means-constrained, and nothing below needs them):
#   run(command="SEATER_BENCH_COMMIT=<git rev-parse --short=10 HEAD here> bash bench/gpu_checks.sh", timeout_s=580)
# (the steps below are limited to 560 s in all)
# (the copy on that machine may carry a stale .git: the result headers take the commit from that variable)
# 1. tests/test_cuda.py: the CUDA paths give the CPU paths' answers (builder, exact assignment,
#    beam search, mixed-precision training, top-K);
# 2. `seater-bench speed trees --device cuda` at 361,245 and 1M items (issue 5: <= 1 s and <= 2 s
#    end to end), the same with the 30-step price schedule only (`newton_fast=0`: the faster
#    schedule cut CPU build time ~10% but adds torch operators, i.e. GPU launches), then 10M items
#    (must not run out of memory);
# 3. `seater-bench speed retrieval --device cuda` at the issue-7 settings (beam 50, top-50,
#    batch 1024; training batch 2048) beside exact inner-product top-50, with
#    the attention a run uses (math on CUDA) and torch's auto choice side by side;
# 3b. training with the loss under torch.compile at 12,101 items (one graph, static shapes: do CUDA
#    graphs ("reduce-overhead") or fused kernels alone ("default") pay on the launch-bound step?),
#    beside the eager step; figures in checks.log only (its own step, so a slow compile cannot cost
#    step 3 its files; each mode's line is logged as soon as it is timed);
# 4. bench/speed/profile.py: torch.profiler tables of one beam-search batch and one training step,
#    so a missed target comes back with the operators that cost the time;
# 5. results/tiger/cpu_step_time.py on the GPU: what paper-size TIGER training costs there (issue 8);
# 6. `seater-bench speed epoch --device cuda` on a synthetic Beauty-sized dataset (22,363 users, 12,101
#    items), batch 2048: whole epochs through `fit`, and the share of each spent making batches
#    (issue 7: "an end-to-end epoch that is not bound by data loading"); figures in checks.log.
# Everything lands in $OUT (or results/gpu when run by hand); each step has its own time limit so
# one slow step cannot eat the others' time. Copy the files into results/trees and results/seater.
set -uo pipefail
out=${OUT:-results/gpu}
device=${DEVICE:-cuda}
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
# seater-bench without installing the package (named so in the result headers)
sb=(python3 -c 'import sys; sys.argv[0] = "seater-bench"; from bench.cli import main; main()')
step() {  # step SECONDS NAME COMMAND...: run with a time limit, log to $out/checks.log
    local limit=$1 name=$2
    shift 2
    echo "=== $name (limit ${limit}s) $(date -u +%H:%M:%S)" | tee -a "$out/checks.log"
    timeout "$limit" "$@" 2>&1 | tee -a "$out/checks.log"
    echo "=== $name: exit ${PIPESTATUS[0]}" | tee -a "$out/checks.log"
}

step 10 gpu bash -c 'nvidia-smi -L; python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name())"; echo commit ${SEATER_BENCH_COMMIT:-unknown}'
step 50 tests python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py
step 60 trees "${sb[@]}" speed trees --device "$device" --sizes "${TREE_SIZES:-361245,1000000}" --repeats 3 \
    --compare-constrained-at 0 --out "$out/balanced_speed_gpu.md" --note "bench/gpu_checks.sh"
step 30 trees-slow-prices "${sb[@]}" speed trees --device "$device" --sizes "${TREE_SIZES:-361245,1000000}" --repeats 2 \
    --compare-constrained-at 0 --param newton_fast=0 --out "$out/balanced_speed_gpu_newton_fast0.md" --note "bench/gpu_checks.sh"
step 60 retrieval "${sb[@]}" speed retrieval --device "$device" --sizes "${RETRIEVAL_SIZES:-12101,361000,1000000}" \
    --batch 1024 --users "${USERS:-8192}" --users-large "${USERS:-8192}" --train-batch 2048 --threads 16 \
    --attention default,auto,math --repeats 1 --out "$out" --note "bench/gpu_checks.sh"  # 1 run: the step's 60 s fit
step 100 train-compile "${sb[@]}" speed retrieval --device "$device" --sizes "${COMPILE_SIZES:-12101}" --beams 50 \
    --batch 1024 --users 1024 --train-batch 2048 --threads 16 --compile reduce-overhead,default --repeats 1 --out "$(mktemp -d)"
step 130 trees-10m "${sb[@]}" speed trees --device "$device" --sizes "${BIG_SIZES:-10000000}" --repeats 1 \
    --compare-constrained-at 0 --out "$out/balanced_speed_gpu_10m.md" --note "bench/gpu_checks.sh"
step 30 profile python3 -m bench.speed.profile --device "$device" --train-items "${PROFILE_TRAIN:-12101}" \
    --beam-items "${PROFILE_BEAM:-361000}"
step 30 tiger python3 results/tiger/cpu_step_time.py --device "$device" --steps 20 --out "$out/tiger_gpu_step_time.md"
epoch_dir=$(mktemp -d)
step 20 synth "${sb[@]}" data synth --users 22363 --items 12101 --out "$epoch_dir/data"
step 40 epoch "${sb[@]}" speed epoch --device "$device" --data "$epoch_dir/data" --retrievers seater,seater@norank \
    --param seater:batch_size=2048 --param seater@norank:batch_size=2048 --param seater@norank:use_rank=false \
    --epochs 2 --threads 16 --out "$epoch_dir/speed_epoch.md"
# the device tool brings back at most 8 files: the plot is redrawn from speed_retrieval.json, and the
# tables of the newton_fast=0 and 10M runs are in their markdown
if [ -n "${OUT:-}" ]; then rm -f "$out/speed_retrieval.png" "$out/balanced_speed_gpu_newton_fast0.json" "$out/balanced_speed_gpu_10m.json"; fi

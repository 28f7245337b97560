#!/usr/bin/env bash
# The GPU measurement of the update's cost, in one call of at most about 8 minutes on one
# H100/H200 (each stage has its own time limit and writes its rows as it goes):
#   1. bench_distill_step.py, paper-scale net (unet_lfm_celeba, bf16, batch 32): eager vs each
#      speed switch (scflow.speed) and their combinations (eager measured again after the eager
#      switches: the order's own effect), full and CD-only updates, with the
#      top kernels of the full update (eager and all switches) in profile.txt;
#   2. the same for the mini net (unet_small, fp32, batch 32), with TF32, bf16 and CUDA graphs;
#   3. bench_jobs.py: the mini net's full updates with 1, 4, 8 and 15 processes sharing the GPU
#      (how the mini grid's notebooks share it);
#   4. gpu_summary.py: summary.md (tables, hours for the paper's 187,500 updates).
# Output (< 1 MB): OUTDIR/{summary.md,cost.csv,jobs.csv,profile.txt,log.txt}.
#
# Usage, from the repository root: bash benchmarks/gpu_measure.sh OUTDIR
# Needs python3 with a CUDA build of torch and the project's dependencies. If ./.whl holds wheels
# of the missing ones (README, "Running on a GPU"), they are installed into a temporary folder
# first (WHL names another folder; empty: none). PYTHON overrides the interpreter. A dry run of
# the script's logic on a CPU (slow; not for reporting):
#   WHL= PYTHON=.venv/bin/python DEVICE=cpu BATCH=2 PROCS=1,2 bash benchmarks/gpu_measure.sh OUTDIR
set -u
out=${1:?usage: bash benchmarks/gpu_measure.sh OUTDIR}
mkdir -p "$out"
py=${PYTHON:-python3}
device=${DEVICE:-cuda}
batch=${BATCH:-0}  # 0: each net's own (32)
procs=${PROCS:-1,4,8,15}
log="$out/log.txt"
export PYTHONUNBUFFERED=1
source benchmarks/gpu_wheels.sh
t0=$SECONDS
stage() { echo "== $1 (at $((SECONDS - t0)) s)" | tee -a "$log"; }

stage "versions"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv \
  >>"$log" 2>&1
if ! "$py" -c "import torch, diffusers; print('torch', torch.__version__, 'CUDA', torch.version.cuda,
'diffusers', diffusers.__version__, 'cuda available:', torch.cuda.is_available())" >>"$log" 2>&1
then
  tail -5 "$log"; echo "torch and diffusers are needed (see the header: ./.whl)"; exit 1
fi
tail -1 "$log"

bench=benchmarks/bench_distill_step.py
common=(--device "$device" --batch "$batch" --no-seq --csv "$out/cost.csv" --profile "$out/profile.txt")
stage "paper-scale net"
timeout 210 "$py" "$bench" "${common[@]}" --nets paper --deadline-s 160 \
  --variants eager,channels_last,fused_adamw,no_sync,cudnn_benchmark,all_eager,eager_again,compile,all \
  >>"$log" 2>&1 || echo "paper-scale stage ended with code $?" | tee -a "$log"
stage "mini net"
timeout 120 "$py" "$bench" "${common[@]}" --nets mini --deadline-s 80 \
  --variants eager,tf32,bf16,channels_last,fused_adamw,no_sync,all_eager,eager_again,compile,compile_cudagraphs,all \
  >>"$log" 2>&1 || echo "mini stage ended with code $?" | tee -a "$log"
stage "processes sharing the GPU"
timeout 110 "$py" benchmarks/bench_jobs.py --device "$device" --share --procs "$procs" --seconds 12 \
  --csv "$out/jobs.csv" >>"$log" 2>&1 || echo "sharing stage ended with code $?" | tee -a "$log"
stage "summary"
"$py" benchmarks/gpu_summary.py "$out" >"$out/summary.md" 2>>"$log"
if [ "$(wc -c <"$log")" -gt 400000 ]; then  # keep what comes back small
  tail -c 400000 "$log" >"$log.tmp" && mv "$log.tmp" "$log"
fi
cat "$out/summary.md"
echo "done in $((SECONDS - t0)) s"

#!/usr/bin/env bash
# The mini grid's wall time on one GPU: `make reproduce` (the runner on papermill_runs/, every
# run, the report last) with JOBS notebooks at once, in scratch cache, results and runs folders
# (nothing of the checkout's cache/ or results/ is read or written; the shipped artefacts are
# used, as on a fresh clone), inside a time box of BOX seconds. What did not finish in the box
# is named with the last progress bar of its log, so the summary says how far it got.
# Output (< 2 MB): OUTDIR/{grid.md,runner.txt,log.txt,results/<run>.csv}; grid.md is the
# summary (benchmarks/grid_summary.py): the timings table of the README's "Timings" computed
# from the GPU's CSVs, the runs left unfinished, and the GPU's FIDs beside the committed ones.
#
# Usage, from the repository root: bash benchmarks/gpu_grid.sh OUTDIR
#   BOX (default 480 s), JOBS (default: CPU cores - 1, at least 1), PRESET (default mini),
#   RUNS (default papermill_runs), PYTHON (default python3), WHL (default .whl; empty: none).
# Needs python3 with a CUDA build of torch; ./.whl wheels are installed first as in
# gpu_measure.sh. A check of the script's logic on a CPU, in about a minute:
#   WHL= PYTHON=.venv/bin/python PRESET=smoke BOX=300 JOBS=2 \
#     RUNS="papermill_runs/01_teacher.yaml papermill_runs/table4_cd.yaml" bash benchmarks/gpu_grid.sh OUTDIR
set -u
out=${1:?usage: bash benchmarks/gpu_grid.sh OUTDIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
py=${PYTHON:-python3}
box=${BOX:-480}
cores=$(nproc 2>/dev/null || echo 2)
jobs=${JOBS:-$((cores > 1 ? cores - 1 : 1))}
preset=${PRESET:-mini}
runs=${RUNS:-papermill_runs}
log="$out/log.txt"
export PYTHONUNBUFFERED=1
source benchmarks/gpu_wheels.sh
# papermill's kernel is `python3`: where no kernel spec has that name, this interpreter's
if ! "$py" -c "from jupyter_client.kernelspec import KernelSpecManager as K
K().get_kernel_spec('python3')" >/dev/null 2>&1; then
  "$py" -m ipykernel install --user --name python3 >>"$log" 2>&1 \
    || { tail -3 "$log"; echo "ipykernel is needed (see the header: ./.whl)"; exit 1; }
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv >>"$log" 2>&1
"$py" -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda)" >>"$log" 2>&1
device_name=$("$py" -c "import torch
print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'the CPU')" 2>>"$log")

scratch=$(mktemp -d)
export SCFLOW_CACHE="$scratch/cache" SCFLOW_RESULTS="$scratch/results" SCFLOW_RUNS="$scratch/runs"
echo "== $runs, preset $preset, --jobs $jobs, box $box s ($cores CPU cores)" | tee -a "$log"
t0=$SECONDS
# shellcheck disable=SC2086  # RUNS may name several run files
timeout --kill-after=20 "$box" "$py" -m scflow.repro.run $runs --preset "$preset" \
  --jobs "$jobs" >"$out/runner.txt" 2>&1
code=$?
elapsed=$((SECONDS - t0))
echo "== the runner ended with code $code after $elapsed s" | tee -a "$log"
# timeout stops the runner's whole process group (its notebook processes); their kernels,
# started in sessions of their own, exit when they see their parent gone
sleep 3
mkdir -p "$out/results"
cp "$scratch/results/$preset"/*.csv "$out/results/" 2>/dev/null
"$py" benchmarks/grid_summary.py "$scratch" --preset "$preset" --runner "$out/runner.txt" \
  --box "$box" --jobs "$jobs" --exit-code "$code" --elapsed "$elapsed" \
  --device-name "$device_name" >"$out/grid.md" 2>>"$log"
du -sh "$out" | tee -a "$log"
cat "$out/grid.md"

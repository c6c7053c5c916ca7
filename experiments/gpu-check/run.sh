#!/usr/bin/env bash
# The device check, from the repo root on a GPU machine: bash experiments/gpu-check/run.sh OUT [SHARED] [SECONDS]
#   OUT      where check.json, the runs' timings and logs go
#   SHARED   the real-data folder with restore.py (default: shared/data, else ../shared/data)
#   SECONDS  the budget of each default-plan run (default 420): it stops there and says how far it got
set -euo pipefail
out=$(mkdir -p "$1" && cd "$1" && pwd)
shared=${2:-$(test -d shared/data && echo shared/data || echo ../shared/data)}
budget=${3:-420}
python=${PYTHON:-python3}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"

# 1. the step check (≈ 2 min)
timeout 240 "$python" experiments/gpu-check/check.py "$out" 2>&1 | tee "$out/check.log"

# 2. the real data (≈ 15 s), then the default plan with and without stacked seeds, on a backbone pretrained here
"$python" "$shared/restore.py" "$out/data" > "$out/restore.log"
run() {  # name, extra --config words...
  local name=$1; shift
  local dir="$out/$name" tic
  mkdir -p "$dir" && cp config.yaml "$dir/"
  tic=$(date +%s)
  timeout "$budget" "$python" -m snakemake --cores all --directory "$dir" --config device=cuda \
      data="{cifar10: {root: $out/data}, cifar100: {imagefolder: $out/data/cifar100},
             cifar10h: {root: $(cd "$shared" && pwd)/cifar10h}}" \
      theory="{q5: {data: $(cd "$shared" && pwd)/logreg/data.txt}}" backbone='{source: pretrain}' "$@" \
      > "$dir/snakemake.log" 2>&1 || true
  echo "$name: $(( $(date +%s) - tic )) s, $(find "$dir/results/metrics" -name 'seed*.json' 2>/dev/null | wc -l)" \
       "evaluations, report: $(test -f "$dir/report/report.html" && echo yes || echo no)" | tee -a "$out/runs.txt"
}
run default-separate
run default-stacked cuda='{stack_seeds: true, cuda_graph: true, cudnn_benchmark: true}'

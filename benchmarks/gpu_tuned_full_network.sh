#!/usr/bin/env bash
# The six backbone-training variants tuned on a GPU (issue 20), through the workflow's own Snakemake
# rules: the backbone pretrained with the CPU recipe (configs/cpu-pretrain-30min.yaml), each variant's
# successive-halving search on the validation split and its tuned twin (seed 0), then seeds 1 and 2 for
# the two twins whose searches scored best on validation and, if time is left, for the other four. The
# overlays are those of the CPU runs of docs/results-cpu.md (the grid's settings, configs/tuning-cpu.yaml's
# search), only on CUDA. Under OUT: the results and logs as tar parts, the timeline, the ranking and the
# seeds overlay it used; docs/results-gpu.md has the account.
#
#   bash benchmarks/gpu_tuned_full_network.sh WORK OUT DEADLINE_S
#
# WORK holds shared/data (the packed real data, as ../shared/data beside a checkout) and real-data/
# (restore.py's output and backbone-cpu-pretrain.pt); the experiment folder is WORK/exp-gpu. Run from
# the repository root with snakemake importable (PYTHONPATH), on a machine with an NVIDIA GPU.
set -uo pipefail
WORK=$1 OUT=$2 DEADLINE=$3
T0=$(date +%s)
left() { echo $((DEADLINE - ($(date +%s) - T0))); }
FULL="all_fc256 all backbone_only all_dropout all_augment all_cutout"
EXP=$WORK/exp-gpu LOGS=$WORK/gpu-logs
mkdir -p "$EXP" "$LOGS" && cp config.yaml "$EXP/"
JOBS=${GPU_JOBS:-14}
CONFIGS="configs/offline-shared.yaml configs/cpu-real-grid.yaml configs/tuning-cpu.yaml configs/cpu-pretrain-30min.yaml"
smk() {  # smk LOG TIMEOUT [extra configfiles] -- targets
    local log=$1 limit=$2; shift 2
    local extra=()
    while [ "$1" != "--" ]; do extra+=("$1"); shift; done
    shift
    echo "== $(date -u +%T) snakemake (limit ${limit}s) -> $log" | tee -a "$OUT/timeline.txt"
    timeout -s INT -k 30 "$limit" python3 -m snakemake --cores 16 --scheduler greedy --directory "$EXP" \
        --configfile $CONFIGS "${extra[@]}" \
        --config device=cuda gpu_jobs_per_device=$JOBS threads_per_job=1 -- "$@" > "$LOGS/$log" 2>&1
    local rc=$?
    echo "== $(date -u +%T) rc=$rc, $(left)s left" | tee -a "$OUT/timeline.txt"
    return $rc
}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$LOGS/device.txt"
python3 -c "import torch, sys; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'python', sys.version.split()[0])" >> "$LOGS/device.txt"
nvidia-smi dmon -s u -d 5 > "$LOGS/dmon.txt" 2>&1 &
DMON=$!

# Phase A: every search and its twin's seed 0.
targets=(results/backbone/pretrain.pt)
for v in $FULL; do targets+=("results/tuning/$v/search.json" "results/metrics/$v-tuned/seed0.json"); done
smk phaseA.log $(( $(left) - 60 )) -- "${targets[@]}"

# Phase B: three seeds for the two searches best on validation (never the test set); Phase C: the rest.
python3 - "$EXP" "$FULL" > "$OUT/ranking.txt" <<'EOF'
import json, sys
from pathlib import Path
exp, names = Path(sys.argv[1]), sys.argv[2].split()
found = [(json.loads((exp / f"results/tuning/{v}/search.json").read_text())["val_acc"], v)
         for v in names if (exp / f"results/tuning/{v}/search.json").exists()]
for acc, v in sorted(found, reverse=True):
    print(v, acc)
EOF
cat "$OUT/ranking.txt"
mapfile -t ranked < <(cut -d' ' -f1 "$OUT/ranking.txt")
seeds_overlay() {  # the tuning.overrides.<v>.seeds overlay for the given variants
    { echo "tuning:"; echo "  overrides:"; for v in "$@"; do echo "    $v: {seeds: [0, 1, 2]}"; done; } > "$OUT/seeds.yaml"
}
phase() {  # phase NAME VARIANTS...: seeds 1 and 2 of these twins
    local name=$1; shift
    local t=()
    for v in "$@"; do t+=("results/metrics/$v-tuned/seed1.json" "results/metrics/$v-tuned/seed2.json"); done
    smk "$name.log" $(( $(left) - 45 )) "$OUT/seeds.yaml" -- "${t[@]}"
}
if [ ${#ranked[@]} -ge 2 ] && [ "$(left)" -gt 150 ]; then
    best=("${ranked[@]:0:2}")
    seeds_overlay "${best[@]}"
    if phase phaseB "${best[@]}" && [ "$(left)" -gt 200 ] && [ ${#ranked[@]} -gt 2 ]; then
        seeds_overlay "${ranked[@]}"
        phase phaseC "${ranked[@]:2}" || seeds_overlay "${best[@]}"  # unfinished: keep the overlay that ran
    fi
fi
kill $DMON 2>/dev/null

# Back (at most 8 files of 16 MiB): what the CPU run reuses (no data, features or resume states) and the
# logs, as tar parts; the timeline, the ranking and the seeds overlay beside them.
cp "$OUT/timeline.txt" "$OUT/ranking.txt" "$LOGS/"
tar czf - --exclude='results/data' --exclude='results/features' --exclude='*.resume.pt' --exclude='*.state.pt' \
    -C "$WORK" exp-gpu/results gpu-logs | split -b 15m - "$OUT/results.tgz.part-"
ls -la "$OUT" >> "$OUT/timeline.txt"

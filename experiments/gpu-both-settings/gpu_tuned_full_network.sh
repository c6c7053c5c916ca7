#!/usr/bin/env bash
# The six backbone-training variants tuned on a GPU, through the workflow's own Snakemake
# rules: the backbone pretrained with the CPU recipe (experiments/cpu-pretraining/cpu-pretrain-30min.yaml), each variant's
# successive-halving search on the validation split and its tuned twin (seed 0), then seeds 1 and 2 for
# the two twins whose searches scored best on validation and, if time is left, for the other four. The
# overlays are those of the CPU runs of experiments/cpu-real-grid/README.md (the grid's settings, configs/tuning-cpu.yaml's
# search), only on CUDA. Under OUT: the results and logs as tar parts, the timeline, the ranking and the
# seeds overlay it used; experiments/gpu-both-settings/README.md has the account.
#
#   bash experiments/gpu-both-settings/gpu_tuned_full_network.sh WORK OUT DEADLINE_S
#
# WORK holds shared/data (the packed real data, as ../shared/data beside a checkout) and real-data/
# (restore.py's output and backbone-cpu-pretrain.pt); the experiment folder is WORK/exp-gpu. Run from
# the repository root with snakemake importable (PYTHONPATH), on a machine with an NVIDIA GPU.
set -uo pipefail
WORK=$1 OUT=$2 DEADLINE=$3
FULL="all_fc256 all backbone_only all_dropout all_augment all_cutout"
EXP=$WORK/exp-gpu
JOBS=${GPU_JOBS:-14}
CONFIGS="configs/offline-shared.yaml experiments/cpu-real-grid/cpu-real-grid.yaml configs/tuning-cpu.yaml experiments/cpu-pretraining/cpu-pretrain-30min.yaml"
source experiments/gpu-both-settings/gpu_common.sh
start_monitor

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
cp "$OUT/ranking.txt" "$LOGS/"
pack_back

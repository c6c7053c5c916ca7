#!/usr/bin/env bash
# The six backbone-training variants at the assignment's setting (lr 0.001, batch 32, 10 epochs, fp32), three
# seeds each, on a GPU from the backbone the tuned twins of gpu_tuned_full_network.sh started from, so that one
# run (experiments/gpu-both-settings/gpu-backbone-both-settings.yaml) shows both settings of all ten variants.
# Through the workflow's own rules: seed 0 of the six first, then seeds 1 and 2. Under OUT: the results and
# logs as tar parts and the timeline; experiments/gpu-both-settings/README.md has the account.
#
#   bash experiments/gpu-both-settings/gpu_fixed_full_network.sh WORK OUT DEADLINE_S
#
# WORK holds real-data/ (restore.py's CIFAR-10 and backbone-gpu-cpu-recipe.pt); the experiment folder is
# WORK/exp-both. Run from the repository root with snakemake and workflow/ importable (PYTHONPATH), on a
# machine with an NVIDIA GPU. A second call with the same WORK continues (finished runs are kept, an
# interrupted one resumes from its last epoch).
set -uo pipefail
WORK=$1 OUT=$2 DEADLINE=$3
EXP=$WORK/exp-both
CONFIGS="configs/offline-shared.yaml experiments/cpu-real-grid/cpu-real-grid.yaml configs/tuning-cpu.yaml experiments/gpu-both-settings/gpu-backbone-both-settings.yaml"
FULL="all_fc256 all backbone_only all_dropout all_augment all_cutout"
source experiments/gpu-both-settings/gpu_common.sh
start_monitor
runs() { for v in $FULL; do for s in "$@"; do echo "results/metrics/$v/seed$s.json"; done; done; }
mapfile -t first < <(runs 0)
mapfile -t rest < <(runs 1 2)
JOBS=6 smk fixed-seed0.log $(( $(left) - 40 )) -- "${first[@]}" \
    && JOBS=12 smk fixed-seeds12.log $(( $(left) - 40 )) -- "${rest[@]}"
pack_back

#!/usr/bin/env bash
# Brings what GPU runs trained (their results/ folders, unpacked from the drivers' tar parts) into a run folder
# whose other jobs ran here, so that one report covers both: models, metrics, scores, tuning records and their
# logs and benchmarks. Data, features and backbones are not copied (the run folder makes its own from the same
# files). An existing file is never overwritten: each is named and kept. Then mark the copies up to date in DAG
# order with the run's own configs (`snakemake --touch ... TARGETS`, experiments/gpu-both-settings/README.md), as their inputs here
# are newer than they are.
#
#   bash experiments/gpu-both-settings/merge_gpu_results.sh RUN_FOLDER GPU_RESULTS...
set -euo pipefail
DEST=$1/results
shift
for SRC in "$@"; do
    for sub in models metrics scores tuning logs/train logs/evaluate logs/tuning \
        benchmarks/train benchmarks/evaluate benchmarks/tuning; do
        [ -d "$SRC/$sub" ] || continue
        (cd "$SRC/$sub" && find . -type f) | while read -r f; do
            if [ -e "$DEST/$sub/$f" ]; then
                cmp -s "$SRC/$sub/$f" "$DEST/$sub/$f" || echo "kept (differs, not overwritten): $DEST/$sub/${f#./}"
            else
                mkdir -p "$(dirname "$DEST/$sub/$f")" && cp -p "$SRC/$sub/$f" "$DEST/$sub/$f"
            fi
        done
    done
    echo "merged $SRC"
done

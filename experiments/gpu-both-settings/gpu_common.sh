# Shared by the GPU drivers (gpu_*_full_network.sh): sourced after they set WORK, OUT, DEADLINE, EXP, CONFIGS
# and JOBS. Each call to `smk` is one Snakemake run of the workflow's own rules on CUDA, under the deadline.
T0=$(date +%s)
LOGS=$WORK/gpu-logs
mkdir -p "$EXP" "$LOGS" "$OUT"
[ -e "$EXP/config.yaml" ] || cp config.yaml "$EXP/"
left() { echo $((DEADLINE - ($(date +%s) - T0))); }
smk() {  # smk LOG TIMEOUT [extra configfiles] -- targets
    local log=$1 limit=$2; shift 2
    local extra=()
    while [ "$1" != "--" ]; do extra+=("$1"); shift; done
    shift
    echo "== $(date -u +%T) snakemake (limit ${limit}s) -> $log" | tee -a "$OUT/timeline.txt"
    # shellcheck disable=SC2086  # CONFIGS is a list of files
    timeout -s INT -k 30 "$limit" python3 -m snakemake --cores 16 --scheduler greedy --directory "$EXP" \
        --configfile $CONFIGS "${extra[@]}" \
        --config device=cuda gpu_jobs_per_device="$JOBS" threads_per_job=1 -- "$@" >> "$LOGS/$log" 2>&1
    local rc=$?
    echo "== $(date -u +%T) rc=$rc, $(left)s left" | tee -a "$OUT/timeline.txt"
    return $rc
}
start_monitor() {  # the device, the software, and the card's utilisation every 5 s
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$LOGS/device.txt"
    python3 -c "import torch, sys; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'python', sys.version.split()[0])" >> "$LOGS/device.txt"
    nvidia-smi dmon -s u -d 5 >> "$LOGS/dmon.txt" 2>&1 &
    DMON=$!
}
pack_back() {  # what the CPU run reuses (no data, features or resume states) and the logs, as tar parts
    kill "$DMON" 2>/dev/null
    cp "$OUT/timeline.txt" "$LOGS/"
    tar czf - --exclude='results/data' --exclude='results/features' --exclude='results/backbone/path.pt' \
        --exclude='*.resume.pt' --exclude='*.state.pt' -C "$WORK" "$(basename "$EXP")/results" gpu-logs \
        | split -b 15m - "$OUT/results.tgz.part-"
    ls -la "$OUT" >> "$OUT/timeline.txt"
}

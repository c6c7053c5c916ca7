#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for CI and local tests of profiles/slurm.
#
# Needs root and the Debian 12 packages (SLURM 22.05):
#   apt-get install -y --no-install-recommends slurmctld slurmd slurm-client munge
# No systemd: munged, slurmctld and slurmd are started directly. The node gets two fake
# GPUs (character devices with /dev/null's numbers) so that `--gpus=1` jobs are accepted
# and each one gets its own CUDA_VISIBLE_DEVICES. No slurmdbd: `sacct` does not work, so
# Snakemake must run with `--slurm-status-command squeue` (see profiles/slurm-ci).
#
# Idempotent: when the daemons already run and the node answers, it only waits for it.
# Stop everything with .ci/slurm-down.sh. Environment knobs:
#   SLURM_UP_TIMEOUT  seconds to wait for the node to become idle (default 60)
#   SLURM_FAKE_GPUS   number of fake GPUs on the node (default 2)
set -euo pipefail

TIMEOUT=${SLURM_UP_TIMEOUT:-60}
NGPUS=${SLURM_FAKE_GPUS:-2}
CONF_DIR=/etc/slurm
STATE=/var/lib/slurm
LOGS=/var/log/slurm
RUN=/run/slurm

say() { echo "slurm-up: $*" >&2; }
die() { say "ERROR: $*"; for f in "$LOGS"/slurmctld.log "$LOGS"/slurmd.log; do [ -f "$f" ] && tail -n 20 "$f" >&2; done; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (it writes $CONF_DIR and starts daemons)"
for cmd in munged slurmctld slurmd sinfo sbatch scontrol; do
  command -v "$cmd" >/dev/null || die "$cmd not found; apt-get install -y --no-install-recommends slurmctld slurmd slurm-client munge"
done

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

node_state() { sinfo -h -N -o '%t' 2>/dev/null | head -n 1; }

wait_idle() {
  local deadline=$((SECONDS + TIMEOUT)) state=""
  while [ $SECONDS -lt $deadline ]; do
    state=$(node_state || true)
    case "$state" in
      idle|mix|alloc) say "node $NODE is $state"; sinfo -N -o '%N %t %c %m %G' >&2; return 0 ;;
      drain*|down*|drng) scontrol update NodeName="$NODE" State=RESUME 2>/dev/null || true ;;
    esac
    sleep 1
  done
  die "node not idle after ${TIMEOUT}s (state: ${state:-no answer})"
}

NODE_LINE=$(slurmd -C | head -n 1)          # NodeName=<host> CPUs=… RealMemory=…
NODE=$(sed -n 's/^NodeName=\([^ ]*\).*/\1/p' <<<"$NODE_LINE")
[ -n "$NODE" ] || die "slurmd -C printed no NodeName line"

if alive /run/munge/munged.pid && alive "$RUN/slurmctld.pid" && alive "$RUN/slurmd.pid" && [ -n "$(node_state)" ]; then
  say "already running"
  wait_idle
  exit 0
fi

# ------------------------------------------------------------------ munge
mkdir -p /run/munge /var/lib/munge /var/log/munge /etc/munge
chown munge:munge /run/munge /var/lib/munge /var/log/munge
chmod 0755 /run/munge
if [ ! -s /etc/munge/munge.key ]; then
  if command -v mungekey >/dev/null; then mungekey --create --keyfile=/etc/munge/munge.key
  else dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none; fi
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
if ! alive /run/munge/munged.pid; then
  runuser -u munge -- munged --force
fi
munge -n | unmunge >/dev/null || die "munge does not work"

# ------------------------------------------------------------------ fake GPUs
# Slurm hands each job its own device file(s) and sets CUDA_VISIBLE_DEVICES to match.
for i in $(seq 0 $((NGPUS - 1))); do
  [ -c "/dev/fakegpu$i" ] || mknod "/dev/fakegpu$i" c 1 3 || die "mknod /dev/fakegpu$i failed (needs CAP_MKNOD)"
done

# ------------------------------------------------------------------ config
mkdir -p "$CONF_DIR" "$STATE/slurmctld" "$STATE/slurmd" "$LOGS" "$RUN"
cat >"$CONF_DIR/slurm.conf" <<EOF
# Written by .ci/slurm-up.sh: a one-node test cluster (no accounting, no cgroups).
ClusterName=ci
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$STATE/slurmctld
SlurmdSpoolDir=$STATE/slurmd
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
# Finished jobs stay visible to squeue for 5 min: the workflow's status checks need them.
MinJobAge=300
ReturnToService=2
DefMemPerCPU=1000
GresTypes=gpu
$NODE_LINE NodeAddr=127.0.0.1 Gres=gpu:$NGPUS State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF

{
  echo "# Written by .ci/slurm-up.sh: fake GPUs (/dev/null's device numbers)."
  for i in $(seq 0 $((NGPUS - 1))); do echo "NodeName=$NODE Name=gpu File=/dev/fakegpu$i"; done
} >"$CONF_DIR/gres.conf"

# ------------------------------------------------------------------ daemons
if ! alive "$RUN/slurmctld.pid"; then
  slurmctld -c || die "slurmctld did not start"
fi
if ! alive "$RUN/slurmd.pid"; then
  slurmd || die "slurmd did not start"
fi
wait_idle

#!/usr/bin/env bash
# Stop what .ci/slurm-up.sh started: cancel jobs, then slurmd, slurmctld, munged (by pid file).
set -uo pipefail

say() { echo "slurm-down: $*" >&2; }

stop() {  # pidfile name
  local pidfile=$1 name=$2 pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then say "$name ($pid) ignored TERM; KILL"; kill -KILL "$pid" 2>/dev/null; fi
    say "stopped $name ($pid)"
  fi
  rm -f "$pidfile"
}

if command -v scancel >/dev/null && [ -f /run/slurm/slurmctld.pid ]; then
  timeout 10 scancel --full --user="$(id -un)" 2>/dev/null || true
fi
stop /run/slurm/slurmd.pid slurmd
stop /run/slurm/slurmctld.pid slurmctld
stop /run/munge/munged.pid munged
exit 0

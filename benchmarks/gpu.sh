#!/usr/bin/env bash
# GPU measurements of issue 5 ("Speed"), in one script of under 5 minutes on an H100/H200:
#   1. benchmarks/train_step.py at the NTU shape (batch 64 x 2 persons x 100 frames x 25 joints), CE only
#      versus full ACLNet, in fp32, bf16 autocast and bf16 autocast + torch.compile (one process per mode,
#      each under its own timeout; every timed step runs under torch.cuda.set_sync_debug_mode("error"));
#   2. the CUDA tests (no host synchronisation in a backbone training step or in the losses).
# Writes $RESULTS_DIR/train_step_gpu.csv (rows carry the device name) and $RESULTS_DIR/gpu.log.
# Exits 0 with a message when no CUDA GPU is available; otherwise non-zero if any part failed.
#
#   bash benchmarks/gpu.sh                          # from anywhere; results in benchmarks/results/
#   RESULTS_DIR=/some/dir PYTHON=python3 bash benchmarks/gpu.sh
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python}
RESULTS_DIR=${RESULTS_DIR:-benchmarks/results}

if [[ "$("$PYTHON" -c 'import torch; print(int(torch.cuda.is_available()))')" != 1 ]]; then
    echo "gpu.sh: no CUDA GPU available (torch.cuda.is_available() is False); nothing measured"
    exit 0
fi

mkdir -p "$RESULTS_DIR"
CSV=$RESULTS_DIR/train_step_gpu.csv
LOG=$RESULTS_DIR/gpu.log
rm -f "$CSV"
: >"$LOG"
status=0

log() { echo "$*" | tee -a "$LOG"; }

# Runs "$@" under a timeout of $1 seconds with its output added to the log; a failure is recorded, not fatal.
part() {
    local seconds=$1
    shift
    log "== $(date -u +%H:%M:%S) (limit ${seconds}s): $*"
    if ! timeout --kill-after=10 "$seconds" "$@" 2>&1 | tee -a "$LOG"; then
        log "== FAILED or timed out: $*"
        status=1
    fi
}

log "gpu.sh $(date -u +%Y-%m-%dT%H:%M:%SZ)"
log "device: $("$PYTHON" -c 'import torch; print(torch.cuda.get_device_name(), "| torch", torch.__version__, "| CUDA", torch.version.cuda)')"
if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | tee -a "$LOG" || true
fi

append=()
for mode_limit in fp32:50 bf16:50 bf16-compile:140; do
    part "${mode_limit#*:}" "$PYTHON" -u benchmarks/train_step.py --device cuda --modes "${mode_limit%%:*}" \
        --out "$CSV" ${append[@]+"${append[@]}"}
    append=(--append)
done
part 45 "$PYTHON" -u -m pytest -q -p no:cacheprovider -k cuda tests/test_models.py tests/test_losses.py

log "== results: $CSV, log: $LOG; exit status $status"
exit "$status"

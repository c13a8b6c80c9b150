#!/bin/sh
# Scale benchmark (PRODUCT 3.9): the release daemon watches N simulated images (default 10,000)
# on loopback and reports cycle time, CPU per 1,000 polls, RSS, /metrics cost and state size,
# for steady cycles and for cycles where 1 % of the images change status.
#
# Usage: scripts/bench-10k.sh [N]
#   INTERVAL=60   poll interval in seconds (default 60; 20 gives a ~3 min run)
#   STEADY=3      steady cycles measured after the first (cold) cycle
#   CHURN=3       cycles with 1 % status changes
#   STATE_DIR=/var/tmp   parent of the temp dir holding config, state and logs (use a real
#                 disk: the state database fsyncs every commit)
#   KEEP=1        keep the temp dir (config, state, daemon log) for a look afterwards
# Run time: about (1 + STEADY + CHURN) x INTERVAL plus the build; with the defaults ~7 min.
# Numbers only; nothing is asserted. All processes it starts are stopped on exit.
set -eu
cd "$(dirname "$0")/.."
N="${1:-10000}"
cargo build --release --quiet --bin modelarts-image-exporter
exec python3 scripts/bench10k.py \
    --bin target/release/modelarts-image-exporter \
    --images "$N" \
    --interval "${INTERVAL:-60}" \
    --steady "${STEADY:-3}" \
    --churn "${CHURN:-3}" \
    ${STATE_DIR:+--state-dir "$STATE_DIR"} \
    ${KEEP:+--keep}

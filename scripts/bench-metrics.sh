#!/bin/sh
# Render cost of /metrics for 10,000 images (~100k series): prints times, sizes and RSS.
# Numbers only; nothing is asserted. Usage: scripts/bench-metrics.sh
set -eu
cd "$(dirname "$0")/.."
exec cargo bench --bench metrics "$@"

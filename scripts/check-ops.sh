#!/usr/bin/env bash
# Checks the shipped operations files: the systemd unit and everything under deploy/.
# Run by CI from the repository root:  scripts/check-ops.sh [path/to/modelarts-image-exporter]
# Needs promtool, amtool (Debian: prometheus, prometheus-alertmanager), systemd-analyze and
# python3. The binary (default target/debug/modelarts-image-exporter) only has to exist:
# `systemd-analyze verify` refuses a unit whose ExecStart= binary is missing.
set -euo pipefail

# A binary given as an argument is relative to the caller's directory, the default to the repo.
if [ $# -ge 1 ]; then
    BIN=$(realpath -m -- "$1")
fi
cd "$(dirname "$0")/.."
BIN=${BIN:-target/debug/modelarts-image-exporter}
UNIT=systemd/modelarts-image-exporter.service
PROM=deploy/prometheus
AM=deploy/alertmanager/alertmanager.yml
DASH=deploy/grafana/modelarts-images.json
# Highest acceptable `systemd-analyze security` exposure, in tenths (15 = 1.5).
MAX_EXPOSURE_TENTHS=15

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

step() { printf '\n== %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

for tool in promtool amtool systemd-analyze python3; do
    command -v "$tool" >/dev/null || fail "$tool not found (see docs/operations.md, CI section)"
done

# --- Prometheus ------------------------------------------------------------------------------
step "promtool check config $PROM/prometheus.yml"
promtool check config "$PROM/prometheus.yml"

step "promtool check rules $PROM/rules.yml"
promtool check rules "$PROM/rules.yml"

step "promtool test rules $PROM/rules_test.yml"
promtool test rules "$PROM/rules_test.yml"

# --- Alertmanager ----------------------------------------------------------------------------
step "amtool check-config $AM"
amtool check-config "$AM"

step "amtool config routes test (critical pages and mails, warnings only mail)"
route_test() { # expected-receivers label=value...
    local want=$1
    shift
    amtool config routes test --config.file="$AM" --verify.receivers="$want" "$@" 2>/dev/null \
        || fail "alert {$*} is not routed to $want"
    echo "ok: {$*} -> $want"
}
route_test oncall-pager,ml-platform-mail alertname=ModelArtsImageFailed severity=critical
route_test oncall-pager,ml-platform-mail alertname=ModelArtsExporterDown severity=critical
route_test ml-platform-mail alertname=ModelArtsNotificationsDropped severity=warning

# --- Grafana ---------------------------------------------------------------------------------
step "dashboard $DASH: valid JSON, datasource input, queries that parse"
python3 - "$DASH" "$TMP/dashboard_rules.yml" <<'PY'
import json, re, sys

path, out = sys.argv[1], sys.argv[2]
with open(path, encoding="utf-8") as f:
    dash = json.load(f)

inputs = [i.get("name") for i in dash.get("__inputs", [])]
if inputs != ["DS_PROMETHEUS"]:
    sys.exit(f"{path}: __inputs must declare exactly DS_PROMETHEUS, found {inputs}")

def walk(node):
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from walk(v)

exprs, bad_ds = [], []
for node in walk(dash["panels"]):
    ds = node.get("datasource")
    if isinstance(ds, dict) and ds.get("type") == "prometheus" and ds.get("uid") != "${DS_PROMETHEUS}":
        bad_ds.append(node.get("title") or node.get("refId"))
    if "expr" in node:
        exprs.append((node.get("refId", "?"), node["expr"]))
if bad_ds:
    sys.exit(f"{path}: datasource not ${{DS_PROMETHEUS}} in {bad_ds}")
if not exprs:
    sys.exit(f"{path}: no queries found")

# Substitute Grafana variables so promtool can parse each query as a recording rule.
subst = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}
def plain(expr):
    for k, v in subst.items():
        expr = expr.replace(k, v)
    return re.sub(r"\$\{?[A-Za-z_]\w*\}?", ".*", expr)

with open(out, "w", encoding="utf-8") as f:
    f.write("groups:\n  - name: dashboard\n    rules:\n")
    for i, (_, expr) in enumerate(exprs):
        f.write(f"      - record: dashboard:query_{i}\n        expr: {json.dumps(plain(expr))}\n")
print(f"{len(exprs)} queries")
PY
promtool check rules --lint=none "$TMP/dashboard_rules.yml" >/dev/null \
    || { promtool check rules --lint=none "$TMP/dashboard_rules.yml"; fail "a dashboard query does not parse"; }
echo "all dashboard queries parse"

# --- Metric names are a contract (PRODUCT.md 3.5): rules and dashboard use only these --------
step "metric names used in deploy/ exist in the exporter's contract"
KNOWN='modelarts_image_status modelarts_image_size_bytes modelarts_image_created_timestamp_seconds
modelarts_image_updated_timestamp_seconds modelarts_image_info modelarts_image_up
modelarts_image_last_success_timestamp_seconds modelarts_image_changes_total
modelarts_api_requests_total modelarts_api_request_duration_seconds modelarts_api_request_duration_seconds_bucket
modelarts_api_request_duration_seconds_sum modelarts_api_request_duration_seconds_count
modelarts_poll_failures_total modelarts_poll_duration_seconds modelarts_poll_cycles_skipped_total
modelarts_clock_skew_seconds modelarts_config_last_reload_successful
modelarts_config_last_reload_success_timestamp_seconds modelarts_alerts_firing
modelarts_notifications_total modelarts_notifications_failed_total
modelarts_notifications_dropped_total modelarts_notification_queue_length
modelarts_exporter_build_info'
unknown=$(grep -ohE '\bmodelarts_[a-z_]+' "$PROM/rules.yml" "$DASH" | sort -u \
    | grep -vxF -f <(tr -s ' \n' '\n' <<<"$KNOWN") || true)
[ -z "$unknown" ] || fail "metric names not in the contract: $unknown"
echo ok

# --- systemd unit ----------------------------------------------------------------------------
[ -x "$BIN" ] || fail "binary $BIN not found or not executable (build it, or pass its path)"
BIN_ABS=$(realpath "$BIN")
TUNIT="$TMP/$(basename "$UNIT")"
grep -q '^ExecStart=/usr/bin/modelarts-image-exporter ' "$UNIT" \
    || fail "$UNIT: ExecStart= must start with /usr/bin/modelarts-image-exporter"
sed "s|/usr/bin/modelarts-image-exporter|$BIN_ABS|g" "$UNIT" >"$TUNIT"

step "systemd-analyze verify $UNIT (any output is a failure)"
# verify only warns (exit 0) on unknown keys and bad values: treat any output as an error.
if ! systemd-analyze verify --man=no "$TUNIT" >"$TMP/verify.out" 2>&1 || [ -s "$TMP/verify.out" ]; then
    cat "$TMP/verify.out" >&2
    fail "systemd-analyze verify reported problems with $UNIT"
fi
echo ok

step "systemd-analyze security $UNIT (exposure must be <= $((MAX_EXPOSURE_TENTHS / 10)).$((MAX_EXPOSURE_TENTHS % 10)))"
if ! systemd-analyze security --offline=true --threshold="$MAX_EXPOSURE_TENTHS" --no-pager "$TUNIT" \
    >"$TMP/security.out" 2>&1; then
    cat "$TMP/security.out" >&2
    fail "exposure of $UNIT is above the threshold"
fi
grep '✗' "$TMP/security.out" || true
grep 'Overall exposure level' "$TMP/security.out"

printf '\nAll operations checks passed.\n'

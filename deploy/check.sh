#!/usr/bin/env bash
# Checks what deploy/ ships, without a daemon, a container or root:
#   - deploy/prometheus/alerts.yml is valid (promtool check rules) and its unit tests pass
#     (promtool test rules deploy/prometheus/alerts_test.yml: each alert fires and stays quiet
#     when it should); compose.yaml's deploy/prometheus/prometheus.yml is valid (promtool
#     check config);
#   - deploy/subsave.service loads without warnings (systemd-analyze verify, with the binary it
#     starts replaced by a stand-in, since /usr/local/bin/subsave is not installed here) and its
#     sandbox scores at most 3.0 in `systemd-analyze security --offline=true`.
# Run it as `bash deploy/check.sh` from anywhere. It installs nothing: it needs promtool
# (Debian's `prometheus` package) and systemd-analyze (`systemd`, version 250 or later for
# --offline and --threshold). Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

RULES=deploy/prometheus/alerts.yml
RULE_TESTS=deploy/prometheus/alerts_test.yml
PROMETHEUS_CONFIG=deploy/prometheus/prometheus.yml
UNIT=deploy/subsave.service
# The highest acceptable exposure: 3.0, given ×10 as systemd-analyze's --threshold takes it.
MAX_EXPOSURE=3.0
THRESHOLD=30

fail() {
  echo "deploy/check.sh: FAILED: $*" >&2
  exit 1
}

need() {
  command -v "$1" >/dev/null 2>&1 ||
    fail "$1 is not installed (it comes with Debian's '$2' package: apt-get install $2)"
}

need promtool prometheus
need systemd-analyze systemd

echo "== promtool check rules $RULES"
promtool check rules "$RULES" || fail "promtool check rules $RULES"

echo "== promtool test rules $RULE_TESTS"
promtool test rules "$RULE_TESTS" || fail "promtool test rules $RULE_TESTS"

echo "== promtool check config $PROMETHEUS_CONFIG"
promtool check config "$PROMETHEUS_CONFIG" || fail "promtool check config $PROMETHEUS_CONFIG"

echo "== systemd-analyze verify $UNIT (ExecStart binary replaced by a stand-in)"
# verify insists that every Exec*= binary exists; the unit is otherwise checked as shipped.
# It reports unknown keys and bad values as warnings with exit status 0: any output fails.
stand_in=$(command -v true)
case "$stand_in" in
  /*) ;;
  *) stand_in=/bin/true ;;
esac
[ -x "$stand_in" ] || fail "no true(1) binary to stand in for /usr/local/bin/subsave"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sed "s#/usr/local/bin/subsave#$stand_in#g" "$UNIT" >"$work/subsave.service"
verify_out=$(systemd-analyze verify "$work/subsave.service" 2>&1) ||
  fail "systemd-analyze verify $UNIT: $verify_out"
if [ -n "$verify_out" ]; then
  echo "$verify_out" >&2
  fail "systemd-analyze verify $UNIT printed warnings (above)"
fi
echo "no warnings"

echo "== systemd-analyze security --offline=true --threshold=$THRESHOLD $UNIT"
security_help=$(systemd-analyze security --help 2>&1 || true)
for flag in --offline --threshold; do
  grep -q -- "$flag" <<<"$security_help" ||
    fail "systemd-analyze $(systemd-analyze --version | head -n 1) has no $flag (systemd 250 or later needed)"
done
status=0
security_out=$(systemd-analyze security --offline=true --threshold="$THRESHOLD" "$UNIT" 2>&1) || status=$?
# The checks that still cost something, and the overall score.
grep -v '✓' <<<"$security_out" || true
exposure=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9][0-9.]*\).*/\1/p' <<<"$security_out")
[ -n "$exposure" ] || fail "no 'Overall exposure level' in the output of systemd-analyze security"
if [ "$status" -ne 0 ]; then
  fail "$UNIT: exposure $exposure is over $MAX_EXPOSURE (systemd-analyze security exited $status)"
fi
# The same limit, read from the score (should --threshold ever be read differently).
awk -v e="$exposure" -v max="$MAX_EXPOSURE" 'BEGIN { exit !(e <= max) }' ||
  fail "$UNIT: exposure $exposure is over $MAX_EXPOSURE"

echo "== deploy checks passed: alert rules valid and tested, Prometheus config valid; $UNIT verified, exposure $exposure (limit $MAX_EXPOSURE)"

# Sourced by the benchmark scripts (bench/run.sh, api.sh, scale.sh) from the repository's root:
# starts PostgreSQL if it is down and picks the subsave binary to measure: the release build,
# or BENCH_SUBSAVE_BIN when set (CI's smoke run uses the debug build it already has).
if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/subsave-target}"
if [ -z "${BENCH_SUBSAVE_BIN:-}" ]; then
  cargo build --release --locked --quiet
  export BENCH_SUBSAVE_BIN="$CARGO_TARGET_DIR/release/subsave"
fi

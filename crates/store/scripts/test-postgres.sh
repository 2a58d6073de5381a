#!/usr/bin/env bash
# Run the service test suite on PostgreSQL: start a throwaway cluster from the Debian
# packages (apt-get install postgresql) on a private port, point the tests at it with
# OPENPALM_TEST_POSTGRES_URL (each test creates its own database), stop it afterwards.
# Usage, from the repository root: crates/store/scripts/test-postgres.sh [cargo test args]
set -euo pipefail
PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)}
# Candidate ports below Linux's ephemeral range (32768-60999 by default): a port in that range
# can be held for a while by any outgoing connection, which made a fixed 55432 fail at times
# with "Address already in use". The first port the server starts on is used.
PORTS=${PG_PORT:-"15432 15433 15434 15435 15436"}
DIR=$(mktemp -d)
RUN_AS=()
if [ "$(id -u)" = 0 ]; then
  chown postgres "$DIR"
  RUN_AS=(runuser -u postgres --)
fi
STARTED=""
cleanup() {
  if [ -n "$STARTED" ]; then
    "${RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$DIR/data" -m fast stop >/dev/null
  fi
  rm -rf "$DIR"
}
trap cleanup EXIT
"${RUN_AS[@]}" "$PG_BIN/initdb" -D "$DIR/data" -A trust -U postgres >/dev/null
for PORT in $PORTS; do
  if "${RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$DIR/data" -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1" \
    -l "$DIR/log" -w start >/dev/null; then
    STARTED=1
    break
  fi
  echo "test-postgres: no server on port $PORT, trying the next" >&2
done
if [ -z "$STARTED" ]; then
  echo "test-postgres: PostgreSQL did not start on any of ports $PORTS; its log:" >&2
  cat "$DIR/log" >&2
  exit 1
fi
OPENPALM_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$PORT/postgres" \
  cargo test --release -p openpalm-server "$@"

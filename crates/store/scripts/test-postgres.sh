#!/usr/bin/env bash
# Run the service test suite on PostgreSQL: start a throwaway cluster from the Debian
# packages (apt-get install postgresql) on a private port, point the tests at it with
# OPENPALM_TEST_POSTGRES_URL (each test creates its own database), stop it afterwards.
# Usage, from the repository root: crates/store/scripts/test-postgres.sh [cargo test args]
set -euo pipefail
PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)}
PORT=${PG_PORT:-55432}
DIR=$(mktemp -d)
RUN_AS=()
if [ "$(id -u)" = 0 ]; then
  chown postgres "$DIR"
  RUN_AS=(runuser -u postgres --)
fi
"${RUN_AS[@]}" "$PG_BIN/initdb" -D "$DIR/data" -A trust -U postgres >/dev/null
"${RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$DIR/data" -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1" -l "$DIR/log" -w start >/dev/null
trap '"${RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$DIR/data" -m fast stop >/dev/null; rm -rf "$DIR"' EXIT
OPENPALM_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$PORT/postgres" \
  cargo test --release -p openpalm-server "$@"

# A throwaway PostgreSQL server on 127.0.0.1 for the tests marked `postgres`.
# Sourced by .ci/run: installs Debian's postgresql where pg_ctl is missing, starts a cluster in a
# temporary folder on a free port, creates a database, exports BENCH_TEST_POSTGRES_URL and stops the
# server when the calling shell exits. Usable by hand too: `source .ci/postgres.sh` in a shell.

_bench_pg_bin() {
    if command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(readlink -f "$(command -v pg_ctl)")"
        return
    fi
    # Debian keeps the server binaries out of PATH, under /usr/lib/postgresql/<version>/bin.
    local found
    found="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
    [ -n "$found" ] && [ -x "$found/pg_ctl" ] && echo "$found"
}

if [ -z "$(_bench_pg_bin)" ]; then
    echo "installing PostgreSQL (Debian package postgresql) for the postgres tests"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
BENCH_PG_BIN="$(_bench_pg_bin)"

# initdb refuses to run as root: run the server as the postgres user the package creates.
if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    _bench_as_pg() { runuser -u postgres -- "$@"; }
else
    _bench_as_pg() { "$@"; }
fi

BENCH_PG_DIR="$(mktemp -d)"
[ "$(id -u)" = 0 ] && chown postgres "$BENCH_PG_DIR"
BENCH_PG_PORT="$("${PYTHON:-python3}" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
_bench_as_pg "$BENCH_PG_BIN/initdb" -D "$BENCH_PG_DIR/data" -U bench --auth=trust -E UTF8 >/dev/null
_bench_as_pg "$BENCH_PG_BIN/pg_ctl" -D "$BENCH_PG_DIR/data" -l "$BENCH_PG_DIR/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $BENCH_PG_PORT -k $BENCH_PG_DIR -c max_connections=200" start >/dev/null
_bench_pg_stop() {
    _bench_as_pg "$BENCH_PG_BIN/pg_ctl" -D "$BENCH_PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$BENCH_PG_DIR"
}
trap _bench_pg_stop EXIT
"$BENCH_PG_BIN/createdb" -h 127.0.0.1 -p "$BENCH_PG_PORT" -U bench bench_test
export BENCH_TEST_POSTGRES_URL="postgresql+psycopg2://bench@127.0.0.1:$BENCH_PG_PORT/bench_test"
echo "PostgreSQL for the tests: $BENCH_TEST_POSTGRES_URL"

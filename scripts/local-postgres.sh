#!/usr/bin/env bash
# A private PostgreSQL cluster for local runs (`make run`), in a directory of your choice.
#
#   scripts/local-postgres.sh start  DIR PORT   # initdb if needed, start; prints the database URL
#   scripts/local-postgres.sh stop   DIR [PORT] # stop if running (data is kept)
#   scripts/local-postgres.sh status DIR [PORT] # exit 0 and print the URL if running
#   scripts/local-postgres.sh purge  DIR [PORT] # stop and delete DIR
#
# Every command is idempotent. Only the URL goes to stdout, so
#   HES_DATABASE_URL=$(scripts/local-postgres.sh start .hes-run/postgres 55432)
# works. The server listens on 127.0.0.1 only, with trust authentication, and keeps its
# socket and log (server.log) in DIR. PostgreSQL refuses to run as root, so as root the
# cluster runs as the `postgres` OS user and DIR is owned by it.
#
# Environment: HES_LOCAL_DB_NAME (database to create, default `hes`),
#              HES_PG_BINDIR (PostgreSQL bin directory, default: newest /usr/lib/postgresql/*/bin).
set -euo pipefail

usage() {
    echo "usage: $0 start|stop|status|purge DIR [PORT]" >&2
    exit 2
}

log() { echo "local-postgres: $*" >&2; }

[ $# -ge 2 ] || usage
command=$1
dir=$2
port=${3:-55432}
dbname=${HES_LOCAL_DB_NAME:-hes}
case $port in '' | *[!0-9]*) log "PORT must be a number, not '$port'"; exit 2 ;; esac
case $dbname in '' | *[!a-z0-9_]*) log "HES_LOCAL_DB_NAME must match [a-z0-9_]+"; exit 2 ;; esac

find_bindir() {
    if [ -n "${HES_PG_BINDIR:-}" ]; then
        echo "$HES_PG_BINDIR"
        return
    fi
    local candidate
    candidate=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -n | tail -n 1 || true)
    if [ -n "$candidate" ] && [ -x "$candidate/initdb" ]; then
        echo "$candidate"
        return
    fi
    if command -v pg_config >/dev/null && [ -x "$(pg_config --bindir)/initdb" ]; then
        pg_config --bindir
        return
    fi
    log "PostgreSQL server binaries (initdb, pg_ctl) not found; install postgresql or set HES_PG_BINDIR"
    exit 1
}

bindir=$(find_bindir)
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
data=$dir/data

# Run a PostgreSQL tool as the postgres user when we are root.
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

url() { echo "postgres://postgres@127.0.0.1:$port/$dbname?sslmode=disable"; }

is_running() { [ -f "$data/PG_VERSION" ] && as_pg "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; }

case $command in
start)
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres: "$dir"
        if ! runuser -u postgres -- test -w "$dir"; then
            log "the postgres user cannot reach $dir: every parent directory must be traversable by others (mktemp -d makes 0700 directories; chmod 755 it)"
            exit 1
        fi
    fi
    if [ ! -f "$data/PG_VERSION" ]; then
        log "initialising a cluster in $data"
        rm -rf "$data"
        (cd "$dir" && as_pg "$bindir/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C >"$dir/initdb.log" 2>&1) || {
            log "initdb failed:"
            cat "$dir/initdb.log" >&2
            exit 1
        }
    fi
    if is_running; then
        log "already running ($data)"
    else
        log "starting on 127.0.0.1:$port"
        (cd "$dir" && as_pg "$bindir/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 60 \
            -o "-p $port -k '$dir' -c listen_addresses=127.0.0.1" start >/dev/null 2>&1) || {
            log "pg_ctl start failed (is port $port in use?); last lines of $dir/server.log:"
            tail -n 20 "$dir/server.log" >&2 || true
            exit 1
        }
    fi
    exists=$(as_pg "$bindir/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = '$dbname'")
    if [ "$exists" != "1" ]; then
        as_pg "$bindir/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -qc "CREATE DATABASE \"$dbname\"" >&2
    fi
    url
    ;;
stop)
    if is_running; then
        as_pg "$bindir/pg_ctl" -D "$data" -m fast -w stop >/dev/null
        log "stopped"
    else
        log "not running"
    fi
    ;;
status)
    if is_running; then
        url
    else
        log "not running"
        exit 3
    fi
    ;;
purge)
    if is_running; then as_pg "$bindir/pg_ctl" -D "$data" -m immediate -w stop >/dev/null || true; fi
    rm -rf "$dir"
    log "removed $dir"
    ;;
*)
    usage
    ;;
esac

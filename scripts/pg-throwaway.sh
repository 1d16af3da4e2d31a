#!/usr/bin/env bash
# Starts (or stops) a throwaway PostgreSQL server on 127.0.0.1 for tests and the benchmark.
#   scripts/pg-throwaway.sh start DIR   -> prints a postgres:// URL on stdout (PG_PORT=n: on that port)
#   scripts/pg-throwaway.sh stop DIR
# Tests get a fast, non-durable server (fsync, synchronous_commit, full_page_writes off); PG_DURABLE=1 keeps
# Postgres's own durable defaults (what the benchmark measures against, as in production).
# initdb refuses to run as root, so the server runs as the `postgres` user in a directory it owns.
set -euo pipefail

action=${1:?start|stop}
dir=${2:?directory}

pg_bin() {
  local found
  found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$found" ]; then
    echo "PostgreSQL is not installed; installing it with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 && apt-get install -y -qq postgresql >&2
    found=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  fi
  echo "$found"
}

as_pg() {
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /nonexistent --shell /usr/sbin/nologin postgres
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

case "$action" in
  start)
    bin=$(pg_bin)
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    # PG_PORT picks the port (a test that starts a server against a Postgres that is not up yet); else a free one.
    port=${PG_PORT:-$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')}
    as_pg "$bin/initdb" -D "$dir/data" -U postgres --auth=trust --no-sync -E UTF8 >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
    mkdir -p "$dir/sock"
    [ "$(id -u)" = 0 ] && chown postgres "$dir/sock"
    fast="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    [ "${PG_DURABLE:-0}" = 1 ] && fast=""
    # PG_STAT_STATEMENTS=1: load pg_stat_statements (CREATE EXTENSION it, then read its view) for profiling.
    [ "${PG_STAT_STATEMENTS:-0}" = 1 ] && fast="$fast -c shared_preload_libraries=pg_stat_statements"
    as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
      -o "-p $port -k $dir/sock -c listen_addresses=127.0.0.1 -c max_connections=300 $fast" \
      start >&2 || { cat "$dir/postgres.log" >&2; exit 1; }
    echo "$port" >"$dir/port"
    echo "postgres://postgres@127.0.0.1:$port/postgres"
    ;;
  stop)
    bin=$(pg_bin)
    if [ -d "$dir/data" ]; then
      as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >&2 || true
    fi
    ;;
  *)
    echo "usage: $0 start|stop DIR" >&2
    exit 2
    ;;
esac

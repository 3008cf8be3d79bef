#!/usr/bin/env bash
# Source this file: `gochat_postgres_ensure DIR` makes sure a PostgreSQL answers on loopback
# and prints its URL (database `test`, user `postgres`, trust auth). It uses the one on
# 127.0.0.1:5432 when that answers; otherwise it starts one from Debian's packages
# (installing `postgresql` if missing) with its data in DIR/postgres on a free port, and
# records its pid in DIR/postgres.pid for `gochat_postgres_stop DIR`. GOCHAT_POSTGRES_OWN=1
# starts one even when 5432 answers.

gochat_postgres_ensure() {
  local dir=$1 url=postgres://postgres@127.0.0.1:5432
  if [ "${GOCHAT_POSTGRES_OWN:-}" != 1 ] && psql "$url/postgres" -XAtqc 'select 1' >/dev/null 2>&1; then
    gochat_postgres_createdb "$url"
    echo "$url/test"
    return 0
  fi
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
  if [ -z "$bin" ]; then
    echo "== installing postgresql" >&2
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
  fi
  local port as=()
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  mkdir -p "$dir/postgres"
  # PostgreSQL refuses to run as root: run it as the postgres user the package created.
  if [ "$(id -u)" = 0 ]; then
    chown -R postgres: "$dir/postgres"
    as=(setpriv --reuid=postgres --regid=postgres --init-groups)
  fi
  if [ ! -f "$dir/postgres/PG_VERSION" ]; then
    "${as[@]}" "$bin/initdb" -D "$dir/postgres" -U postgres --auth=trust >"$dir/postgres-initdb.log" 2>&1 ||
      { cat "$dir/postgres-initdb.log" >&2; return 1; }
  fi
  "${as[@]}" "$bin/postgres" -D "$dir/postgres" -p "$port" -c listen_addresses=127.0.0.1 \
    -c unix_socket_directories="$dir/postgres" >"$dir/postgres.log" 2>&1 &
  echo $! >"$dir/postgres.pid"
  url=postgres://postgres@127.0.0.1:$port
  for _ in $(seq 100); do psql "$url/postgres" -XAtqc 'select 1' >/dev/null 2>&1 && break; sleep 0.1; done
  psql "$url/postgres" -XAtqc 'select 1' >/dev/null 2>&1 || { cat "$dir/postgres.log" >&2; return 1; }
  gochat_postgres_createdb "$url"
  echo "== started a throwaway PostgreSQL on $port" >&2
  echo "$url/test"
}

gochat_postgres_createdb() { # base URL: create database `test` if missing
  local exists
  exists=$(psql "$1/postgres" -XAtqc "select 1 from pg_database where datname = 'test'")
  [ "$exists" = 1 ] || psql "$1/postgres" -XAtqc 'CREATE DATABASE test' >/dev/null
}

gochat_postgres_stop() { # DIR given to gochat_postgres_ensure
  local pid
  [ -f "$1/postgres.pid" ] || return 0
  pid=$(cat "$1/postgres.pid")
  kill -INT "$pid" 2>/dev/null || true # fast shutdown
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$1/postgres.pid"
}

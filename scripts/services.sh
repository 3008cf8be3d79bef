#!/usr/bin/env bash
# Source this file: makes sure Redis and etcd are reachable on loopback for the tests and the
# local cluster, installing and starting throwaway ones when missing, and exports
#   GOCHAT_TEST_REDIS  redis://127.0.0.1:PORT
#   GOCHAT_TEST_ETCD   http://127.0.0.1:PORT
#   GOCHAT_TEST_POSTGRES postgres://postgres@127.0.0.1:PORT/test (the machine's server on
#                      5432 when it answers, else a throwaway one: scripts/postgres.sh)
# A service this script started is stopped by `gochat_services_stop` (test.sh traps it).
# Also installs protoc, which the etcd client's build needs.

source "$(dirname "${BASH_SOURCE[0]}")/postgres.sh"

gochat_started_pids=()
gochat_service_dirs=()

gochat_apt_install() {
  if [ "${gochat_apt_updated:-}" != 1 ]; then apt-get update -qq; gochat_apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

gochat_services_start() {
  local need=()
  command -v protoc >/dev/null 2>&1 || need+=(protobuf-compiler)
  command -v etcd >/dev/null 2>&1 || need+=(etcd-server)
  command -v etcdctl >/dev/null 2>&1 || need+=(etcd-client)
  command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
  command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
  command -v psql >/dev/null 2>&1 || need+=(postgresql-client)
  if ((${#need[@]})); then echo "== installing ${need[*]}"; gochat_apt_install "${need[@]}"; fi

  # PostgreSQL: the machine's on 5432, else a throwaway one.
  if [ -z "${GOCHAT_TEST_POSTGRES:-}" ]; then
    gochat_postgres_dir=$(mktemp -d)
    chmod 755 "$gochat_postgres_dir"
    GOCHAT_TEST_POSTGRES=$(gochat_postgres_ensure "$gochat_postgres_dir") || return 1
    export GOCHAT_TEST_POSTGRES
  fi

  # Redis: use the one on 6379 if it answers, else start a throwaway one.
  if [ -z "${GOCHAT_TEST_REDIS:-}" ]; then
    if redis-cli -p 6379 ping >/dev/null 2>&1; then
      export GOCHAT_TEST_REDIS=redis://127.0.0.1:6379
    else
      local port=16379 dir
      dir=$(mktemp -d)
      redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" \
        --daemonize no >"$dir/redis.log" 2>&1 &
      gochat_started_pids+=($!); gochat_service_dirs+=("$dir")
      for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
      redis-cli -p "$port" ping >/dev/null || { cat "$dir/redis.log"; return 1; }
      export GOCHAT_TEST_REDIS=redis://127.0.0.1:$port
      echo "== started a throwaway redis on $port"
    fi
  fi

  # etcd: always a throwaway one on its own ports with a temporary data dir.
  if [ -z "${GOCHAT_TEST_ETCD:-}" ]; then
    local client=23790 peer=23800 dir
    dir=$(mktemp -d)
    etcd --name gochat-test --data-dir "$dir/data" \
      --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
      --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
      --initial-cluster "gochat-test=http://127.0.0.1:$peer" >"$dir/etcd.log" 2>&1 &
    gochat_started_pids+=($!); gochat_service_dirs+=("$dir")
    for _ in $(seq 100); do
      ETCDCTL_API=3 etcdctl --endpoints "127.0.0.1:$client" endpoint health >/dev/null 2>&1 && break
      sleep 0.1
    done
    ETCDCTL_API=3 etcdctl --endpoints "127.0.0.1:$client" endpoint health >/dev/null 2>&1 || { cat "$dir/etcd.log"; return 1; }
    export GOCHAT_TEST_ETCD=http://127.0.0.1:$client
    echo "== started a throwaway etcd on $client"
  fi
}

gochat_services_stop() {
  local pid dir
  # Tests namespace their keys under gochat-test:; drop them from a Redis we did not start.
  if [ -n "${GOCHAT_TEST_REDIS:-}" ] && command -v redis-cli >/dev/null 2>&1; then
    redis-cli -u "$GOCHAT_TEST_REDIS" --scan --pattern 'gochat-test:*' 2>/dev/null |
      xargs -r -n 500 redis-cli -u "$GOCHAT_TEST_REDIS" del >/dev/null 2>&1 || true
  fi
  if [ -n "${gochat_postgres_dir:-}" ]; then
    gochat_postgres_stop "$gochat_postgres_dir"; rm -rf "$gochat_postgres_dir"; gochat_postgres_dir=""
  fi
  for pid in "${gochat_started_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${gochat_started_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  for dir in "${gochat_service_dirs[@]}"; do rm -rf "$dir"; done
  source "$(dirname "${BASH_SOURCE[0]}")/postgres.sh"

gochat_started_pids=(); gochat_service_dirs=()
}

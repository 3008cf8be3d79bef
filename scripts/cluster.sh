#!/usr/bin/env bash
# A local gochat cluster on loopback: every layer its own process — 2 logic, 2 connect,
# 2 task, 1 api (GOCHAT_CLUSTER_LOGIC, _CONNECT, _TASK change the counts) — on a Redis of its own with persistence on (AOF, fsync every second: the
# undelivered queue and the sessions survive a Redis restart; the machine's Redis on 6379
# keeps nothing on disk, so it is never used), etcd (started here if none answers on 2379)
# and PostgreSQL, which holds users and history for both logic instances — no SQLite file is
# shared: the machine's server on 127.0.0.1:5432 when it answers (database `test`, schema
# $GOCHAT_CLUSTER_SCHEMA, default gochat_cluster), else one started here from Debian's
# packages in a temporary directory, removed again by `down`.
#
#   scripts/cluster.sh up       build (release, feature `distributed`) and start everything
#   scripts/cluster.sh status   what runs, with pids, ports and the page address
#   scripts/cluster.sh down     stop exactly what `up` started
#
# State (config, logs, pid file) lives in $GOCHAT_CLUSTER_DIR (default
# target/cluster). Ports are picked free at `up`. GOCHAT_CLUSTER_BENCH=1 makes password
# hashing cheap, for load tests.
set -euo pipefail
cd "$(dirname "$0")/.."
state=${GOCHAT_CLUSTER_DIR:-target/cluster}
pids="$state/pids"
profile=${GOCHAT_CLUSTER_PROFILE:-release}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

alive() { kill -0 "$1" 2>/dev/null; }

status() {
  if [ ! -f "$pids" ]; then echo "cluster: down"; return 0; fi
  while read -r name pid; do
    if alive "$pid"; then s=running; else s=dead; fi
    printf '%-10s pid %-8s %s\n' "$name" "$pid" "$s"
  done <"$pids"
  [ -f "$state/urls" ] && cat "$state/urls"
  return 0
}

start() { # name, then the command; stdout and stderr go to logs/<name>.log
  local name=$1; shift
  "$@" >"$state/logs/$name.log" 2>&1 &
  echo "$name $!" >>"$pids"
}

wait_ready() { # name
  local name=$1 pid
  pid=$(awk -v n="$name" '$1==n {print $2}' "$pids")
  for _ in $(seq 300); do
    grep -q '^ready$' "$state/logs/$name.log" 2>/dev/null && return 0
    alive "$pid" || { echo "$name exited:"; tail -20 "$state/logs/$name.log"; return 1; }
    sleep 0.1
  done
  echo "$name not ready after 30 s"; tail -20 "$state/logs/$name.log"; return 1
}

up() {
  if [ -f "$pids" ]; then echo "cluster already up (scripts/cluster.sh down first)"; status; return 0; fi
  local need=()
  command -v protoc >/dev/null 2>&1 || need+=(protobuf-compiler)
  command -v etcd >/dev/null 2>&1 || need+=(etcd-server)
  command -v etcdctl >/dev/null 2>&1 || need+=(etcd-client)
  command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
  command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
  command -v psql >/dev/null 2>&1 || need+=(postgresql-client)
  if ((${#need[@]})); then
    echo "installing ${need[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  echo "building ($profile)…"
  if [ "$profile" = release ]; then
    cargo build --release --features distributed --bins --quiet
  else
    cargo build --features distributed --bins --quiet
  fi
  local bin="target/$profile"
  mkdir -p "$state/logs"
  : >"$pids"

  local redis_port etcd_port=2379
  redis_port=$(free_port)
  mkdir -p "$state/redis"
  start redis redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$state/redis" \
    --appendonly yes --appendfsync everysec --save ""
  for _ in $(seq 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  redis-cli -p "$redis_port" ping >/dev/null || { echo "redis did not start"; tail "$state/logs/redis.log"; return 1; }
  if ! ETCDCTL_API=3 etcdctl --endpoints "127.0.0.1:$etcd_port" endpoint health >/dev/null 2>&1; then
    etcd_port=$(free_port); local peer; peer=$(free_port)
    # A fresh registry: an etcd restarted on an earlier cluster's data brings back that
    # cluster's instances, with their leases renewed — addresses nothing answers on.
    rm -rf "$state/etcd"
    start etcd etcd --name gochat-cluster --data-dir "$state/etcd" \
      --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
      --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
      --initial-cluster "gochat-cluster=http://127.0.0.1:$peer"
    for _ in $(seq 100); do
      ETCDCTL_API=3 etcdctl --endpoints "127.0.0.1:$etcd_port" endpoint health >/dev/null 2>&1 && break; sleep 0.1
    done
  fi

  local pg_url pg_dir schema=${GOCHAT_CLUSTER_SCHEMA:-gochat_cluster}
  pg_dir=$(mktemp -d /tmp/gochat-cluster-pg.XXXXXX)
  chmod 755 "$pg_dir"
  echo "$pg_dir" >"$state/postgres.dir"
  # shellcheck source=scripts/postgres.sh
  source scripts/postgres.sh
  pg_url=$(gochat_postgres_ensure "$pg_dir")

  cat >"$state/cluster.toml" <<TOML
[cluster]
redis_url = "redis://127.0.0.1:$redis_port"
etcd_endpoints = ["http://127.0.0.1:$etcd_port"]
redis_prefix = "gochat-cluster:"
etcd_prefix = "gochat-cluster/"

[store]
backend = "postgres"
postgres_url = "$pg_url"
postgres_schema = "$schema"

[api]
site = false
TOML
  # Load tests (docs/performance.md) measure delivery, not password hashing.
  if [ -n "${GOCHAT_CLUSTER_BENCH:-}" ]; then
    printf '\n[logic]\nargon2_memory_kib = 1024\nargon2_iterations = 1\n\n[connect]\nchannel_queue = 8192\n' >>"$state/cluster.toml"
  fi
  local cfg=(--config "$state/cluster.toml")
  local api i port ws_list="" tcp_list="" later=()
  local n_logic=${GOCHAT_CLUSTER_LOGIC:-2} n_connect=${GOCHAT_CLUSTER_CONNECT:-2} n_task=${GOCHAT_CLUSTER_TASK:-2}
  api=$(free_port)
  for i in $(seq "$n_logic"); do
    start "logic-$i" "$bin/gochat-logic" "${cfg[@]}" --instance-id "logic-$i" --node-id "$i" --rpc-addr "127.0.0.1:$(free_port)"
    # The first creates the demo users before the others start.
    if [ "$i" = 1 ]; then wait_ready logic-1; else later+=("logic-$i"); fi
  done
  local ws1=""
  for i in $(seq "$n_connect"); do
    port=$(free_port); [ -z "$ws1" ] && ws1=$port
    local tcp; tcp=$(free_port)
    start "connect-$i" "$bin/gochat-connect" "${cfg[@]}" --server-id "connect-$i" --ws-addr "127.0.0.1:$port" --tcp-addr "127.0.0.1:$tcp" --rpc-addr "127.0.0.1:$(free_port)"
    ws_list+="${ws_list:+, }ws://127.0.0.1:$port/ws (connect-$i)"
    tcp_list+="${tcp_list:+, }127.0.0.1:$tcp (connect-$i)"
    later+=("connect-$i")
  done
  for i in $(seq "$n_task"); do
    start "task-$i" "$bin/gochat-task" "${cfg[@]}" --consumer "task-$i"
    later+=("task-$i")
  done
  start api "$bin/gochat-api" "${cfg[@]}" --api-addr "127.0.0.1:$api" --ws-port "$ws1"
  for n in "${later[@]}" api; do wait_ready "$n"; done
  cat >"$state/urls" <<URLS
page:      http://127.0.0.1:$api/   (its WebSocket: connect-1)
api:       127.0.0.1:$api
websocket: $ws_list
tcp:       $tcp_list
redis:     redis://127.0.0.1:$redis_port   etcd: http://127.0.0.1:$etcd_port
postgres:  $pg_url (schema $schema)
logs:      $state/logs/
URLS
  status
}

down() {
  if [ ! -f "$pids" ]; then echo "cluster: down"; return 0; fi
  # Layers first, in reverse start order; Redis and etcd (if we started them) last.
  tac "$pids" | while read -r name pid; do alive "$pid" && kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 100); do
    local any=0
    while read -r _ pid; do alive "$pid" && any=1; done <"$pids"
    [ $any = 0 ] && break
    sleep 0.1
  done
  while read -r name pid; do
    if alive "$pid"; then echo "$name did not stop; killing"; kill -KILL "$pid" 2>/dev/null || true; fi
  done <"$pids"
  rm -f "$pids" "$state/urls"
  if [ -f "$state/postgres.dir" ]; then
    local pg_dir
    pg_dir=$(cat "$state/postgres.dir")
    # shellcheck source=scripts/postgres.sh
    source scripts/postgres.sh
    gochat_postgres_stop "$pg_dir"
    rm -rf "$pg_dir" "$state/postgres.dir"
  fi
  echo "cluster: down"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac

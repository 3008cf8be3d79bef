#!/usr/bin/env bash
# The load-test table of docs/performance.md: the same gochat-bench runs against the ceiling
# probe (../shared/ceiling, `fanout gochat`) and against our standalone server, one after the
# other on this machine. Prints one JSON line per test and server. Loopback only.
#   scripts/perf.sh                 # everything (~6 minutes)
#   PERF_TESTS="room idle" scripts/perf.sh
#   PERF_TESTS=history scripts/perf.sh   # room and private, history on vs off
#   PERF_TESTS=store scripts/perf.sh     # stored msgs/s: SQLite, PostgreSQL from 1 and 2 stores
set -euo pipefail
cd "$(dirname "$0")/.."
tests=${PERF_TESTS:-"room latency private idle distributed"}
cargo build --release --quiet --bin gochat --bin gochat-bench
cargo build --release --quiet --features distributed --bins
ceiling=../shared/ceiling/Cargo.toml
[ -f "$ceiling" ] && cargo build --release --quiet --manifest-path "$ceiling" --target-dir target/ceiling
bench=target/release/gochat-bench
work=$(mktemp -d)
server_pid=""
stop() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  server_pid=""
}
trap 'stop; rm -rf "$work"' EXIT

start() { # which
  case $1 in
    ceiling) target/ceiling/release/fanout gochat --api 127.0.0.1:27070 --ws 127.0.0.1:27000 >"$work/ceiling.log" 2>&1 &
             server_pid=$!; api=127.0.0.1:27070; ws=127.0.0.1:27000 ;;
    ours|ours-nohistory)
          local config=benches/bench-server.toml
          [ "$1" = ours-nohistory ] && config=benches/bench-server-nohistory.toml
          rm -rf "$work/data"
          target/release/gochat --config "$config" --data-dir "$work/data" \
            --api-addr 127.0.0.1:17070 --ws-addr 127.0.0.1:17000 --no-tcp >"$work/ours.log" 2>&1 &
          server_pid=$!; api=127.0.0.1:17070; ws=127.0.0.1:17000 ;;
  esac
  for _ in $(seq 100); do curl -s -o /dev/null "http://$api/" && return 0; sleep 0.1; done
  echo "server $1 did not start"; exit 1
}

run() { # which, then gochat-bench's test arguments
  local which=$1; shift
  start "$which"
  "$bench" --api "$api" --ws "$ws" --server-pid "$server_pid" --label "$which" "$@" 2>/dev/null
  stop
}

cluster_room() { # the room test against a local cluster of separate processes (release)
  export GOCHAT_CLUSTER_DIR="$work/cluster" GOCHAT_CLUSTER_BENCH=1
  scripts/cluster.sh up >/dev/null
  local capi cws
  capi=$(awk '/^api:/ {print $2}' "$GOCHAT_CLUSTER_DIR/urls")
  cws=$(awk '/^websocket:/ {sub("ws://", "", $2); sub("/ws", "", $2); print $2}' "$GOCHAT_CLUSTER_DIR/urls")
  "$bench" --api "$capi" --ws "$cws" --label distributed room "$@" 2>/dev/null || true
  scripts/cluster.sh down >/dev/null
}

for t in $tests; do
  if [ "$t" = store ]; then
    # The store alone (benches/store_write.rs): the machine's PostgreSQL, or a throwaway one.
    source scripts/postgres.sh
    mkdir -p "$work/pg" && chmod 755 "$work" "$work/pg"
    GOCHAT_BENCH_POSTGRES=$(gochat_postgres_ensure "$work/pg") \
      cargo bench --quiet --bench store_write --features postgres 2>/dev/null | grep -v '^$'
    gochat_postgres_stop "$work/pg"
    continue
  fi
  if [ "$t" = history ]; then
    # History on (the default) against off, same run: what storing every message costs.
    for which in ours ours-nohistory; do
      run "$which" room --users 2000 --messages 200 --senders 4
      run "$which" private --users 1000 --messages 20000 --senders 32
    done
    continue
  fi
  if [ "$t" = distributed ]; then
    # Standalone and distributed in the same run: the ratio is what is reported.
    run ours room --users 2000 --messages 200 --senders 4
    cluster_room --users 2000 --messages 200 --senders 4
    continue
  fi
  for which in ceiling ours; do
    [ "$which" = ceiling ] && [ ! -x target/ceiling/release/fanout ] && continue
    case $t in
      room) run "$which" room --users 2000 --messages 200 --senders 4 ;;
      latency) run "$which" room --users 1000 --messages 200 --senders 1 --rate 20 ;;
      private) run "$which" private --users 1000 --messages 20000 --senders 32 ;;
      idle) run "$which" --concurrency 128 idle --users 15000 --secs 5 ;;
    esac
  done
done
